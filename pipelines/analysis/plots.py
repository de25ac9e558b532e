"""The report's figures (matplotlib, Agg, written atomically). Error bars are 95% confidence intervals."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ..figures import _figure_module, save_figure


def finish(fig, ax, path: Path, xlabel: str, ylabel: str, title: str, legend: str = "lower right") -> Path:
    """Axis labels, title, a light grid on both tick levels, a small legend; then the atomic save."""
    finish_axes(ax, xlabel, ylabel, title, legend)
    return save_figure(fig, path)


def finish_axes(ax, xlabel: str, ylabel: str, title: str, legend: str = "best") -> None:
    """``finish``'s labels, grid and legend for one panel of a figure with several."""
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8, loc=legend)


def scatter(ok: pd.DataFrame, path: Path) -> Path | None:
    """Accuracy against whole-pipeline wall time, one point per row."""
    ok = ok[ok.total_seconds > 0]
    if ok.empty:
        return None
    plt = _figure_module()
    fig, ax = plt.subplots(figsize=(8, 5))
    markers = {"handcrafted": "o", "learned": "^"}
    colors = {"cpu": "tab:blue", "cuda": "tab:red"}
    for (family, device), group in ok.groupby(["family", "device"]):
        ax.scatter(group.total_seconds, group.test_accuracy, marker=markers.get(family, "s"), s=60,
                   color=colors.get(device, "gray"), label=f"{family}, {device}")
        for r in group.drop_duplicates(["pipeline", "preset"]).itertuples():
            ax.annotate(f"{r.pipeline} ({r.preset})", (r.total_seconds, r.test_accuracy), fontsize=8,
                        xytext=(5, 3), textcoords="offset points")
    from matplotlib.ticker import ScalarFormatter
    ax.set_xscale("log")
    ax.xaxis.set_major_formatter(ScalarFormatter())
    ax.set_xlabel("wall time of the whole pipeline (seconds, log scale)")
    ax.set_ylabel("test accuracy")
    ax.set_title("Accuracy against time, one point per result row (every seed)")
    ax.margins(x=0.15, y=0.08)
    ax.grid(alpha=0.3, which="both")
    ax.legend(loc="center left", fontsize=9)
    return save_figure(fig, path)


