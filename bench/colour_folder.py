"""Writes a synthetic colour ImageFolder for trying the suite on colour images end to end: ten classes, each a
bar at its own angle and in its own colour on a dark, noisy background (the tests' ``colour_bars``), 48x48
PNGs in ``train/<class>/`` and ``test/<class>/``. It is synthetic and easy (the colour alone names the class),
not a benchmark of anything real: it shows that every pipeline reads colour. On the 2-core Intel Xeon every
pipeline but sigmoid LeNet scored 1.0000 on it (``results/datasets/colour-bars/report.md``; ``results/summary.csv`` rows of
dataset ``colour-bars``).

    python bench/colour_folder.py data/colour-bars          # 2,000 training and 500 test images
    python runner.py --all --data-dir data/colour-bars       # every pipeline on it
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from conftest import colour_bars  # noqa: E402  (the tests' generator: one definition of these images)


def write(folder: Path, n: int, seed: int, side: int) -> None:
    import cv2
    x, y = colour_bars(n, seed=seed, size=side)
    for i, (image, label) in enumerate(zip(x, y)):
        target = folder / f"class{label}"
        target.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(target / f"{i:05d}.png"), image[..., ::-1])  # OpenCV writes BGR


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("folder", type=Path)
    p.add_argument("--train", type=int, default=2000)
    p.add_argument("--test", type=int, default=500)
    p.add_argument("--side", type=int, default=48)
    args = p.parse_args()
    if args.folder.exists():
        p.exit(2, f"error: {args.folder} exists; give a new folder\n")
    write(args.folder / "train", args.train, 1, args.side)
    write(args.folder / "test", args.test, 2, args.side)
    print(f"wrote {args.train} training and {args.test} test images to {args.folder}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
