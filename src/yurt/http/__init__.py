"""Nomad's /v1 HTTP API over a yurt server."""

from .app import build_app  # noqa: F401
