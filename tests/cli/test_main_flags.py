"""Command tree, Go-style flag parsing, global flags vs environment, help and exit codes."""

import pytest
from cli_fakes import job_stub

from yurt.cli.flags import FlagError, FlagSet, HelpRequested, client_flag_set


def test_flag_forms():
    fs = FlagSet("t").bool("detach").string("address").int("n", -1).list("var")
    rest = fs.parse(["-detach", "--address", "http://x:1", "-n=3", "-var", "a=1", "-var=b=2", "file", "-x"])
    assert rest == ["file", "-x"]
    assert (fs["detach"], fs["address"], fs["n"], fs["var"]) == (True, "http://x:1", 3, ["a=1", "b=2"])


def test_bool_takes_no_separate_value_and_double_dash_ends_flags():
    fs = FlagSet("t").bool("detach")
    assert fs.parse(["-detach", "false"]) == ["false"]
    assert fs.parse(["-detach=false", "--", "-y"]) == ["-y"]
    assert fs["detach"] is False


@pytest.mark.parametrize("args, message", [
    (["-nope"], "flag provided but not defined: -nope"),
    (["-address"], "flag needs an argument: -address"),
    (["-n=x"], 'invalid value "x" for flag -n: parse error'),
    (["-detach=maybe"], 'invalid value "maybe" for flag -detach: parse error'),
])
def test_flag_errors(args, message):
    fs = client_flag_set("t").int("n").bool("detach")
    with pytest.raises(FlagError) as err:
        fs.parse(args)
    assert str(err.value) == message


def test_help_flag():
    with pytest.raises(HelpRequested):
        FlagSet("t").parse(["-help"])


def test_global_flags_win_over_env(fake, run_cli):
    fake.on("GET", "/v1/jobs", [job_stub()])
    env = {"NOMAD_ADDR": "http://envhost:4646", "NOMAD_REGION": "east", "NOMAD_NAMESPACE": "envns",
           "NOMAD_TOKEN": "env-token"}
    run_cli("job", "status", env=env)
    req = fake.requests[-1]
    assert (req.params["region"], req.params["namespace"], req.headers["x-nomad-token"]) == ("east", "envns", "env-token")
    run_cli("job", "status", "-region", "west", "-namespace=flagns", "-token", "flag-token",
            "-address", "flaghost:4646", env=env)
    req = fake.requests[-1]
    assert (req.params["region"], req.params["namespace"], req.headers["x-nomad-token"]) == ("west", "flagns", "flag-token")


def test_address_from_flag_and_env_reach_the_client(run_cli):
    from yurt.cli.command import Context
    from yurt.cli.job_status import JobStatusCommand

    cmd = JobStatusCommand(Context(env={"NOMAD_ADDR": "envhost:1"}))
    cmd.flags.parse([])
    assert cmd.client_config().address == "http://envhost:1"
    cmd.flags.parse(["-address=https://flaghost:2"])
    assert cmd.client_config().address == "https://flaghost:2"


def test_unknown_flag_prints_error_and_help(run_cli):
    res = run_cli("job", "status", "-bogus")
    assert res.code == 1
    assert res.err == "flag provided but not defined: -bogus\n"
    assert res.out.startswith("Usage: yurt job status [options] <job>")


def test_help_exits_zero(run_cli):
    res = run_cli("job", "run", "-h")
    assert res.code == 0
    assert res.out.startswith("Usage: yurt job run [options] <path>")
    assert "-address=<addr>" in res.out


def test_groups_and_unknown_commands(run_cli):
    res = run_cli("job")
    assert res.code == 1
    assert res.out.startswith("Usage: yurt job <subcommand> [options] [args]")
    assert "    run " in res.out and "    status " in res.out
    assert run_cli("operator", "scheduler").out.splitlines()[-2:] == [
        "    get-config    Display the current scheduler configuration",
        "    set-config    Modify the current scheduler configuration"]
    res = run_cli("frobnicate")
    assert res.code == 127
    assert res.err.startswith("Usage: yurt [-version]")


def test_version(run_cli):
    import yurt

    res = run_cli("version")
    assert res.out == f"yurt v{yurt.__version__} (Nomad API {yurt.NOMAD_COMPAT_VERSION})\n"
    assert run_cli("-version").out == res.out


