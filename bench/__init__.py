"""yurt benchmarks: the simulated-node fleet and the scenarios of issue 7 (see README.md)."""
