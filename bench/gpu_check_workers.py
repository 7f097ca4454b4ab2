"""What the worker processes of bench/gpu_check.py run (gpu_check_pool.py starts them).

Every worker builds models and steps exactly as the training loop does
(``torch.manual_seed(seed)``, ``variant.build``, ``.to(device)``, ``torch.compile`` when asked,
``variant.make_step``, steps under bf16 autocast when asked, batches from ``TrainingImages``) or
runs the loop itself (:func:`trial`: ``run_training`` with a ``LocalSession`` on the device).
Timings synchronise the device before the clock starts and before it stops.
"""

from __future__ import annotations

import contextlib
import gc
import math
import os
import time
from multiprocessing.connection import Connection

import numpy as np
import torch

from disentune.config import experiment_from_dict
from disentune.data.open import data_key, open_dataset
from disentune.metrics.factor_net import ensure_factor_net, load_extractor
from disentune.metrics.objectives import compute_objectives
from disentune.models.base import Hyper
from disentune.registry import MODELS
from disentune.train.batches import TrainingImages
from disentune.train.loop import TrialSpec, run_training
from disentune.train.session import LocalSession
from gpu_check_pool import Stopped

# Imported here, in the fork server, once, rather than in every worker on first use: the
# registries' modules and torch._dynamo (the optimisers import it at their first step: seconds).
# Neither touches CUDA, so forked workers can still initialise it (the prepare job checks).
MODELS.names()
import torch._dynamo  # noqa: E402,F401


# -- shared helpers ------------------------------------------------------------------------------
def _device(job: dict) -> torch.device:
    torch.set_num_threads(max(1, int(job.get("threads", 1))))
    device = torch.device(job["device"])
    if device.type == "cuda":
        torch.cuda.set_device(device.index or 0)  # cuDNN settings stay the loop's (torch's defaults)
    return device


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def bf16_supported(device: torch.device) -> bool:
    return device.type != "cuda" or torch.cuda.is_bf16_supported()


def precision(device: torch.device, mode: str) -> contextlib.AbstractContextManager:
    """The loop's ``train.amp``: bf16 autocast for ``bf16``, nothing for ``fp32``."""
    return torch.autocast(device.type, dtype=torch.bfloat16) if mode == "bf16" else contextlib.nullcontext()


def _data_config(job: dict):
    return experiment_from_dict({"name": "gpu-check", "data": {"dataset": "dsprites",
                                                              "resolution": job["resolution"]}}).data


def _wait_go(conn: Connection) -> None:
    kind, _ = conn.recv()
    if kind != "go":
        raise Stopped


def clean_up() -> None:
    """Between two jobs of a worker: free what the last one cached on the device."""
    gc.collect()
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        torch.cuda.empty_cache()


def _peak_mib(device: torch.device) -> float | None:
    return torch.cuda.max_memory_allocated(device) / 2**20 if device.type == "cuda" else None


def _reset_peak(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)


def build(variant: str, image_shape: tuple, hyper: Hyper, device: torch.device, seed: int,
          compile_backend: str | None = None):
    """Model and training step as ``run_training`` makes them; returns (model, step)."""
    family = MODELS.get(variant)
    torch.manual_seed(seed)
    model = family.build(image_shape, hyper)
    trained = model.to(device)
    if compile_backend:
        trained = torch.compile(trained, backend=compile_backend)
    return model, family.make_step(trained, hyper)


class Batches:
    """Random batches (rows drawn with a CPU generator, as the loop's permutation is) of a
    resident ``TrainingImages`` of ``size`` images."""

    def __init__(self, data, size: int, batch: int, device: torch.device, seed: int) -> None:
        rng = np.random.default_rng(seed)
        index = np.sort(rng.choice(data.num_images, size=min(size, data.num_images), replace=False))
        began = time.perf_counter()
        self.images = TrainingImages(data, index, device)
        sync(device)
        self.decode_rate = len(index) / max(time.perf_counter() - began, 1e-6)  # images/s to the device
        self.batch, self.rows = batch, torch.Generator().manual_seed(seed)

    def __call__(self) -> torch.Tensor:
        return self.images.batch(torch.randint(len(self.images), (self.batch,), generator=self.rows))


