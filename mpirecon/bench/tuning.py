"""The bench's parameter search on a validation split: a grid, extended where its best point lies on
an edge.

A grid chosen on 2D calibrations can be too narrow for another problem (on the 19^3 realistic
protocol ADMM-L1's best weight was the largest in its grid, Kaczmarz's and pinv's λ too), and a
classical method tuned on a truncated grid understates the baseline a learned method is compared
with. After the full grid, each numeric parameter whose best value is the grid's smallest or
largest is pushed one geometric step further (the ratio of its two outermost values), the others
held at the best point, while the validation PSNR improves, at most :data:`EDGE_STEPS` steps per
parameter. Every point evaluated is recorded.
"""
from __future__ import annotations

import itertools
from typing import Callable

#: geometric steps beyond a grid edge per parameter (0 turns the extension off)
EDGE_STEPS = 3


def grid_points(grid: dict[str, list]) -> list[dict]:
    """Every combination of a parameter grid ``{name: values}`` ([{}] for an empty grid)."""
    if not grid:
        return [{}]
    keys = list(grid)
    return [dict(zip(keys, vals)) for vals in itertools.product(*(grid[k] for k in keys))]


def _step_beyond(values: list, value, upward: bool):
    """The next value past ``value`` (an edge of the sorted numeric ``values``): one geometric step
    (the ratio of the two outermost values on that side); integers stay integers; None where no
    step is defined (one value, non-positive values)."""
    v = sorted(values)
    if len(v) < 2 or v[0] <= 0:
        return None
    ratio = v[-1] / v[-2] if upward else v[0] / v[1]
    nxt = value * ratio
    if all(isinstance(x, int) and not isinstance(x, bool) for x in values):
        nxt = int(round(nxt))
        return nxt if nxt != value and nxt >= 1 else None
    return nxt


def search(grid: dict[str, list], score: Callable[[dict], float], edge_steps: int = EDGE_STEPS,
           valid: Callable[[dict], bool] = lambda params: True) -> tuple[dict, list]:
    """(best parameters, every evaluation as ``{"params", "val_psnr"}``) of ``score`` (higher is
    better) over ``grid``, then past the edges the best point sits on (module docstring); a step
    beyond an edge that ``valid`` refuses (a bounded parameter, e.g. a weight in [0, 1]) ends that
    direction."""
    tuning = [{"params": p, "val_psnr": float(score(p))} for p in grid_points(grid)]
    best = max(tuning, key=lambda t: t["val_psnr"])
    for name, values in grid.items():
        numeric = all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in values)
        if not numeric or len(values) < 2:
            continue
        edge = best["params"][name]
        if edge not in (min(values), max(values)):
            continue
        upward = edge == max(values)
        current = edge
        for _ in range(edge_steps):
            nxt = _step_beyond(values, current, upward)
            if nxt is None:
                break
            params = dict(best["params"], **{name: nxt})
            if not valid(params):
                break
            entry = {"params": params, "val_psnr": float(score(params)), "extended": True}
            tuning.append(entry)
            if entry["val_psnr"] <= best["val_psnr"]:
                break
            best, current = entry, nxt
    return dict(best["params"]), tuning
