"""The server control plane: state, eval broker, workers, plan applier, heartbeats."""

from .clock import Clock, FakeClock, SystemClock  # noqa: F401
from .config import ServerConfig  # noqa: F401
from .endpoints import EndpointError  # noqa: F401
from .server import Server  # noqa: F401
