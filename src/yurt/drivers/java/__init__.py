"""The `java` task driver (the exec driver's isolation around a JVM); see `driver.py`."""

from .driver import JavaDriver, java_command, parse_java_version  # noqa: F401
