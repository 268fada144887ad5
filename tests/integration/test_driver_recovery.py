"""Issue 5, recovery: SIGKILL a client agent running tasks of every driver (raw_exec, exec, docker,
java, mock_driver) and start it again. Every task is re-attached (same process / container, no
restart, one Started event), its logs keep growing, and a task that died while the agent was down
is reported with its real exit code."""

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import textwrap
import time
from pathlib import Path

import pytest

from .agents import wait_until, yurt

pytestmark = pytest.mark.timeout(150)

TICK = 'i=0; while true; do i=$((i+1)); echo tick $i; sleep 0.2; done'
TICK_JAVA = """
public class Tick {
    public static void main(String[] args) throws Exception {
        for (int i = 0; ; i++) { System.out.println("tick " + i); Thread.sleep(200); }
    }
}
"""
DOCKER_IMAGE = "yurt-test/busybox:latest"


def docker_available() -> str:
    """'' when the engine answers and has the test image, else why not."""
    try:
        from yurt.drivers.docker.driver import connect

        client = connect(timeout=5)
        client.ping()
        client.inspect_image(DOCKER_IMAGE)
        return ""
    except Exception as exc:  # noqa: BLE001 - the reason is reported in the skip or failure
        return f"{type(exc).__name__}: {exc}"


def build_jar(workdir: Path) -> Path:
    src = workdir / "Tick.java"
    src.write_text(TICK_JAVA)
    classes = workdir / "classes"
    subprocess.run(["javac", "-d", str(classes), str(src)], check=True, timeout=90)
    jar = workdir / "tick.jar"
    subprocess.run(["jar", "cfe", str(jar), "Tick", "-C", str(classes), "."], check=True, timeout=60)
    os.chmod(jar, 0o644)
    return jar


def group(name: str, task_body: str, extra: str = "", task: str = "") -> str:
    return textwrap.indent(textwrap.dedent(f"""
        group "{name}" {{
          restart {{
            attempts = 0
            mode     = "fail"
          }}
          {extra}
          task "{task or name}" {{
        {textwrap.indent(textwrap.dedent(task_body).strip(), "    ")}
            resources {{
              cpu    = 50
              memory = 128
            }}
          }}
        }}
    """), "  ")


def service_job(jar: Path, with_docker: bool) -> str:
    sh_args = json.dumps(["-c", TICK])
    groups = [
        group("raw", f'driver = "raw_exec"\nconfig {{\n  command = "/bin/sh"\n  args = {sh_args}\n}}'),
        group("exec", f'driver = "exec"\nconfig {{\n  command = "/bin/sh"\n  args = {sh_args}\n}}'),
        group("mock", 'driver = "mock_driver"\nconfig {\n  run_for = "10m"\n  stdout_string = "mock out"\n}'),
        # the jar reaches the java task's chroot through the shared alloc dir, copied by a prestart task
        group("java", 'driver = "java"\nconfig {\n  jar_path = "/alloc/data/tick.jar"\n  jvm_options = ["-Xmx64m"]\n}',
              extra=textwrap.dedent(f"""
              task "fetch" {{
                driver = "raw_exec"
                lifecycle {{
                  hook = "prestart"
                }}
                config {{
                  command = "/bin/cp"
                  args    = ["{jar}", "${{NOMAD_ALLOC_DIR}}/data/tick.jar"]
                }}
              }}""").strip()),
    ]
    if with_docker:
        groups.append(group("docker", f'driver = "docker"\nconfig {{\n  image = "{DOCKER_IMAGE}"\n'
                                      f'  command = "/bin/sh"\n  args = {sh_args}\n}}'))
    return 'job "recover" {\n  datacenters = ["*"]\n' + "".join(groups) + "}\n"


# each dies task exits with its own code once `die-now` appears in its alloc dir (seen by the task
# through its own NOMAD_ALLOC_DIR: a host path for raw_exec, /alloc in a chroot or container)
DIES_EXIT_CODES = {"raw": 7, "exec": 8, "docker": 9}


