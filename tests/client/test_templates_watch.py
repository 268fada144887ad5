"""Templates while the task runs: change detection, change_mode actions, env = true."""

import asyncio
import glob
import os
import random

import pytest

from fakeserver import make_alloc, raw_task

from yurt.client import template_watch
from yurt.client.template_watch import ChangeActions, Quiescence, TemplateWatcher, plan_change
from yurt.client.templates import TaskTemplates
from yurt.structs import SECOND

# --- pure decisions ------------------------------------------------------------------------


def test_restart_wins_and_splay_is_the_largest():
    specs = [{"ChangeMode": "signal", "ChangeSignal": "SIGHUP", "Splay": 2 * SECOND},
             {"ChangeMode": "restart", "Splay": 3 * SECOND}, {"ChangeMode": "noop", "Splay": 9 * SECOND}]
    assert plan_change(specs) == ChangeActions(restart=True, splay_ns=3 * SECOND)


def test_signals_are_deduplicated_and_scripts_collected():
    script = {"Command": "/bin/true", "Args": []}
    specs = [{"ChangeMode": "signal", "ChangeSignal": "SIGHUP"}, {"ChangeMode": "signal", "ChangeSignal": "SIGHUP"},
             {"ChangeMode": "script", "ChangeScript": script}, {"ChangeMode": "noop"}]
    actions = plan_change(specs)
    assert actions.signals == ("SIGHUP",) and actions.scripts == (script,) and not actions.restart
    assert plan_change([{"ChangeMode": "noop", "Splay": SECOND}]).empty


def _templates(tmp_path, **spec):
    task_dir = tmp_path / "alloc" / "web"
    (task_dir / "local").mkdir(parents=True)
    (task_dir / "local" / "in.tpl").write_text("v1")
    templates = TaskTemplates([{"SourcePath": "local/in.tpl", "DestPath": "local/out", **spec}], str(task_dir))
    templates.render_all({})
    return task_dir, templates


def test_wait_holds_a_render_until_inputs_settle(tmp_path):
    task_dir, templates = _templates(tmp_path, Wait={"Min": 2 * SECOND, "Max": 10 * SECOND})
    quiet = Quiescence()
    (task_dir / "local" / "in.tpl").write_text("v2")
    assert quiet.ready(templates, templates.changed_inputs({}), {}, now=100.0) == []
    (task_dir / "local" / "in.tpl").write_text("v3")
    assert quiet.ready(templates, templates.changed_inputs({}), {}, now=101.5) == []  # changed again: wait on
    assert quiet.ready(templates, templates.changed_inputs({}), {}, now=103.0) == []
    assert quiet.ready(templates, templates.changed_inputs({}), {}, now=103.6) == [0]


def test_wait_max_bounds_a_busy_input(tmp_path):
    task_dir, templates = _templates(tmp_path, Wait={"Min": 2 * SECOND, "Max": 3 * SECOND})
    quiet = Quiescence()
    for i, now in enumerate((100.0, 101.0, 102.0)):
        (task_dir / "local" / "in.tpl").write_text(f"busy {i}")
        assert quiet.ready(templates, templates.changed_inputs({}), {}, now=now) == []
    (task_dir / "local" / "in.tpl").write_text("busy 3")
    assert quiet.ready(templates, templates.changed_inputs({}), {}, now=103.0) == [0]


class FakeRunner:
    name = "web"

    def __init__(self):
        self.calls = []

    async def restart(self, reason):
        self.calls.append(("restart", reason))

    async def signal(self, sig, reason, display):
        self.calls.append(("signal", sig, display))

    async def kill(self, **fields):
        self.calls.append(("kill", fields["kill_reason"]))

    def emit(self, event_type, **fields):
        self.calls.append((event_type, fields.get("message")))


async def test_watcher_rerenders_then_acts_after_a_splay(tmp_path):
    task_dir, templates = _templates(tmp_path, ChangeMode="signal", ChangeSignal="SIGHUP", Splay=4 * SECOND)
    slept = []

    async def fake_sleep(seconds):
        slept.append(seconds)

    runner = FakeRunner()
    watcher = TemplateWatcher(runner, templates, {}, rng=random.Random(1), clock=lambda: 0.0, sleep=fake_sleep)
    assert await watcher.check_once() == []  # nothing changed: no render, no action
    (task_dir / "local" / "in.tpl").write_text("v2 {{ env \"X\" }}")
    changed = await watcher.check_once()
    assert changed == [0] and (task_dir / "local" / "out").read_text() == "v2 "
    await watcher.apply(plan_change([templates.blocks[0].spec]))
    assert runner.calls == [("signal", "SIGHUP", "Template re-rendered")]
    assert len(slept) == 1 and 0 <= slept[0] <= 4.0
    # the env value the render read is an input too
    assert await TemplateWatcher(runner, templates, {"X": "x"}, sleep=fake_sleep).check_once() == [0]
    assert (task_dir / "local" / "out").read_text() == "v2 x"


