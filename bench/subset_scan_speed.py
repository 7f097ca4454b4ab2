"""Speed of subset scanning: per-sample scan of 1,000 x 4,096 against a 2,000-sample background
(target < 2 s in all) and group scan of 100 x 4,096 (target < 10 s), for each scan statistic.

    python bench/subset_scan_speed.py [--repeats 3] [--restarts 10]

Activations are standard normal (continuous: point p-values, the fast path); the ``relu`` rows
clip them at 0, so about half of every row ties the background's zeros and is scanned as p-value
ranges. Each cell is the median over ``--repeats`` runs, in seconds; "fit" sorts the background
(once per detector), "p-values" places the test activations in it, "scan" is the subset scan.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
from disentune.anomaly.pvalues import Background, empirical_pvalues
from disentune.anomaly.scan_statistics import STATISTICS
from disentune.anomaly.subset_scan import scan_group, scan_samples


def timed(repeats: int, fn, *args, **kwargs) -> tuple[float, object]:
    """Median wall time of ``fn(*args, **kwargs)`` over ``repeats`` calls, and its last result."""
    times, out = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        out = fn(*args, **kwargs)
        times.append(time.perf_counter() - start)
    return statistics.median(times), out


def main(repeats: int, restarts: int) -> None:
    rng = np.random.default_rng(0)
    nodes = 4096
    data = {"normal": (rng.normal(size=(2000, nodes)), rng.normal(size=(1000, nodes)))}
    data["relu"] = tuple(np.maximum(a, 0.0) for a in data["normal"])
    print(f"{repeats} repeats (median), group scan with {restarts} restarts\n")
    print("| scan | data | statistic | fit (s) | p-values (s) | scan (s) | total (s) | target |")
    print("|---|---|---|---|---|---|---|---|")
    for kind, (background, test) in data.items():
        t_fit, bg = timed(repeats, Background.from_activations, background)
        t_p, pv = timed(repeats, empirical_pvalues, test, bg)
        t_pg, pvg = timed(repeats, empirical_pvalues, test[:100], bg)
        for name in STATISTICS:
            t_s, _ = timed(repeats, scan_samples, pv.pmin, pv.pmax, statistic=name)
            total = t_fit + t_p + t_s
            print(f"| per-sample 1000 x {nodes} | {kind} | {name} | {t_fit:.2f} | {t_p:.2f} | {t_s:.2f} "
                  f"| {total:.2f} | < 2 s {'ok' if total < 2 else 'MISSED'} |")
        for name in STATISTICS:
            t_g, _ = timed(repeats, scan_group, pvg.pmin, pvg.pmax, statistic=name, restarts=restarts, rng=0)
            total = t_fit + t_pg + t_g
            print(f"| group 100 x {nodes} | {kind} | {name} | {t_fit:.2f} | {t_pg:.2f} | {t_g:.2f} "
                  f"| {total:.2f} | < 10 s {'ok' if total < 10 else 'MISSED'} |")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--restarts", type=int, default=10)
    args = parser.parse_args()
    main(args.repeats, args.restarts)
