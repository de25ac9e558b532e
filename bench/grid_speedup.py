"""The run grid serial against Dask workers: the same experiments at ``--jobs 1`` and ``--jobs N``, each into a
fresh results folder, one after the other on this machine; wall time of each runner call and each experiment's
verdict (or answer, where it makes no claim) side by side.

    python bench/grid_speedup.py                                   # every experiment, cpu size, --jobs 1 vs 2
    python bench/grid_speedup.py --experiments features epochs --jobs 2 --preset smoke

Run nothing else meanwhile: the serial call's times are the reference. Output: the table printed, and
``results/bench/grid_speedup.json`` (atomic; ``--out``). Measured on the 2-core Xeon (commit 3aef731, six
experiments at cpu size, that file): --jobs 1 1,909 s, --jobs 2 1,987 s; more in docs/runner.md ("Running the grid").
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pipelines.base import cpu_name  # noqa: E402
from pipelines import DEFAULT_DATASET, EXPERIMENTS, experiment  # noqa: E402
from pipelines.analysis.tables import md_table  # noqa: E402
from pipelines.store import atomic_write_text, experiment_path, provenance, read_json  # noqa: E402


def run(names: list[str], jobs: int, preset: str, folder: Path) -> float:
    """One runner call into ``folder``; its wall time in seconds."""
    cmd = [sys.executable, str(ROOT / "runner.py"), "--experiment", *names, "--preset", preset,
           "--jobs", str(jobs), "--results-dir", str(folder)]
    print("$", " ".join(cmd[1:]), flush=True)
    start = time.perf_counter()
    subprocess.run(cmd, check=False, cwd=ROOT)
    return time.perf_counter() - start


def outcome(folder: Path, name: str, size: str) -> dict:
    """What the stored experiment says: its seconds, failed arms, peak concurrency, and verdict or answer."""
    exp = read_json(experiment_path(folder, DEFAULT_DATASET, name, size))
    if exp is None:
        return {"seconds": None, "verdict": "not written", "measured": ""}
    e = experiment(name)
    verdict = e.verdict(exp)
    concurrency = max((r.get("concurrency") or 1 for r in exp["rows"]), default=1)
    said = ((verdict.verdict, verdict.measured) if verdict else
            ("(no claim)", e.answer(exp, e.exercises[0]) if e.exercises else ""))
    return {"seconds": exp["seconds"], "failed": len(exp.get("failed") or []), "concurrency": concurrency,
            "verdict": said[0], "measured": said[1]}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--experiments", nargs="+", default=list(EXPERIMENTS), choices=list(EXPERIMENTS),
                        metavar="NAME", help="which experiments (default: all)")
    parser.add_argument("--jobs", type=int, default=2, help="workers of the parallel call (default 2)")
    parser.add_argument("--preset", default="cpu", choices=["smoke", "cpu"], help="experiment size (default cpu)")
    parser.add_argument("--work-dir", type=Path, default=ROOT / "results" / "bench" / "grid",
                        help="where the two results folders go (default results/bench/grid/)")
    parser.add_argument("--out", type=Path, default=ROOT / "results" / "bench" / "grid_speedup.json",
                        help="the summary written (default results/bench/grid_speedup.json)")
    args = parser.parse_args(argv)
    if args.jobs < 2:
        parser.error("--jobs must be 2 or more (the serial call is always made)")
    walls, found = {}, {}
    for jobs in (1, args.jobs):
        folder = args.work_dir / f"jobs{jobs}"
        walls[jobs] = round(run(args.experiments, jobs, args.preset, folder), 1)
        found[jobs] = {n: outcome(folder, n, args.preset) for n in args.experiments}
    serial, parallel = found[1], found[args.jobs]
    rows = [[n, serial[n]["seconds"], parallel[n]["seconds"], serial[n]["verdict"], parallel[n]["verdict"],
             "same" if serial[n]["verdict"] == parallel[n]["verdict"] else "**changed**"]
            for n in args.experiments]
    print(f"\nmachine: {cpu_name()}; preset {args.preset}; experiments: {' '.join(args.experiments)}")
    print(f"wall time of the runner call: --jobs 1 {walls[1]:.0f} s, --jobs {args.jobs} {walls[args.jobs]:.0f} s "
          f"({walls[1] / walls[args.jobs]:.2f}x)\n")
    print(md_table(["experiment", "s (--jobs 1)", f"s (--jobs {args.jobs})", "verdict, --jobs 1",
                    f"verdict, --jobs {args.jobs}", ""], rows))
    for n in args.experiments:
        print(f"\n{n}:\n  --jobs 1: {serial[n]['measured']}\n  --jobs {args.jobs}: {parallel[n]['measured']}")
    out = {"machine": cpu_name(), "preset": args.preset, "jobs": args.jobs, "experiments": args.experiments,
           "wall_seconds": walls, "serial": serial, "parallel": parallel, **provenance()}
    atomic_write_text(args.out, json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
