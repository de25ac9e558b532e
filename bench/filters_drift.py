"""How far did each network's first layer move from its initialisation, and is what training added Gabor-like?

    python bench/filters_drift.py                         # AlexNet's full-recipe rows (preset paper)
    python bench/filters_drift.py --pipeline cnn28 --preset cpu

The filters claim (PROTOCOL section 4) judges the saved conv1 filters as they end. A filter is its initialisation
plus what training added; where training adds little, the random start hides it. For each stored row this takes
the start the run saved (``filters_start/``), or, for a row saved before starts were kept, rebuilds it from the
row's seed (the trainer seeds torch, then builds the network, so the rebuild is exact on the same torch; each
line says which, and the median cosine between start and end shows a wrong rebuild as a value near 0); it prints: the change's norm relative to the
start, the cosine between start and end, and the Gabor test (``analysis.gabor.gabor_stats``) of the end and of
the change (end − start). The output goes to ``results/bench/filters_drift.txt``. It is a diagnosis beside the
claim, never its rule: the rule, written before the run, judges the filters as they end.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402

from pipelines import PIPELINES, family, get  # noqa: E402
from pipelines.analysis.gabor import gabor_stats  # noqa: E402
from pipelines.store import artifact_path, atomic_write_text, key_of, read_summary, summary_path  # noqa: E402

LEARNED = [n for n in PIPELINES if family(n) == "learned"]


def initial_conv1(name: str, preset: str, seed: int, channels: int) -> np.ndarray:
    """conv1's weights as the trainer drew them for ``seed`` (``Trainer.fit_predict``: seed, then build)."""
    import torch
    from pipelines.learned import trainer as tr
    cfg = get(name).config(preset)
    torch.manual_seed(seed)
    x = torch.zeros((1, channels, 28, 28) if channels > 1 else (1, 28, 28), dtype=torch.uint8)
    return tr.first_conv(tr.build_model(cfg, torch.device("cpu"), x)).weight.detach().float().numpy()


def drift(final: np.ndarray, start: np.ndarray) -> dict:
    a, b = start.reshape(len(start), -1), final.reshape(len(final), -1)
    cos = (a * b).sum(1) / np.maximum(np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1), 1e-12)
    return {"relative_change": float(np.linalg.norm(final - start) / np.linalg.norm(start)),
            "median_cosine": float(np.median(cos)), "end": gabor_stats(final), "change": gabor_stats(final - start)}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--pipeline", default="alexnet", choices=LEARNED)
    p.add_argument("--preset", default="paper", choices=["smoke", "cpu", "paper"])
    p.add_argument("--results", type=Path, default=Path("results"))
    args = p.parse_args()
    cfg = get(args.pipeline).config(args.preset)
    if getattr(cfg, "whiten", False):
        print(f"error: {args.pipeline}'s first layer starts from the data (whitening); its start cannot be rebuilt "
              f"from the seed alone", file=sys.stderr)
        return 2
    rows = read_summary(summary_path(args.results))
    rows = rows[(rows.pipeline == args.pipeline) & (rows.preset == args.preset) & (rows.status == "ok")]
    lines = []
    for row in rows.itertuples():
        path = artifact_path(args.results, "filters", key_of(row))
        if not path.exists():
            continue
        final, saved = np.load(path), artifact_path(args.results, "filters_start", key_of(row))
        start = np.load(saved) if saved.exists() else initial_conv1(args.pipeline, args.preset, int(row.seed),
                                                                    final.shape[1])
        d = drift(final, start)
        lines.append(f"{row.dataset}/{path.name} ({row.device_name}, commit {row.git_commit}, test {row.test_accuracy:.4f}; start "
                     f"{'saved' if saved.exists() else 'rebuilt from the seed'}): "
                     f"change/start {d['relative_change']:.2f}, median cosine(start, end) {d['median_cosine']:.2f}; "
                     f"fit a Gabor: end {d['end']['share']:.0%} (median {d['end']['median_fit']:.2f}), "
                     f"change {d['change']['share']:.0%} (median {d['change']['median_fit']:.2f}), "
                     f"random {d['end']['baseline_share']:.0%} (median {d['end']['baseline_median']:.2f})")
    if not lines:
        print(f"error: no saved filters of {args.pipeline} at preset {args.preset} under {args.results}",
              file=sys.stderr)
        return 2
    import torch
    text = (f"python bench/filters_drift.py --pipeline {args.pipeline} --preset {args.preset} "
            f"(torch {torch.__version__})\n" + "\n".join(lines) + "\n")
    print(text, end="")
    atomic_write_text(args.results / "bench" / "filters_drift.txt", text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
