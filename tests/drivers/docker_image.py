"""Builds the docker driver's test image locally (there is no registry here).

The image is a rootfs holding the host's static busybox at `/bin/busybox` with one symlink
per applet (`sh`, `sleep`, `echo`, `cat`, `ps`, `httpd`, `nc`, ...), imported with the
Engine API's image import (`docker import`). Run `python3 tests/drivers/docker_image.py`
(scripts/ci-docker does; it needs only the standard library and the docker CLI) or call
`ensure_test_image(client)` (docker SDK client) from a test fixture.
"""

import io
import os
import subprocess
import sys
import tarfile

TEST_IMAGE = "yurt-test/busybox:latest"
BUSYBOX = "/bin/busybox"
DIRECTORIES = ("bin", "sbin", "etc", "tmp", "proc", "sys", "dev", "root", "var/www", "usr/bin")


def busybox_applets(busybox: str = BUSYBOX) -> list[str]:
    out = subprocess.run([busybox, "--list"], check=True, capture_output=True, text=True).stdout
    return [name for name in out.split() if name and "/" not in name and name != "busybox"]


def _add_dir(tar: tarfile.TarFile, name: str, mode: int = 0o755) -> None:
    info = tarfile.TarInfo(name)
    info.type = tarfile.DIRTYPE
    info.mode = mode
    tar.addfile(info)


def _add_text(tar: tarfile.TarFile, name: str, text: str) -> None:
    data = text.encode()
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = 0o644
    tar.addfile(info, io.BytesIO(data))


def rootfs_tar(busybox: str = BUSYBOX) -> bytes:
    """The image's root filesystem as an uncompressed tar archive."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for directory in DIRECTORIES:
            _add_dir(tar, directory, 0o1777 if directory == "tmp" else 0o755)
        tar.add(busybox, arcname="bin/busybox")
        for applet in busybox_applets(busybox):
            link = tarfile.TarInfo(f"bin/{applet}")
            link.type = tarfile.SYMTYPE
            link.linkname = "busybox"
            tar.addfile(link)
        _add_text(tar, "etc/passwd", "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n")
        _add_text(tar, "etc/group", "root:x:0:\nnogroup:x:65534:\n")
        _add_text(tar, "var/www/index.html", "hello from yurt-test\n")
    return buffer.getvalue()


def image_exists(client, name: str = TEST_IMAGE) -> bool:
    import docker.errors

    try:
        getattr(client, "api", client).inspect_image(name)
        return True
    except docker.errors.NotFound:
        return False


def ensure_test_image(client, name: str = TEST_IMAGE) -> str:
    """(`client`: a docker.DockerClient or docker.APIClient.) Import the busybox test image unless it is already in the local store."""
    if image_exists(client, name):
        return name
    repository, _, tag = name.partition(":")
    getattr(client, "api", client).import_image_from_data(
        rootfs_tar(), repository=repository, tag=tag or "latest", changes=['CMD ["/bin/sh"]', "ENV PATH=/bin"]
    )
    if not image_exists(client, name):
        raise RuntimeError(f"image import did not produce {name}")
    return name


class DockerFlavor:
    """The docker driver in the shared conformance suite (tests/drivers/test_conformance.py).

    `init = true` puts docker-init (tini) at PID 1: a shell at PID 1 would ignore the kill
    signals the suite sends. Every container carries a per-run label; `cleanup()` removes them.
    """

    name = "docker"

    def __init__(self):
        import uuid

        self.run_label = {"yurt-conformance-run": uuid.uuid4().hex}

    def prepare(self, tmp_path_factory=None) -> None:
        """The suite's hook: skips, with the reason, when no Docker engine answers."""
        self.require_engine()

    def require_engine(self) -> None:
        import pytest

        try:
            from yurt.drivers.docker.driver import connect

            client = connect(timeout=5)
            client.ping()
        except Exception as exc:
            pytest.skip(f"no Docker engine answers ({type(exc).__name__}: {exc}); run scripts/ci-docker")
        ensure_test_image(client)

    def driver(self):
        from yurt.drivers.docker import DockerDriver

        return DockerDriver()

    def _shell(self, script: str) -> dict:
        return {"image": TEST_IMAGE, "init": True, "command": "/bin/sh", "args": ["-c", script], "labels": self.run_label}

    def runs(self, seconds: float, exit_code: int = 0) -> dict:
        return self._shell(f"sleep {seconds}; exit {exit_code}")

    def ignores_signals(self, seconds: float) -> dict:
        return self._shell(f"trap '' INT TERM; sleep {seconds} & wait; sleep {seconds}")

    async def cleanup(self) -> None:
        """The suite's hook: removes every container this run's tasks created."""
        import asyncio

        await asyncio.to_thread(self.remove_containers)

    def remove_containers(self) -> None:
        try:
            from yurt.drivers.docker.driver import connect

            client = connect(timeout=10)
            label = "=".join(next(iter(self.run_label.items())))
            for container in client.containers(all=True, filters={"label": [label]}):
                client.remove_container(container["Id"], force=True, v=True)
        except Exception:
            pass


def import_with_cli(name: str = TEST_IMAGE) -> str:
    """The same import through the `docker` CLI (no docker SDK needed: CI runs this before
    the virtualenv exists)."""
    if subprocess.run(["docker", "image", "inspect", name], capture_output=True).returncode == 0:
        return name
    subprocess.run(
        ["docker", "import", "--change", 'CMD ["/bin/sh"]', "--change", "ENV PATH=/bin", "-", name],
        input=rootfs_tar(), check=True, capture_output=True,
    )
    return name


def main() -> int:
    if not os.path.exists(BUSYBOX):
        print(f"{BUSYBOX} is missing (apt-get install busybox-static)", file=sys.stderr)
        return 1
    print(import_with_cli())
    return 0


if __name__ == "__main__":
    sys.exit(main())
