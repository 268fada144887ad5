"""`yurt node drain` / `yurt node eligibility` against a scripted fake API: flags, request
bodies, Nomad's output and the drain monitor lines."""

import io
import json

import httpx

from yurt.cli.command import Context
from yurt.cli.main import main

NODE_ID = "f7476465-4d6e-c0de-26d0-e383c49be941"
ALLOC = "a1b2c3d4-0000-0000-0000-000000000001"


def node(drain=True, index=10):
    strategy = {"Deadline": 3600 * 10**9, "IgnoreSystemJobs": False, "ForceDeadline": "2026-01-01T00:00:00Z",
                "StartedAt": "2025-12-31T23:00:00Z"} if drain else None
    return {"ID": NODE_ID, "Name": "n1", "Status": "ready", "DrainStrategy": strategy, "ModifyIndex": index,
            "LastDrain": {"Meta": {"message": "old"}}}


def alloc(status="running", migrate=False, desired="run"):
    return {"ID": ALLOC, "ClientStatus": status, "DesiredStatus": desired, "CreateIndex": 5,
            "DesiredTransition": {"Migrate": migrate}, "Job": {"Type": "service"}}


class Script:
    """GET responses served in turn per path (the last repeats); POST bodies recorded."""

    def __init__(self, gets):
        self.gets = {path: list(values) for path, values in gets.items()}
        self.posts = []

    def transport(self):
        return httpx.MockTransport(self.handle)

    def handle(self, request):
        path = request.url.path
        if request.method in ("POST", "PUT"):
            self.posts.append((path, json.loads(request.content or b"null")))
            return httpx.Response(200, json={"Index": 20, "EvalIDs": None}, headers={"X-Nomad-Index": "20"})
        values = self.gets.get(path)
        if not values:
            return httpx.Response(404, text="Not Found")
        value = values.pop(0) if len(values) > 1 else values[0]
        return httpx.Response(200, json=value, headers={"X-Nomad-Index": str(30 + len(self.posts))})


def run(script, *argv, stdin=""):
    out, err = io.StringIO(), io.StringIO()
    ctx = Context(out=out, err=err, stdin=io.StringIO(stdin), env={}, transport=script.transport(),
                  now=lambda: 1_700_000_000.0, sleep=lambda _s: None, poll_interval=0)
    return main(list(argv), ctx), out.getvalue(), err.getvalue()


def base_gets(**extra):
    return {"/v1/nodes": [[{"ID": NODE_ID, "Name": "n1"}]], **extra}


def test_flag_rules_print_nomads_errors():
    script = Script(base_gets())
    code, _, err = run(script, "node", "drain", NODE_ID)
    assert code == 1 and "Either the '-enable' or '-disable' flag must be set, unless using '-monitor'" in err
    code, _, err = run(script, "node", "drain", "-disable", "-force", NODE_ID)
    assert code == 1 and "-disable can't be combined with flags configuring drain strategy" in err
    code, _, err = run(script, "node", "drain", "-enable", "-force", "-no-deadline", NODE_ID)
    assert code == 1 and "-force and -no-deadline are mutually exclusive" in err
    code, _, err = run(script, "node", "drain", "-enable", "-deadline", "-5s", NODE_ID)
    assert code == 1 and "A positive drain duration must be given" in err
    code, _, err = run(script, "node", "drain", "-enable")
    assert code == 1 and "Node ID must be specified if -self isn't being used" in err
    assert script.posts == []


def test_enable_detach_sends_the_drain_spec_and_meta():
    script = Script(base_gets(**{f"/v1/node/{NODE_ID}": [node(drain=False)]}))
    code, out, _ = run(script, "node", "drain", "-enable", "-detach", "-deadline", "90s", "-ignore-system",
                       "-m", "kernel upgrade", "-meta", "ticket=42", NODE_ID)
    assert code == 0 and out == f'Node "{NODE_ID}" drain strategy set\n'
    path, body = script.posts[0]
    assert path == f"/v1/node/{NODE_ID}/drain"
    assert body["DrainSpec"] == {"Deadline": 90 * 10**9, "IgnoreSystemJobs": True}
    assert body["MarkEligible"] is True and body["Meta"] == {"message": "kernel upgrade", "ticket": "42"}


def test_disable_keep_ineligible_keeps_last_meta_and_force_is_negative():
    script = Script(base_gets(**{f"/v1/node/{NODE_ID}": [node()]}))
    code, out, _ = run(script, "node", "drain", "-disable", "-keep-ineligible", "-m", "nope", NODE_ID)
    assert code == 0 and out == f'Node "{NODE_ID}" drain strategy unset\n'
    body = script.posts[0][1]
    assert body["DrainSpec"] is None and body["MarkEligible"] is False
    assert body["Meta"] == {"message": "old", "cancel_message": "nope"}
    run(script, "node", "drain", "-enable", "-detach", "-force", NODE_ID)
    assert script.posts[1][1]["DrainSpec"]["Deadline"] < 0


def test_prefix_match_asks_for_confirmation():
    script = Script(base_gets(**{f"/v1/node/{NODE_ID}": [node(drain=False)]}))
    code, out, _ = run(script, "node", "drain", "-enable", "-detach", NODE_ID[:8], stdin="n\n")
    assert code == 0 and "Are you sure you want to enable drain mode for node" in out
    assert "Canceling drain toggle" in out and script.posts == []


def test_enable_monitors_until_drained():
    node_path, allocs_path = f"/v1/node/{NODE_ID}", f"/v1/node/{NODE_ID}/allocations"
    script = Script(base_gets(**{
        node_path: [node(drain=False), node(), node(drain=False)],
        allocs_path: [[alloc()], [alloc(migrate=True)], [alloc(migrate=True, desired="stop")],
                      [alloc(status="complete", migrate=True, desired="stop")]],
    }))
    code, out, _ = run(script, "node", "drain", "-enable", "-yes", NODE_ID)
    assert code == 0
    lines = [line.split(": ", 1)[1] for line in out.splitlines()]
    assert lines[:2] == ["Ctrl-C to stop monitoring: will not cancel the node drain",
                         f'Node "{NODE_ID}" drain strategy set']
    assert f'Alloc "{ALLOC}" marked for migration' in lines
    assert f'Alloc "{ALLOC}" draining' in lines
    assert f'Alloc "{ALLOC}" status running -> complete' in lines
    assert f"Drain complete for node {NODE_ID}" in lines
    assert f'All allocations on node "{NODE_ID}" have stopped' in lines[-2:]


def test_monitor_without_drain_warns():
    script = Script(base_gets(**{f"/v1/node/{NODE_ID}": [node(drain=False)]}))
    code, _, err = run(script, "node", "drain", "-monitor", NODE_ID)
    assert code == 0 and "No drain strategy set" in err


def test_eligibility():
    script = Script(base_gets(**{f"/v1/node/{NODE_ID}": [node(drain=False)]}))
    code, _, err = run(script, "node", "eligibility", NODE_ID)
    assert code == 1 and "Either the '-enable' or '-disable' flag must be set" in err
    code, out, _ = run(script, "node", "eligibility", "-disable", NODE_ID)
    assert code == 0 and out == f'Node "{NODE_ID}" scheduling eligibility set: ineligible for scheduling\n'
    assert script.posts[-1] == (f"/v1/node/{NODE_ID}/eligibility", {"NodeID": NODE_ID, "Eligibility": "ineligible"})
