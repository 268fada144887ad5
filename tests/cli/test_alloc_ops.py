"""`alloc fs`, `alloc signal`, `alloc restart` against the fake API: Nomad's tables, routes,
request bodies and error texts."""

import base64
import json

from cli_fakes import ALLOC2_ID, ALLOC_ID, alloc, alloc_stub, text

from yurt.cli.alloc_fs import FrameDecoder

FS = f"/v1/client/fs/%s/{ALLOC_ID}"
MOD = "2023-11-14T22:08:25.123456+00:00"


def serve_alloc(fake, full=None, stubs=None):
    stubs = stubs or [alloc_stub()]
    fake.on("GET", "/v1/allocations", lambda r: [s for s in stubs if s["ID"].startswith(r.params.get("prefix", ""))])
    fake.on("GET", f"/v1/allocation/{ALLOC_ID}", full or alloc())


def info(name: str, size: int = 0, is_dir: bool = False, mode: str = "-rw-r--r--", ctype: str = "") -> dict:
    return {"Name": name, "IsDir": is_dir, "Size": size, "FileMode": mode, "ModTime": MOD, "ContentType": ctype}


# ---- alloc fs -----------------------------------------------------------------------------------

def test_fs_lists_a_directory(fake, run_cli):
    serve_alloc(fake)
    fake.on("GET", FS % "stat", info("/", is_dir=True, mode="drwxrwxrwx"))
    fake.on("GET", FS % "ls", [info("alloc", is_dir=True, mode="drwxrwxrwx"), info("big.bin", 3 * 1024 * 1024),
                               info("tiny.txt", 7)])
    res = run_cli("alloc", "fs", "5a6b")
    assert res.code == 0, res.err
    assert res.out == (
        "Mode        Size     Modified Time         Name\n"
        "drwxrwxrwx  0 B      2023-11-14T22:08:25Z  alloc/\n"
        "-rw-r--r--  3.0 MiB  2023-11-14T22:08:25Z  big.bin\n"
        "-rw-r--r--  7 B      2023-11-14T22:08:25Z  tiny.txt\n")
    assert fake.calls("GET", FS % "stat")[0].params["path"] == "/"


def test_fs_machine_sizes_and_stat_table(fake, run_cli):
    serve_alloc(fake)
    fake.on("GET", FS % "stat", info("web.stdout.0", 3 * 1024 * 1024, ctype="text/plain; charset=utf-8"))
    res = run_cli("alloc", "fs", "-stat", "-H", ALLOC_ID, "alloc/logs/web.stdout.0")
    assert res.code == 0, res.err
    assert res.out == (
        "Mode        Size     Modified Time         Content Type               Name\n"
        "-rw-r--r--  3145728  2023-11-14T22:08:25Z  text/plain; charset=utf-8  web.stdout.0\n")
    assert fake.calls("GET", FS % "stat")[0].params["path"] == "alloc/logs/web.stdout.0"


def test_fs_cats_a_file(fake, run_cli):
    serve_alloc(fake)
    fake.on("GET", FS % "stat", info("a.txt", 12))
    fake.on("GET", FS % "cat", text("hello\nworld\n"))
    res = run_cli("fs", ALLOC_ID, "a.txt")  # the `fs` alias
    assert (res.code, res.out) == (0, "hello\nworld\n")
    assert fake.calls("GET", FS % "cat")[0].params["path"] == "a.txt"


def test_fs_missing_path_prints_the_api_error(fake, run_cli):
    serve_alloc(fake)
    fake.on("GET", FS % "stat", (404, "stat /data/x: no such file or directory"))
    res = run_cli("alloc", "fs", ALLOC_ID, "x")
    assert (res.code, res.err) == (1, "Unexpected response code: 404 (stat /data/x: no such file or directory)\n")