async def test_a_failing_rerender_kills_the_task_with_the_reason(tmp_path):
    task_dir, templates = _templates(tmp_path)
    calls = 0

    async def sleep_twice(_seconds):
        nonlocal calls
        calls += 1
        if calls > 2:
            raise AssertionError("the watcher should have stopped")

    (task_dir / "local" / "in.tpl").write_text('{{ key "x" }}')
    runner = FakeRunner()
    await TemplateWatcher(runner, templates, {}, sleep=sleep_twice).run()
    assert runner.calls[0][0] == "kill" and runner.calls[0][1].startswith("Template failed: template: local/in.tpl:1:3")
    assert '"key"' in runner.calls[0][1]


async def test_change_script_events(tmp_path):
    _task_dir, templates = _templates(tmp_path)
    runner = FakeRunner()
    watcher = TemplateWatcher(runner, templates, {})

    async def exit_code(code):
        async def fake_exec(_runner, argv, timeout):
            return code
        return fake_exec

    original = template_watch.exec_in_task
    try:
        template_watch.exec_in_task = await exit_code(0)
        await watcher.run_script({"Command": "/bin/reload", "Args": ["-q"]})
        template_watch.exec_in_task = await exit_code(3)
        await watcher.run_script({"Command": "/bin/reload", "Args": [], "FailOnError": True})
    finally:
        template_watch.exec_in_task = original
    assert runner.calls == [
        ("Task hook message", "Template successfully ran script /bin/reload with arguments: [-q]. Exit code: 0"),
        ("Task hook failed", "Template ran script /bin/reload with arguments [] on change but it exited with code: 3"),
        ("kill", "Template script failed, task is being killed"),
    ]


# --- with a client agent and real raw_exec tasks --------------------------------------------

def _logs(a, alloc, task):
    out = ""
    for path in sorted(glob.glob(os.path.join(a.config.alloc_dir, alloc.id, "alloc", "logs", f"{task}.stdout.*"))):
        out += open(path).read()
    return out


async def _until(predicate, timeout=15.0):
    for _ in range(int(timeout / 0.05)):
        if predicate():
            return
        await asyncio.sleep(0.05)
    raise AssertionError("condition not reached")


def _source(a, alloc, task, text):
    path = os.path.join(a.config.alloc_dir, alloc.id, task, "local", "in.tpl")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)


@pytest.fixture
def fast_poll(monkeypatch):
    monkeypatch.setattr(template_watch, "POLL_INTERVAL", 0.1)


async def test_source_change_restarts_the_task_and_env_reaches_it(server, agent, fast_poll):
    a = await agent()
    task = raw_task("t", 'echo "$GREETING $(cat local/out.txt)"; exec sleep 60', templates=[
        {"SourcePath": "local/in.tpl", "DestPath": "local/out.txt", "ChangeMode": "restart", "Splay": 0},
        {"EmbeddedTmpl": "GREETING=hello\n", "DestPath": "secrets/app.env", "Envvars": True, "ChangeMode": "noop"},
    ])
    alloc = make_alloc(a.node.id, [task], job_type="service")
    _source(a, alloc, "t", 'v1 {{ env "NOMAD_TASK_NAME" }}')
    await server.add_alloc(alloc)
    await _until(lambda: "hello v1 t\n" in _logs(a, alloc, "t"))
    _source(a, alloc, "t", "v2 {{ env \"NOMAD_TASK_NAME\" | toUpper }}")
    await _until(lambda: "hello v2 T\n" in _logs(a, alloc, "t"))
    runner = a.alloc_runners[alloc.id].task_runners["t"]
    messages = [(e.type, e.display_message) for e in runner.state.events]
    assert ("Restart Signaled", "Template with change_mode restart re-rendered") in messages
    assert [t for t, _ in messages].count("Started") == 2
    await server.stop_alloc(alloc.id)
    await server.wait_status(alloc.id, "complete", timeout=15)