def dies_job(with_docker: bool) -> str:
    drivers = {"raw": "raw_exec", "exec": "exec"} | ({"docker": "docker"} if with_docker else {})
    groups = []
    for name, driver in drivers.items():
        script = f'while [ ! -e "$NOMAD_ALLOC_DIR/data/die-now" ]; do sleep 0.1; done; exit {DIES_EXIT_CODES[name]}'
        image = f'image = "{DOCKER_IMAGE}"\n' if driver == "docker" else ""
        groups.append(group(name, f'driver = "{driver}"\nconfig {{\n  {image}command = "/bin/sh"\n'
                                  f'  args = {json.dumps(["-c", script])}\n}}',
                            extra='reschedule {\n  attempts  = 0\n  unlimited = false\n}', task="t"))
    return 'job "dies" {\n  datacenters = ["*"]\n  type = "batch"\n' + "".join(groups) + "}\n"


def task_handles(data_dir: Path) -> dict[tuple[str, str], dict]:
    """(alloc ID, task) -> the handle the client keeps in its local state."""
    db = sqlite3.connect(f"file:{data_dir / 'client' / 'state.db'}?mode=ro", uri=True)
    try:
        rows = db.execute("SELECT alloc_id, task, handle FROM tasks WHERE handle IS NOT NULL").fetchall()
    finally:
        db.close()
    return {(alloc_id, task): json.loads(handle) for alloc_id, task, handle in rows}


def job_allocs(server, job_id: str) -> dict[str, dict]:
    """Task group -> the job's alloc (full, with task states)."""
    return {a["TaskGroup"]: server.api(f"/v1/allocation/{a['ID']}") for a in server.api(f"/v1/job/{job_id}/allocations")}


def all_running(server, groups: list[str], job_id: str = "recover", task: str = ""):
    """The job's allocs once every group's task (named as the group unless `task`) runs (else
    raises with what each is doing)."""
    allocs = job_allocs(server, job_id)
    waiting = {}
    for name in groups:
        alloc = allocs.get(name) or {}
        state = (alloc.get("TaskStates") or {}).get(task or name) or {}
        if alloc.get("ClientStatus") != "running" or state.get("State") != "running":
            waiting[name] = (alloc.get("ClientStatus"), {
                task: [(e["Type"], e.get("DisplayMessage")) for e in ts.get("Events") or []]
                for task, ts in (alloc.get("TaskStates") or {}).items()})
    if waiting:
        raise AssertionError(f"not running yet: {waiting}")
    return allocs


def log_size(data_dir: Path, alloc_id: str, task: str) -> int:
    path = data_dir / "alloc" / alloc_id / "alloc" / "logs" / f"{task}.stdout.0"
    return path.stat().st_size if path.exists() else 0


def process_alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")


def container_state(container_id: str) -> dict:
    from yurt.drivers.docker.driver import connect

    return connect(timeout=10).inspect_container(container_id)["State"]


def remove_client_containers(data_dir: Path) -> None:
    """Remove every container the client with this data dir started (best effort, a stop may be racing)."""
    try:
        from yurt.drivers.docker.driver import connect
        from yurt.drivers.docker.spec import LABEL_ALLOC_ROOT

        client = connect(timeout=10)
        label = f"{LABEL_ALLOC_ROOT}={data_dir / 'alloc'}"
        for _ in range(20):
            found = client.containers(all=True, filters={"label": [label]})
            if not found:
                return
            for c in found:
                try:
                    client.remove_container(c["Id"], force=True, v=True)
                except Exception:  # noqa: BLE001 - 409 removal in progress, 404 gone: look again
                    pass
            time.sleep(0.25)
    except Exception:  # noqa: BLE001 - no engine: nothing to remove
        pass


