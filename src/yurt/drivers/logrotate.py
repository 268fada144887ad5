"""Nomad's log file rotation: `<base>.0`, `<base>.1`, ... keeping at most `max_files`.

A rotator appends to the highest-numbered existing file (a restarted task continues its
log), moves to the next index once the current file reaches `max_file_size` bytes, and
deletes the oldest files beyond `max_files`.
"""

import os
import re


def log_indexes(base: str) -> list[int]:
    """Existing indexes of `<base>.N`, ascending."""
    directory, prefix = os.path.split(base)
    pattern = re.compile(re.escape(prefix) + r"\.(\d+)$")
    try:
        names = os.listdir(directory or ".")
    except FileNotFoundError:
        return []
    return sorted(int(m.group(1)) for m in map(pattern.match, names) if m)


class FileRotator:
    def __init__(self, base: str, max_files: int, max_file_size: int):
        self.base = base
        self.max_files = max(1, max_files)
        self.max_file_size = max(1, max_file_size)
        indexes = log_indexes(base)
        self.index = indexes[-1] if indexes else 0
        self._file = open(self._path(self.index), "ab")
        self._size = self._file.tell()

    def _path(self, index: int) -> str:
        return f"{self.base}.{index}"

    def write(self, data: bytes) -> None:
        while data:
            room = self.max_file_size - self._size
            if room <= 0:
                self._rotate()
                continue
            chunk, data = data[:room], data[room:]
            self._file.write(chunk)
            self._file.flush()
            self._size += len(chunk)

    def _rotate(self) -> None:
        self._file.close()
        self.index += 1
        self._file = open(self._path(self.index), "ab")
        self._size = 0
        self._purge()

    def _purge(self) -> None:
        for index in log_indexes(self.base)[: -self.max_files]:
            try:
                os.unlink(self._path(index))
            except FileNotFoundError:
                pass

    def close(self) -> None:
        self._file.close()
