"""The client agent: fingerprinting, alloc and task runners, local state, client routes."""

from .agent import ClientAgent  # noqa: F401
from .config import ClientConfig  # noqa: F401
