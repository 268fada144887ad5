"""The task's image: from the local store, loaded from an archive (`load`), or pulled
(only with `force_pull` or when missing). A failed pull names the image and the reason;
with `auth_soft_fail` a pull refused with the given credentials is retried without them.
"""

import asyncio
import os
from typing import Any

from yurt.drivers.base import DriverError, TaskConfig

from .config import DockerPluginConfig, single_block
from .spec import parse_duration_s


def split_reference(image: str) -> tuple[str, str]:
    """`"redis:7"` -> ("redis", "7"); `"host:5000/app"` -> ("host:5000/app", "latest"); digests kept."""
    if "@" in image:
        return image, ""
    name, _, tag = image.rpartition(":")
    if not name or "/" in tag:
        return image, "latest"
    return name, tag


def normalized(image: str) -> str:
    repository, tag = split_reference(image)
    return f"{repository}:{tag}" if tag else repository


def _has_image(client, image: str) -> bool:
    import docker.errors

    try:
        client.inspect_image(image)
        return True
    except docker.errors.ImageNotFound:
        return False
    except docker.errors.NotFound:
        return False


def _auth_config(config: dict[str, Any]) -> dict[str, str] | None:
    auth = single_block(config.get("auth"))
    if not auth:
        return None
    keys = {"username": "username", "password": "password", "email": "email", "server_address": "serveraddress"}
    return {api_key: str(auth[key]) for key, api_key in keys.items() if auth.get(key)}


def _pull(client, image: str, auth: dict[str, str] | None) -> None:
    import docker.errors

    repository, tag = split_reference(image)
    try:
        for event in client.pull(repository, tag=tag or None, auth_config=auth, stream=True, decode=True):
            if isinstance(event, dict) and event.get("error"):
                raise DriverError(f"Failed to pull `{image}`: {event['error']}", recoverable=True)
    except docker.errors.APIError as exc:
        raise DriverError(f"Failed to pull `{image}`: {exc.explanation or exc}", recoverable=True) from exc


def pull_image(client, image: str, config: dict[str, Any]) -> None:
    auth = _auth_config(config)
    try:
        _pull(client, image, auth)
    except DriverError:
        if not (auth and config.get("auth_soft_fail")):
            raise
        _pull(client, image, None)  # auth_soft_fail: try anonymously
    if not _has_image(client, normalized(image)):
        raise DriverError(f"Failed to pull `{image}`: the registry did not deliver it", recoverable=True)


def load_image(client, cfg: TaskConfig) -> None:
    path = os.path.join(cfg.task_dir, str(cfg.config["load"]))
    try:
        with open(path, "rb") as archive:
            for _ in client.load_image(archive):
                pass
    except OSError as exc:
        raise DriverError(f'failed to load image archive "{cfg.config["load"]}": {exc.strerror or exc}') from exc


async def ensure_image(client, cfg: TaskConfig, plugin: DockerPluginConfig, puller=None) -> str:
    """The image reference to create the container from, present in the local store. `puller`: the
    client that pulls, whose socket timeout is the plugin's `pull_activity_timeout` (a pull that
    reports no progress for that long is abandoned)."""
    image = str(cfg.config["image"])
    if cfg.config.get("load"):
        await asyncio.to_thread(load_image, client, cfg)
    present = await asyncio.to_thread(_has_image, client, normalized(image))
    if present and not cfg.config.get("force_pull"):
        return normalized(image)
    timeout = plugin.image_pull_timeout_s
    if cfg.config.get("image_pull_timeout"):
        timeout = parse_duration_s(str(cfg.config["image_pull_timeout"]), "image_pull_timeout")
    try:
        await asyncio.wait_for(asyncio.to_thread(pull_image, puller or client, image, cfg.config), timeout)
    except asyncio.TimeoutError:
        raise DriverError(f"Failed to pull `{image}`: timed out after {timeout:.0f}s", recoverable=True) from None
    except OSError as exc:  # requests' ReadTimeout / ConnectionError: no pull activity, engine gone
        message = f"no pull activity for {plugin.pull_activity_timeout_s:.0f}s (pull_activity_timeout)" \
            if "timed out" in str(exc).lower() else str(exc)
        raise DriverError(f"Failed to pull `{image}`: {message}", recoverable=True) from None
    except DriverError:
        if present:  # force_pull with the image at hand and no registry: keep the local copy
            return normalized(image)
        raise
    return normalized(image)
