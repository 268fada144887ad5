"""Identifiers: random UUIDs as Nomad makes them, and short forms for display."""

import uuid


def generate_uuid() -> str:
    return str(uuid.uuid4())


def short_id(full: str, length: int = 8) -> str:
    return full[:length]
