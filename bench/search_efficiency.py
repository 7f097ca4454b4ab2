"""Search efficiency of the samplers on cheap two-objective problems with known fronts.

    python bench/search_efficiency.py [--trials 60] [--seeds 10] [--samplers tpe,nsga2,gp,random]

Problems over two weights in [0, 1]^2 (the platform's lambda_mi x lambda_tc, rescaled):
``tradeoff`` (a smooth quality/disentanglement trade-off: disentanglement saturates with the TC
weight while quality degrades, with an interior optimum of the MI weight), ZDT1 and ZDT2 (n = 2).
Each sampler is built exactly as a sweep builds it (:func:`disentune.search.tune.make_sampler`).
Printed: median over seeds of the hypervolume ratio (to the true front's) after 10/20/40/... trials,
the median trials to reach 95 %, and the trials a k x k grid needs for 95 % (grid order is random:
Tune's grid_search evaluates the whole grid, so its cost is k^2).
"""

from __future__ import annotations

import argparse
import math
import time

import numpy as np
import optuna

from disentune.config import experiment_from_dict
from disentune.search.pareto import hypervolume_2d
from disentune.search.tune import make_sampler

optuna.logging.set_verbosity(optuna.logging.WARNING)


def tradeoff(x: float, y: float) -> tuple[float, float]:
    quality = 0.2 + 2.0 * y**1.5 + 0.6 * (x - 0.4) ** 2  # FID-like, minimised
    disentanglement = (1 - math.exp(-4.0 * y)) * (1 - 0.8 * (x - 0.7) ** 2)  # MIG-like, maximised
    return quality, -disentanglement


def zdt1(x: float, y: float) -> tuple[float, float]:
    g = 1 + 9 * y
    return x, g * (1 - math.sqrt(x / g))


def zdt2(x: float, y: float) -> tuple[float, float]:
    g = 1 + 9 * y
    return x, g * (1 - (x / g) ** 2)


PROBLEMS = {"tradeoff": tradeoff, "zdt1": zdt1, "zdt2": zdt2}


def reference_and_true_hv(f) -> tuple[np.ndarray, float]:
    g = np.linspace(0, 1, 801)
    pts = np.array([f(a, b) for a in g for b in g])
    ref = pts.max(axis=0) + 0.1 * (pts.max(axis=0) - pts.min(axis=0))
    return ref, hypervolume_2d(pts, ref)


def run(sampler_name: str, f, trials: int, seed: int) -> list[tuple[float, float]]:
    exp = experiment_from_dict({"seed": seed, "search": {"sampler": sampler_name, "num_samples": trials}})
    study = optuna.create_study(directions=["minimize", "minimize"], sampler=make_sampler(exp))
    study.optimize(lambda t: f(t.suggest_float("x", 0, 1), t.suggest_float("y", 0, 1)), n_trials=trials)
    return [tuple(t.values) for t in study.trials]


def hv_curve(points: list[tuple[float, float]], ref: np.ndarray, true_hv: float) -> np.ndarray:
    pts = np.array(points)
    return np.array([hypervolume_2d(pts[: k + 1], ref) / true_hv for k in range(len(pts))])


def grid_trials_to(f, ref, true_hv, target=0.95) -> int:
    for k in range(2, 60):
        g = np.linspace(0, 1, k)
        if hypervolume_2d(np.array([f(a, b) for a in g for b in g]), ref) / true_hv >= target:
            return k * k
    return 10**9


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--trials", type=int, default=60)
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--samplers", default="tpe,nsga2,gp,random")
    args = parser.parse_args()
    checkpoints = [c for c in (10, 20, 40, 60, 100, 200) if c <= args.trials]
    print(f"median over {args.seeds} seeds; hypervolume as a fraction of the true front's")
    for name, f in PROBLEMS.items():
        ref, true_hv = reference_and_true_hv(f)
        grid = grid_trials_to(f, ref, true_hv)
        print(f"\n{name}: a k x k grid needs {grid} trials for 95 %")
        print(f"{'sampler':<8} " + " ".join(f"{'@' + str(c):>7}" for c in checkpoints)
              + f" {'to 95%':>7} {'<= grid/4':>9} {'s/run':>6}")
        for sampler in args.samplers.split(","):
            began = time.perf_counter()
            curves = [hv_curve(run(sampler, f, args.trials, s), ref, true_hv) for s in range(args.seeds)]
            seconds = (time.perf_counter() - began) / args.seeds
            med = np.median(np.array(curves), axis=0)
            reach = [int(np.argmax(c >= 0.95)) + 1 if (c >= 0.95).any() else math.inf for c in curves]
            to95 = float(np.median(reach))
            print(f"{sampler:<8} " + " ".join(f"{med[c - 1]:>7.3f}" for c in checkpoints)
                  + f" {to95:>7.0f} {str(to95 <= grid / 4):>9} {seconds:>6.1f}")


if __name__ == "__main__":
    main()
