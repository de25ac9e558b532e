"""Do learned first-layer filters resemble hand-made ones? Learned conv1 filters beside a Gabor bank and the
gradient kernels HOG and SIFT use, and a quantitative test: each filter's best-fitting Gabor (OpenCV's
``getGaborKernel``), compared with the same fit for random Xavier-initialised filters of the same shape.
"""
from __future__ import annotations

import numpy as np

from .. import PIPELINES, family, get
from ..analysis.gabor import gabor_bank, gabor_stats, grey_filters
from ..figures import _figure_module, save_figure
from ..store import artifact_path, filters_figure, key_of


def hand_made_kernels() -> tuple[np.ndarray, list[str]]:
    """The gradient kernels HOG ([-1, 0, 1]) and SIFT (differences of a Gaussian-smoothed image) use,
    plus a few Gabors, all 11 x 11 for display."""
    k = 11
    kernels, names = [], []
    hog = np.zeros((k, k))
    hog[k // 2, k // 2 - 1], hog[k // 2, k // 2 + 1] = -1, 1
    kernels += [hog, hog.T]
    names += ["HOG d/dx [-1,0,1]", "HOG d/dy"]
    yy, xx = np.mgrid[:k, :k] - k // 2
    g = np.exp(-(xx ** 2 + yy ** 2) / (2 * 1.6 ** 2))
    for theta in (0, 45, 90, 135):
        t = np.deg2rad(theta)
        kernels.append(-(xx * np.cos(t) + yy * np.sin(t)) * g)
        names.append(f"SIFT DoG-grad {theta}°")
    import cv2
    for theta in (0, 45, 90, 135):
        kernels.append(cv2.getGaborKernel((k, k), 2.5, np.deg2rad(theta), 5.0, 0.6, 0, cv2.CV_64F))
        names.append(f"Gabor {theta}°")
    return np.array(kernels), names


def scattering_row(cols: int) -> tuple[str, np.ndarray]:
    """scattering_svm's designed filters at its cpu setting: every angle of the finest wavelet, then every
    other angle of the next scale (real parts)."""
    from ..handcrafted.scattering import wavelets
    cfg = get("scattering_svm").config("cpu")
    bank = wavelets(cfg.J, cfg.L)
    shown = [w for j, t, w in bank if j == 0] + [w for j, t, w in bank if j == 1 and t % 2 == 0]
    return (f"designed: scattering_svm's Morlet wavelets (J {cfg.J}, L {cfg.L}; real parts, scales 0 and 1)",
            np.array(shown[:cols]))


def learned_filters(inp) -> dict:
    """The saved conv1 weights of the best ok row of each learned pipeline."""
    out = {}
    for name in (n for n in PIPELINES if family(n) == "learned"):
        rows = inp.ok[inp.ok.pipeline == name]
        for _, r in rows.sort_values("test_accuracy", ascending=False).iterrows():
            path = artifact_path(inp.results_dir, "filters", key_of(r))
            if path.exists():
                out[name] = (np.load(path), r)
                break
    return out


def draw_panel(ax_row, filters: np.ndarray, label: str, cols: int) -> None:
    for ax in ax_row:
        ax.axis("off")
    for ax, f in zip(ax_row, filters[:cols]):
        f = (f - f.min()) / max(f.max() - f.min(), 1e-12)
        ax.imshow(f, cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    ax_row[0].set_title(label, fontsize=9, loc="left")


def comparison_figure(inp, learned: dict) -> str:
    plt = _figure_module()
    kernels, names = hand_made_kernels()
    cols = 12
    rows = [(f"{n} conv1 ({f'first {cols} of {len(w)}' if len(w) > cols else f'all {len(w)}'}; "
             f"preset {r.preset}, {r.device}, acc {r.test_accuracy:.3f})", grey_filters(w)) for n, (w, r) in learned.items()]
    rows.append(("hand-made: HOG gradients, SIFT oriented derivatives of Gaussian, Gabors", kernels))
    rows.append(scattering_row(cols))
    fig, axes = plt.subplots(len(rows), cols, figsize=(cols * 0.9, len(rows) * 1.25), squeeze=False)
    for ax_row, (label, filters) in zip(axes, rows):
        draw_panel(ax_row, filters, label, cols)
    fig.subplots_adjust(hspace=0.6)
    save_figure(fig, inp.figures / "filters_vs_handmade.png")
    return "filters_vs_handmade.png"


def judged_filter_stats(inp) -> list[dict]:
    """``gabor_stats`` of the very rows the filters claim judges (``claims.full_recipe_rows``), from each row's own
    saved conv1 weights; rows without a saved file are left out."""
    from ..analysis.claims import full_recipe_rows
    paths = [artifact_path(inp.results_dir, "filters", key_of(r)) for _, r in full_recipe_rows(inp.scored).iterrows()]
    return [gabor_stats(np.load(p)) for p in paths if p.exists()]


def shown_text(stats: dict) -> str:
    """The filters section's figures in one line (the networks it shows, each its best row's filters)."""
    return "; ".join(f"{n} (shown): {v['share']:.0%} fit a Gabor (random: {v['baseline_share']:.0%})"
                     for n, v in stats.items())


def change_text(inp, row, end: np.ndarray) -> str:
    """The Gabor test of what training added (the end less the start the run saved), or "–" for a row saved
    before starts were kept."""
    path = artifact_path(inp.results_dir, "filters_start", key_of(row))
    start = np.load(path) if path.exists() else None
    if start is None or start.shape != end.shape:
        return "–"
    s = gabor_stats(end - start)
    return f"{s['share']:.0%} (median fit {s['median_fit']:.2f})"


def filter_report(inp) -> tuple[str, dict]:
    learned = learned_filters(inp)
    if not learned:
        return "_No learned filters saved yet: run the learned pipelines (`python runner.py --all`)._", {}
    png = comparison_figure(inp, learned)
    stats = {name: gabor_stats(w) for name, (w, _) in learned.items()}
    rows = [f"| `{n}` | {s['n']} of {s['k']}x{s['k']} | {s['share']:.0%} (median fit {s['median_fit']:.2f}) | "
            f"{s['baseline_share']:.0%} (median fit {s['baseline_median']:.2f}) | {change_text(inp, row, end)} |"
            for (n, s), (end, row) in zip(stats.items(), learned.values())]
    table = "\n".join(["| network | filters | fit a Gabor well (cosine ≥ 0.8) | random Xavier filters, same shape | "
                       "what training added (end − start) |", "|---|---|---|---|---|", *rows])
    pictures = " ".join(f"![{n} conv1](figures/{filters_figure(inp.results_dir, inp.dataset, n).name})"
                        for n in learned)
    text = (f"![learned vs hand-made](figures/{png})\n\nThe 2012 question in one picture: the first rows were "
            "learned from the images, the last two were designed (the scattering network's wavelets were chosen by "
            f"Mallat's theory, never fitted to data).\n\n{pictures}\n\nHOG's view of the same images: "
            f"![HOG glyphs](figures/hog_glyphs.png)\n\n{table}\n\nEach filter is compared with "
            f"{len(gabor_bank(5)):,} Gabor kernels of its own size (8 wavelengths, 3 widths, 12 orientations, "
            "4 phases, 2 aspect ratios); the random column is the same fit for 1,000 Xavier-initialised filters, "
            "the chance level of this test. The last column tests what training added: the end less the layer as "
            "the run's seed drew it (saved in `filters_start/`); – marks a row saved before starts were kept "
            "(`python bench/filters_drift.py` rebuilds such a start from its seed). The verdict judges the end.")
    return text, stats
