"""The exec driver's chroot: the task directory itself becomes the task's `/`.

`build_chroot` runs inside the task's new mount namespace (made private first, so no
mount propagates back to the host). It bind-mounts the host directories of
`chroot_env` read-only (a host symlink such as `/bin -> usr/bin` is recreated as a
symlink), the shared alloc dir at `/alloc`, a fresh `/proc` for the task's pid
namespace, a small `/dev`, and a per-task `/tmp`. The task's `local/` and `secrets/`
are already at `/local` and `/secrets`. The supervisor's state dir is hidden.

The mounts vanish with the namespace; `remove_chroot` only removes the empty mount
points and symlinks left on the host (never a tree that could hide a live mount).
"""

import os

from . import linux

DEFAULT_CHROOT_ENV = ("/bin", "/etc", "/lib", "/lib32", "/lib64", "/run/resolvconf", "/sbin", "/usr")
DEVICES = ("null", "zero", "full", "random", "urandom", "tty")
DEV_LINKS = {"fd": "/proc/self/fd", "stdin": "/proc/self/fd/0", "stdout": "/proc/self/fd/1", "stderr": "/proc/self/fd/2"}
MOUNT_POINTS = ("alloc", "proc", "dev")
HIDDEN_DIRS = (".yurt",)
TASK_OWNED = ("local", "secrets", "tmp")
SHARED_WRITABLE = ("data", "tmp")


def _inside(root: str, host_path: str) -> str:
    return os.path.join(root, host_path.lstrip("/"))


def _bind_read_only(source: str, target: str) -> None:
    linux.mount(source, target, None, linux.MS_BIND)
    linux.mount(None, target, None, linux.MS_BIND | linux.MS_REMOUNT | linux.MS_RDONLY | linux.MS_NOSUID)


def _add_host_path(root: str, host_path: str) -> None:
    if not os.path.lexists(host_path):
        return
    target = _inside(root, host_path)
    os.makedirs(os.path.dirname(target), exist_ok=True)
    if os.path.islink(host_path):
        if not os.path.lexists(target):
            os.symlink(os.readlink(host_path), target)
        return
    os.makedirs(target, exist_ok=True)
    _bind_read_only(host_path, target)


def _build_dev(root: str) -> None:
    dev = os.path.join(root, "dev")
    os.makedirs(dev, exist_ok=True)
    linux.mount("tmpfs", dev, "tmpfs", linux.MS_NOSUID | linux.MS_NOEXEC, "mode=755,size=64k")
    for name in DEVICES:
        host, target = f"/dev/{name}", os.path.join(dev, name)
        if os.path.exists(host):
            open(target, "w").close()
            linux.mount(host, target, None, linux.MS_BIND)
    for name, link in DEV_LINKS.items():
        os.symlink(link, os.path.join(dev, name))
    shm = os.path.join(dev, "shm")
    os.makedirs(shm)
    linux.mount("shm", shm, "tmpfs", linux.MS_NOSUID | linux.MS_NODEV, "mode=1777,size=64m")


PROPAGATION_FLAGS = {"private": linux.MS_PRIVATE, "host-to-task": linux.MS_SLAVE, "bidirectional": linux.MS_SHARED}


def mount_target(root: str, task_path: str) -> str:
    """Where a mount's task path lands under the chroot `root`; refuses paths leaving it
    (also through a symlink in the task dir)."""
    real_root = os.path.realpath(root)
    target = os.path.realpath(os.path.join(real_root, task_path.lstrip("/")))
    if target == real_root or not target.startswith(real_root + os.sep):
        raise OSError(f'mount destination "{task_path}" is not inside the task')
    return target


