"""Pareto fronts: the one dominance rule that `spikeforge sweep` and `spikeforge search` share."""

from __future__ import annotations

from collections.abc import Sequence


def dominates(a: Sequence[float], b: Sequence[float]) -> bool:
    """True when cost vector `a` is <= `b` everywhere and < somewhere (all costs minimised)."""
    return all(x <= y for x, y in zip(a, b, strict=True)) and any(x < y for x, y in zip(a, b, strict=True))


def pareto_mask(costs: Sequence[Sequence[float]]) -> list[bool]:
    """True where no other point dominates this one (all costs minimised)."""
    return [not any(dominates(b, a) for j, b in enumerate(costs) if j != i) for i, a in enumerate(costs)]
