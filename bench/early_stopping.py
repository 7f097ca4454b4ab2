"""Hypervolume per compute: does multi-objective early stopping (MO-ASHA) reach GP's front for a
third of the training images?

    python bench/early_stopping.py [--out /tmp/es] [--seeds 0,1,2] [--trials 12] [--asha-trials N] [--reuse]

Three set-ups on one real dSprites sweep at CPU scale (beta-TCVAE, 32 px; lambda_mi, lambda_tc
and lr searched), each with three seeds:

- ``gp``: Optuna's GP sampler, every trial to the full budget;
- ``gp+mo_asha``: the same sampler, MO-ASHA stopping dominated trials at rungs of 1/9 and 1/3 of
  the budget (reduction factor 3);
- ``random+mo_asha``: random search with MO-ASHA.

By default every set-up runs ``--trials`` trials (the same trial count); ``--asha-trials N`` gives
the MO-ASHA set-ups N trials instead, e.g. about as many as GP's budget of images pays for when
most are stopped early (the same budget). Each run's wall time is kept beside it in
``<setup>-<seed>[-n<N>].wall`` so that ``--reuse`` prints it too.

For each run the trials are replayed in the order they finished; the hypervolume of the trials at
the full budget so far (stopped ones are never on a front) is measured against ONE reference point
common to every run (the nadir of all of them, pushed out 10 %), as a function of the training
images consumed so far (stopped trials count the images they trained) and of wall time. Printed:
the median over seeds at fractions of GP's total images, the images each set-up needs to reach
GP's final hypervolume, and the verdict against the target (at most 1/3 of GP's images).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import pandas as pd

import disentune
from disentune.config import experiment_from_dict
from disentune.pareto import default_reference, hypervolume, to_minimization

DIRECTIONS = ("min", "max")
SETUPS = {"gp": ("gp", "none"), "gp+mo_asha": ("gp", "mo_asha"), "random+mo_asha": ("random", "mo_asha")}


EPOCHS, TRAIN_SIZE = 9, 10_000  # a trial's full budget: 9 epochs of 10,000 images


def sweep_config(setup: str, seed: int, trials: int) -> dict:
    """The bench's sweep as a config dict (bench/rung_fidelity.py measures the same sweep)."""
    sampler, scheduler = SETUPS[setup]
    return {
        "name": f"es-{setup.replace('+', '-')}-{seed}", "seed": seed,
        "data": {"resolution": 32, "train_size": TRAIN_SIZE},
        "train": {"epochs": EPOCHS, "launcher": "in_trial"},
        "evaluation": {"fid_samples": 1000, "mig_samples": 5000, "run_suite": "never"},
        "search": {"sampler": sampler, "num_samples": trials, "max_concurrent_trials": 2, "scheduler": scheduler,
                   "reduction_factor": 3.0},
        "space": {"lambda_mi": {"uniform": [0.0, 1.0]}, "lambda_tc": {"uniform": [0.0, 10.0]},
                  "lr": {"loguniform": [3e-4, 3e-3]}, "latent_dim": 6},
    }


def experiment(setup: str, seed: int, trials: int):
    return experiment_from_dict(sweep_config(setup, seed, trials))


def run(setup: str, seed: int, trials: int, out: Path, reuse: bool, suffix: str = "") -> tuple[pd.DataFrame, float]:
    """The run's trials (with images trained and finishing time) and its wall seconds (NaN for a
    reused run whose time was not kept)."""
    target = out / f"{setup}-{seed}{suffix}"
    timing = target.with_name(target.name + ".wall")
    if reuse and (target / "trials.parquet").exists():
        opened = disentune.open_run(str(target))
        wall = float(timing.read_text()) if timing.exists() else float("nan")
    else:
        began = time.perf_counter()
        opened = disentune.sweep(experiment(setup, seed, trials), out=target, force=True)
        wall = time.perf_counter() - began
        timing.write_text(f"{wall:.1f}\n")
    table = opened.trials
    table["finished"] = table["created_at"]  # the table's write time; order by trial number below
    return table.sort_values("trial_number", ignore_index=True), wall


