"""`yurt.gcpolicy`: the server's use of the cyclic GC. Each case runs in a child process:
it changes the interpreter's GC settings."""

import os
import subprocess
import sys
import textwrap

import pytest


def _run(code: str, expect_tail: str = "") -> str:
    out = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
                         env=dict(os.environ), timeout=60)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.strip().splitlines()
    assert "ok" in lines, out.stdout
    if expect_tail:
        assert lines[-1].startswith(expect_tail), out.stdout
    return out.stdout


def test_relax_freezes_survivors_of_every_collection():
    _run("""
        import gc
        from yurt import gcpolicy
        from yurt.state import relax_gc

        relax_gc()
        relax_gc()  # twice: one hook
        assert gc.callbacks.count(gcpolicy._hook) == 1, gc.callbacks
        assert gc.get_threshold() == gcpolicy.THRESHOLDS
        frozen = gc.get_freeze_count()
        kept = [[i] for i in range(1000)]  # tracked containers made after the first freeze
        cycle = []
        cycle.append(cycle)
        del cycle  # garbage made after the freeze is still collected by a young collection
        assert gc.collect(0) >= 1
        assert gc.get_freeze_count() >= frozen + 1000, (frozen, gc.get_freeze_count())
        young = {id(o) for o in gc.get_objects()}  # the frozen objects are in no generation
        assert not any(id(x) in young for x in kept)
        print("ok")
    """)


def test_full_collection_finds_garbage_among_frozen_objects():
    _run("""
        import gc
        from yurt import gcpolicy

        gcpolicy.relax()
        ring = [[] for _ in range(100)]
        for a, b in zip(ring, ring[1:] + ring[:1]):
            a.append(b)  # a cycle, alive now
        gc.collect(1)  # survives a young collection: frozen
        frozen = gc.get_freeze_count()
        assert not any(r is ring[0] for r in gc.get_objects())
        del ring, a, b  # now cyclic garbage among frozen objects
        assert gc.collect(1) == 0  # young collections do not see it
        assert gc.collect() >= 100  # a full one does
        assert gc.get_freeze_count() < frozen
        assert gc.get_objects(generation=2) == []  # what it left is frozen again
        print("ok")
    """)


def test_pause_is_counted_across_threads():
    _run("""
        import gc, threading
        from yurt.gcpolicy import paused

        assert gc.isenabled()
        a_in, b_in, a_out = threading.Event(), threading.Event(), threading.Event()
        seen = {}

        def a():
            with paused():
                a_in.set()
                b_in.wait(5)
            seen["after_a"] = gc.isenabled()
            a_out.set()

        def b():
            a_in.wait(5)
            with paused():
                b_in.set()
                a_out.wait(5)
                seen["b_after_a"] = gc.isenabled()
            seen["after_b"] = gc.isenabled()

        threads = [threading.Thread(target=f) for f in (a, b)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(10)
        assert seen == {"after_a": False, "b_after_a": False, "after_b": True}, seen
        gc.disable()
        with paused():
            with paused():
                pass
        assert not gc.isenabled()  # a pause does not enable a collector that was off
        print("ok")
    """)


def test_overdue_collection_runs_while_another_pause_holds():
    _run("""
        import gc
        from yurt import gcpolicy

        gcpolicy.relax()
        gc.set_threshold(1000, 10, 10)
        runs = []
        gc.callbacks.append(lambda phase, info: runs.append(info["generation"]) if phase == "start" else None)
        with gcpolicy.paused():
            with gcpolicy.paused():
                keep = [[i] for i in range(1500)]  # due, but not twice the threshold
            assert runs == [] and not gc.isenabled()
            with gcpolicy.paused():
                keep2 = [[i] for i in range(1000)]
            assert runs == [0], runs  # 2,500 > 2 x 1,000: collected at that eval's end
            assert not gc.isenabled()
        assert gc.isenabled()
        assert gcpolicy.collect_if_overdue() == -1
        print("ok")
    """)


def test_stats_are_written_when_asked(tmp_path):
    path = tmp_path / "gc.jsonl"
    _run(f"""
        import gc, json, os
        os.environ["YURT_GC_STATS"] = {str(path)!r}
        from yurt import gcpolicy

        gcpolicy.STATS_EVERY_S = 0.0
        gcpolicy.relax()
        gc.collect(0)
        gc.collect()
        lines = [json.loads(x) for x in open({str(path)!r})]
        assert lines[-1]["gens"]["0"]["n"] >= 1 and lines[-1]["gens"]["2"]["n"] >= 1, lines[-1]
        print("ok")
    """)


def test_exit_does_not_walk_the_frozen_heap():
    out = _run("""
        import gc, os, sys
        from yurt import gcpolicy

        gcpolicy.relax()
        keep = [[i] for i in range(50_000)]
        gc.collect(0)  # frozen
        frozen = gc.get_freeze_count()

        def at_exit_collection(phase, info):
            if phase == "stop" and info["generation"] == 2 and sys.is_finalizing():
                os.write(1, b"frozen at exit %d\\n" % gc.get_freeze_count())
        gc.callbacks.insert(0, at_exit_collection)
        print("ok")
    """, expect_tail="frozen at exit")
    assert int(out.split()[-1]) >= 50_000, out  # still frozen during the interpreter's last collection


if __name__ == "__main__":
    pytest.main([__file__])
