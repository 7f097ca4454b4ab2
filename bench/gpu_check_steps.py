"""The steps of bench/gpu_check.py: each hands jobs to its pre-started workers, collects their
messages until its deadline, kills what is left and turns what came back into rows (a row the
deadline cut is a ``cut`` row, a worker's exception an ``error`` row)."""

from __future__ import annotations

import math
import os
import time

from gpu_check_pool import Group

VARIANT_MODES = ("fp32", "bf16", "bf16+compile")
TP_HYPER = {"latent_dim": 10, "lambda_mi": 0.5, "lambda_tc": 2.0, "lr": 1e-3}


class NoCuda(Exception):
    """A worker forked by the fork server cannot initialise CUDA."""


def _failure(got, allotted: float) -> tuple[str, str, str]:
    """(status, result, note) of a worker that sent no row: cut at its deadline, or its error."""
    if got is None:
        return "cut", "", f"its {allotted:.0f} s passed"
    if got[1] == "error":
        return "error", "", got[2].strip().splitlines()[-1][:300]
    return "error", "", f"worker exited ({got[1]} {got[2]})"


def prepare(ck, pool: Group) -> tuple[dict[str, str], bool]:
    """Render the data (waited for); the worker goes on to train the FID network in the
    background (:func:`extractor_ready`). Returns the registered variants (each with the
    classes its model is made of) and whether the data is ready."""
    began = time.time()
    pool.start("prepare", [ck.job(extractor_threads=ck.cfg["extractor_threads"], hyper=TP_HYPER)])
    variants, got = {}, None
    while True:
        got = pool.recv(min(began + ck.allot("prepare"), ck.end))
        if got is None or got[1] != "variants":
            break
        variants = got[2]
    if got and got[1] == "no_cuda":
        pool.close(grace=0.5, replace=False)
        raise NoCuda(got[2])
    setting = "render into the cache (worker start included)"
    ok = bool(got and got[1] == "row")
    if ok:
        ck.add("prepare", got[2]["name"], setting, "ok", f"{got[2]['seconds']:.1f} s")
    else:
        ck.add("prepare", f"dsprites {ck.cfg['resolution']} px", setting, *_failure(got, ck.allot("prepare")))
        pool.close(grace=0.5, replace=False)
    ck.steps["prepare"] = {"seconds": time.time() - began}
    return variants, ok


def skip_rows(ck, step: str, variants: list[str], status: str, reason: str) -> None:
    """The rows ``step`` would have made, each ``status`` (cut or skipped) for ``reason``."""
    if step == "throughput":
        for variant in variants:
            for mode in VARIANT_MODES:
                ck.add("throughput", variant, mode, status, note=reason, variant=variant, mode=mode)
    elif step == "packing":
        for k in ck.cfg["pack"]["packs"]:
            ck.add("packing", f"{k} packed trial{'s' if k > 1 else ''}", "", status, note=reason, pack=k)
    else:
        ck.add("prepare", "factornet (FID features)", "", status, note=reason)
        for job in trial_jobs(ck, 0.0, None):
            ck.add("trial", job["name"], "", status, note=reason)


def by_family(variants: list[str], families: dict[str, str], workers: int) -> list[list[str]]:
    """The variants in at most ``workers`` groups, those made of the same classes together (the
    second compiles in a fraction of the first's time), the largest families spread first."""
    members: dict[str, list[str]] = {}
    for v in variants:
        members.setdefault(families.get(v, v), []).append(v)
    groups: list[list[str]] = [[] for _ in range(min(workers, len(members)))]
    for family in sorted(members.values(), key=len, reverse=True):
        min(groups, key=len).extend(family)
    return groups