def test_fs_tail_reads_from_the_end_and_keeps_n_lines(fake, run_cli):
    serve_alloc(fake)
    body = "".join(f"line {i}\n" for i in range(30))
    fake.on("GET", FS % "stat", info("log", len(body)))
    fake.on("GET", FS % "readat", lambda r: text(body[int(r.params["offset"]):]))
    res = run_cli("alloc", "fs", "-tail", "-n", "3", ALLOC_ID, "log")
    assert (res.code, res.out) == (0, "line 27\nline 28\nline 29\n")
    params = fake.calls("GET", FS % "readat")[0].params
    assert (params["offset"], params["limit"]) == ("0", "-1")  # 3*120 bytes > size: from the start
    res = run_cli("alloc", "fs", "-tail", "-c", "8", ALLOC_ID, "log")
    assert res.out == "line 29\n"
    assert fake.calls("GET", FS % "readat")[-1].params["offset"] == str(len(body) - 8)


def test_fs_tail_flag_errors(fake, run_cli):
    serve_alloc(fake)
    fake.on("GET", FS % "stat", info("log", 10))
    res = run_cli("alloc", "fs", "-tail", "-n", "2", "-c", "3", ALLOC_ID, "log")
    assert (res.code, res.err) == (1, "Both -n and -c are not allowed\n")
    res = run_cli("alloc", "fs", "-tail", "-n", "-5", ALLOC_ID, "log")
    assert (res.code, res.err) == (1, "Invalid size is specified\n")


def frames(*chunks: bytes) -> str:
    out = []
    for i, chunk in enumerate(chunks):
        out.append(json.dumps({"Offset": i, "Data": base64.b64encode(chunk).decode(), "File": "alloc/log"})
                   if chunk else "{}")
    return "".join(out)


def test_fs_follow_streams_frames(fake, run_cli):
    serve_alloc(fake)
    fake.on("GET", FS % "stat", info("log", 5))
    fake.on("GET", FS % "stream", text(frames(b"one\n", b"", b"two\n")))
    res = run_cli("alloc", "fs", "-f", ALLOC_ID, "alloc/log")
    assert (res.code, res.out) == (0, "one\ntwo\n")
    params = fake.calls("GET", FS % "stream")[0].params
    assert (params["origin"], params["offset"], params["path"]) == ("start", "0", "alloc/log")


def test_fs_tail_follow_keeps_the_last_lines_then_streams(fake, run_cli):
    serve_alloc(fake)
    fake.on("GET", FS % "stat", info("log", 2000))
    fake.on("GET", FS % "stream", text(frames(b"a\nb\n", b"c\nd\n", b"", b"e\n")))
    res = run_cli("alloc", "fs", "-tail", "-f", "-n", "2", ALLOC_ID, "alloc/log")
    assert (res.code, res.out) == (0, "c\nd\ne\n")
    params = fake.calls("GET", FS % "stream")[0].params
    assert (params["origin"], params["offset"]) == ("end", "240")


def test_frame_decoder_handles_split_chunks():
    whole = frames(b"hello", b"")
    decoder = FrameDecoder()
    got = decoder.feed(whole[:7]) + decoder.feed(whole[7:20]) + decoder.feed(whole[20:])
    assert [base64.b64decode(f.get("Data", "")) for f in got] == [b"hello", b""]


def test_fs_argument_errors(run_cli):
    res = run_cli("alloc", "fs")
    assert res.code == 1 and res.err.startswith("An allocation ID is required\n")
    res = run_cli("alloc", "fs", "-job")
    assert res.err.startswith("A job ID is required\n")
    res = run_cli("alloc", "fs", "a", "b", "c")
    assert res.err.startswith("This command takes one or two arguments: <allocation> [<path>]\n")


def test_fs_job_picks_a_running_alloc(fake, run_cli):
    serve_alloc(fake)
    fake.on("GET", "/v1/job/example/allocations",
            [alloc_stub(ALLOC2_ID, ClientStatus="failed"), alloc_stub(ALLOC_ID)])
    fake.on("GET", FS % "stat", info("/", is_dir=True))
    fake.on("GET", FS % "ls", [])
    res = run_cli("alloc", "fs", "-job", "example")
    assert (res.code, res.out) == (0, "Mode  Size  Modified Time  Name\n")
    assert fake.calls("GET", "/v1/allocations")[0].params["prefix"] == ALLOC_ID


