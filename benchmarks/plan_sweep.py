"""A 10-value parameter sweep of one plan in one process (a :class:`PlanCache`: the calibration read
and the operator set up once) against 10 separate runs (no cache, and 10 ``mpirecon run`` processes).

    python benchmarks/plan_sweep.py DIR [--method admm_l1 --param mu]   # DIR: sm.mdf and meas.mdf (made if missing)
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from mpirecon.cli.main import main
from mpirecon.plan import PlanCache, ReconstructionPlan


def timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("folder", type=Path)
    ap.add_argument("--method", default="admm_l1")
    ap.add_argument("--param", default="mu")
    ap.add_argument("--frames", default="0:10")
    a = ap.parse_args()
    sm, meas = a.folder / "sm.mdf", a.folder / "meas.mdf"
    a.folder.mkdir(parents=True, exist_ok=True)
    if not sm.exists():
        assert main(["simulate", "system-matrix", "-o", str(sm)]) == 0
    if not meas.exists():
        assert main(["simulate", "measurement", "--sm", str(sm), "--phantom", "shape", "--frames", "100",
                     "-o", str(meas)]) == 0
    values = np.logspace(-3, 0, 10)
    plan = ReconstructionPlan(inputs={"measurement": str(meas), "calibration": str(sm)}, frames={"frames": a.frames},
                              method={"name": a.method})
    plans = [plan.with_changes(method={"parameters": {a.param: float(v)}}) for v in values]
    plans[0].run()  # warm-up: imports, thread pools
    cache = PlanCache()
    cached = timed(lambda: [p.run(cache=cache) for p in plans])
    fresh = timed(lambda: [p.run() for p in plans])
    cmds = [[sys.executable, "-m", "mpirecon.cli.main", "run", str(meas), "--sm", str(sm), "--method", a.method,
             "--frames", a.frames, "--param", f"{a.param}={v}", "-o", str(a.folder / f"sweep{i}.mdf"), "--overwrite"]
            for i, v in enumerate(values)]
    separate = timed(lambda: [subprocess.run(c, check=True, capture_output=True) for c in cmds])
    print(f"{a.method} {a.param} sweep of 10 values, frames {a.frames}: one process with a PlanCache {cached:.2f} s "
          f"(calibration reads {cache.reads}, bindings {cache.binds}); 10 plan runs without cache {fresh:.2f} s; "
          f"10 `mpirecon run` processes {separate:.2f} s")