def test_agent_dispatch_is_lazy(monkeypatch, run_cli):
    import sys
    import types

    seen = {}
    fake_module = types.ModuleType("yurt.agent.command")
    fake_module.main = lambda argv: seen.setdefault("argv", argv) and 7
    monkeypatch.setitem(sys.modules, "yurt.agent.command", fake_module)
    assert run_cli("agent", "-dev", "-bind", "0.0.0.0").code == 7
    assert seen["argv"] == ["-dev", "-bind", "0.0.0.0"]


def test_connection_error_is_reported(run_cli):
    from yurt.cli.command import Context
    from yurt.cli.main import main
    import io

    out, err = io.StringIO(), io.StringIO()
    code = main(["job", "status", "-address", "http://127.0.0.1:1"], Context(out=out, err=err, env={}))
    assert code == 1
    assert err.getvalue() == ('Error querying jobs: Get "http://127.0.0.1:1/v1/jobs": '
                              'dial tcp 127.0.0.1:1: connect: connection refused\n')


def test_server_members(fake, run_cli):
    fake.on("GET", "/v1/agent/members", {"ServerName": "s1", "ServerRegion": "global", "ServerDC": "dc1", "Members": [
        {"Name": "s2.global", "Addr": "10.0.0.2", "Port": 4648, "Status": "alive", "ProtocolCur": 2,
         "Tags": {"port": "4647", "raft_vsn": "3", "build": "0.1.0", "dc": "dc1", "region": "global"}},
        {"Name": "s1.global", "Addr": "10.0.0.1", "Port": 4648, "Status": "alive", "ProtocolCur": 2,
         "Tags": {"port": "4647", "raft_vsn": "3", "build": "0.1.0", "dc": "dc1", "region": "global"}},
    ]})
    fake.on("GET", "/v1/status/leader", "10.0.0.1:4647")
    res = run_cli("server", "members")
    assert res.code == 0, res.err
    assert res.out.splitlines() == [
        "Name       Address   Port  Status  Leader  Raft Version  Build  Datacenter  Region",
        "s1.global  10.0.0.1  4648  alive   true    3             0.1.0  dc1         global",
        "s2.global  10.0.0.2  4648  alive   false   3             0.1.0  dc1         global",
    ]


def test_scheduler_get_and_set_config(fake, run_cli):
    config = {"SchedulerConfig": {"SchedulerAlgorithm": "binpack", "MemoryOversubscriptionEnabled": False,
                                  "RejectJobRegistration": False, "PauseEvalBroker": False,
                                  "PreemptionConfig": {"SystemSchedulerEnabled": True, "SysBatchSchedulerEnabled": False,
                                                       "BatchSchedulerEnabled": False, "ServiceSchedulerEnabled": False},
                                  "CreateIndex": 5, "ModifyIndex": 5}, "Index": 5}
    fake.on("GET", "/v1/operator/scheduler/configuration", config)
    res = run_cli("operator", "scheduler", "get-config")
    assert res.out.splitlines()[:2] == ["Scheduler Algorithm               = binpack",
                                        "Memory Oversubscription           = false"]
    assert "Preemption System Scheduler       = true" in res.out
    assert res.out.splitlines()[-1] == "Modify Index                      = 5"
    fake.on("PUT", "/v1/operator/scheduler/configuration", {"Updated": True, "Index": 6})
    res = run_cli("operator", "scheduler", "set-config", "-scheduler-algorithm=spread",
                  "-preempt-service-scheduler=true", "-memory-oversubscription")
    assert (res.code, res.out) == (0, "Scheduler configuration updated!\n")
    put = fake.calls("PUT", "/v1/operator/scheduler/configuration")[0]
    assert put.params["cas"] == "5"
    assert put.body["SchedulerAlgorithm"] == "spread"
    assert put.body["MemoryOversubscriptionEnabled"] is True
    assert put.body["PreemptionConfig"]["ServiceSchedulerEnabled"] is True
    assert put.body["PreemptionConfig"]["SystemSchedulerEnabled"] is True
    res = run_cli("operator", "scheduler", "set-config", "-check-index", "4")
    assert res.code == 1 and "does not match current state value 5" in res.err


def test_global_flags_before_the_command_are_accepted(fake, run_cli):
    fake.on("GET", "/v1/jobs", [job_stub()])
    res = run_cli("-address", "http://elsewhere:4646", "-region=west", "job", "status")
    assert res.code == 0, res.err
    assert fake.requests[-1].params["region"] == "west"
    assert "example" in res.out