async def test_source_change_signals_the_task(server, agent, fast_poll):
    a = await agent()
    script = "trap 'echo \"got HUP: $(cat local/out.txt)\"' HUP; echo ready; while true; do sleep 0.1; done"
    task = raw_task("s", script, templates=[{"SourcePath": "local/in.tpl", "DestPath": "local/out.txt",
                                             "ChangeMode": "signal", "ChangeSignal": "SIGHUP", "Splay": 0}])
    alloc = make_alloc(a.node.id, [task], job_type="service")
    _source(a, alloc, "s", "first")
    await server.add_alloc(alloc)
    await _until(lambda: "ready\n" in _logs(a, alloc, "s"))
    _source(a, alloc, "s", "second")
    await _until(lambda: "got HUP: second\n" in _logs(a, alloc, "s"))
    runner = a.alloc_runners[alloc.id].task_runners["s"]
    events = runner.state.events
    signaling = [e for e in events if e.type == "Signaling"]
    assert signaling and signaling[-1].display_message == "Template re-rendered" and signaling[-1].task_signal == "SIGHUP"
    assert [e.type for e in events].count("Started") == 1
    await server.stop_alloc(alloc.id)
    await server.wait_status(alloc.id, "complete", timeout=15)


def test_env_from_env_templates_is_not_a_change(tmp_path):
    task_dir = tmp_path / "t"
    templates = TaskTemplates([{"EmbeddedTmpl": "A=1\n", "DestPath": "secrets/e", "Envvars": True},
                               {"EmbeddedTmpl": '[{{ env "A" }}]', "DestPath": "local/a"}], str(task_dir))
    task_env = {"NOMAD_TASK_NAME": "t"}
    assert templates.render_all(task_env) == {"A": "1"}
    task_env.update({"A": "1"})  # what the task runner does with the result
    assert templates.changed_inputs(templates.render_env) == []
    assert (task_dir / "local" / "a").read_text() == "[]"


async def test_source_change_runs_the_change_script(server, agent, fast_poll):
    a = await agent()
    script = {"Command": "/bin/sh", "Args": ["-c", 'cp local/out.txt "local/seen-$NOMAD_TASK_NAME"'], "Timeout": 5 * SECOND}
    task = raw_task("c", "exec sleep 60", templates=[{"SourcePath": "local/in.tpl", "DestPath": "local/out.txt",
                                                      "ChangeMode": "script", "ChangeScript": script, "Splay": 0}])
    alloc = make_alloc(a.node.id, [task], job_type="service")
    _source(a, alloc, "c", "one")
    await server.add_alloc(alloc)
    runner = None

    def started():
        nonlocal runner
        ar = a.alloc_runners.get(alloc.id)
        runner = ar.task_runners["c"] if ar else None
        return runner is not None and runner.state.state == "running"

    await _until(started)
    _source(a, alloc, "c", "two")
    seen = os.path.join(a.config.alloc_dir, alloc.id, "c", "local", "seen-c")
    await _until(lambda: os.path.exists(seen) and open(seen).read() == "two")
    await _until(lambda: any(e.type == "Task hook message" for e in runner.state.events))
    hook = [e for e in runner.state.events if e.type == "Task hook message"][-1]
    assert hook.display_message.startswith("Template successfully ran script /bin/sh with arguments: [-c cp ")
    assert [e.type for e in runner.state.events].count("Started") == 1
    await server.stop_alloc(alloc.id)
    await server.wait_status(alloc.id, "complete", timeout=15)


async def test_a_failing_first_render_kills_the_task(server, agent):
    """Nomad's template hook: a first render that fails kills the task ("Template failed: ...")."""
    a = await agent()
    task = raw_task("t", "exit 0", templates=[{"EmbeddedTmpl": '{{ nope "x" }}', "DestPath": "local/out.txt"}])
    alloc = make_alloc(a.node.id, [task])
    await server.add_alloc(alloc)
    update = await server.wait_status(alloc.id, "failed")
    state = update["TaskStates"]["t"]
    assert [e["Type"] for e in state["Events"]] == ["Received", "Task Setup", "Killing", "Killed"]
    killing = state["Events"][2]
    assert killing["DisplayMessage"] == 'Template failed: template: local/out.txt:1: function "nope" not defined'
    assert killing["FailsTask"] is True and state["Failed"] is True and state["State"] == "dead"