def curve(trials: pd.DataFrame, ref: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Cumulative images, cumulative wall seconds and hypervolume after each trial (in order)."""
    images = trials["images_seen"].fillna(0).to_numpy(dtype=float).cumsum()
    seconds = trials["wall_seconds"].fillna(0).to_numpy(dtype=float).cumsum()
    ok = (trials["status"] == "ok").to_numpy()
    points = to_minimization(trials[["fid", "mig"]].to_numpy(dtype=float), DIRECTIONS)
    hv = np.array([hypervolume(points[: k + 1][ok[: k + 1]], ref) if ok[: k + 1].any() else 0.0
                   for k in range(len(trials))])
    return images, seconds, hv


def images_to_reach(images: np.ndarray, hv: np.ndarray, target: float) -> float:
    hit = np.flatnonzero(hv >= target * (1 - 1e-9))
    return float(images[hit[0]]) if len(hit) else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("/tmp/es"))
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--trials", type=int, default=12)
    parser.add_argument("--asha-trials", type=int, default=None,
                        help="trials of the MO-ASHA set-ups (default --trials: the same trial count)")
    parser.add_argument("--reuse", action="store_true", help="analyse runs already in --out")
    args = parser.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    asha_trials = args.asha_trials or args.trials

    def trials_of(setup: str) -> int:
        return asha_trials if SETUPS[setup][1] == "mo_asha" else args.trials

    runs = {(s, seed): run(s, seed, n, args.out, args.reuse, "" if n == args.trials else f"-n{n}")
            for s in SETUPS for n in [trials_of(s)] for seed in seeds}
    finished = np.concatenate([t.loc[t["status"] == "ok", ["fid", "mig"]].to_numpy(dtype=float) for t, _ in runs.values()])
    ref = default_reference(to_minimization(finished, DIRECTIONS))
    curves = {key: curve(t, ref) for key, (t, _) in runs.items()}
    print(f"reference point (common): fid={ref[0]:.4g}, mig={-ref[1]:.4g}; {args.trials} trials a run "
          f"({asha_trials} with mo_asha), seeds {seeds}\n")
    print("| set-up | seed | trials stopped | images (M) | wall (s) | final hypervolume | images to GP's final HV (share of GP's) |")
    print("|---|---|---|---|---|---|---|")
    shares: dict[str, list[float]] = {s: [] for s in SETUPS}
    for (setup, seed), (images, seconds, hv) in curves.items():
        table, wall = runs[(setup, seed)]
        gp_images, _, gp_hv = curves[("gp", seed)]
        need = images_to_reach(images, hv, gp_hv[-1])
        share = need / gp_images[-1]
        shares[setup].append(share if np.isfinite(share) else np.inf)  # not reached: worse than any share
        stopped = int((table["status"] == "stopped").sum())
        wall_text = f"{wall:.0f}" if np.isfinite(wall) else "-"
        share_text = f"{share:.2f}" if np.isfinite(share) else "not reached"
        print(f"| {setup} | {seed} | {stopped} | {images[-1] / 1e6:.2f} | {wall_text} | {hv[-1]:.4g} | {share_text} |")
    print("\nMedian hypervolume over seeds at fractions of GP's images (share of GP's final hypervolume):\n")
    fractions = (0.1, 0.2, 1 / 3, 0.5, 1.0)
    print("| set-up | " + " | ".join(f"{f:.2f}" for f in fractions) + " |")
    print("|---|" + "---|" * len(fractions))
    for setup in SETUPS:
        cells = []
        for f in fractions:
            reached = []
            for seed in seeds:
                images, _, hv = curves[(setup, seed)]
                gp_images, _, gp_hv = curves[("gp", seed)]
                budget = f * gp_images[-1]
                within = hv[images <= budget]
                reached.append((within.max() if len(within) else 0.0) / gp_hv[-1])
            cells.append(f"{np.median(reached):.2f}")
        print(f"| {setup} | " + " | ".join(cells) + " |")
    for setup in ("gp+mo_asha", "random+mo_asha"):
        median = float(np.median(shares[setup]))  # a seed that never reaches GP's counts as infinitely far
        reached = int(np.isfinite(shares[setup]).sum())
        verdict = "meets" if median <= 1 / 3 else "misses"
        where = f"a median {median:.2f} of GP's images" if np.isfinite(median) else "no median (not reached)"
        print(f"\n{setup}: reaches GP's final hypervolume in {reached} of {len(seeds)} seeds, with {where}: "
              f"{verdict} the target of 1/3")


if __name__ == "__main__":
    main()