def _bind_volume(root: str, mount: dict) -> None:
    """A host volume (`volume_mount`): bind `host_path` at `task_path`, read-only if asked."""
    source, target = mount["host_path"], mount_target(root, mount["task_path"])
    if os.path.isdir(source):
        os.makedirs(target, exist_ok=True)
    else:
        os.makedirs(os.path.dirname(target), exist_ok=True)
        open(target, "a").close()
    linux.mount(source, target, None, linux.MS_BIND | linux.MS_REC)
    if mount.get("readonly"):
        linux.mount(None, target, None, linux.MS_BIND | linux.MS_REMOUNT | linux.MS_RDONLY | linux.MS_NOSUID)
    linux.mount(None, target, None, PROPAGATION_FLAGS.get(mount.get("propagation_mode") or "private", linux.MS_PRIVATE))


def prepare_task_dir(root: str, alloc_shared_dir: str, uid: int, gid: int) -> None:
    """Host side, before the task starts: the task user owns its local/, secrets/ and
    tmp/ (secrets stay private to it); the group's shared data/ and tmp/ are world-writable."""
    for name in TASK_OWNED:
        path = os.path.join(root, name)
        os.makedirs(path, exist_ok=True)
        os.chown(path, uid, gid)
        if name == "tmp":
            os.chmod(path, 0o1777)
    for name in SHARED_WRITABLE:
        path = os.path.join(alloc_shared_dir, name)
        if os.path.isdir(path):
            os.chmod(path, 0o1777)


def build_chroot(
    root: str,
    alloc_shared_dir: str,
    chroot_env: list[str] | tuple[str, ...] = DEFAULT_CHROOT_ENV,
    mounts: list[dict] | None = None,
) -> None:
    """Mount the task's filesystem under `root` (call in a new mount namespace); `mounts` are
    the task's host volumes (`MountConfig` fields), bound last so nothing covers them."""
    linux.mount(None, "/", None, linux.MS_REC | linux.MS_PRIVATE)
    for host_path in chroot_env:
        _add_host_path(root, host_path)
    alloc = os.path.join(root, "alloc")
    os.makedirs(alloc, exist_ok=True)
    if os.path.isdir(alloc_shared_dir):
        linux.mount(alloc_shared_dir, alloc, None, linux.MS_BIND)
    proc = os.path.join(root, "proc")
    os.makedirs(proc, exist_ok=True)
    linux.mount("proc", proc, "proc", linux.MS_NOSUID | linux.MS_NODEV | linux.MS_NOEXEC)
    _build_dev(root)
    for name in HIDDEN_DIRS:
        path = os.path.join(root, name)
        if os.path.isdir(path):
            linux.mount("tmpfs", path, "tmpfs", linux.MS_RDONLY, "mode=000,size=4k")
    for mount in mounts or []:
        _bind_volume(root, mount)


def mounts_under(root: str, mountinfo_path: str = "/proc/self/mountinfo") -> list[str]:
    root = os.path.realpath(root).rstrip("/") + "/"
    found = []
    with open(mountinfo_path) as f:
        for line in f:
            point = line.split()[4].replace("\\040", " ")
            if (point + "/").startswith(root):
                found.append(point)
    return found


def _remove_empty_tree(path: str) -> None:
    """rmdir `path` and its empty subdirectories; a non-empty one stays."""
    if os.path.islink(path) or not os.path.isdir(path):
        return
    for entry in os.listdir(path):
        _remove_empty_tree(os.path.join(path, entry))
    try:
        os.rmdir(path)
    except OSError:
        pass


def remove_chroot(root: str, chroot_env: list[str] | tuple[str, ...] = DEFAULT_CHROOT_ENV) -> None:
    """Host side, after the task: unmount anything left and remove the mount points."""
    for point in sorted(mounts_under(root), key=len, reverse=True):
        linux.umount(point)
    tops = {host_path.strip("/").split("/")[0] for host_path in chroot_env} | set(MOUNT_POINTS)
    for name in sorted(tops):
        path = os.path.join(root, name)
        if os.path.islink(path):
            os.unlink(path)
        else:
            _remove_empty_tree(path)
