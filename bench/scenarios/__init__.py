"""One module per scenario of issue 7; each exposes `run(short: bool) -> dict` (async)."""
