"""`relax_gc`: after it, each full collection freezes what it left (run in a child process:
it changes the interpreter's GC settings)."""

import os
import subprocess
import sys

_CHILD = """
import gc
from yurt.state import relax_gc
from yurt.state.store import freeze_after_full_collection

relax_gc()
relax_gc()  # twice: one hook
assert gc.callbacks.count(freeze_after_full_collection) == 1, gc.callbacks
assert gc.get_threshold() == (50_000, 20, 100)
frozen = gc.get_freeze_count()
kept = [[i] for i in range(1000)]  # tracked containers made after the first freeze
gc.collect(1)
assert gc.get_freeze_count() == frozen, "a young collection froze"
gc.collect()
assert gc.get_freeze_count() >= frozen + 1000, (frozen, gc.get_freeze_count())
young = {id(o) for o in gc.get_objects()}  # the frozen objects are not in any generation
assert not any(id(x) in young for x in kept)
cycle = []
cycle.append(cycle)  # garbage made after the freeze is still collected
del cycle
assert gc.collect() >= 1
print("ok")
"""


def test_full_collections_freeze_what_they_leave():
    env = dict(os.environ)
    out = subprocess.run([sys.executable, "-c", _CHILD], capture_output=True, text=True, env=env, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"
