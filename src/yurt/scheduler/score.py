"""The one scoring formula of a node for a placement: the node-by-node walk
(`select.NodeSelector`) and the class windows (`window.ClassWindow`) both score with it, so
their floats are identical."""

from yurt.structs.resources import BINPACK_MAX_FIT_SCORE


def score_parts(placer, cap_cpu: int, cap_mem: int, free_cpu: int, free_mem: int, collisions: int,
                penalized: bool, aff: float, spread: float, preemption: float | None,
                device: float | None = None) -> tuple:
    """(final, binpack, anti-affinity, penalty, affinity, spread): the one scoring formula
    both walks use, so their floats are identical."""
    fcpu = (free_cpu - placer.cpu) / cap_cpu if cap_cpu > 0 else 0.0
    fmem = (free_mem - placer.mem) / cap_mem if cap_mem > 0 else 0.0
    total_free = 10.0**fcpu + 10.0**fmem
    fit = (total_free - 2.0) if placer.spread_algorithm else (20.0 - total_free)
    # clamped to [0, 18] and normalized (see structs.resources.score_fit_binpack)
    fit = 0.0 if fit < 0.0 else (1.0 if fit > BINPACK_MAX_FIT_SCORE else fit / BINPACK_MAX_FIT_SCORE)
    total, n = fit, 1
    anti = penalty_score = 0.0
    if collisions:
        anti = -(collisions + 1) / placer.count
        total += anti
        n += 1
    if penalized:
        penalty_score = -1.0
        total -= 1.0
        n += 1
    if aff:
        total += aff
        n += 1
    if spread:
        total += spread
        n += 1
    if preemption is not None:
        total += preemption
        n += 1
    if device is not None:
        total += device
        n += 1
    return total / n, fit, anti, penalty_score, aff, spread
