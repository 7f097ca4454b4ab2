"""The large-scale study in miniature: search_spaces/study.yaml on dSprites and on the colour
dataset, and the analyses of Locatello et al. (2019) and Duan et al. (2020) on its models.

    python bench/study.py [--out /tmp/study] [--datasets dsprites,shapes3d_procedural] [--reuse | --resume]

Per dataset, one sweep of the six VAE families x three weights x three seeds (54 models) with the
metric suite, then, over every model (each replicate is a model):

1. the Spearman rank correlation between every pair of metrics (their figure 4);
2. per family and metric, the share of the variance explained by the seed and by the weight: the
   models of a family form a weights x seeds table (replicate r has the same seed under every
   weight), so the variance splits into that of the weight means, that of the seed means and the
   rest (interaction); shares are of the total, over the 9 models;
3. UDR's rank correlation with MIG and with DCI disentanglement (Duan et al. report 0.5-0.8 for
   the Lasso UDR against supervised scores);
4. attribute control against MIG: the seed thesis's Lemma 1 relation (more attribute control,
   more disentanglement), as a Spearman correlation and per-family medians.
``--reuse`` reads runs already in ``--out`` instead of sweeping again; ``--resume`` also continues
a dataset whose sweep was interrupted (the driver killed: ``disentune sweep --resume``).
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.stats import spearmanr

import disentune
from disentune.config import load_experiment

SPACE = Path(__file__).resolve().parents[1] / "search_spaces" / "study.yaml"
METRICS = ("mig", "dci_disentanglement", "sap", "modularity", "factor_vae_score", "beta_vae_score", "irs",
           "attribute_control", "gaussian_total_correlation", "udr")


def sweep(dataset: str, out: Path, reuse: bool, resume: bool) -> disentune.Run:
    target = out / dataset
    if (reuse or resume) and (target / "trials.parquet").exists():
        run = disentune.open_run(str(target))
        if resume:  # the sweep ended, its metric suite may not have: score what is missing
            run.evaluate()
        return run
    exp = load_experiment(SPACE)
    exp = dataclasses.replace(exp, name=f"study-{dataset}", data=dataclasses.replace(exp.data, dataset=dataset))
    began = time.perf_counter()
    unfinished = resume and (target / "experiment.json").exists()
    run = disentune.sweep(exp, out=target, resume=unfinished, force=not unfinished)
    print(f"{dataset}: swept in {time.perf_counter() - began:.0f} s", flush=True)
    return run


def model_table(run: disentune.Run) -> pd.DataFrame:
    """One row per model (replicate): family, weight, seed index, and each metric's value."""
    trials = run.trials.set_index("trial_number")
    replicates = pd.read_parquet(f"{run.uri}/replicates.parquet")
    wide = run.evaluations.pivot_table(index="trial_id", columns="metric", values="value", aggfunc="last")
    ok = replicates[replicates["status"] == "ok"]
    # the suite's value of a metric the trial also measured (mig) is the one to analyse
    ok = ok.drop(columns=[c for c in wide.columns if c in ok.columns])
    rows = ok.merge(wide, left_on="trial_id", right_index=True, how="left")
    rows["variant"] = rows["trial_number"].map(trials["variant"])
    weight = np.where(rows["variant"] == "annealed_vae", rows["trial_number"].map(trials["c_max"]),
                      rows["trial_number"].map(trials["lambda_tc"]))
    rows["weight"] = weight
    return rows


def correlations(models: pd.DataFrame) -> pd.DataFrame:
    present = [m for m in METRICS if m in models and models[m].notna().sum() > 3]
    rho = pd.DataFrame(index=present, columns=present, dtype=float)
    for a in present:
        for b in present:
            ok = models[a].notna() & models[b].notna()
            rho.loc[a, b] = spearmanr(models.loc[ok, a], models.loc[ok, b]).statistic
    return rho


def variance_shares(models: pd.DataFrame) -> pd.DataFrame:
    """Per family and metric: the seed's and the weight's shares of the variance (see the docstring)."""
    out = []
    for variant, group in models.groupby("variant"):
        for metric in (m for m in METRICS if m in group and m != "udr"):
            table = group.pivot_table(index="weight", columns="replicate", values=metric)
            values = table.to_numpy()
            if values.size < 4 or np.isnan(values).any():
                continue
            total = values.var()
            if total <= 0:
                continue
            weight_share = values.mean(axis=1).var() / total
            seed_share = values.mean(axis=0).var() / total
            out.append({"variant": variant, "metric": metric, "seed share": seed_share,
                        "weight share": weight_share, "interaction": 1 - seed_share - weight_share})
    return pd.DataFrame(out)


def markdown(frame: pd.DataFrame, digits: int = 2) -> str:
    cols = [str(c) for c in frame.columns]
    lines = ["| " + " | ".join(["", *cols]) + " |", "|" + "---|" * (len(cols) + 1)]
    for index, row in frame.iterrows():
        cells = [f"{v:.{digits}f}" if isinstance(v, (float, np.floating)) else str(v) for v in row]
        lines.append("| " + " | ".join([str(index), *cells]) + " |")
    return "\n".join(lines)


def report(dataset: str, models: pd.DataFrame) -> None:
    print(f"\n## {dataset}: {len(models)} models of {models['variant'].nunique()} families\n")
    print("Spearman rank correlation between metrics (over every model):\n")
    print(markdown(correlations(models)))
    shares = variance_shares(models)
    if not shares.empty:
        print("\nShare of each metric's variance explained by the seed and by the weight (per family):\n")
        summary = shares.groupby("metric")[["seed share", "weight share", "interaction"]].median()
        print(markdown(summary.rename(index=lambda m: f"{m} (median over families)")))
        mig = shares[shares["metric"] == "mig"].set_index("variant")[["seed share", "weight share"]]
        print("\nMIG, per family:\n")
        print(markdown(mig))
    print("\nUDR against the supervised scores (Spearman over every model):\n")
    rows = []
    for other in ("mig", "dci_disentanglement"):
        ok = models["udr"].notna() & models[other].notna() if "udr" in models and other in models else None
        if ok is not None and ok.sum() > 3:
            rows.append({"score": other, "rho": spearmanr(models.loc[ok, "udr"], models.loc[ok, other]).statistic,
                         "models": int(ok.sum())})
    print(markdown(pd.DataFrame(rows).set_index("score")) if rows else "(no UDR values)")
    if "attribute_control" in models:
        ok = models["attribute_control"].notna() & models["mig"].notna()
        rho = spearmanr(models.loc[ok, "attribute_control"], models.loc[ok, "mig"]).statistic
        print(f"\nAttribute control against MIG (Lemma 1 of the seed thesis): Spearman {rho:.2f} over {int(ok.sum())} "
              "models; medians per family:\n")
        print(markdown(models.groupby("variant")[["attribute_control", "mig"]].median(), digits=3))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("/tmp/study"))
    parser.add_argument("--datasets", default="dsprites,shapes3d_procedural")
    parser.add_argument("--reuse", action="store_true", help="analyse runs already in --out")
    parser.add_argument("--resume", action="store_true",
                        help="continue an interrupted dataset's sweep in --out (and reuse finished ones)")
    args = parser.parse_args()
    began = time.perf_counter()
    for dataset in args.datasets.split(","):
        report(dataset, model_table(sweep(dataset, args.out, args.reuse, args.resume)))
    print(f"\nstudy: {time.perf_counter() - began:.0f} s in all")


if __name__ == "__main__":
    main()
