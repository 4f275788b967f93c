"""DERnet variants (weights x refinement) against the tuned classical methods on the realistic and
physics-shift protocols, through ``mpirecon bench`` (results.json, results.md in OUT).

    python benchmarks/dernet_generalisation.py OUT SNRS N [--seed S] [--classical]
        [--variants NAME,...] [--extra '{"label": {params}}'] [--shift '{"relaxation_time": 2.5e-6}']
        LABEL=WEIGHTS [LABEL=WEIGHTS ...]

Variants per weights file: ``prox`` (the default proximal refinement), ``net`` (``refine=false``),
``pnp`` (plug-and-play, ``refine=pnp``), ``prox300`` (300 iterations); ``--extra``
adds refinement settings by label (e.g. '{"e05": {"refine": {"error": 0.05}}}'). ``--classical``
adds kaczmarz, pinv, cgnr, admm_l1, admm_tv, admm_l1tv (tuned per SNR) and ppmpi. ``--shift`` sets the
physics-shift protocol's measured physics (:class:`mpirecon.simulation.shift.PhysicsShift` fields; unset
fields keep their defaults), to check a choice on other physics than the default shift.
"""
import argparse
import json

from mpirecon.bench.runner import BenchConfig, run_bench
from mpirecon.simulation.shift import PhysicsShift

VARIANTS = {"prox": {}, "net": {"refine": False}, "pnp": {"refine": "pnp"},
            "prox300": {"refine": {"kind": "proximal", "iterations": 300}}}
CLASSICAL = ["kaczmarz", "pinv", "cgnr", "admm_l1", "admm_tv", "admm_l1tv", "ppmpi"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("output")
    ap.add_argument("snrs")
    ap.add_argument("samples", type=int)
    ap.add_argument("weights", nargs="*", help="LABEL=WEIGHTS")
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--val-samples", type=int, default=30)
    ap.add_argument("--classical", action="store_true")
    ap.add_argument("--variants", default="prox,net,pnp")
    ap.add_argument("--extra", default="{}")
    ap.add_argument("--protocols", default="realistic,physics-shift")
    ap.add_argument("--shift", default="{}", help="PhysicsShift fields as JSON")
    args = ap.parse_args()
    variants = {k: VARIANTS[k] for k in args.variants.split(",") if k}
    variants.update(json.loads(args.extra))
    methods, weights, params = (list(CLASSICAL) if args.classical else []), {}, {}
    for item in args.weights:
        label, path = item.split("=", 1)
        for name, p in variants.items():
            entry = f"dernet@{label}-{name}"
            methods.append(entry)
            weights[entry] = path
            if p:
                params[entry] = p
    cfg = BenchConfig(methods=methods, weights=weights, params=params,
                      snr_levels=[float(s) for s in args.snrs.split(",")], test_samples=args.samples,
                      val_samples=args.val_samples, protocols=args.protocols.split(","), seed=args.seed,
                      shift=PhysicsShift(**json.loads(args.shift)))
    run_bench(cfg, output=args.output, progress=False)
    print(f"wrote {args.output}/results.md")


if __name__ == "__main__":
    main()