def curve_plot(agg: pd.DataFrame, full: pd.DataFrame, learned: set, path: Path) -> Path:
    """Learning curves: one line per arm (dashed for learned), open markers for summary.csv's full-data rows."""
    plt = _figure_module()
    fig, ax = plt.subplots(figsize=(8, 5))
    colours = {}
    for arm, g in agg.groupby("arm", sort=False):
        line = ax.errorbar(g.n_train, g.test_accuracy_mean, yerr=g.test_accuracy_half.fillna(0), marker="o",
                           linestyle="--" if arm in learned else "-", capsize=3, label=arm)
        colours[arm] = line.lines[0].get_color()
    for p in full.itertuples():
        ax.plot(p.n_train, p.test_accuracy_mean, marker="o", markersize=8, markerfacecolor="none",
                color=colours.get(p.arm, "black"), linestyle="none",
                label=f"{p.arm} (summary.csv, preset {p.preset})" if p.arm not in colours else None)
    if not full.empty:
        ax.plot([], [], marker="o", markerfacecolor="none", color="grey", linestyle="none",
                label="open: full-data rows of summary.csv (mean over seeds)")
    ax.set_xscale("log")
    ax.set_xlabel("training images (log scale)")
    ax.set_ylabel("test accuracy (mean, 95% CI over seeds)")
    ax.set_title("Learning curves: hand-crafted (solid) and learned (dashed)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=9, bbox_to_anchor=(1.02, 1), loc="upper left")
    return save_figure(fig, path)


def bar_plot(agg: pd.DataFrame, path: Path, title: str, with_train: bool = False, hue: str | None = None) -> Path:
    """Test accuracy per arm (and eval-mode train accuracy beside it), mean with 95% CI."""
    plt = _figure_module()
    fig, ax = plt.subplots(figsize=(max(5, 1.3 * len(agg) + 2), 4.5))
    x = np.arange(len(agg))
    width = 0.4 if with_train else 0.6
    palette = dict(zip(agg[hue].unique(), ("tab:grey", "tab:blue", "tab:green", "tab:purple"))) if hue else {}
    colours = [palette[v] for v in agg[hue]] if hue else "tab:blue"
    bars = ax.bar(x, agg.test_accuracy_mean, width, yerr=agg.test_accuracy_half.fillna(0), capsize=3,
                  label="test", color=colours)
    ax.bar_label(bars, fmt="%.3f", fontsize=8, padding=2, label_type="center", color="white")
    if hue:
        from matplotlib.patches import Patch
        ax.legend(handles=[Patch(color=c, label=v) for v, c in palette.items()], fontsize=9, title=hue)
    if with_train:
        bars = ax.bar(x + width, agg.train_accuracy_mean, width, yerr=agg.train_accuracy_half.fillna(0), capsize=3,
                      label="train (eval mode)", color="tab:orange")
        ax.bar_label(bars, fmt="%.3f", fontsize=8, padding=2, label_type="center", color="white")
        ax.legend(fontsize=9, loc="lower right")
    ax.set_xticks(x + (width / 2 if with_train else 0), agg.label, rotation=20, ha="right", fontsize=9)
    ax.set_ylabel("accuracy (mean, 95% CI over seeds)")
    ax.set_ylim(0, 1)
    ax.set_title(title)
    ax.grid(axis="y", alpha=0.3)
    return save_figure(fig, path)


def time_to_accuracy(curves: pd.DataFrame, handcrafted: pd.DataFrame, path: Path, where: str) -> Path:
    """Each learned run's test accuracy after each epoch against its training seconds so far (one line per
    seed), over the hand-crafted rows' (``seconds``: time to test predictions, test accuracy) points; log time."""
    plt = _figure_module()
    fig, ax = plt.subplots(figsize=(9, 5.5))
    for i, ((pipeline, preset, device), group) in enumerate(curves.groupby(["pipeline", "preset", "device"])):
        colour = f"C{i % 10}"
        for j, (_, run) in enumerate(group.groupby("seed")):
            ax.plot(run.train_seconds, run.test_accuracy, marker=".", color=colour, alpha=0.8,
                    label=f"{pipeline} (preset {preset}, {device}), one line per seed" if j == 0 else None)
    hand = handcrafted[handcrafted.seconds > 0]
    for pipeline, group in hand.groupby("pipeline"):
        ax.scatter(group.seconds, group.test_accuracy, marker="s", s=30, zorder=3, edgecolors="black",
                   facecolors=["white" if c else "black" for c in group.cached])
        ax.annotate(pipeline, (group.seconds.mean(), group.test_accuracy.mean()), fontsize=8,
                    xytext=(5, -10), textcoords="offset points")
    if not hand.empty:
        ax.scatter([], [], marker="s", color="black", label="hand-crafted rows (features + fit + prediction)")
        if hand.cached.any():
            ax.scatter([], [], marker="s", facecolors="white", edgecolors="black",
                       label="hand-crafted rows with cached features (extraction left out)")
    from matplotlib.ticker import LogFormatter
    ax.set_xscale("log")
    ax.xaxis.set_major_formatter(LogFormatter(labelOnlyBase=False))
    ax.xaxis.set_minor_formatter(LogFormatter(labelOnlyBase=False, minor_thresholds=(2, 0.5)))
    low = min(curves.test_accuracy.min(), hand.test_accuracy.min() if not hand.empty else 1.0)
    ax.set_ylim(max(0.0, low - 0.02), 1.0)
    return finish(fig, ax, path, "seconds (learned: training so far; hand-crafted: features + fit + prediction), "
                  "log scale", "test accuracy",
                  f"Time to accuracy, {where}\nlearned runs after each epoch, hand-crafted rows as points")


def roofline(frame: pd.DataFrame, path: Path) -> Path:
    """Each layer with FLOPs at its arithmetic intensity and measured FLOP/s, one marker per batch size, under
    this device's roof: min(peak FLOP/s, bandwidth x intensity); log-log."""
    plt = _figure_module()
    fig, ax = plt.subplots(figsize=(9, 5.5))
    peak, bandwidth = float(frame.peak_flops.iloc[0]), float(frame.bandwidth.iloc[0])
    work = frame[frame.flops > 0]
    x = np.logspace(np.log10(max(work.intensity.min() / 3, 1e-2)), np.log10(work.intensity.max() * 3), 200)
    ax.plot(x, np.minimum(peak, bandwidth * x) / 1e9, color="black",
            label=f"roof: {bandwidth / 1e9:.1f} GB/s copy, {peak / 1e9:.0f} GFLOP/s matmul")
    ax.axvline(peak / bandwidth, color="grey", linestyle=":", label=f"ridge point {peak / bandwidth:.1f} FLOP/byte")
    for marker, (batch, group) in zip("os^D", work.groupby("batch")):
        ax.scatter(group.intensity, group.achieved_flops / 1e9, marker=marker, s=50, label=f"measured, batch {batch}")
        for r in group.itertuples():
            ax.annotate(r.name, (r.intensity, r.achieved_flops / 1e9), fontsize=8, xytext=(4, 3),
                        textcoords="offset points")
    ax.set_xscale("log")
    ax.set_yscale("log")
    return finish(fig, ax, path, "arithmetic intensity (forward FLOPs per byte of fp32 weights and activations "
                  "moved, log)", "GFLOP/s (log)", f"AlexNet-224 forward pass on a roofline ({frame.device.iloc[0]})")


def epochs_plot(agg: pd.DataFrame, path: Path) -> Path:
    """Per network, test and eval-mode train accuracy against epochs (complete runs at multiples of the recipe)."""
    plt = _figure_module()
    nets = list(dict.fromkeys(agg.model))
    fig, axes = plt.subplots(1, len(nets), figsize=(5.5 * len(nets), 4.5), squeeze=False)
    for ax, net in zip(axes[0], nets):
        g = agg[agg.model == net]
        for value, style in (("test_accuracy", "-o"), ("train_accuracy", "--s")):
            if f"{value}_mean" in g:
                ax.errorbar(g.epochs, g[f"{value}_mean"], yerr=g[f"{value}_half"].fillna(0), fmt=style, capsize=3,
                            label=value.replace("_accuracy", "") + (" (eval mode)" if value.startswith("train") else ""))
        ax.set_xticks(g.epochs, [f"{e:g}\n({m}×)" for e, m in zip(g.epochs, g.multiple)])
        means = g.filter(like="accuracy_mean").to_numpy()
        ax.set_ylim(max(0.0, np.nanmin(means) - 0.05), min(1.0, np.nanmax(means) + 0.05))
        finish_axes(ax, "epochs (× the recipe's)", "accuracy (mean, 95% CI over seeds)", net)
    fig.suptitle("Training longer: each point a complete run of its schedule")
    fig.tight_layout()
    return save_figure(fig, path)


def batch_plot(lines: pd.DataFrame, memory: pd.DataFrame, path: Path) -> Path:
    """Three panels against batch size (log 2): test accuracy per network and learning-rate rule, peak training
    memory, training throughput."""
    plt = _figure_module()
    fig, (acc, mem, speed) = plt.subplots(1, 3, figsize=(16, 4.8))
    for i, (net, g) in enumerate(lines.groupby("model", sort=False)):
        for style, (rule, r) in zip(("-o", "--s"), g.sort_values("batch").groupby("rule", sort=False)):
            acc.errorbar(r.batch, r.test_accuracy_mean, yerr=r.test_accuracy_half.fillna(0), fmt=style, capsize=3,
                         color=f"C{i}", label=f"{net}, {rule}")
            if rule == g.rule.iloc[0] and "train_images_per_second_mean" in r:
                speed.plot(r.batch, r.train_images_per_second_mean, "-o", color=f"C{i}", label=net)
        m = memory[memory.model == net].sort_values("batch")
        mem.plot(m.batch, m.peak_memory_bytes / 2**20, "-o", color=f"C{i}", label=net)
    for ax in (acc, mem, speed):
        ax.set_xscale("log", base=2)
    acc.set_ylim(0, 1)
    mem.set_yscale("log")
    finish_axes(acc, "batch size (log 2)", "test accuracy (mean, 95% CI)", "Accuracy at the recipe's epochs")
    finish_axes(mem, "batch size (log 2)", "peak training memory (MiB, log)", "Memory of training")
    finish_axes(speed, "batch size (log 2)", "training images / s", "Throughput")
    fig.tight_layout()
    return save_figure(fig, path)


def cost_plot(table: pd.DataFrame, path: Path, budget: float, epochs: int) -> Path:
    """Test accuracy of each cheaper AlexNet against its forward FLOPs per image (log), within a fixed training
    time and, where measured, after a fixed number of epochs."""
    plt = _figure_module()
    fig, ax = plt.subplots(figsize=(9, 5))
    arms = [("budget", f"after {budget:g} s of training", "-o")] + (
        [("epochs", f"after {epochs} epoch(s)", "--s")] if "epochs_mean" in table else [])
    for arm, label, style in arms:
        ax.errorbar(table.flops / 1e9, table[f"{arm}_mean"], yerr=table[f"{arm}_half"].fillna(0), fmt=style,
                    capsize=3, label=label)
    for i, r in enumerate(table.itertuples()):  # labels alternate above and below: neighbours can sit close
        ax.annotate(f"{r.point}\n{r.images_per_second:,.0f} img/s", (r.flops / 1e9, r.budget_mean), fontsize=8,
                    xytext=(5, 8 if i % 2 == 0 else -26), textcoords="offset points")
    ax.axhline(0.1, color="grey", linestyle=":", label="chance")
    ax.set_xscale("log")
    ax.set_ylim(0, 1)
    ax.margins(x=0.2)
    return finish(fig, ax, path, "forward GFLOPs per image (log)", "test accuracy (mean, 95% CI over seeds)",
                  "AlexNet made cheaper step by step", legend="upper right")
