"""`yurt system gc` and `yurt system reconcile summaries`."""


def test_system_gc_puts_and_prints_nothing(fake, run_cli):
    fake.on("PUT", "/v1/system/gc", {})
    res = run_cli("system", "gc")
    assert (res.code, res.out, res.err) == (0, "", "")
    assert [(r.method, r.path) for r in fake.requests] == [("PUT", "/v1/system/gc")]


def test_system_reconcile_summaries(fake, run_cli):
    fake.on("PUT", "/v1/system/reconcile/summaries", {})
    res = run_cli("system", "reconcile", "summaries")
    assert (res.code, res.out) == (0, "")
    assert fake.requests[-1].path == "/v1/system/reconcile/summaries"


def test_system_gc_errors(fake, run_cli):
    fake.on("PUT", "/v1/system/gc", (403, "Permission denied"))
    res = run_cli("system", "gc")
    assert res.code == 1 and "Error running system garbage-collection" in res.err and "Permission denied" in res.err
    res = run_cli("system", "gc", "extra")
    assert res.code == 1 and "This command takes no arguments" in res.err


def test_system_group_help(run_cli):
    res = run_cli("system")
    assert "gc" in res.out + res.err and "reconcile" in res.out + res.err
