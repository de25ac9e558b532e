"""How long ``python runner.py --all`` takes on this machine, pipeline by pipeline (issue 27's 25-minute target).

    python bench/all_time.py                       # --all, preset cpu, seed 0, serial, cold, report included
    python bench/all_time.py --preset smoke        # the same for the smoke preset (a minute or two)

Runs the runner's ``--all`` in this process into a fresh temporary results folder: cold (no feature cache, no
checkpoints, nothing to resume), serial (``--jobs 1``, the timings of record), so every stage is paid as a new
user pays it. Prints the command's wall time (the report at its end included), each row's ``total_seconds``
with its precision and where its features came from, the sum per family, and the machine with its matrix flags.
Nothing is written into ``results/``; ``results/bench/all_time.txt`` holds the printed output of the run of
record (its machine and commit on its first lines).
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import runner  # noqa: E402
from pipelines import family  # noqa: E402
from pipelines.base import cpu_name  # noqa: E402
from pipelines.store import provenance, read_summary, summary_path  # noqa: E402


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--preset", default="cpu", choices=["smoke", "cpu", "paper"])
    args = p.parse_args()
    prov = provenance()
    print(f"$ python bench/all_time.py --preset {args.preset}   (commit {prov['git_commit']}"
          f"{', uncommitted changes' if prov['git_dirty'] else ''})")
    print(f"machine: {cpu_name()}")
    with tempfile.TemporaryDirectory(prefix="all_time-") as tmp:
        start = time.perf_counter()
        code = runner.main(["--all", "--preset", args.preset, "--jobs", "1", "--results-dir", tmp])
        wall = time.perf_counter() - start
        rows = read_summary(summary_path(Path(tmp)))
    if code != 0:
        print(f"error: the runner exited with {code}", file=sys.stderr)
        return 1
    rows = rows.assign(family=[family(n) for n in rows.pipeline]).sort_values(["family", "pipeline"])
    for r in rows.itertuples():
        detail = (f"precision {r.precision}" if r.family == "learned" else f"features: cache {r.feature_cache}")
        print(f"{r.family:12s} {r.pipeline:20s} {r.total_seconds:8.1f} s  {r.status}  {detail}")
    for name, seconds in rows.groupby("family").total_seconds.sum().items():
        print(f"{name:12s} {'(sum)':20s} {seconds:8.1f} s")
    print(f"rows (sum) {rows.total_seconds.sum():,.0f} s; the whole command {wall:,.0f} s = {wall / 60:.1f} min "
          f"({len(rows)} rows, report included)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
