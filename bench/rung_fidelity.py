"""Rung fidelity: do a trial's objectives after its first epochs rank it as its full budget does?
What bounds MO-ASHA in bench/early_stopping.py, measured on the same sweep.

    python bench/rung_fidelity.py [--out /tmp/rf] [--seeds 0,1] [--trials 16] [--reuse] [--draws 2000]

Runs the early-stopping bench's sweep (beta-TCVAE on dSprites 32 px, 9 epochs of 10,000 images;
lambda_mi, lambda_tc and lr searched; 2 trials at a time) with random search, every trial to the
full budget, and the objectives (FID on 1,000 images, MIG on 5,000 points: the sizes a rung
uses) measured after every epoch (``evaluation.eval_every: 1``, about 4 s an epoch). Prints:

1. Per epoch, over the trials of every seed (all draws of one space): Spearman's rank
   correlation of FID and of MIG at that epoch with the final ones; and how many of each run's
   final front MO-ASHA's priority order (non-dominated sorting, then the epsilon-net) at that
   epoch puts in the top third of the run, i.e. would keep at a rung there with eta 3.
2. An offline replay of MO-ASHA's decision core (:class:`SuccessiveHalving`, one bracket) on the
   recorded curves, for several rung designs (first rung, eta). Each of ``--draws`` draws takes
   one seed's trials in a random order, feeds them one after another (the best-informed
   asynchronous case: every earlier trial is a peer) and counts the images they train; the target
   is the final hypervolume of the first 9 trials of an independent random order of the same run
   trained to the full budget (a 9-trial search at the full budget, the early-stopping bench's GP
   baseline size, here without GP). Printed: the share of draws that reach the target within the
   run's trials, the median images spent to reach it as a share of the 9 full trials' images
   (a draw that never reaches it counts as infinitely far), and the share of draws at or below 1/3.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.stats import spearmanr

import disentune
from disentune.config import experiment_from_dict
from disentune.pareto import default_reference, hypervolume, hypervolume_history, non_domination_ranks, to_minimization
from disentune.search.successive_halving import STOP, SuccessiveHalving, priority_order, rung_budgets
from early_stopping import DIRECTIONS, EPOCHS, TRAIN_SIZE, sweep_config

OBJECTIVES = ("fid", "mig")
BASELINE_TRIALS = 9
DESIGNS = ((1, 3.0), (1, 2.0), (2, 3.0), (2, 2.0), (3, 3.0), (3, 2.0))  # (first rung in epochs, eta)


def run(seed: int, trials: int, out: Path, reuse: bool) -> tuple[np.ndarray, float]:
    """The run's curves as an array [trial, epoch, objective] (own directions; epochs 1..EPOCHS)
    and its wall seconds (NaN for a reused run)."""
    target = out / f"random-{seed}"
    wall = float("nan")
    if not (reuse and (target / "curves.parquet").exists()):
        config = sweep_config("random+mo_asha", seed, trials)
        config["name"] = f"rf-random-{seed}"
        config["search"]["scheduler"] = "none"
        config["evaluation"]["eval_every"] = 1
        began = time.perf_counter()
        disentune.sweep(experiment_from_dict(config), out=target, force=True)
        wall = time.perf_counter() - began
    curves = pd.read_parquet(target / "curves.parquet")
    trials_table = pd.read_parquet(target / "trials.parquet")
    ok = trials_table.loc[trials_table["status"] == "ok", "trial_number"].to_numpy()
    wide = curves[curves["metric"].isin(OBJECTIVES) & curves["trial_number"].isin(ok)].pivot_table(
        index=["trial_number", "epoch"], columns="metric", values="value")
    numbers = sorted(set(wide.index.get_level_values(0)))
    grid = pd.MultiIndex.from_product([numbers, range(1, EPOCHS + 1)])  # a missing epoch stays NaN
    cube = wide.reindex(grid)[list(OBJECTIVES)].to_numpy().reshape(len(numbers), EPOCHS, len(OBJECTIVES))
    complete = np.isfinite(cube).all(axis=(1, 2))
    return cube[complete], wall


def fidelity(cubes: list[np.ndarray]) -> None:
    pooled = np.concatenate(cubes)
    print(f"Rank fidelity over {len(pooled)} trials ({len(cubes)} runs):\n")
    print("| epoch | images | Spearman FID | Spearman MIG | final front in the top third |")
    print("|---|---|---|---|---|")
    fronts = [np.flatnonzero(non_domination_ranks(to_minimization(c[:, -1], DIRECTIONS)) == 0) for c in cubes]
    for e in range(EPOCHS - 1):
        rho = [spearmanr(pooled[:, e, j], pooled[:, -1, j]).statistic for j in range(len(OBJECTIVES))]
        kept = total = 0
        for cube, front in zip(cubes, fronts):
            order = priority_order(to_minimization(cube[:, e], DIRECTIONS))
            top = {int(i) for r, i in enumerate(order) if r * 3 <= len(cube)}  # MO-ASHA's rule, eta 3
            kept += sum(int(i in top) for i in front)
            total += len(front)
        print(f"| {e + 1} | {(e + 1) * TRAIN_SIZE:,} | {rho[0]:.2f} | {rho[1]:.2f} | {kept} of {total} |")


def replay(cube: np.ndarray, order: np.ndarray, first: int, eta: float, ref: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """MO-ASHA on the trials in ``order``: cumulative images and hypervolume of the trials at the
    full budget after each trial."""
    core = SuccessiveHalving(directions=DIRECTIONS, min_budget=first * TRAIN_SIZE,
                             max_budget=EPOCHS * TRAIN_SIZE, reduction_factor=eta)
    rungs = rung_epochs(first, eta)
    reached = np.full(len(order), EPOCHS)  # the epochs each trial trains
    for k, i in enumerate(order):
        for e in rungs:
            if core.on_result(str(i), e * TRAIN_SIZE, cube[i, e - 1]) == STOP:
                reached[k] = e
                break
    finals = to_minimization(cube[order[reached == EPOCHS], -1], DIRECTIONS)
    held = np.concatenate([[0.0], hypervolume_history(finals, ref)]) if len(finals) else np.zeros(1)
    return np.cumsum(reached * TRAIN_SIZE, dtype=float), held[np.cumsum(reached == EPOCHS)]


def rung_epochs(first: int, eta: float) -> list[int]:
    """The rungs of one bracket from ``first`` epochs at reduction factor ``eta``, in epochs."""
    budgets = rung_budgets(first * TRAIN_SIZE, EPOCHS * TRAIN_SIZE, eta, 0)
    return [int(round(b / TRAIN_SIZE)) for b in budgets]


def replays(cubes: list[np.ndarray], draws: int, seed: int) -> None:
    ref = default_reference(to_minimization(np.concatenate([c[:, -1] for c in cubes]), DIRECTIONS))
    rng = np.random.default_rng(seed)
    baseline_images = BASELINE_TRIALS * EPOCHS * TRAIN_SIZE
    print(f"\nMO-ASHA replayed on the curves ({draws} draws; target: the hypervolume of {BASELINE_TRIALS} "
          f"random trials at the full budget, {baseline_images:,} images):\n")
    print("| first rung (epoch) | eta | rungs (epochs) | target reached | median share of the images | share <= 1/3 |")
    print("|---|---|---|---|---|---|")
    for first, eta in DESIGNS:
        shares = []
        for d in range(draws):
            cube = cubes[d % len(cubes)]
            baseline = rng.permutation(len(cube))[:BASELINE_TRIALS]
            target = hypervolume(to_minimization(cube[baseline, -1], DIRECTIONS), ref)
            images, hv = replay(cube, rng.permutation(len(cube)), first, eta, ref)
            hit = np.flatnonzero(hv >= target * (1 - 1e-9))
            shares.append(images[hit[0]] / baseline_images if len(hit) else np.inf)
        shares = np.array(shares)
        median = float(np.median(shares))
        print(f"| {first} | {eta:g} | {', '.join(map(str, rung_epochs(first, eta)))} | "
              f"{np.isfinite(shares).mean():.2f} | {'not reached' if not np.isfinite(median) else f'{median:.2f}'} | "
              f"{(shares <= 1 / 3).mean():.2f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("/tmp/rf"))
    parser.add_argument("--seeds", default="0,1")
    parser.add_argument("--trials", type=int, default=16)
    parser.add_argument("--draws", type=int, default=2000)
    parser.add_argument("--reuse", action="store_true", help="analyse runs already in --out")
    args = parser.parse_args()
    cubes = []
    for seed in (int(s) for s in args.seeds.split(",")):
        cube, wall = run(seed, args.trials, args.out, args.reuse)
        cubes.append(cube)
        took = f", {wall:.0f} s" if np.isfinite(wall) else ""
        print(f"seed {seed}: {len(cube)} trials with complete curves{took}")
    print()
    fidelity(cubes)
    replays(cubes, args.draws, seed=0)


if __name__ == "__main__":
    main()
