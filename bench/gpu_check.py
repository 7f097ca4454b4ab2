"""The GPU checks of issue #18 in one command that cannot run past its time budget.

    bench/gpu_check.sh --out FILE.json [--smoke] [--budget SECONDS] [--device cuda]

Prints the torch / CUDA versions and the device first, then runs four steps, each in worker
processes (bench/gpu_check_pool.py, forked from a server that imported everything once) that are
killed when the step's time is up, its unfinished rows reported as cut:

1. prepare: render dSprites at 64 px into the cache; train the FID feature network (on the CPU,
   in the background while steps 2 and 3 use the GPU);
2. throughput: images/s of one training step of every registered variant (batch 64, 64 px) in
   fp32, bf16 autocast and bf16 with ``torch.compile`` (compiled in parallel, timed one at a time);
3. packing: aggregate images/s of 1, 2, 4 and 8 trials (beta-TCVAE, one process each) training
   at once on the one GPU;
4. trials: ``run_training`` with a ``LocalSession`` on the GPU (the training set resident on it)
   for beta-TCVAE on dSprites at the reference budget (300,000 steps x 64 = 19.2 M images, here
   batch 256, whole epochs of the 737,280-image grid: 26 epochs = 19.17 M) and InfoGAN at
   lambda_mi 0 and 1, the three trials packed on the GPU; each calibrates its rate, trains the
   largest budget that fits the time left (capped at the reference budget) and reports MIG
   (10,000 points, 20 bins) and FID at the end and midway. A trial that runs out of time is cut
   and reports its last evaluated budget; nothing is extrapolated.

Then a summary table (one row per variant and mode, pack size, trial) and the raw results as JSON
(``--out``, rewritten after every step). ``--smoke`` runs every step on the CPU at toy sizes
(16 px, tiny batches, ``torch.compile(backend="eager")``) within 110 s.

Time plan (``--budget``, default 465 s counted from the wrapper's start, so the command ends
within 8 minutes; every share scales with the budget): prepare at most 75 s, throughput at most
150 s, packing at most 55 s, the trials everything left but 8 s for the summary (a step that ends
early leaves its time to the trials; a trial window of about 220 s is typical), then a 4 s grace
before the last workers are killed.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import gpu_check_steps as steps
from gpu_check_pool import Fleet

REF_IMAGES = 300_000 * 64
# the workers' environment: one OpenMP thread unless a job asks for more; torch.cuda.is_available()
# through NVML, which (unlike the CUDA runtime) leaves the fork server fit to fork CUDA workers
WORKER_ENV = {"OMP_NUM_THREADS": "1", "PYTORCH_NVML_BASED_CUDA_CHECK": "1"}
FULL = {
    "budget": 465.0, "resolution": 64, "threads": 2, "extractor_threads": 4,
    "allot": {"prepare": 75.0, "throughput": 150.0, "packing": 55.0, "final": 8.0, "grace": 4.0},
    "tp": {"batch": 64, "pool_images": 8192, "warmup": 5, "seconds": 1.5, "min_steps": 10,
           "compile_warmup": 5, "compile_backend": "inductor", "workers": 0},
    "pack": {"variant": "beta_tcvae", "mode": "fp32", "batch": 64, "train_size": 50_000, "warmup": 5,
             "window": 6.0, "packs": (1, 2, 4, 8)},
    "trial": {"calib_images": 8192, "calib_s": 1.5, "warmup": 5, "safety": 0.92, "fid_samples": 10_000,
              "mig_samples": 10_000, "target_images": REF_IMAGES, "ref_batch": 256, "ref_lr": 4e-4,
              "gan_batch": 128},
}
SMOKE = {
    "budget": 110.0, "resolution": 16, "threads": 1, "extractor_threads": 1,
    "allot": {"prepare": 30.0, "throughput": 50.0, "packing": 12.0, "final": 4.0, "grace": 2.0},
    "tp": {"batch": 8, "pool_images": 256, "warmup": 1, "seconds": 0.05, "min_steps": 2,
           "compile_warmup": 2, "compile_backend": "eager", "workers": 2},
    "pack": {"variant": "beta_tcvae", "mode": "fp32", "batch": 8, "train_size": 256, "warmup": 1,
             "window": 0.5, "packs": (1, 2)},
    "trial": {"calib_images": 256, "calib_s": 0.2, "warmup": 1, "safety": 0.9, "fid_samples": 100,
              "mig_samples": 300, "target_images": 2048, "ref_batch": 32, "ref_lr": 4e-4, "gan_batch": 32},
}


def environment(device: str) -> dict:
    import torch

    env = {"python": sys.version.split()[0], "platform": platform.platform(), "cpu_cores": os.cpu_count(),
           "torch": torch.__version__, "torch_cuda": torch.version.cuda,
           "cudnn": torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None,
           "cuda_available": torch.cuda.is_available(), "device": device}
    if device.startswith("cuda") and torch.cuda.is_available():
        props = torch.cuda.get_device_properties(0)
        env.update(gpu=props.name, capability=f"{props.major}.{props.minor}", sms=props.multi_processor_count,
                   gpu_memory_gib=round(props.total_memory / 2**30, 1), gpus=torch.cuda.device_count(),
                   bf16=torch.cuda.is_bf16_supported())
    for key, cmd in (("driver", ["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"]),
                     ("commit", ["git", "-C", str(Path(__file__).parent), "rev-parse", "--short", "HEAD"])):
        try:
            env[key] = subprocess.run(cmd, capture_output=True, text=True, timeout=5).stdout.strip() or None
        except (OSError, subprocess.TimeoutExpired):
            env[key] = None
    return env


class Check:
    """The run's clock, its rows and the JSON written after every step."""

    def __init__(self, cfg: dict, args: argparse.Namespace, started: float) -> None:
        self.cfg, self.args, self.started = cfg, args, started
        self.end = started + cfg["budget"]
        self.rows: list[dict] = []
        self.steps: dict[str, dict] = {}
        self.env: dict = {}

    def allot(self, name: str) -> float:
        return self.cfg["allot"][name] * self.cfg["budget"] / (SMOKE if self.args.smoke else FULL)["budget"]

    def add(self, step: str, name: str, setting: str, status: str, result: str = "", note: str = "",
            **raw) -> None:
        row = {"step": step, "name": name, "setting": setting, "status": status, "result": result,
               "note": note, **raw}
        self.rows.append(row)
        self.log(f"{step} | {name} | {setting} | {result} | {status}" + (f": {note}" if note else ""))

    def log(self, text: str) -> None:
        print(f"  [{time.time() - self.started:6.1f} s] {text}", flush=True)

    def job(self, **extra) -> dict:
        return {"device": self.args.device, "resolution": self.cfg["resolution"], "threads": self.cfg["threads"],
                **extra}

    def write(self) -> None:
        out = Path(self.args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_name(out.name + ".part")
        doc = {"env": self.env, "smoke": self.args.smoke, "budget_s": self.cfg["budget"],
               "elapsed_s": time.time() - self.started, "config": self.cfg, "steps": self.steps, "rows": self.rows}
        tmp.write_text(json.dumps(doc, indent=1, default=str))
        os.replace(tmp, out)


def summary(ck: Check) -> None:
    print("\n== summary ==")
    print("| step | name | setting | result | status |")
    print("|---|---|---|---|---|")
    for r in ck.rows:
        cells = [r["step"], r["name"], r["setting"], r["result"], r["status"] + (f": {r['note']}" if r["note"] else "")]
        print("| " + " | ".join(str(c).replace("|", "/") for c in cells) + " |")
    print("\nPublished MIG of beta-TCVAE on dSprites: 0.2-0.4 (Chen et al. 2018), about 0.45 (the InfoGAN-CR "
          "table). FID uses the dataset-factor network (factornet), not Inception: compare it only within this table.")
    print(f"total {time.time() - ck.started:.1f} s of a {ck.cfg['budget']:.0f} s budget; raw results in {ck.args.out}")


def main(argv: list[str] | None = None) -> int:
    started = float(os.environ.get("GPU_CHECK_STARTED") or time.time())  # the wrapper's start
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", required=True, help="where to write the raw results (JSON)")
    ap.add_argument("--smoke", action="store_true", help="every step on the CPU at toy sizes (about 2 minutes)")
    ap.add_argument("--budget", type=float, help="seconds for the whole check (465 on a GPU, 110 with --smoke)")
    ap.add_argument("--device", help="cuda (default) or cpu (default with --smoke)")
    ap.add_argument("--variants", help="comma-separated subset of the registered variants")
    ap.add_argument("--precision", choices=("auto", "fp32", "bf16"), default="auto",
                    help="the trials' precision; auto: the faster of the two in calibration")
    ap.add_argument("--ref-batch", type=int, help="beta-TCVAE reference batch (256)")
    ap.add_argument("--ref-lr", type=float, help="beta-TCVAE reference learning rate (4e-4)")
    ap.add_argument("--target-images", type=int, help=f"the trials' images budget cap ({REF_IMAGES:,})")
    ap.add_argument("--start-method", choices=("forkserver", "spawn"), default="forkserver",
                    help="how workers start: forked from a server that imported everything once (default), "
                         "or each afresh")
    ap.add_argument("--skip", default="", help="comma-separated steps to leave out: throughput, packing, trials "
                                                "(the time left goes to the trials)")
    args = ap.parse_args(argv)
    args.skip = {s for s in args.skip.split(",") if s}
    if args.skip - {"throughput", "packing", "trials"}:
        ap.error(f"--skip: {', '.join(sorted(args.skip))}; choose from throughput, packing, trials")
    cfg = json.loads(json.dumps(SMOKE if args.smoke else FULL))
    cfg["budget"] = args.budget or cfg["budget"]
    args.device = args.device or ("cpu" if args.smoke else "cuda")
    ck = Check(cfg, args, started)
    if not describe(ck):
        return 2
    method = args.start_method
    while True:
        fleet = Fleet(WORKER_ENV, method)
        try:
            return run(ck, fleet)
        except steps.NoCuda as err:
            if method == "spawn":
                raise
            ck.log(f"forked workers cannot use CUDA ({err}); starting them afresh (--start-method spawn)")
            ck.rows.clear()
            method = "spawn"
        finally:
            fleet.close()


def describe(ck: Check) -> bool:
    """Print the versions and the device first; False (with the reason) when CUDA is asked for
    and this torch cannot give it."""
    device = ck.args.device
    e = ck.env = environment(device)
    print(f"python {e['python']}, torch {e['torch']} (CUDA {e['torch_cuda'] or 'none: a CPU build'}, cuDNN "
          f"{e['cudnn']}), driver {e['driver']}, {e['cpu_cores']} CPU cores, commit {e['commit']}")
    print(f"device: {device}" + (f" = {e['gpu']} (sm {e['capability']}, {e['sms']} SMs, {e['gpu_memory_gib']} GiB, "
                                  f"bf16 {'yes' if e['bf16'] else 'no'})" if "gpu" in e else ""), flush=True)
    if device.startswith("cuda") and not e["cuda_available"]:
        reason = "this torch is a CPU build" if not e["torch_cuda"] else "torch sees no GPU"
        print(f"gpu_check: CUDA is not available ({reason}); run it with a CUDA build of torch "
              "(PYTHON=/path/to/python bench/gpu_check.sh ...), or --smoke / --device cpu", file=sys.stderr)
        ck.steps["error"] = {"reason": reason}
        ck.write()
        return False
    return True


def throughput_workers(cfg: dict) -> int:
    return cfg["tp"]["workers"] or max(1, min(12, (os.cpu_count() or 2) - 4))


def run(ck: Check, fleet: Fleet) -> int:
    args, cfg = ck.args, ck.cfg
    fleet.spawn(max(1 + max(throughput_workers(cfg), max(cfg["pack"]["packs"])), 3))
    print(f"budget {cfg['budget']:.0f} s from the wrapper's start: prepare {ck.allot('prepare'):.0f}, "
          f"throughput {ck.allot('throughput'):.0f}, packing {ck.allot('packing'):.0f}, trials the rest "
          f"less {ck.allot('final'):.0f} for the summary", flush=True)
    preparing = fleet.group(1)
    families, data_ok = steps.prepare(ck, preparing)
    extractor_began = time.time()
    registered = list(families)
    if not registered:  # the prepare worker did not even import: ask the registry here
        from disentune.registry import MODELS

        registered = list(MODELS.names())
    variants = args.variants.split(",") if args.variants else registered
    unknown = sorted(set(variants) - set(registered))
    if unknown:
        print(f"gpu_check: unknown variants {', '.join(unknown)}; choose from {', '.join(registered)}",
              file=sys.stderr)
        return 2
    ck.write()
    for step in ("throughput", "packing", "trials"):
        if not data_ok:  # every later step would render the data again, several times at once
            steps.skip_rows(ck, step, variants, "cut", "the data was not ready (the prepare step did not finish)")
        elif step in args.skip:
            steps.skip_rows(ck, step, variants, "skipped", "--skip")
        elif step == "throughput":
            steps.throughput(ck, fleet.group(throughput_workers(cfg)), variants, families)
        elif step == "packing":
            steps.packing(ck, fleet.group(max(cfg["pack"]["packs"])))
        else:
            extractor = steps.extractor_ready(ck, preparing, extractor_began)
            steps.trials(ck, fleet.group(3), extractor)
        ck.write()
    ck.steps["total"] = {"seconds": time.time() - ck.started}
    ck.write()
    summary(ck)
    return 0


if __name__ == "__main__":
    sys.exit(main())
