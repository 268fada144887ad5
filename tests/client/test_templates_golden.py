"""Golden task-template cases: NAME.tpl rendered as Nomad's consul-template would.

Beside each NAME.tpl: NAME.out (the expected file) or NAME.err (the expected error text),
and optionally NAME.json with `env`, `files` (relative to the task dir), `now` (unix
seconds), `left`/`right` delimiters and `missing_key` (error_on_missing_key).
"""

import json
import os
from pathlib import Path

import pytest

from yurt.client.templates import TemplateError, render

GOLDEN = Path(__file__).parent / "templates_golden"
CASES = sorted(p.stem for p in GOLDEN.glob("*.tpl"))


def test_there_are_enough_cases():
    assert len(CASES) >= 25
    for name in CASES:
        assert (GOLDEN / f"{name}.out").exists() != (GOLDEN / f"{name}.err").exists(), name


def _render_case(name: str, task_dir: Path) -> str:
    spec_path = GOLDEN / f"{name}.json"
    spec = json.loads(spec_path.read_text()) if spec_path.exists() else {}
    for rel, content in spec.get("files", {}).items():
        path = task_dir / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content)
    now = spec.get("now")
    return render((GOLDEN / f"{name}.tpl").read_text(), spec.get("env", {}), spec.get("left", "{{"),
                  spec.get("right", "}}"), name="golden", task_dir=str(task_dir),
                  now=(lambda: float(now)) if now is not None else None, missing_key=spec.get("missing_key", False))


@pytest.mark.parametrize("name", CASES)
def test_golden(name, tmp_path):
    task_dir = tmp_path / "alloc" / "task"
    os.makedirs(task_dir)
    out, err = GOLDEN / f"{name}.out", GOLDEN / f"{name}.err"
    if out.exists():
        assert _render_case(name, task_dir) == out.read_text()
    else:
        with pytest.raises(TemplateError) as info:
            _render_case(name, task_dir)
        assert str(info.value) == err.read_text().rstrip("\n")
