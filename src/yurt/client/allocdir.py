"""Nomad's allocation directory layout under `<data_dir>/alloc/<alloc_id>/`.

    alloc/            shared by the group's tasks (NOMAD_ALLOC_DIR)
      logs/           <task>.stdout.N / <task>.stderr.N
      data/  tmp/
    <task>/           the task dir
      local/          NOMAD_TASK_DIR
      secrets/        NOMAD_SECRETS_DIR (mode 0700)
      tmp/
"""

import os
import shutil
from dataclasses import dataclass


@dataclass(frozen=True)
class AllocDir:
    root: str  # <data_dir>/alloc/<alloc_id>

    @property
    def shared_dir(self) -> str:
        return os.path.join(self.root, "alloc")

    @property
    def log_dir(self) -> str:
        return os.path.join(self.shared_dir, "logs")

    def task_dir(self, task: str) -> str:
        return os.path.join(self.root, task)

    def local_dir(self, task: str) -> str:
        return os.path.join(self.task_dir(task), "local")

    def secrets_dir(self, task: str) -> str:
        return os.path.join(self.task_dir(task), "secrets")

    def build(self, tasks: list[str]) -> None:
        for sub in ("logs", "data", "tmp"):
            os.makedirs(os.path.join(self.shared_dir, sub), exist_ok=True)
        for task in tasks:
            self.build_task(task)

    def build_task(self, task: str) -> None:
        for sub in ("local", "tmp"):
            os.makedirs(os.path.join(self.task_dir(task), sub), exist_ok=True)
        os.makedirs(self.secrets_dir(task), mode=0o700, exist_ok=True)

    def write_local_file(self, task: str, name: str, data: bytes) -> str:
        """Write `data` to `<task>/local/<name>` (e.g. the dispatch payload); refuses paths
        that leave `local/`."""
        local = self.local_dir(task)
        path = os.path.normpath(os.path.join(local, name))
        if not path.startswith(local + os.sep):
            raise OSError(f'file "{name}" escapes the task\'s local directory')
        os.makedirs(os.path.dirname(path), mode=0o777, exist_ok=True)
        with open(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o777), "wb") as f:
            f.write(data)
        return path

    def destroy(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)


def alloc_dir_for(base: str, alloc_id: str) -> AllocDir:
    return AllocDir(os.path.join(base, alloc_id))
