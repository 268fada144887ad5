"""The `docker` task driver (Docker Engine API through the docker SDK).

Modules: `config` (task and plugin config keys, validation), `spec` (create-container
parameters from a TaskConfig), `images` (local store, load, pull), `logfollower` (the
detached copier of container logs into alloc/logs), `orphans` (reaping), `driver`.
"""

from .config import DockerPluginConfig, validate_task_config  # noqa: F401
from .driver import DockerDriver, connect  # noqa: F401
from .orphans import reap_orphans  # noqa: F401
