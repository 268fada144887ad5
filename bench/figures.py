"""Percentiles and the one JSON line each scenario prints."""

from __future__ import annotations

import json
import math
import sys
from typing import Any


def percentile(values: list[float], p: float) -> float | None:
    """Nearest-rank percentile (p in 0..100); None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[rank - 1]


def ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 1)


def latency_summary(samples: list[float], prefix: str) -> dict[str, Any]:
    """`{prefix}_p50_ms, _p99_ms, _max_ms, _n}` from samples in seconds."""
    return {
        f"{prefix}_p50_ms": ms(percentile(samples, 50)),
        f"{prefix}_p99_ms": ms(percentile(samples, 99)),
        f"{prefix}_max_ms": ms(max(samples) if samples else None),
        f"{prefix}_n": len(samples),
    }


def emit(figures: dict[str, Any]) -> dict[str, Any]:
    print(json.dumps(figures, sort_keys=False), flush=True)
    return figures


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)
