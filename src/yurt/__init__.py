"""yurt: a workload orchestrator that is a drop-in replacement for HashiCorp Nomad."""

__version__ = "0.1.0"
NOMAD_COMPAT_VERSION = "1.10.0"