def rate(step, batches: Batches, device: torch.device, mode: str, *, warmup: int, seconds: float,
         min_steps: int) -> tuple[float, int, float]:
    """Images/s of ``step`` after ``warmup`` steps: (rate, steps timed, seconds timed)."""
    noise = torch.Generator(device=device).manual_seed(0)
    with precision(device, mode):
        for _ in range(warmup):
            step(batches(), noise)
        sync(device)
        began, n = time.perf_counter(), 0
        while n < min_steps or time.perf_counter() - began < seconds:
            step(batches(), noise)
            n += 1
        sync(device)
    took = time.perf_counter() - began
    return n * batches.batch / took, n, took


def _hyper(job: dict, dataset_size: int) -> Hyper:
    h = job["hyper"]
    return Hyper(latent_dim=h["latent_dim"], lambda_mi=h["lambda_mi"], lambda_tc=h["lambda_tc"], lr=h["lr"],
                 dataset_size=dataset_size)


def _first_line(err: BaseException) -> str:
    text = f"{type(err).__name__}: {err}".strip()
    return text.splitlines()[0][:300]


# -- prepare: the dataset, then (in the background of the next steps) the FID feature network --
def family(model: torch.nn.Module) -> str:
    """The classes a model is made of: variants alike here share compiled code in one process."""
    return " ".join(sorted({type(m).__name__ for m in model.modules()}))


def prepare(conn: Connection, job: dict) -> None:
    shape = (1, job["resolution"], job["resolution"])
    conn.send(("variants", {v: family(MODELS.get(v).build(shape, _hyper(job, 1000))) for v in MODELS.names()}))
    if job["device"].startswith("cuda"):  # can a forked worker use the GPU?
        try:
            torch.zeros(1, device=job["device"]).add_(1).item()
        except Exception as err:  # noqa: BLE001
            conn.send(("no_cuda", _first_line(err)))
            return
    began = time.perf_counter()
    data = open_dataset(_data_config(job))
    conn.send(("row", {"name": f"dsprites {job['resolution']} px", "seconds": time.perf_counter() - began}))
    torch.set_num_threads(job["extractor_threads"])
    began = time.perf_counter()
    path = ensure_factor_net(data, data_key("dsprites", data), job["resolution"])
    conn.send(("row", {"name": "factornet (FID features)", "seconds": time.perf_counter() - began,
                       "path": str(path)}))


