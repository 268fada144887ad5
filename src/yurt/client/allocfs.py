"""Read access to an allocation's directory for the `/v1/client/fs/*` routes: safe path
resolution, Nomad's AllocFileInfo, and the choice of log file and offset to read from."""

import datetime
import os
import re
import stat as _stat
from dataclasses import dataclass
from typing import Any


class FSError(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


def resolve(root: str, path: str) -> str:
    """The host path for `path` inside the alloc dir `root`; refuses escapes (also via symlinks)."""
    rel = (path or "/").lstrip("/")
    full = os.path.realpath(os.path.join(root, rel))
    real_root = os.path.realpath(root)
    if full != real_root and not full.startswith(real_root + os.sep):
        raise FSError(400, f'path "{path}" escapes the allocation directory')
    return full


def _mod_time(ts: float) -> str:
    return datetime.datetime.fromtimestamp(ts).astimezone().isoformat()


def content_type(full: str) -> str:
    """A small `http.DetectContentType`: text or binary from the first 512 bytes."""
    try:
        with open(full, "rb") as f:
            head = f.read(512)
    except OSError:
        return "application/octet-stream"
    if b"\x00" in head:
        return "application/octet-stream"
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:
        if exc.start < len(head) - 4:
            return "application/octet-stream"
    return "text/plain; charset=utf-8"


def file_info(full: str, name: str | None = None) -> dict[str, Any]:
    """Nomad's AllocFileInfo for one file or directory."""
    try:
        st = os.stat(full)
    except FileNotFoundError:
        raise FSError(404, f"stat {full}: no such file or directory") from None
    is_dir = _stat.S_ISDIR(st.st_mode)
    return {
        "Name": name if name is not None else os.path.basename(full),
        "IsDir": is_dir,
        "Size": 0 if is_dir else st.st_size,
        "FileMode": _stat.filemode(st.st_mode),
        "ModTime": _mod_time(st.st_mtime),
        "ContentType": "" if is_dir else content_type(full),
    }


def list_dir(full: str) -> list[dict[str, Any]]:
    if not os.path.exists(full):
        raise FSError(404, f"open {full}: no such file or directory")
    if not os.path.isdir(full):
        raise FSError(400, f"{full} is not a directory")
    return [file_info(os.path.join(full, name), name) for name in sorted(os.listdir(full))]


@dataclass(frozen=True)
class LogFile:
    index: int
    path: str
    size: int


def log_files(log_dir: str, task: str, log_type: str) -> list[LogFile]:
    pattern = re.compile(re.escape(f"{task}.{log_type}.") + r"(\d+)$")
    out: list[LogFile] = []
    try:
        names = os.listdir(log_dir)
    except FileNotFoundError:
        return out
    for name in names:
        m = pattern.match(name)
        if not m:
            continue
        path = os.path.join(log_dir, name)
        try:
            out.append(LogFile(int(m.group(1)), path, os.path.getsize(path)))
        except FileNotFoundError:
            continue
    return sorted(out, key=lambda f: f.index)


def find_closest(files: list[LogFile], desired_index: int, desired_offset: int) -> tuple[LogFile, int]:
    """The file at (or after) `desired_index` and the offset in it; a negative offset
    counts back from that file's end, crossing into earlier files (Nomad's findClosest)."""
    i = next((n for n, f in enumerate(files) if f.index >= desired_index), len(files) - 1)
    offset = desired_offset
    while True:
        size = files[i].size
        if offset == 0:
            break
        if offset < 0:
            if size + offset >= 0:
                offset = size + offset
                break
            if i == 0:
                offset = 0
                break
            offset, i = size + offset, i - 1
        else:
            if offset <= size:
                break
            if i == len(files) - 1:
                offset = size
                break
            offset, i = offset - size, i + 1
    return files[i], offset