# ---- alloc signal -------------------------------------------------------------------------------

def test_signal_sends_task_and_signal(fake, run_cli):
    serve_alloc(fake)
    fake.on("PUT", f"/v1/client/allocation/{ALLOC_ID}/signal", {})
    res = run_cli("alloc", "signal", "-s", "SIGHUP", "5a6b", "redis")
    assert (res.code, res.out, res.err) == (0, "", "")
    call = fake.calls("PUT", f"/v1/client/allocation/{ALLOC_ID}/signal")[0]
    assert call.body == {"Task": "redis", "Signal": "SIGHUP"} and call.params["namespace"] == "default"


def test_signal_defaults_to_sigkill_for_all_tasks(fake, run_cli):
    serve_alloc(fake)
    fake.on("PUT", f"/v1/client/allocation/{ALLOC_ID}/signal", {})
    assert run_cli("alloc", "signal", ALLOC_ID).code == 0
    assert fake.calls("PUT", f"/v1/client/allocation/{ALLOC_ID}/signal")[0].body == {"Task": "", "Signal": "SIGKILL"}


def test_signal_errors(fake, run_cli):
    serve_alloc(fake)
    res = run_cli("alloc", "signal", ALLOC_ID, "nope")
    assert (res.code, res.err) == (1, "Could not find task named: nope, found:\nredis\n")
    fake.on("PUT", f"/v1/client/allocation/{ALLOC_ID}/signal", (500, 'Task "redis" is not running'))
    res = run_cli("alloc", "signal", "-task", "redis", ALLOC_ID)
    assert res.err == 'Error signalling allocation: Unexpected response code: 500 (Task "redis" is not running)\n'
    res = run_cli("alloc", "signal")
    assert res.code == 1 and res.err.startswith("This command takes up to two arguments: <alloc-id> <task>\n")
    res = run_cli("alloc", "signal", "5")
    assert res.err == "Alloc ID must contain at least two characters.\n"


# ---- alloc restart ------------------------------------------------------------------------------

def test_restart_task_and_all_tasks(fake, run_cli):
    serve_alloc(fake)
    route = f"/v1/client/allocation/{ALLOC_ID}/restart"
    fake.on("PUT", route, {})
    assert run_cli("alloc", "restart", ALLOC_ID, "redis").code == 0
    assert run_cli("alloc", "restart", ALLOC_ID).code == 0
    assert run_cli("alloc", "restart", "-all-tasks", ALLOC_ID).code == 0
    assert [c.body for c in fake.calls("PUT", route)] == [{"TaskName": "redis"}, {"TaskName": ""}, {"AllTasks": True}]


def test_restart_errors(fake, run_cli):
    serve_alloc(fake)
    res = run_cli("alloc", "restart", "-all-tasks", ALLOC_ID, "redis")
    assert (res.code, res.err) == (1, "The -all-tasks option is not allowed when restarting a specific task.\n")
    fake.on("PUT", f"/v1/client/allocation/{ALLOC_ID}/restart", (500, 'Task "redis" is not running'))
    res = run_cli("alloc", "restart", ALLOC_ID, "redis")
    assert res.err == 'Failed to restart task:\n\nUnexpected response code: 500 (Task "redis" is not running)\n'
    res = run_cli("alloc", "restart", ALLOC_ID)
    assert res.err.startswith("Failed to restart allocation:\n\n")
    res = run_cli("alloc", "restart", "a", "b", "c")
    assert res.err.startswith("This command takes one or two arguments: <alloc-id> <task-name>\n")


def test_restart_prefix_matching_several_allocs_is_an_error(fake, run_cli):
    serve_alloc(fake, stubs=[alloc_stub(), alloc_stub(ALLOC2_ID)])
    res = run_cli("alloc", "restart", "5a6b")
    assert res.code == 1 and res.err.startswith("Prefix matched multiple allocations\n\n")