# -- throughput: every variant in fp32, bf16 and compiled bf16, one timed turn at a time ---------
def throughput(conn: Connection, job: dict) -> None:
    device = _device(job)
    if job["compile_backend"] == "inductor":  # the compiling workers share the CPU cores
        import torch._inductor.config as inductor_config

        inductor_config.compile_threads = job["compile_threads"]
    data = open_dataset(_data_config(job))
    batches = Batches(data, job["pool_images"], job["batch"], device, job["seed"])
    hyper = _hyper(job, data.num_images)
    timing = dict(warmup=job["warmup"], seconds=job["seconds"], min_steps=job["min_steps"])
    base = {"step": "throughput", "batch": job["batch"], "resolution": job["resolution"]}

    def row(variant: str, mode: str, **extra) -> dict:
        return {**base, "variant": variant, "mode": mode, **extra}

    for variant in job["variants"]:
        steps, results = {}, {}
        for mode in ("fp32", "bf16"):  # built and warmed up before the timed turn: first calls are slow
            if mode == "bf16" and not bf16_supported(device):
                results[mode] = row(variant, mode, status="skipped", note="bf16 not supported on this device")
                continue
            try:
                _, steps[mode] = build(variant, data.image_shape, hyper, device, job["seed"])
                rate(steps[mode], batches, device, mode, warmup=1, seconds=0.0, min_steps=1)
            except Exception as err:  # noqa: BLE001 (a row, not a crash)
                steps.pop(mode, None)
                results[mode] = row(variant, mode, status="error", note=_first_line(err))
        conn.send(("ready", {"variant": variant, "phase": "eager"}))
        _wait_go(conn)
        for mode, step in steps.items():
            try:
                _reset_peak(device)
                value, n, took = rate(step, batches, device, mode, **timing)
                results[mode] = row(variant, mode, status="ok", images_per_s=value, steps=n, seconds=took,
                                    peak_mem_mib=_peak_mib(device))
            except Exception as err:  # noqa: BLE001
                results[mode] = row(variant, mode, status="error", note=_first_line(err))
        for mode in ("fp32", "bf16"):
            conn.send(("row", results[mode]))
        del steps
        conn.send(("turn_done", variant))

    mode = "bf16" if bf16_supported(device) else None
    name = "bf16+compile"  # compiled fp32 where bf16 is not supported (the row says so)
    for variant in job["variants"]:
        began = time.perf_counter()
        try:
            _, step = build(variant, data.image_shape, hyper, device, job["seed"], job["compile_backend"])
            noise = torch.Generator(device=device).manual_seed(0)
            with precision(device, mode or "fp32"):
                for _ in range(job["compile_warmup"]):  # the first calls compile (and recompile)
                    step(batches(), noise)
            sync(device)
        except Exception as err:  # noqa: BLE001
            conn.send(("row", row(variant, name, status="error", note="compile: " + _first_line(err),
                                  compile_s=time.perf_counter() - began)))
            continue
        compile_s = time.perf_counter() - began
        conn.send(("ready", {"variant": variant, "phase": "compiled"}))
        _wait_go(conn)
        try:
            _reset_peak(device)
            value, n, took = rate(step, batches, device, mode or "fp32", **{**timing, "warmup": 1})
            conn.send(("row", row(variant, name, status="ok", images_per_s=value, steps=n, seconds=took,
                                  compile_s=compile_s, backend=job["compile_backend"], precision=mode or "fp32",
                                  peak_mem_mib=_peak_mib(device),
                                  note=None if mode else "bf16 not supported: compiled fp32")))
        except Exception as err:  # noqa: BLE001
            conn.send(("row", row(variant, name, status="error", note=_first_line(err), compile_s=compile_s)))
        conn.send(("turn_done", variant))
    conn.send(("done", None))


# -- packing: k trials' training steps at once on one device ------------------------------------
def pack(conn: Connection, job: dict) -> None:
    device = _device(job)
    data = open_dataset(_data_config(job))
    batches = Batches(data, job["train_size"], job["batch"], device, job["seed"])
    _, step = build(job["variant"], data.image_shape, _hyper(job, job["train_size"]), device, job["seed"])
    noise = torch.Generator(device=device).manual_seed(job["seed"])
    with precision(device, job["mode"]):
        for _ in range(job["warmup"]):
            step(batches(), noise)
    sync(device)
    conn.send(("ready", {"peak_mem_mib": _peak_mib(device)}))
    while True:
        kind, arg = conn.recv()
        if kind != "go":
            return
        time.sleep(max(0.0, arg["start_at"] - time.time()))
        began, n = time.time(), 0
        with precision(device, job["mode"]):
            while time.time() - began < arg["window"]:
                step(batches(), noise)
                n += 1
        sync(device)
        conn.send(("row", {"images": n * job["batch"], "seconds": time.time() - began}))


# -- trials: the platform's loop at the largest budget that fits the window ---------------------
class ForwardingSession(LocalSession):
    """A ``LocalSession`` that also sends every epoch's report to the driver (no checkpoints kept)."""

    def __init__(self, conn: Connection, device: str) -> None:
        super().__init__(device=device)
        self.conn = conn

    def report(self, metrics: dict, checkpoint_dir) -> None:
        super().report(metrics, None)
        keep = ("epoch", "images_seen", "fid", "mig", "sap", "fid_extractor", "train_seconds", "eval_seconds",
                "stopped", "loss_total")
        self.conn.send(("progress", {k: metrics[k] for k in keep if k in metrics}))


