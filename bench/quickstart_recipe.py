"""Which training recipe makes the quickstart learn: beta-TCVAE on procedural dSprites at 32 px.

Trains one trial at a time in this process (``run_training`` + ``LocalSession``, no Ray) and prints
one row per (recipe, seed): the images trained on, training seconds and images/s, the trial's own
objectives (MIG on ``evaluation.mig_samples`` = 10,000 points, FID on 2,000 images with the
dataset-factor network, exactly what a sweep's trial reports), MIG per factor, and what the
latent traversal does: for each latent, decoded from the code of the report's base image (the
first of ``run_images``' seeded draw) over the model's traversal range, how far the sprite's
centroid moves in x and in y (pixels). ``xy`` is "yes" when the latent that moves x most and the
one that moves y most are different latents and each moves the sprite at least 8 px (a quarter of
the image) along its axis, i.e. the traversal figure shows an x row and a y row.

Run single-threaded on one core so images/s compare with one trial of a 2-core sweep:

    OMP_NUM_THREADS=1 DISENTUNE_CACHE=/tmp/h15cache taskset -c 1 nice \\
        .venv/bin/python bench/quickstart_recipe.py [--only NAME ...] [--seeds 0,1,2] [--out results.jsonl]

Every finished row is appended to ``--out`` (JSON lines) and rows already there are not re-run, so
an interrupted table resumes; ``--table`` only prints what the file holds. ``--list`` prints the
recipes. A recipe's ``images`` is rounded to whole epochs of ``train_size`` (the loop trains whole
epochs); ``eval_every`` > 0 also records the objectives after every that many epochs (a curve).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

# The recipe every other one varies one thing of. The first data point of issue #18 section 3 was
# lambda_tc 8, lr 2e-3, batch 64, 4 epochs of 60,000 images ("tc8" below); the first screen showed
# that at this budget a weaker TC weight learns much faster (tc4: MIG 0.30 against 0.10), so the
# centre moved to lambda_tc 4.
BASE = dict(lambda_tc=4.0, lambda_mi=0.0, lr=2e-3, batch_size=64, latent_dim=10, train_size=60_000,
            images=240_000)


def _r(name: str, **changes) -> tuple[str, dict]:
    return name, {**BASE, **changes}


RECIPES: dict[str, dict] = dict([
    _r("base"),
    # the old quickstart's recipe, for comparison (3 epochs of 20,000, lr 1e-3, lambda_tc ~5)
    _r("old-quickstart", lambda_tc=5.0, lambda_mi=0.5, lr=1e-3, train_size=20_000, images=60_000),
    # the first screen, around the data point (lambda_tc 8; 5 epochs of 60,000)
    _r("tc8", lambda_tc=8.0, images=300_000),
    _r("tc8-lr5e-3", lambda_tc=8.0, lr=5e-3, images=300_000),
    _r("tc8-bs256-lr5e-3", lambda_tc=8.0, batch_size=256, lr=5e-3, images=300_000),
    _r("tc8-n20k", lambda_tc=8.0, train_size=20_000),
    _r("tc8-mi0.9", lambda_tc=8.0, lambda_mi=0.9),
    _r("tc12", lambda_tc=12.0, images=300_000),
    _r("tc8-d6", lambda_tc=8.0, latent_dim=6, images=300_000),
    # the TC weight (lambda_tc = beta - 1) and the MI weight
    _r("tc0", lambda_tc=0.0),
    _r("tc1", lambda_tc=1.0),
    _r("tc2", lambda_tc=2.0),
    _r("tc6", lambda_tc=6.0),
    _r("mi0.5", lambda_mi=0.5),
    _r("mi1", lambda_mi=1.0),
    # learning rate (a lr, batch or budget of a constant-lr run at fewer images is the curve of
    # --eval-every 1)
    _r("lr1e-3", lr=1e-3),
    _r("lr3e-3", lr=3e-3),
    _r("lr4e-3", lr=4e-3),
    # batch size (same images, so fewer steps for larger batches)
    _r("bs128", batch_size=128),
    _r("bs128-lr3e-3", batch_size=128, lr=3e-3),
    _r("bs256-lr3e-3", batch_size=256, lr=3e-3),
    # latent size
    _r("d6", latent_dim=6),
    _r("d8", latent_dim=8),
    # the training set at the same number of images
    _r("n20k", train_size=20_000),
    _r("n120k", train_size=120_000),
    _r("n240k", train_size=240_000),
])


def load_recipes(path: str | None) -> dict[str, dict]:
    """The built-in recipes, plus (``--extra FILE``) a JSON object of ``{name: {changes to BASE}}``."""
    recipes = dict(RECIPES)
    if path:
        for name, changes in json.loads(Path(path).read_text()).items():
            recipes[name] = {**BASE, **changes}
    return recipes


def experiment(recipe: dict, eval_every: int):
    """The quickstart's experiment with this recipe's data, budget and evaluation."""
    from disentune.config import experiment_from_dict

    batches = recipe["train_size"] // recipe["batch_size"]
    epochs = max(1, round(recipe["images"] / (batches * recipe["batch_size"])))
    return experiment_from_dict({
        "name": "quickstart-recipe",
        "data": {"dataset": "dsprites", "resolution": 32, "train_size": recipe["train_size"]},
        "train": {"epochs": epochs, "workers": 1, "cpus_per_worker": 1, "use_gpu": False},
        "evaluation": {"fid_samples": 2000, "mig_samples": 10_000, "eval_every": eval_every},
        "search": {"sampler": "random", "num_samples": 1},
        "space": {"variant": "beta_tcvae", "lambda_tc": {"uniform": [0.0, 10.0]}},
    })


@torch.no_grad()
def traversal_motion(model, data, steps: int = 7) -> dict:
    """Per latent: how far the decoded sprite's centroid moves in x and y (pixels) over the
    traversal range, from the code of the report's base image (``run_images``' first image)."""
    images = data.images_at(np.random.default_rng(0).integers(0, data.num_images, 200))
    base = model.encode(torch.from_numpy(np.ascontiguousarray(images[:1], dtype=np.float32)))[0]
    values = torch.linspace(*model.traversal_range, steps)
    d = base.numel()
    codes = base.repeat(d, steps, 1)  # (d, steps, d)
    codes[torch.arange(d), :, torch.arange(d)] = values
    out = model.decode(codes.reshape(-1, d)).reshape(d, steps, *images.shape[1:]).mean(dim=2)  # (d, s, H, W)
    mass = out.sum(dim=(2, 3)).clamp_min(1e-6)
    grid = torch.arange(out.shape[-1], dtype=out.dtype)
    cx = (out.sum(dim=2) * grid).sum(dim=2) / mass  # (d, steps): columns are x
    cy = (out.sum(dim=3) * grid).sum(dim=2) / mass
    move_x = (cx.max(dim=1).values - cx.min(dim=1).values).numpy()
    move_y = (cy.max(dim=1).values - cy.min(dim=1).values).numpy()
    jx, jy = int(move_x.argmax()), int(move_y.argmax())
    ok = jx != jy and move_x[jx] >= 8 and move_y[jy] >= 8
    return {"x_latent": jx, "x_px": float(move_x[jx]), "y_latent": jy, "y_px": float(move_y[jy]),
            "xy": "yes" if ok else "no"}


def train(name: str, recipe: dict, seed: int, eval_every: int) -> dict:
    from disentune.checkpoints import load_model
    from disentune.data.open import open_dataset
    from disentune.metrics.factor_net import EXTRACTOR_SEED, ensure_factor_net, load_extractor
    from disentune.metrics.objectives import objective_params, objective_seed
    from disentune.metrics.suite import ModelInputs, run_metric
    from disentune.registry import METRICS
    from disentune.train.loop import TrialSpec, run_training
    from disentune.train.session import LocalSession

    exp = experiment(recipe, eval_every)
    data = open_dataset(exp.data)
    extractor = ensure_factor_net(data, "dsprites", 32, seed=EXTRACTOR_SEED)
    params = {"variant": "beta_tcvae", "seed": seed,
              **{k: recipe[k] for k in ("lambda_mi", "lambda_tc", "lr", "latent_dim", "batch_size")}}
    with tempfile.TemporaryDirectory() as tmp:
        session = LocalSession(root=Path(tmp))
        began, cpu_began = time.perf_counter(), time.process_time()
        run_training(TrialSpec(experiment=exp, params=params, extractor_path=str(extractor)), session)
        wall, cpu = time.perf_counter() - began, time.process_time() - cpu_began
        last, checkpoint = session.reports[-1]
        if last.get("stopped"):
            return {"recipe": name, "seed": seed, **recipe, "error": last["stopped"]}
        model, _ = load_model(checkpoint)
    # MIG per factor: the same metric call, seed and sizes as the trial's own objective
    inputs = ModelInputs(model, data, load_extractor(extractor), None, torch.device("cpu"))
    values, _ = run_metric(METRICS.get("mig"), inputs, seed=objective_seed(seed, "mig"),
                           params=objective_params(exp, "mig"))
    per_factor = values[0].params["mig_per_factor"]
    history = json.loads(last["history"])
    curve = [(h["images_seen"], h.get("mig"), h.get("fid")) for h in history if math.isfinite(h.get("mig", math.nan))]
    return {
        "recipe": name, "seed": seed, **recipe, "epochs": exp.train.epochs, "images_seen": last["images_seen"],
        "train_seconds": last["train_seconds"], "eval_seconds": last["eval_seconds"], "wall_seconds": wall,
        "cpu_seconds": cpu,  # user + sys of the whole trial (training, objectives, checkpoints)
        "images_per_s": last["images_seen"] / last["train_seconds"], "mig": last["mig"], "fid": last["fid"],
        "mig_per_factor": dict(zip(data.factor_names, per_factor)), **traversal_motion(model, data),
        "curve": curve, "threads": torch.get_num_threads(), "load_avg_1m": os.getloadavg()[0],
    }


def print_table(rows: list[dict]) -> None:
    head = (f"{'recipe':<16}{'seed':>4}{'lr':>7}{'bs':>5}{'tc':>5}{'mi':>5}{'d':>3}{'train_n':>8}{'images':>8}"
            f"{'train_s':>8}{'cpu_s':>6}{'img/s':>6}{'MIG':>7}{'FID':>7}  {'MIG shape/scale/orient/x/y':<27}"
            f"{'x:z(px)':>9}{'y:z(px)':>9}{'xy':>4}{'load':>5}")
    print(head)
    for r in rows:
        if "error" in r:
            print(f"{r['recipe']:<16}{r['seed']:>4}  {r['error']}")
            continue
        pf = "/".join(f"{v:.2f}" for v in r["mig_per_factor"].values())
        print(f"{r['recipe']:<16}{r['seed']:>4}{r['lr']:>7.0e}{r['batch_size']:>5}{r['lambda_tc']:>5g}{r['lambda_mi']:>5g}"
              f"{r['latent_dim']:>3}{r['train_size']:>8}{r['images_seen']:>8}{r['train_seconds']:>8.0f}{r.get('cpu_seconds', math.nan):>6.0f}"
              f"{r['images_per_s']:>6.0f}{r['mig']:>7.3f}{r['fid']:>7.0f}  {pf:<27}"
              f"{r['x_latent']:>3}({r['x_px']:>4.1f}){r['y_latent']:>3}({r['y_px']:>4.1f}){r['xy']:>4}"
              f"{r['load_avg_1m']:>5.1f}")
    by: dict[str, list[dict]] = {}
    for r in rows:
        if "error" not in r:
            by.setdefault(r["recipe"], []).append(r)
    multi = {k: v for k, v in by.items() if len(v) > 1}
    if multi:
        print("\nover seeds (median [min, max]):")
        for k, v in multi.items():
            mig, fid = np.array([r["mig"] for r in v]), np.array([r["fid"] for r in v])
            xy = sum(r["xy"] == "yes" for r in v)
            print(f"  {k:<16} n={len(v)}  MIG {np.median(mig):.3f} [{mig.min():.3f}, {mig.max():.3f}]  "
                  f"FID {np.median(fid):.0f} [{fid.min():.0f}, {fid.max():.0f}]  x/y rows in {xy} of {len(v)}")
    curves = [r for r in rows if "error" not in r and len(r.get("curve", [])) > 1]
    if curves:
        print("\ncurves (images: MIG / FID):")
        for r in curves:
            print(f"  {r['recipe']:<16} s{r['seed']}: " + ", ".join(
                f"{i // 1000}k: {m:.3f}/{f:.0f}" for i, m, f in r["curve"]))


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", nargs="*", help="recipe names (default: all)")
    ap.add_argument("--seeds", default="0", help="comma-separated seeds (default 0)")
    ap.add_argument("--out", default="/tmp/quickstart_recipe.jsonl", help="JSON lines of finished rows")
    ap.add_argument("--extra", help="JSON file of more recipes: {name: {changes to BASE}}")
    ap.add_argument("--eval-every", type=int, default=0, help="also evaluate every N epochs (a curve)")
    ap.add_argument("--images", type=int, help="override every chosen recipe's budget (rows are named recipe@<k>k): "
                                               "a quick screen of many seeds, e.g. for early collapse")
    ap.add_argument("--table", action="store_true", help="only print the table of --out")
    ap.add_argument("--list", action="store_true", help="print the recipes and exit")
    args = ap.parse_args(argv)
    recipes = load_recipes(args.extra)
    if args.list:
        for name, r in recipes.items():
            print(f"{name:<16} {r}")
        return
    out = Path(args.out)
    rows = [json.loads(line) for line in out.read_text().splitlines() if line.strip()] if out.exists() else []
    names = args.only or list(recipes)
    unknown = [n for n in names if n.split("@")[0] not in recipes]
    if unknown:
        sys.exit(f"unknown recipe(s): {', '.join(unknown)}; --list shows them")
    if args.images:
        for n in list(names):
            recipes[f"{n}@{args.images // 1000}k"] = {**recipes[n], "images": args.images}
        names = [f"{n}@{args.images // 1000}k" for n in names]
    for n in names:  # a name read back from --out, e.g. base@60k
        if n not in recipes:
            base, _, k = n.partition("@")
            recipes[n] = {**recipes[base], "images": int(k.rstrip("k")) * 1000}
    if not args.table:
        torch.set_num_threads(1)
        done = {(r["recipe"], r["seed"]) for r in rows}
        for name in names:
            for seed in (int(s) for s in args.seeds.split(",")):
                if (name, seed) in done:
                    continue
                row = train(name, recipes[name], seed, args.eval_every)
                rows.append(row)
                with out.open("a") as f:
                    f.write(json.dumps(row) + "\n")
                print_table([row])
                sys.stdout.flush()
        print()
    wanted = set(names)
    print_table([r for r in rows if r["recipe"] in wanted])


if __name__ == "__main__":
    main()
