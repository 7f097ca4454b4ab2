"""Speed of subset scanning, today's row-by-row scan (the reference) against the vectorised one.

    python bench/subset_scan_speed.py [--repeats 3] [--restarts 10] [--run RUN_DIR] [--device cuda]
                                      [--skip-reference] [--rows 1000] [--background 2000]

Per-sample scans of ``--rows`` test samples against a ``--background`` clean background, for each
scan statistic (tails 1, alpha_max 0.5), on (see ``subset_scan_cases``):

- ``normal``: 4,096 standard-normal features: no ties, point p-values;
- ``relu``: the same clipped at 0: about half of every row ties the background's zeros (target:
  fit + p-values + scan <= 2 s on one core, and within 2x of ``normal``);
- ``pixels``: dSprites at 64 px, 4,096 binary pixels (values in {0, 1});
- ``activations``: the default layer of a beta-TCVAE trained here for one epoch on dSprites at
  32 px (or the first trial of ``--run RUN_DIR``).

"fit" sorts the background (once per detector: the same code before and after), "p-values" places
the test activations in it, "scan" is the per-sample scan; "old" is
``tests/unit/anomaly/reference_scan.py`` (today's code, verbatim), "new" the package. Times are CPU
seconds of this process (the machine is shared): each "new" cell the median over ``--repeats``
runs, "old" one run. "same" says whether scores, alphas and node masks are identical.
``--device cuda`` adds the whole detector in torch on that device (``SubsetScan(device=...)``: fit,
p-values and scan; wall seconds; scores equal to numpy's up to rounding). A last table times the
group scan of the first 100 test samples (target < 10 s; code this issue left alone), one run.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))  # the reference, in tests/

import numpy as np  # noqa: E402
from subset_scan_cases import binary_pixels, model_activations, synthetic  # noqa: E402

from disentune.anomaly.pvalues import Background, empirical_pvalues  # noqa: E402
from disentune.anomaly.scan_statistics import STATISTICS  # noqa: E402
from disentune.anomaly.subset_scan import scan_group, scan_samples  # noqa: E402
from tests.unit.anomaly import reference_scan  # noqa: E402


def timed(repeats: int, fn, *args, clock=time.process_time, **kwargs) -> tuple[float, object]:
    """Median time of ``fn(*args, **kwargs)`` over ``repeats`` calls (by default this process's CPU
    seconds: the machine is shared, and other processes' time slices are not ours), and its last
    result."""
    times, out = [], None
    for _ in range(repeats):
        start = clock()
        out = fn(*args, **kwargs)
        times.append(clock() - start)
    return statistics.median(times), out


def torch_total(device: str, background: np.ndarray, test: np.ndarray, name: str, repeats: int):
    """Fit + p-values + scan in torch on ``device`` (synchronised): ``(seconds, SampleScan)``."""
    import torch

    def run():
        bg = Background.from_activations(background, device=device)
        pv = empirical_pvalues(test, bg)
        return scan_samples(pv.pmin, pv.pmax, statistic=name)  # numpy results: waits for the device

    run()  # warm-up: kernels, allocator
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()
    return timed(repeats, run, clock=time.perf_counter)  # wall time: the device's work is not CPU time


def per_sample_rows(kind: str, background: np.ndarray, test: np.ndarray, args) -> list[dict]:
    t_fit, bg = timed(args.repeats, Background.from_activations, background)
    t_p, pv = timed(args.repeats, empirical_pvalues, test, bg)
    old_p = None if args.skip_reference else timed(1, reference_scan.empirical_pvalues, test, bg)
    rows = []
    for name in STATISTICS:
        t_s, new = timed(args.repeats, scan_samples, pv.pmin, pv.pmax, statistic=name)
        row = {"data": kind, "nodes": test.shape[1], "statistic": name, "fit": t_fit, "p_new": t_p, "scan_new": t_s}
        if old_p is not None:
            t_old, old = timed(1, reference_scan.scan_samples, *old_p[1], statistic=name)
            fields = (new.score, new.alpha, new.size, new.nodes)
            row.update(p_old=old_p[0], scan_old=t_old, same=all(np.array_equal(a, b) for a, b in zip(old, fields)))
        if args.device:
            t_dev, dev = torch_total(args.device, background, test, name, args.repeats)
            row.update(device=t_dev, device_same=bool(np.allclose(dev.score, new.score, rtol=1e-9, atol=1e-12)
                                                      and np.array_equal(dev.nodes, new.nodes)))
        rows.append(row)
    return rows


def cell(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def print_per_sample(rows: list[dict], args) -> None:
    head = ["data", "test x nodes", "statistic", "fit", "p-values old", "p-values new", "scan old", "scan new",
            "total old", "total new", "speed-up", "same"]
    if args.device:
        head += [f"total {args.device}", f"{args.device} = numpy"]
    print("| " + " | ".join(head) + " |\n|" + "---|" * len(head))
    untied = {r["statistic"]: r["fit"] + r["p_new"] + r["scan_new"] for r in rows if r["data"] == "normal"}
    for r in rows:
        new = r["fit"] + r["p_new"] + r["scan_new"]
        old = r["fit"] + r["p_old"] + r["scan_old"] if "p_old" in r else None
        cells = [r["data"], f"{args.rows} x {r['nodes']}", r["statistic"], cell(r["fit"]), cell(r.get("p_old")),
                 cell(r["p_new"]), cell(r.get("scan_old")), cell(r["scan_new"]), cell(old), cell(new),
                 "-" if old is None else f"{old / new:.1f}x", {True: "yes", False: "NO", None: "-"}[r.get("same")]]
        if args.device:
            cells += [cell(r["device"]), "yes" if r["device_same"] else "NO"]
        print("| " + " | ".join(cells) + " |")
    print()
    for r in rows:
        if r["data"] == "relu" and r["statistic"] in untied:
            total = r["fit"] + r["p_new"] + r["scan_new"]
            ratio = total / untied[r["statistic"]]
            verdict = "ok" if total <= 2.0 and ratio <= 2.0 else "MISSED"
            print(f"relu, {r['statistic']}: {total:.2f} s (target <= 2 s), {ratio:.1f}x normal "
                  f"(target <= 2x): {verdict}")


def print_group(data: dict, args) -> None:
    head = "| group scan | data | statistic | p-values (s) | scan (s) | total with fit (s) | target |"
    print(f"\n{head}\n|" + "---|" * 7)
    for kind in ("normal", "relu"):
        background, test = data[kind]
        t_fit, bg = timed(args.repeats, Background.from_activations, background)
        t_p, pv = timed(args.repeats, empirical_pvalues, test[:100], bg)
        for name in STATISTICS:  # unchanged by the vectorised per-sample scan: one run each
            t_g, _ = timed(1, scan_group, pv.pmin, pv.pmax, statistic=name, restarts=args.restarts, rng=0)
            total = t_fit + t_p + t_g
            print(f"| 100 x {test.shape[1]} | {kind} | {name} | {t_p:.2f} | {t_g:.2f} | {total:.2f} "
                  f"| < 10 s {'ok' if total < 10 else 'MISSED'} |")


def main(args) -> None:
    data = synthetic(args.rows, 4096, args.background)
    data["pixels"] = binary_pixels(args.rows, args.background)
    acts, space, model_seconds = model_activations(args.rows, args.background, args.run)
    data["activations"] = acts
    source = args.run or "a beta_tcvae trained here for one epoch"
    print(f"CPU seconds, {args.repeats} repeats (median; old: 1 run); activations: {space} of {source} "
          f"({model_seconds:.0f} s to get the model), {acts[0].shape[1]} units, "
          f"{(acts[1] == 0).mean():.0%} of test values exactly 0\n")
    rows = [row for kind, (background, test) in data.items() for row in per_sample_rows(kind, background, test, args)]
    print_per_sample(rows, args)
    if not args.skip_group:
        print_group(data, args)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--restarts", type=int, default=10)
    parser.add_argument("--rows", type=int, default=1000, help="test samples per per-sample scan")
    parser.add_argument("--background", type=int, default=2000, help="clean background samples")
    parser.add_argument("--run", default=None, help="take the activations of this finished run's first trial")
    parser.add_argument("--device", default=None, help="also time the detector in torch there (cpu, cuda)")
    parser.add_argument("--skip-reference", action="store_true", help="do not run today's (slow) row-by-row scan")
    parser.add_argument("--skip-group", action="store_true", help="do not time the group scan")
    main(parser.parse_args())
