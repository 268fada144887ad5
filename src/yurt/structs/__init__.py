"""Domain types with Nomad's wire names, and the codec that reads and writes them."""

from .alloc import *  # noqa: F401,F403
from .base import HOUR, MINUTE, MS, SECOND, NomadStruct, deep_copy, evolve  # noqa: F401
from .codec import decode, encode, to_wire  # noqa: F401
from .eval import *  # noqa: F401,F403
from .ids import generate_uuid, short_id  # noqa: F401
from .job import *  # noqa: F401,F403
from .node import *  # noqa: F401,F403
from .summary import *  # noqa: F401,F403
from .operator import *  # noqa: F401,F403
from .plan import *  # noqa: F401,F403
from .deployment import Deployment, DeploymentState, DeploymentStatusUpdate  # noqa: F401
