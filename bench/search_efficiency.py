"""Search efficiency of the samplers on cheap two-objective problems with known fronts.

    OMP_NUM_THREADS=1 python bench/search_efficiency.py [--trials 60] [--seeds 10] [--batch 1]
        [--problems tradeoff,zdt1,zdt2,zdt3] [--samplers gp,tpe,nsga2,random,tune_random]

Problems over two weights in [0, 1]^2 (the platform's lambda_mi x lambda_tc, rescaled):
``tradeoff`` (a smooth quality/disentanglement trade-off: disentanglement saturates with the TC
weight while quality degrades, with an interior optimum of the MI weight), and the classic ZDT1,
ZDT2 and ZDT3 (n = 2: convex, concave and disconnected fronts). The reference point is the worst
value of each objective over the whole square plus 10 % of its range; the true front's hypervolume
is that of an 801 x 801 grid.

Samplers: every name :func:`disentune.search.samplers.make_sampler` knows (``gp``, ``tpe``, ``nsga2``,
``random``), each built exactly as a sweep builds it (``search.num_samples`` = ``--trials``), and
``tune_random``: Tune's own random search, i.e. ``BasicVariantGenerator(random_state=seed)`` over
``tune.uniform`` domains, driven through the very function it uses to resolve them
(``generate_variants`` with its random-state wrapper) without starting Ray. Tune's
``grid_search`` evaluates the whole k x k grid, so its cost is k^2 trials; the table header gives
the smallest k^2 that reaches 95 %.

``--batch B`` asks Optuna for B trials before telling any of their results, as Tune's
``OptunaSearch`` does with ``max_concurrent_trials`` = B (the pending trials are RUNNING when the
next one is asked: GP conditions on them by Kriging believer, TPE by constant liar).

Printed per problem and sampler: the median over seeds of the hypervolume ratio (to the true
front's) after 10/20/40/60/... trials, the median number of trials to reach 95 % (``inf`` when more
than half the seeds never do), whether that is at most a quarter of the grid's, and the seconds the
sampler itself spends per run (ask + suggest + tell; the objective and the bookkeeping excluded).
"""

from __future__ import annotations

import argparse
import math
import os
import time
import warnings

import numpy as np
import optuna

from disentune.config import experiment_from_dict
from disentune.pareto import hypervolume
from disentune.search.samplers import make_sampler

optuna.logging.set_verbosity(optuna.logging.ERROR)
warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)


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


def zdt3(x: float, y: float) -> tuple[float, float]:
    g = 1 + 9 * y
    return x, g * (1 - math.sqrt(x / g) - x / g * math.sin(10 * math.pi * x))


PROBLEMS = {"tradeoff": tradeoff, "zdt1": zdt1, "zdt2": zdt2, "zdt3": zdt3}


def reference_and_true_hv(f) -> tuple[np.ndarray, float]:
    g = np.linspace(0, 1, 801)
    pts = np.array([f(a, b) for a in g for b in g])
    ref = pts.max(axis=0) + 0.1 * (pts.max(axis=0) - pts.min(axis=0))
    return ref, hypervolume(pts, ref)


def run(sampler_name: str, f, trials: int, seed: int, batch: int = 1) -> tuple[list, float]:
    """The objective values of ``trials`` trials in order, and the sampler's own seconds."""
    if sampler_name == "tune_random":
        return run_tune_random(f, trials, seed)
    exp = experiment_from_dict({"seed": seed, "search": {"sampler": sampler_name, "num_samples": trials}})
    study = optuna.create_study(directions=["minimize", "minimize"], sampler=make_sampler(exp))
    values, spent = [], 0.0
    while len(values) < trials:
        began = time.perf_counter()
        asked = [study.ask() for _ in range(min(batch, trials - len(values)))]
        xs = [(t.suggest_float("x", 0, 1), t.suggest_float("y", 0, 1)) for t in asked]
        spent += time.perf_counter() - began
        for t, (x, y) in zip(asked, xs):
            v = f(x, y)
            began = time.perf_counter()
            study.tell(t, v)
            spent += time.perf_counter() - began
            values.append(v)
    return values, spent


def run_tune_random(f, trials: int, seed: int) -> tuple[list, float]:
    from ray import tune
    from ray.tune.search.sample import _BackwardsCompatibleNumpyRng
    from ray.tune.search.variant_generator import generate_variants

    began = time.perf_counter()
    rng = _BackwardsCompatibleNumpyRng(seed)  # what BasicVariantGenerator(random_state=seed) holds
    space = {"config": {"x": tune.uniform(0, 1), "y": tune.uniform(0, 1)}}
    configs = [spec["config"] for _ in range(trials) for _, spec in generate_variants(space, random_state=rng)]
    spent = time.perf_counter() - began
    return [f(c["x"], c["y"]) for c in configs], spent


def hv_curve(points: list[tuple[float, float]], ref: np.ndarray, true_hv: float) -> np.ndarray:
    pts = np.array(points)
    return np.array([hypervolume(pts[: k + 1], ref) / true_hv for k in range(len(pts))])


def grid_trials_to(f, ref, true_hv, target=0.95) -> int:
    for k in range(2, 60):
        g = np.linspace(0, 1, k)
        if hypervolume(np.array([f(a, b) for a in g for b in g]), ref) / true_hv >= target:
            return k * k
    return 10**9


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--trials", type=int, default=60)
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--batch", type=int, default=1, help="trials asked before any is told")
    parser.add_argument("--problems", default=",".join(PROBLEMS))
    parser.add_argument("--samplers", default="gp,tpe,nsga2,random,tune_random")
    args = parser.parse_args()
    checkpoints = [c for c in (10, 20, 40, 60, 100, 200) if c <= args.trials]
    print(f"median over {args.seeds} seeds; hypervolume as a fraction of the true front's; "
          f"{args.trials} trials, asked in batches of {args.batch}; "
          f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}")
    for name in args.problems.split(","):
        f = PROBLEMS[name]
        ref, true_hv = reference_and_true_hv(f)
        grid = grid_trials_to(f, ref, true_hv)
        print(f"\n{name}: a k x k grid needs {grid} trials for 95 %")
        print(f"{'sampler':<11} " + " ".join(f"{'@' + str(c):>7}" for c in checkpoints)
              + f" {'to 95%':>7} {'<= grid/4':>9} {'s/run':>6}", flush=True)
        for sampler in args.samplers.split(","):
            runs = [run(sampler, f, args.trials, s, args.batch) for s in range(args.seeds)]
            curves = [hv_curve(values, ref, true_hv) for values, _ in runs]
            seconds = float(np.mean([spent for _, spent in runs]))
            med = np.median(np.array(curves), axis=0)
            reach = [int(np.argmax(c >= 0.95)) + 1 if (c >= 0.95).any() else math.inf for c in curves]
            to95 = float(np.median(reach))
            print(f"{sampler:<11} " + " ".join(f"{med[c - 1]:>7.3f}" for c in checkpoints)
                  + f" {to95:>7.0f} {str(to95 <= grid / 4):>9} {seconds:>6.1f}", flush=True)


if __name__ == "__main__":
    main()
