import os
import uuid

import pytest

from yurt.drivers.base import TaskConfig


@pytest.fixture
def make_task(tmp_path):
    def make(config: dict, name: str = "web", kill_timeout_s: float = 5.0, kill_signal: str = "SIGINT") -> TaskConfig:
        alloc_id = str(uuid.uuid4())
        alloc_dir = tmp_path / alloc_id
        task_dir = alloc_dir / name
        log_dir = alloc_dir / "alloc" / "logs"
        for d in (task_dir / "local", log_dir):
            os.makedirs(d, exist_ok=True)
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "NOMAD_TASK_NAME": name}
        return TaskConfig(
            alloc_id=alloc_id,
            task_name=name,
            config=config,
            env=env,
            alloc_dir=str(alloc_dir),
            task_dir=str(task_dir),
            log_dir=str(log_dir),
            kill_signal=kill_signal,
            kill_timeout=int(kill_timeout_s * 1e9),
        )

    return make