def plan_epochs(images: int, n_all: int, batch: int) -> tuple[int, int]:
    """``(epochs, train_size)`` (0: the whole grid) for about ``images`` images, at least two
    epochs so that an evaluation midway backs up the last: whole epochs of the grid when they
    waste under 5 % of the budget, else equal epochs of a random subset."""
    if images < 2 * batch:
        return (1, batch) if images >= batch else (0, 0)
    whole = images // n_all
    if whole >= 2 and whole * n_all >= 0.95 * images:
        return whole, 0
    epochs = max(2, math.ceil(images / n_all))
    size = images // epochs // batch * batch
    return epochs, (0 if size >= n_all else size)


def trial(conn: Connection, job: dict) -> None:
    device = _device(job)
    cfg = _data_config(job)
    data = open_dataset(cfg)
    p = job["params"]
    batches = Batches(data, job["calib_images"], p["batch_size"], device, p["seed"])
    hyper = _hyper({"hyper": p}, data.num_images)
    conn.send(("ready", None))
    _wait_go(conn)  # the trials calibrate together, so the rates include their contention

    modes = ["fp32", "bf16"] if job["precision"] == "auto" else [job["precision"]]
    modes = [m for m in modes if m == "fp32" or bf16_supported(device)]
    rates = {}
    for mode in modes:
        _, step = build(p["variant"], data.image_shape, hyper, device, p["seed"])
        rates[mode] = rate(step, batches, device, mode, warmup=job["warmup"], seconds=job["calib_s"],
                           min_steps=3)[0]
    mode = max(rates, key=rates.get)
    model, _ = build(p["variant"], data.image_shape, hyper, device, p["seed"])

    objectives = [{"fid": "min"}, {"mig": "max"}] if job["extractor"] else [{"sap": "max"}, {"mig": "max"}]
    raw = {
        "name": job["name"].replace(" ", "-").replace("=", "") or "trial", "seed": p["seed"],
        "data": {"dataset": "dsprites", "resolution": job["resolution"]},
        "evaluation": {"fid_samples": job["fid_samples"], "mig_samples": job["mig_samples"], "mig_bins": 20,
                       "run_suite": "never"},
        "search": {"objectives": objectives},
        "space": dict(p),
    }
    exp = experiment_from_dict(raw)
    quality = load_extractor(job["extractor"], device) if job["extractor"] else None
    began = time.perf_counter()
    compute_objectives(model, data, exp, seed=p["seed"], device=device, quality=quality, factor_net=quality)
    eval_s = time.perf_counter() - began
    del model

    n_all = data.num_images
    left = job["window_end"] - time.time() - 2.5 * eval_s  # an evaluation midway and one at the end
    images, setup_s = job["target_images"], 0.0
    for _ in range(3):  # the loop first decodes its training set to the device: a budget's share of the time
        epochs, train_size = plan_epochs(images, n_all, p["batch_size"])
        setup_s = 1.0 + (train_size or n_all) / batches.decode_rate
        images = min(job["target_images"], int(rates[mode] * max(left - setup_s, 0.0) * job["safety"]))
    epochs, train_size = plan_epochs(images, n_all, p["batch_size"])
    per_epoch = (train_size or n_all) // p["batch_size"] * p["batch_size"]
    planned = {"rates": rates, "precision": mode, "eval_s": eval_s, "setup_s": setup_s, "epochs": epochs,
               "train_size": train_size or n_all, "images": epochs * per_epoch, "target_images": job["target_images"]}
    conn.send(("plan", planned))
    if epochs == 0:
        conn.send(("done", {"stopped": "no time left to train one batch"}))
        return
    limit = max(1.0, job["window_end"] - time.time() - setup_s - 1.25 * eval_s)
    raw["data"]["train_size"] = train_size
    raw["train"] = {"epochs": epochs, "amp": mode == "bf16", "launcher": "in_trial", "time_limit_s": limit,
                    "cpus_per_worker": float(max(1, int(job.get("threads", 1))))}
    raw["evaluation"]["eval_every"] = math.ceil(epochs / 2) if epochs > 1 else 0
    spec = TrialSpec(experiment=experiment_from_dict(raw), params=dict(p), extractor_path=job["extractor"])
    session = ForwardingSession(conn, job["device"])
    run_training(spec, session)
    conn.send(("done", {"pid": os.getpid()}))
