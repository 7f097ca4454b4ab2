"""``disentune``: the command line. Bad input -> one line on stderr and exit status 2."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Sequence

from disentune.errors import Interrupted, UserError


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} is not a positive integer")
    return value


def _seed(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if not 0 <= value < 2**31:
        raise argparse.ArgumentTypeError(f"{value} is not in [0, 2**31)")
    return value


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="disentune",
        description="Multi-objective search (FID vs MIG) over disentangled generative models.",
    )
    parser.add_argument("--endpoint-url", help="S3-compatible endpoint for s3:// locations "
                        "(default: $AWS_ENDPOINT_URL; credentials from the usual AWS environment)")
    sub = parser.add_subparsers(dest="command", required=True)

    sweep = sub.add_parser("sweep", help="run a search space on Ray Tune + Optuna and write its report")
    sweep.add_argument("space", type=Path, help="search space YAML (see search_spaces/)")
    sweep.add_argument("--out", help="run folder or s3://bucket/prefix (default: reports/<name>)")
    sweep.add_argument("--samples", type=_positive, help="number of trials (overrides search.num_samples)")
    sweep.add_argument("--seed", type=_seed, help="experiment seed (overrides seed)")
    sweep.add_argument("--address", default="local",
                       help="Ray address: 'local' (default) starts a private instance; 'auto' joins a cluster")
    again = sweep.add_mutually_exclusive_group()
    again.add_argument("--force", action="store_true", help="replace the results already in --out")
    again.add_argument("--resume", action="store_true",
                       help="continue the interrupted sweep in --out: finished trials are kept, "
                            "unfinished ones continue from their last checkpoint")

    evaluate = sub.add_parser("evaluate", help="run the metric suite on every trial of a finished run")
    evaluate.add_argument("run", help="run folder or s3://bucket/prefix")
    evaluate.add_argument("--metrics", type=lambda t: [m.strip() for m in t.split(",") if m.strip()],
                          help="comma-separated metric names (default: the run's evaluation.suite)")
    evaluate.add_argument("--address", default="local",
                          help="Ray address: 'local' (default) starts a private instance; 'auto' joins a cluster")

    anomaly = sub.add_parser("anomaly", help="score every trial of a finished run with the anomaly detectors")
    anomaly.add_argument("run", help="run folder or s3://bucket/prefix")
    anomaly.add_argument("--detectors", type=lambda t: [m.strip() for m in t.split(",") if m.strip()],
                         help="comma-separated detectors (default: the run's anomaly.detectors)")
    anomaly.add_argument("--benchmarks", type=lambda t: [m.strip() for m in t.split(",") if m.strip()],
                         help="comma-separated benchmarks (default: the run's anomaly.benchmarks, else all)")
    anomaly.add_argument("--front", action="store_true", help="only the trials on the Pareto front")
    anomaly.add_argument("--address", default="local",
                         help="Ray address: 'local' (default) starts a private instance; 'auto' joins a cluster")

    submit = sub.add_parser("submit", help="run a sweep on a Ray cluster as a Ray job")
    submit.add_argument("space", type=Path, help="search space YAML inside --working-dir")
    submit.add_argument("--address", required=True, help="Ray job API, e.g. http://127.0.0.1:8265")
    submit.add_argument("--out", required=True, help="run location the cluster can write: s3://bucket/prefix")
    submit.add_argument("--working-dir", type=Path, default=Path("."), help="folder uploaded with the job")
    submit.add_argument("--samples", type=_positive)
    submit.add_argument("--seed", type=_seed)
    submit.add_argument("--follow", action="store_true", help="stream the job's logs until it ends")

    jobs = sub.add_parser("jobs", help="status, logs or stop of a submitted job; the runtime env for `ray job submit`")
    jobs.add_argument("action", choices=("status", "logs", "stop", "runtime-env"))
    jobs.add_argument("job_id", nargs="?", help="the job (status, logs, stop)")
    jobs.add_argument("--address", help="Ray job API, e.g. http://127.0.0.1:8265 (status, logs, stop)")
    jobs.add_argument("--working-dir", type=Path, default=Path("."),
                      help="runtime-env: the repository root the job uploads (default: .)")

    sub.add_parser("plugins", help="list the registered variants, metrics and datasets and where each came from")

    data = sub.add_parser("data", help="datasets")
    data_sub = data.add_subparsers(dest="data_command", required=True)
    render = data_sub.add_parser("render", help="render a procedural dataset into the cache")
    render.add_argument("dataset", nargs="?", default="dsprites",
                        help="dsprites (default), color_dsprites, noisy_dsprites or shapes3d_procedural")
    render.add_argument("--resolution", type=int, default=64, choices=(16, 32, 64, 128))
    imported = data_sub.add_parser("import", help="convert a published file or an image collection into the "
                                   "cache ahead of a sweep (once per file and resolution)")
    imported.add_argument("dataset", help="dsprites_file, shapes3d, mpi3d, smallnorb, cars3d or images")
    imported.add_argument("path", help="the file or folder, local or s3://")
    imported.add_argument("--resolution", type=int, default=64, choices=(16, 32, 64, 128))
    data_sub.add_parser("list", help="what the cache holds: dataset, resolution, images, size on disk, hash")

    report = sub.add_parser("report", help="reports")
    report_sub = report.add_subparsers(dest="report_command", required=True)
    build = report_sub.add_parser("build", help="rebuild pareto.parquet, figures and index.html of a run")
    build.add_argument("run", help="run folder or s3://bucket/prefix")
    view = report_sub.add_parser("view", help="serve a run's report on 127.0.0.1 and print its URL")
    view.add_argument("run", help="run folder or s3://bucket/prefix")
    view.add_argument("--port", type=int, default=8765, help="port on 127.0.0.1 (0: any free one)")
    compare = report_sub.add_parser("compare", help="overlay two runs' Pareto fronts")
    compare.add_argument("run_a")
    compare.add_argument("run_b")
    compare.add_argument("--out", help="folder for the comparison (default: reports/compare-A-B)")
    return parser


def _sweep(args: argparse.Namespace) -> int:
    import disentune
    from disentune.pipeline import summarise

    run = disentune.sweep(args.space, args.out, address=args.address, force=args.force, resume=args.resume,
                          samples=args.samples, seed=args.seed)
    print(summarise(run.sweep_result))
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    import disentune
    from disentune.evaluate import check_metrics

    if args.metrics:
        check_metrics(args.metrics)
    run = disentune.open_run(args.run)
    result = run.evaluate(args.metrics, address=args.address)
    print(result.summary())
    if result.done:
        print(f"report: {run.report().index}")
    return 1 if result.failed else 0


def _anomaly(args: argparse.Namespace) -> int:
    import disentune
    from disentune.anomaly.runner import check_request

    check_request(args.detectors, args.benchmarks)
    run = disentune.open_run(args.run)
    result = run.detect(args.detectors, args.benchmarks, front_only=args.front, address=args.address)
    print(result.summary())
    if result.done:
        print(f"report: {run.report().index}")
    return 1 if result.failed else 0


def _submit(args: argparse.Namespace) -> int:
    from disentune import jobs

    job_id = jobs.submit(args.space, address=args.address, out=args.out, working_dir=args.working_dir,
                         samples=args.samples, seed=args.seed)
    print(f"submitted job {job_id}", flush=True)
    if not args.follow:
        return 0
    last = ""
    for chunk in jobs.follow(args.address, job_id):
        print(chunk, end="", flush=True)
        last = chunk
    return 0 if last.strip().endswith("SUCCEEDED") else 1


def _jobs(args: argparse.Namespace) -> int:
    import json

    from disentune import jobs

    if args.action == "runtime-env":  # for `ray job submit --runtime-env-json "$(...)"`
        print(json.dumps(jobs.runtime_env(args.working_dir)))
        return 0
    if not args.job_id or not args.address:
        raise UserError(f"jobs {args.action}: give the job id and --address")
    if args.action == "status":
        print(jobs.status(args.address, args.job_id))
    elif args.action == "logs":
        print(jobs.logs(args.address, args.job_id), end="")
    else:
        print("stopped" if jobs.stop(args.address, args.job_id) else "not running")
    return 0


def _rendered() -> list[tuple[str, int, int, int]]:
    """The procedural datasets rendered into the cache: (name, resolution, images, bytes)."""
    import re

    from disentune.data.cache import cache_dir
    from disentune.registry import DATASETS

    found = []
    for path in sorted(cache_dir().glob("*-r*-v*.npy")):
        match = re.fullmatch(r"(.+)-r(\d+)-v\d+", path.stem)
        if match and match.group(1) in DATASETS.names():  # the dataset's size, not the file's rows
            images = DATASETS.get(match.group(1))(resolution=int(match.group(2))).num_images
            found.append((match.group(1), int(match.group(2)), images, path.stat().st_size))
    return found


def _data(args: argparse.Namespace) -> int:
    import time

    from disentune.registry import DATASETS

    began = time.perf_counter()
    if args.data_command == "list":
        from disentune.data.cache import list_cache

        entries, rendered = list_cache(), _rendered()
        print(f"{'dataset':<20} {'px':>4} {'images':>10} {'MiB':>9}  {'hash':<12}  source")
        for e in entries:
            print(f"{e.dataset:<20} {e.resolution:>4} {e.images:>10,} {e.bytes / 2**20:>9.1f}  {e.sha256[:12]}  {e.source}")
        for name, resolution, images, size in rendered:
            print(f"{name:<20} {resolution:>4} {images:>10,} {size / 2**20:>9.1f}  {'':<12}  rendered")
        if not entries:
            print("(nothing imported yet: disentune data import DATASET PATH_OR_URI)")
        return 0
    if args.data_command == "import":
        from disentune.data.importer import import_dataset

        e = import_dataset(args.dataset, args.path, args.resolution)
        print(f"{e.dataset} {e.resolution}x{e.resolution}: {e.images:,} images, {e.bytes / 2**20:.1f} MiB, "
              f"sha256 {e.sha256[:12]}, in {e.path} ({time.perf_counter() - began:.1f} s)")
        return 0
    data = DATASETS.get(args.dataset)(resolution=args.resolution)
    render = getattr(data, "render", None)
    if not callable(render):
        raise UserError(f"{args.dataset}: is read from a file, not rendered; use `disentune data import "
                        f"{args.dataset} PATH_OR_URI`")
    path = render()
    print(f"{args.dataset} {args.resolution}x{args.resolution}: {path} ({time.perf_counter() - began:.1f} s)")
    return 0


def _plugins(args: argparse.Namespace) -> int:
    from disentune import registry
    from disentune.plugins import listing

    rows = listing()
    width = max(len(name) for _, name, _ in rows)
    for kind, name, origin in rows:
        print(f"{kind:<8} {name:<{width}}  {origin}")
    for problem in registry.PLUGIN_ERRORS:
        print(f"disentune: error: {problem}", file=sys.stderr)
    return 2 if registry.PLUGIN_ERRORS else 0


def _report(args: argparse.Namespace) -> int:
    from disentune.storage import normalize

    if args.report_command == "compare":
        from disentune.reports.compare import compare_runs

        a, b = normalize(args.run_a), normalize(args.run_b)
        name = lambda uri: uri.rstrip("/").rsplit("/", 1)[-1]  # noqa: E731
        out = args.out or str(Path("reports") / f"compare-{name(a)}-{name(b)}")
        print(compare_runs(a, b, normalize(out)))
        return 0
    import disentune

    run = disentune.open_run(args.run)
    if args.report_command == "build":
        print(run.report().index)
        return 0
    from disentune.reports.serve import make_server

    server = make_server(run.uri, args.port)
    host, port = server.server_address[:2]
    print(f"serving {run.uri} at http://{host}:{port}/index.html (Ctrl-C stops)", flush=True)
    try:
        server.serve_forever()
    finally:
        server.server_close()
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.endpoint_url:
        os.environ["AWS_ENDPOINT_URL"] = args.endpoint_url  # read by s3fs, pyarrow and Ray workers
    handlers = {"sweep": _sweep, "evaluate": _evaluate, "anomaly": _anomaly, "submit": _submit, "jobs": _jobs, "data": _data, "report": _report,
                "plugins": _plugins}
    try:
        if args.command in ("sweep", "evaluate", "anomaly"):
            from disentune.provenance import check_submitted

            check_submitted()  # in a submitted job: the submitted code runs, with its dependencies
        return handlers[args.command](args)
    except UserError as err:
        print(f"disentune: error: {err}", file=sys.stderr)
        return 2
    except Interrupted as err:
        print(f"disentune: interrupted: {err}; nothing was written to the result tables. "
              f"Continue with the same command and --resume", file=sys.stderr)
        return 130
    except KeyboardInterrupt:
        print("disentune: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