def throughput(ck, pool: Group, variants: list[str], families: dict[str, str]) -> None:
    """Every variant in fp32 and bf16 (one timed turn at a time), then compiled, the families in
    parallel, and timed one at a time as each is ready."""
    began = time.time()
    deadline = min(began + ck.allot("throughput"), ck.end) - 1.0
    tp = ck.cfg["tp"]
    groups = by_family(variants, families, len(pool.workers))
    n = len(groups)
    ck.log(f"throughput: {len(variants)} variants on {n} workers: " + "; ".join(", ".join(g) for g in groups))
    threads = max(1, (os.cpu_count() or 2) // (n + 2))  # inductor's compile threads per worker
    pool.start("throughput", [ck.job(variants=g, hyper=TP_HYPER, seed=0, compile_threads=threads, **tp)
                              for g in groups])
    rows: dict[tuple[str, str], dict] = {}
    errors: dict[int, str] = {}
    queue: list[tuple[int, dict]] = []
    current, finished = None, set()
    while len(finished) < n:
        if current is None and queue:  # eager turns first
            pick = next((q for q in queue if q[1]["phase"] == "eager"), queue[0])
            queue.remove(pick)
            current = pick[0]
            pool.send(current, "go")
        got = pool.recv(deadline)
        if got is None:
            break
        i, kind, payload = got
        if kind == "ready":
            queue.append((i, payload))
        elif kind == "row":
            rows[(payload["variant"], payload["mode"])] = payload
            value = payload.get("images_per_s")
            ck.log(f"throughput: {payload['variant']} {payload['mode']} "
                   + (f"{value:,.0f} img/s" if value else payload["status"]))
        elif kind == "turn_done" and current == i:
            current = None
        elif kind in ("done", "dead", "error", "idle"):
            finished.add(i)
            if kind == "error":
                errors[i] = payload.strip().splitlines()[-1][:300]
            current = None if current == i else current
            queue = [q for q in queue if q[0] != i]
    pool.close(grace=1.0)
    for i, group in enumerate(groups):
        for variant in group:
            for mode in VARIANT_MODES:
                setting = f"{mode}, batch {tp['batch']}, {ck.cfg['resolution']} px"
                row = rows.get((variant, mode))
                if row is None:
                    status = "error" if i in errors else "cut"
                    note = errors.get(i) or f"the step's {ck.allot('throughput'):.0f} s passed before it was timed"
                    ck.add("throughput", variant, setting, status, note=note, variant=variant, mode=mode)
                    continue
                extra = {k: v for k, v in row.items() if k not in ("step", "status", "note")}
                result = f"{row['images_per_s']:,.0f} img/s" if row["status"] == "ok" else ""
                if row["status"] == "ok" and row.get("compile_s") is not None:
                    result += f" (compiled in {row['compile_s']:.0f} s)"
                ck.add("throughput", variant, setting, row["status"], result, row.get("note") or "", **extra)
    ck.steps["throughput"] = {"seconds": time.time() - began, "workers": n}


def packing(ck, pool: Group) -> None:
    """Aggregate images/s of k trials stepping at once, each in its own process."""
    began = time.time()
    deadline = min(began + ck.allot("packing"), ck.end) - 1.0
    pk = ck.cfg["pack"]
    packs = list(pk["packs"])
    pool.start("pack", [ck.job(seed=k, hyper=TP_HYPER, **pk) for k in range(max(packs))])
    rounds = sum(pk["window"] + 1.0 for _ in packs)
    ready, problems, base, memory = [], {}, None, {}
    setting = (f"{pk['variant']}, {pk['mode']}, batch {pk['batch']}, {ck.cfg['resolution']} px, "
               f"{pk['train_size']:,} images resident each")
    while len(ready) + len(problems) < max(packs):
        got = pool.recv(deadline - rounds)
        if got is None:
            break
        if got[1] == "ready":
            ready.append(got[0])
            memory[got[0]] = got[2]["peak_mem_mib"]
            ck.log(f"packing: {len(ready)} of {max(packs)} workers ready")
        elif got[1] != "idle":  # an error (then idle) or a death
            problems[got[0]] = _failure(got, 0)[2]
    for k in packs:
        name = f"{k} packed trial{'s' if k > 1 else ''}"
        if k > len(ready):
            note = next(iter(problems.values()), "its workers were not ready in time")
            ck.add("packing", name, setting, "error" if problems else "cut", note=note, pack=k)
            continue
        if time.time() + pk["window"] + 1.0 > deadline:
            ck.add("packing", name, setting, "cut", note=f"the step's {ck.allot('packing'):.0f} s passed", pack=k)
            continue
        start_at = time.time() + 0.3
        for i in ready[:k]:
            pool.send(i, "go", {"start_at": start_at, "window": pk["window"]})
        got_rows, got = [], None
        while len(got_rows) < k:
            got = pool.recv(deadline)
            if got is not None and got[1] == "ready":  # a late one: it joins the larger packs
                ready.append(got[0])
                memory[got[0]] = got[2]["peak_mem_mib"]
                continue
            if got is not None and got[1] == "idle":
                continue
            if got is None or got[1] != "row":
                break
            got_rows.append(got[2])
        if len(got_rows) < k:
            status, _, note = _failure(got, ck.allot("packing"))
            ck.add("packing", name, setting, status, note=note, pack=k)
            continue
        rates = [r["images"] / r["seconds"] for r in got_rows]
        total = sum(rates)
        base = base or (total if k == 1 else None)
        scale = f", {total / base:.2f}x one trial" if base else ""
        ck.add("packing", name, setting, "ok", f"{total:,.0f} img/s aggregate ({total / k:,.0f} per trial{scale})",
               pack=k, aggregate_images_per_s=total, per_trial=rates,
               peak_mem_mib=[memory.get(i) for i in ready[:k]])
    pool.close(grace=1.0)
    ck.steps["packing"] = {"seconds": time.time() - began}


def extractor_ready(ck, pool: Group, began: float) -> str | None:
    """The FID network's path once its background training ends (waiting at most a third of the
    time left), else None: the trials then report SAP in place of FID."""
    until = time.time() + max(0.0, (ck.end - time.time()) / 3)
    got = pool.recv(until)
    while got is not None and got[1] not in ("row", "error", "dead"):
        got = pool.recv(until)
    pool.close(grace=1.0)
    setting = "train on the CPU, in the background of throughput and packing"
    if got and got[1] == "row":
        ck.add("prepare", got[2]["name"], setting, "ok", f"{got[2]['seconds']:.1f} s", path=got[2]["path"])
        return got[2]["path"]
    ck.add("prepare", "factornet (FID features)", setting, *_failure(got, time.time() - began))
    return None


def trial_jobs(ck, window_end: float, extractor: str | None) -> list[dict]:
    t, a = ck.cfg["trial"], ck.args
    common = {k: t[k] for k in ("calib_images", "calib_s", "warmup", "safety", "fid_samples", "mig_samples")}
    common.update(window_end=window_end, extractor=extractor, precision=a.precision,
                  target_images=a.target_images or t["target_images"])
    ref = {"variant": "beta_tcvae", "lambda_mi": 0.0, "lambda_tc": 5.0, "latent_dim": 10,
           "lr": a.ref_lr or t["ref_lr"], "batch_size": a.ref_batch or t["ref_batch"], "seed": 0}
    jobs = [ck.job(name="beta_tcvae reference", params=ref, **common)]
    for lam in (0.0, 1.0):
        gan = {"variant": "infogan", "lambda_mi": lam, "lambda_tc": 0.0, "latent_dim": 5, "lr": 1e-3,
               "batch_size": t["gan_batch"], "seed": 0}
        jobs.append(ck.job(name=f"infogan lambda_mi={lam:g}", params=gan, **common))
    return jobs


def trials(ck, pool: Group, extractor: str | None) -> None:
    """The three trials packed on the device, calibrated together, until the window ends."""
    began = time.time()
    window_end = ck.end - ck.allot("final")
    jobs = trial_jobs(ck, window_end, extractor)
    pool.start("trial", jobs)
    state = [{"progress": [], "plan": None, "end": None, "ready": False} for _ in jobs]
    ready_by = began + min(60.0, 0.25 * (window_end - began))  # then the ready ones calibrate without the rest
    hard = window_end + ck.allot("grace")
    go_sent = False
    while pool.busy:
        if not go_sent and (all(state[i]["ready"] for i in pool.busy) or time.time() >= ready_by):
            go_sent = True
            for i in pool.busy:
                if state[i]["ready"]:
                    pool.send(i, "go")
        got = pool.recv(hard if go_sent else ready_by)
        if got is None:
            if time.time() >= hard:
                break
            continue
        i, kind, payload = got
        if kind == "ready":
            state[i]["ready"] = True
            ck.log(f"trials: {jobs[i]['name']} ready")
            if go_sent:
                pool.send(i, "go")
        elif kind == "progress":
            state[i]["progress"].append(payload)
            ck.log(f"trials: {jobs[i]['name']} epoch {payload.get('epoch')}, {payload.get('images_seen'):,} images"
                   + (f", MIG {payload['mig']:.3f}" if isinstance(payload.get("mig"), float) else ""))
        elif kind == "plan":
            state[i]["plan"] = payload
            ck.log(f"trials: {jobs[i]['name']} plans {payload['images']:,} images ({payload['epochs']} epochs, "
                   f"{payload['precision']}, {payload['rates'][payload['precision']]:,.0f} img/s calibrated)")
        elif state[i]["end"] is None or state[i]["end"][0] in ("dead", "idle"):  # keep "done" / "error"
            state[i]["end"] = (kind, payload)
    pool.close(grace=1.0, replace=False)
    for job, st in zip(jobs, state):
        trial_row(ck, job, st)
    ck.steps["trials"] = {"seconds": time.time() - began, "window_s": window_end - began}


def trial_row(ck, job: dict, st: dict) -> None:
    p, plan = job["params"], st["plan"] or {}
    setting = (f"{p['variant']}, batch {p['batch_size']}, lr {p['lr']:g}, lambda_mi {p['lambda_mi']:g}, "
               f"lambda_tc {p['lambda_tc']:g}, latent {p['latent_dim']}, {plan.get('precision', '?')}")
    evaluated = [r for r in st["progress"] if isinstance(r.get("mig"), float) and math.isfinite(r["mig"])]
    last = st["progress"][-1] if st["progress"] else {}
    end = st["end"]
    raw = {"params": p, "plan": plan, "progress": st["progress"], "end": end}
    if not evaluated:
        if end and end[0] == "error":
            status, note = "error", end[1].strip().splitlines()[-1][:300]
        else:
            status = "cut"
            note = (last.get("stopped") or (end[1].get("stopped") if end and isinstance(end[1], dict) else None)
                    or "the time ran out before its first evaluation")
        ck.add("trial", job["name"], setting, status, note=note, **raw)
        return
    best, target = evaluated[-1], job["target_images"]
    quality = f"FID {best['fid']:.1f}" if "fid" in best else f"SAP {best.get('sap', math.nan):.3f} (no FID network)"
    result = (f"MIG {best['mig']:.3f}, {quality} at {best['images_seen'] / 1e6:.3g} M images "
              f"({best['images_seen'] / target:.0%} of {target / 1e6:.3g} M)")
    # the planned last epoch evaluated (its "done" may be lost if the deadline came right after)
    complete = not last.get("stopped") and best is last and best["epoch"] == plan.get("epochs")
    if complete:
        note = ("" if plan.get("images", 0) >= 0.99 * target else
                f"the largest budget that fits: {plan['images']:,} of {target:,} images")
    else:
        note = (f"{last.get('stopped') or 'killed at the deadline'}; MIG from epoch {best['epoch']} "
                f"of {plan.get('epochs', '?')}")
    ck.add("trial", job["name"], setting, "ok" if complete else "cut", result, note, mig=best["mig"],
           fid=best.get("fid"), images_seen=best["images_seen"], **raw)
