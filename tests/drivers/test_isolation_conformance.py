"""The exec and java flavors of the shared driver conformance suite (test_conformance).

The flavors' drivers record what they start; the suite's `flavor` fixture calls
`cleanup` to destroy it at teardown (the suite's tests do not always destroy, and exec
tasks own a cgroup and a chroot). `prepare` skips, with the reason, when the machine
cannot isolate (exec) or has no JDK (java), and compiles the java flavor's jar.
"""

import asyncio
import os
import shutil
import subprocess

import pytest

from yurt.drivers.exec import ExecDriver
from yurt.drivers.java import JavaDriver

from test_isolation_support import CANNOT_ISOLATE

CONFORM_JAVA = """
public class Conform {
    public static void main(String[] args) throws Exception {
        if (args.length > 2 && args[2].equals("ignore")) {
            for (String name : new String[] {"INT", "TERM"}) {
                sun.misc.Signal.handle(new sun.misc.Signal(name), sun.misc.SignalHandler.SIG_IGN);
            }
        }
        new java.io.File("local/ready").createNewFile();
        Thread.sleep((long) (Double.parseDouble(args[0]) * 1000));
        System.exit(Integer.parseInt(args[1]));
    }
}
"""


STARTED: list = []  # (driver, handle) of the running test


class _TrackedExecDriver(ExecDriver):
    async def start_task(self, cfg):
        handle = await super().start_task(cfg)
        STARTED.append((self, handle))
        return handle


class _Tracked:
    async def cleanup(self) -> None:
        failures = await destroy_started()
        assert not failures, failures


class ExecFlavor(_Tracked):
    name = "exec"

    def prepare(self, tmp_path_factory) -> None:
        if CANNOT_ISOLATE:
            pytest.skip(f"cannot isolate here: {CANNOT_ISOLATE}")

    def driver(self):
        return _TrackedExecDriver()

    def runs(self, seconds: float, exit_code: int = 0) -> dict:
        return {"command": "/bin/sh", "args": ["-c", f"sleep {seconds}; exit {exit_code}"]}

    def ignores_signals(self, seconds: float) -> dict:
        script = f"trap '' INT TERM; sleep {seconds} & wait; sleep {seconds}"
        return {"command": "/bin/sh", "args": ["-c", script]}


class _JarCopyingJavaDriver(JavaDriver):
    """The conformance tests make bare task dirs: put the test jar into local/ first.

    The suite's timings assume a task that runs at once; a JVM needs a moment before
    main() (and its signal handlers) runs, so start_task returns when main() has begun.
    """

    jar = ""

    async def start_task(self, cfg):
        shutil.copy(self.jar, os.path.join(cfg.task_dir, "local", "conform.jar"))
        handle = await super().start_task(cfg)
        STARTED.append((self, handle))
        ready = os.path.join(cfg.task_dir, "local", "ready")
        for _ in range(300):
            if os.path.exists(ready) or self.inspect_task(handle).state != "running":
                break
            await asyncio.sleep(0.02)
        return handle


class JavaFlavor(_Tracked):
    name = "java"
    jar = ""

    def prepare(self, tmp_path_factory) -> None:
        if JavaFlavor.jar:
            return
        if not all(shutil.which(t) for t in ("javac", "jar")):
            pytest.skip("no JDK (javac, jar) on this machine")
        work = tmp_path_factory.mktemp("conform-java")
        (work / "Conform.java").write_text(CONFORM_JAVA)
        subprocess.run(["javac", "-nowarn", "-d", str(work / "classes"), str(work / "Conform.java")],
                       check=True, timeout=90, capture_output=True)
        jar = str(work / "conform.jar")
        subprocess.run(["jar", "cfe", jar, "Conform", "-C", str(work / "classes"), "."], check=True, timeout=60)
        JavaFlavor.jar = jar

    def driver(self):
        driver = _JarCopyingJavaDriver()
        driver.jar = JavaFlavor.jar
        return driver

    def _config(self, seconds: float, exit_code: int, mode: str = "run") -> dict:
        # -Xrs: the JVM leaves SIGINT/SIGTERM at their default, so a stop ends it by that signal
        # (without it the JVM exits 130/143 from its own handler); "ignore" replaces the handlers
        options = ["-Xmx64m"] if mode == "ignore" else ["-Xrs", "-Xmx64m"]
        return {"jar_path": "local/conform.jar", "jvm_options": options, "args": [str(seconds), str(exit_code), mode]}

    def runs(self, seconds: float, exit_code: int = 0) -> dict:
        return self._config(seconds, exit_code)

    def ignores_signals(self, seconds: float) -> dict:
        return self._config(seconds, 0, "ignore")


async def destroy_started() -> list[str]:
    """Destroy (with force) every task the flavors' drivers started; what failed."""
    failures = []
    while STARTED:
        driver, handle = STARTED.pop()
        try:
            await asyncio.wait_for(driver.destroy_task(handle, force=True), 20)
        except Exception as exc:  # noqa: BLE001 - the others still get destroyed
            failures.append(f"{handle.task_id}: {exc!r}")
    return failures