@pytest.mark.skipif(not shutil.which("javac"), reason="no JDK (javac) on this machine")
def test_every_driver_is_reattached_after_a_client_sigkill(cluster, tmp_path):
    no_docker = docker_available()
    if no_docker and os.environ.get("YURT_REQUIRE_DOCKER") == "1":
        pytest.fail(f"YURT_REQUIRE_DOCKER=1 but no Docker engine with {DOCKER_IMAGE}: {no_docker}")
    groups = ["raw", "exec", "mock", "java"] + ([] if no_docker else ["docker"])
    jar = build_jar(tmp_path)
    (tmp_path / "recover.nomad.hcl").write_text(service_job(jar, with_docker=not no_docker))
    (tmp_path / "dies.nomad.hcl").write_text(dies_job(with_docker=not no_docker))
    dying = [name for name in DIES_EXIT_CODES if name in groups]

    server = cluster("srv", "server").start()
    mock_plugin = 'plugin "mock_driver" {\n  config { enabled = true }\n}\n'
    client = cluster("c1", "client", servers=[f"127.0.0.1:{server.port}"], extra_hcl=mock_plugin).start()
    wait_until(lambda: server.api("/v1/nodes"), what="node registration")
    try:
        yurt(server.address, "job", "run", "-detach", str(tmp_path / "recover.nomad.hcl"))
        yurt(server.address, "job", "run", "-detach", str(tmp_path / "dies.nomad.hcl"))
        allocs = wait_until(lambda: all_running(server, groups), timeout=60, what=f"groups {groups} running")
        dies = wait_until(lambda: all_running(server, dying, job_id="dies", task="t"), timeout=30,
                          what="the dies job running")
        before = task_handles(client.data_dir)
        for name in groups:
            assert (allocs[name]["ID"], name) in before, f"no handle stored for {name}"

        client.kill(signal.SIGKILL)
        for name in ("raw", "exec", "java"):
            assert process_alive(before[(allocs[name]["ID"], name)]["pid"]), f"{name} died with its client"
        if "docker" in groups:
            assert container_state(before[(allocs["docker"]["ID"], "docker")]["state"]["container_id"])["Running"]
        for name in dying:  # the dies tasks exit while no agent watches them
            (client.data_dir / "alloc" / dies[name]["ID"] / "alloc" / "data" / "die-now").touch()
        for name in ("raw", "exec"):
            pid = before[(dies[name]["ID"], "t")]["pid"]
            wait_until(lambda p=pid: not process_alive(p), what=f"the dies {name} task to exit while the client is down")
        if "docker" in dying:
            container = before[(dies["docker"]["ID"], "t")]["state"]["container_id"]
            wait_until(lambda: not container_state(container)["Running"], what="the dies container to exit")
        sizes = {name: log_size(client.data_dir, allocs[name]["ID"], name) for name in groups}
        client.start()

        def dead_reported():
            reported = {}
            for name, alloc in job_allocs(server, "dies").items():
                state = alloc["TaskStates"]["t"]
                codes = [e["ExitCode"] for e in state["Events"] if e["Type"] == "Terminated"]
                if alloc["ClientStatus"] != "failed" or state["State"] != "dead" or not codes:
                    raise AssertionError(f"{name} not reported dead yet: {alloc['ClientStatus']} {state['State']}")
                reported[name] = codes
            return reported
        reported = wait_until(dead_reported, timeout=30, what="the dies tasks reported dead")
        assert reported == {name: [DIES_EXIT_CODES[name]] for name in dying}, reported

        after_allocs = wait_until(lambda: all_running(server, groups), timeout=30, what="every group still running")
        after = task_handles(client.data_dir)
        for name in groups:
            key = (allocs[name]["ID"], name)
            state = after_allocs[name]["TaskStates"][name]
            assert state["Restarts"] == 0, (name, state)
            assert [e["Type"] for e in state["Events"]].count("Started") == 1, (name, state["Events"])
            assert after[key] == before[key], f"{name}: the handle changed across the restart"
        for name in ("raw", "exec", "java"):
            assert process_alive(after[(allocs[name]["ID"], name)]["pid"]), name
        if "docker" in groups:
            assert container_state(after[(allocs["docker"]["ID"], "docker")]["state"]["container_id"])["Running"]
        for name in [g for g in groups if g != "mock"]:  # mock_driver writes its output once, at start
            wait_until(lambda n=name: log_size(client.data_dir, allocs[n]["ID"], n) > sizes[n] + 20,
                       timeout=15, what=f"{name} logs to keep growing after the restart")
        assert "mock out" in yurt(server.address, "alloc", "logs", allocs["mock"]["ID"], "mock").stdout
    finally:
        yurt(server.address, "job", "stop", "-purge", "-detach", "recover", check=False)
        remove_client_containers(client.data_dir)
