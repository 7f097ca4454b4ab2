"""Time `build_report` on synthetic runs of growing size (target: 200 trials in under 10 s).

    python bench/report_build.py [200 500]

Prints one row per size: trials, seconds to build (tables, 4 figures, page), page size.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from disentune.reports.build import build_report  # noqa: E402
from disentune.reports.storage import write_table  # noqa: E402
from tests.unit.reports.synthetic import synthetic_curves, synthetic_trials  # noqa: E402


def main(sizes: list[int]) -> None:
    print(f"{'trials':>7} {'seconds':>8} {'index.html KiB':>15}")
    for n in sizes:
        with tempfile.TemporaryDirectory() as tmp:
            run = Path(tmp) / f"synthetic-{n}"
            trials = synthetic_trials(n)
            write_table(trials, str(run / "trials.parquet"))
            write_table(synthetic_curves(trials), str(run / "curves.parquet"))
            began = time.perf_counter()
            build_report(str(run))
            seconds = time.perf_counter() - began
            print(f"{n:>7} {seconds:>8.2f} {(run / 'index.html').stat().st_size / 1024:>15.0f}")


if __name__ == "__main__":
    main([int(a) for a in sys.argv[1:]] or [50, 200, 500])
