"""The java driver: a small program compiled with the installed JDK, run from a jar and by class."""

import asyncio
import os
import pwd
import shutil
import subprocess

import pytest

from yurt.drivers.java import JavaDriver, java_command, parse_java_version

from test_isolation_support import isolated, read_log  # noqa: F401 - the fixture

pytestmark = pytest.mark.timeout(120)

HAVE_JDK = all(shutil.which(tool) for tool in ("java", "javac", "jar"))
needs_jdk = pytest.mark.skipif(not HAVE_JDK, reason="no JDK (java, javac, jar) on this machine")

HELLO = """
public class Hello {
    public static void main(String[] args) throws Exception {
        System.out.println("Hello " + String.join(",", args));
        System.out.println("user=" + System.getProperty("user.name"));
        System.out.println("maxMemoryMB=" + Runtime.getRuntime().maxMemory() / (1024 * 1024));
        System.out.println("env=" + System.getenv("NOMAD_TASK_NAME"));
        System.err.println("to stderr");
        if (args.length > 0 && args[0].equals("sleep")) { Thread.sleep(30000); }
        System.exit(args.length > 1 ? Integer.parseInt(args[1]) : 0);
    }
}
"""

VERSION_OUTPUT = """openjdk version "17.0.15" 2025-04-15
OpenJDK Runtime Environment (build 17.0.15+6-Debian-1deb12u1)
OpenJDK 64-Bit Server VM (build 17.0.15+6-Debian-1deb12u1, mixed mode, sharing)
"""


def build_hello(task_dir: str) -> None:
    """Compile Hello.java into local/classes and local/hello.jar (Main-Class Hello)."""
    local = os.path.join(task_dir, "local")
    src = os.path.join(local, "Hello.java")
    with open(src, "w") as f:
        f.write(HELLO)
    classes = os.path.join(local, "classes")
    subprocess.run(["javac", "-d", classes, src], check=True, timeout=90)
    subprocess.run(["jar", "cfe", os.path.join(local, "hello.jar"), "Hello", "-C", classes, "."], check=True, timeout=60)


def test_parse_java_version_output():
    attrs = parse_java_version(VERSION_OUTPUT)
    assert attrs["driver.java.version"] == "17.0.15"
    assert attrs["driver.java.runtime"].startswith("OpenJDK Runtime Environment")
    assert attrs["driver.java.vm"].startswith("OpenJDK 64-Bit Server VM")
    assert parse_java_version('java version "1.8.0_345"\nJava(TM) SE\nHotSpot')["driver.java.version"] == "1.8.0_345"


def test_java_command_sets_heap_from_memory_unless_given():
    assert java_command({"jar_path": "local/a.jar", "args": ["x"]}, 256) == ["-Xmx256m", "-jar", "local/a.jar", "x"]
    config = {"class": "Main", "class_path": "local/classes", "jvm_options": ["-Xmx64m", "-Dk=v"]}
    assert java_command(config, 256) == ["-Xmx64m", "-Dk=v", "-cp", "local/classes", "Main"]


def test_validate_config_requires_jar_or_class_and_names_keys():
    driver = JavaDriver()
    assert driver.validate_config({"jar_path": "local/a.jar"}) == []
    assert any('"jar_path"' in e and '"class"' in e for e in driver.validate_config({"args": []}))
    errors = driver.validate_config({"class": "Main", "jvm_options": "-Xmx1g", "command": "x"})
    assert any('"jvm_options"' in e for e in errors) and any('"command"' in e for e in errors)


@needs_jdk
def test_fingerprint_reads_java_version():
    fp = JavaDriver().fingerprint()
    assert fp.detected and fp.attributes["driver.java"] == "1"
    assert fp.attributes["driver.java.version"][0].isdigit()
    assert {"driver.java.runtime", "driver.java.vm"} <= fp.attributes.keys()
    missing = JavaDriver(java_binary="/no/such/java").fingerprint()
    assert not missing.detected and "driver.java" not in missing.attributes


@pytest.fixture
def java_box(isolated):
    isolated.driver = JavaDriver()
    return isolated


@needs_jdk
async def test_jar_runs_isolated_with_output_exit_code_and_heap(java_box, make_task):
    cfg = make_task({"jar_path": "local/hello.jar", "args": ["world", "7"]})
    cfg.env["NOMAD_MEMORY_LIMIT"] = "200"
    build_hello(cfg.task_dir)
    handle, result = await java_box.run(cfg, timeout=90)
    out = read_log(cfg)
    assert result.exit_code == 7, (out, read_log(cfg, "stderr"))
    assert "Hello world,7" in out and "user=nobody" in out and "env=web" in out
    heap = int(out.split("maxMemoryMB=")[1].split()[0])
    assert 150 <= heap <= 200, out  # -Xmx200m (the JVM reports a little less)
    assert "to stderr" in read_log(cfg, "stderr")
    assert handle.state.get("cgroup")  # ran in the exec driver's cgroup


@needs_jdk
async def test_class_with_class_path_and_stop(java_box, make_task):
    cfg = make_task({"class": "Hello", "class_path": "local/classes", "args": ["sleep"], "jvm_options": ["-Xmx64m"]})
    build_hello(cfg.task_dir)
    handle = await java_box.start(cfg)
    for _ in range(200):
        if "env=" in read_log(cfg):
            break
        await asyncio.sleep(0.1)
    assert "maxMemoryMB=" in read_log(cfg) and int(read_log(cfg).split("maxMemoryMB=")[1].split()[0]) <= 64
    await java_box.driver.stop_task(handle, 5_000_000_000, "SIGTERM")
    result = await asyncio.wait_for(java_box.driver.wait_task(handle), 20)
    assert result.signal == 15 or result.exit_code == 143, result


@needs_jdk
async def test_without_isolation_it_runs_like_raw_exec(java_box, make_task, monkeypatch):
    import yurt.drivers.java.driver as java_driver

    monkeypatch.setattr(java_driver, "isolation_unavailable", lambda: "exec driver must run as root")
    assert java_box.driver.fingerprint().attributes["driver.java.isolation"] == "none"
    cfg = make_task({"jar_path": "local/hello.jar", "args": ["host", "0"]})
    build_hello(cfg.task_dir)
    handle, result = await java_box.run(cfg, timeout=90)
    assert result.successful, read_log(cfg, "stderr")
    assert f"user={pwd.getpwuid(os.geteuid()).pw_name}" in read_log(cfg)  # the agent's user, not nobody
    assert "cgroup" not in handle.state and not os.path.exists(os.path.join(cfg.task_dir, "usr"))
