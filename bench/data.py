"""How long loading Fashion-MNIST takes (all 70k images, decompressed and validated).

    python bench/data.py [--data-dir DIR] [--repeats 5]

Reference figure: docs/datasets.md (the measured median, the machine and the command).
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pipelines.base import cpu_name  # noqa: E402
from pipelines.datasets import DataError  # noqa: E402
from pipelines.datasets.idx import load_folder, resolve_source  # noqa: E402


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data-dir")
    p.add_argument("--repeats", type=int, default=5)
    args = p.parse_args()
    try:
        source = resolve_source(args.data_dir)
    except DataError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    times = []
    for _ in range(args.repeats):
        start = time.perf_counter()
        ds = load_folder(source)
        times.append(time.perf_counter() - start)
    n = len(ds.x_train) + len(ds.x_test)
    print(f"source: {ds.source}\nmachine: {cpu_name()}")
    print(f"load {n:,} images: median {statistics.median(times):.3f} s, min {min(times):.3f} s "
          f"over {args.repeats} loads ({n / statistics.median(times):,.0f} img/s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
