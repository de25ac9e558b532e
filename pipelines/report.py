"""``results/report.md``: every claim of the AlexNet chapter, tested on this suite's own runs.

    python runner.py --report      # also run at the end of --all

Built only from ``summary.csv``, ``runs.jsonl``, ``experiments/*.json``, ``predictions/`` and ``filters/``
under the results folder. Published anchors are shown beside our numbers and marked as published.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from .figures import _figure_module, save_figure
from .results import atomic_write_text, read_summary

ANCHORS = [  # published figures, never measured here
    ("AlexNet on Fashion-MNIST, V100 (d2l 8.1)", "0.882 test accuracy at 4.2k img/s", "d2l.ai, ch. 8.1"),
    ("LeNet on Fashion-MNIST (d2l 7.6)", "0.789 test accuracy", "d2l.ai, ch. 7.6"),
    ("RBF SVC on pixels", "0.897 test accuracy", "Xiao et al. 2017, Fashion-MNIST benchmark"),
    ("Linear SVC on pixels", "0.839 test accuracy", "Xiao et al. 2017, Fashion-MNIST benchmark"),
    ("Best reported HOG + SVM on Fashion-MNIST", "0.926 test accuracy", "Fashion-MNIST benchmark table"),
    ("ILSVRC-2012 top-5 error", "SuperVision (AlexNet) 15.3% against ISI (SIFT + FV) 26.2%",
     "Krizhevsky et al. 2012; ILSVRC-2012 results"),
]
CNN_ARMS = ("lenet", "cnn28", "alexnet")


@dataclass
class Inputs:
    results_dir: Path
    summary: pd.DataFrame
    runs: list[dict]
    experiments: dict[str, dict]

    @property
    def ok(self) -> pd.DataFrame:
        return self.summary[self.summary.status == "ok"]

    @property
    def figures(self) -> Path:
        return self.results_dir / "figures"


def load_inputs(results_dir: Path) -> Inputs:
    runs_path = results_dir / "runs.jsonl"
    runs = [json.loads(l) for l in runs_path.read_text().splitlines() if l.strip()] if runs_path.exists() else []
    experiments = {p.stem: json.loads(p.read_text()) for p in sorted((results_dir / "experiments").glob("*.json"))}
    return Inputs(results_dir, read_summary(results_dir / "summary.csv"), runs, experiments)


def fmt(value, digits: int = 4) -> str:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return "–"
    if isinstance(value, (int, np.integer)) or (isinstance(value, float) and value.is_integer() and digits == 0):
        return f"{int(value):,}"
    return f"{value:.{digits}f}"


def md_table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(map(str, r)) + " |" for r in rows])


# --- 1. the table -------------------------------------------------------------------------------------

def results_table(inp: Inputs) -> str:
    rows = []
    for _, r in inp.ok.sort_values(["family", "test_accuracy"], ascending=[True, False]).iterrows():
        rows.append([f"`{r.pipeline}`", r.family, r.preset, f"{r.device} ({r.device_name})",
                     f"{fmt(r.n_train)} / {fmt(r.n_test)}", fmt(r.epochs, 2), fmt(r.test_accuracy),
                     fmt(r.feature_seconds, 1), fmt(r.fit_seconds, 1), fmt(r.predict_seconds, 1),
                     fmt(r.total_seconds, 1), fmt(r.train_images_per_second, 1)])
    header = ["pipeline", "family", "preset", "device", "train / test", "epochs", "test acc", "features s",
              "fit s", "predict s", "total s", "train img/s"]
    failed = inp.summary[inp.summary.status != "ok"]
    note = "" if failed.empty else "\n\nFailed rows: " + "; ".join(
        f"`{r.pipeline}` (preset {r.preset}, {r.device}): {r.error}" for _, r in failed.iterrows())
    anchors = md_table(["published anchor (not measured here)", "figure", "source"], [list(a) for a in ANCHORS])
    return (f"{md_table(header, rows) if rows else '_No ok rows yet: run `python runner.py --all`._'}{note}\n\n"
            f"{anchors}")


def scatter(inp: Inputs) -> Path | None:
    ok = inp.ok[inp.ok.total_seconds > 0]
    if ok.empty:
        return None
    plt = _figure_module()
    fig, ax = plt.subplots(figsize=(8, 5))
    markers = {"handcrafted": "o", "learned": "^"}
    colors = {"cpu": "tab:blue", "cuda": "tab:red"}
    for (family, device), group in ok.groupby(["family", "device"]):
        ax.scatter(group.total_seconds, group.test_accuracy, marker=markers.get(family, "s"), s=60,
                   color=colors.get(device, "gray"), label=f"{family}, {device}")
        for _, r in group.iterrows():
            ax.annotate(f"{r.pipeline} ({r.preset})", (r.total_seconds, r.test_accuracy), fontsize=8,
                        xytext=(5, 3), textcoords="offset points")
    from matplotlib.ticker import ScalarFormatter
    ax.set_xscale("log")
    ax.xaxis.set_major_formatter(ScalarFormatter())
    ax.set_xlabel("wall time of the whole pipeline (seconds, log scale)")
    ax.set_ylabel("test accuracy")
    ax.set_title("Accuracy against time, one point per result row")
    ax.margins(x=0.15, y=0.08)
    ax.grid(alpha=0.3, which="both")
    ax.legend(loc="center left", fontsize=9)
    return save_figure(fig, inp.figures / "accuracy_vs_time.png")


# --- 3. experiments -----------------------------------------------------------------------------------

def aggregate(rows: list[dict], keys: list[str]) -> pd.DataFrame:
    frame = pd.DataFrame(rows)
    cols = [c for c in ("test_accuracy", "train_accuracy", "seconds") if c in frame]
    agg = frame.groupby(keys, sort=False)[cols].agg(["mean", "std", "count"])
    agg.columns = [f"{a}_{b}" for a, b in agg.columns]
    return agg.reset_index()


def pm(mean, std, n) -> str:
    return fmt(mean) if n < 2 or np.isnan(std) else f"{mean:.4f} ± {std:.4f}"


def full_data_points(inp: Inputs, exp: dict, agg: pd.DataFrame) -> pd.DataFrame:
    """summary.csv rows that carry the curves past the experiment's sizes: the same pipelines on more training
    images of the same data, and AlexNet-224 wherever a ``paper`` row (its full recipe) exists. One per pipeline,
    the latest; columns as ``aggregate``'s, plus the row's preset."""
    ok = inp.ok[inp.ok.dataset == exp["dataset"]]
    if ok.empty or agg.empty:
        return pd.DataFrame()
    same = ok.pipeline.isin(agg.arm.unique()) & (ok.n_train > agg.n_train.max())
    rows = ok[same | ((ok.pipeline == "alexnet") & (ok.preset == "paper"))]
    rows = rows.sort_values("started_at").drop_duplicates("pipeline", keep="last")
    return pd.DataFrame({"arm": rows.pipeline, "n_train": rows.n_train.astype(int),
                         "test_accuracy_mean": rows.test_accuracy, "test_accuracy_std": np.nan,
                         "test_accuracy_count": 1, "preset": rows.preset}).reset_index(drop=True)


def curve_plot(inp: Inputs, agg: pd.DataFrame, full: pd.DataFrame) -> Path:
    plt = _figure_module()
    fig, ax = plt.subplots(figsize=(8, 5))
    colours = {}
    for arm, g in agg.groupby("arm", sort=False):
        style = "--" if arm in CNN_ARMS else "-"
        line = ax.errorbar(g.n_train, g.test_accuracy_mean, yerr=g.test_accuracy_std.fillna(0), marker="o",
                           linestyle=style, capsize=3, label=arm)
        colours[arm] = line.lines[0].get_color()
    for p in full.itertuples():
        ax.plot(p.n_train, p.test_accuracy_mean, marker="s" if p.arm == "alexnet" else "o", markersize=8,
                markerfacecolor="none", color=colours.get(p.arm, "black"), linestyle="none",
                label=f"{p.arm} (summary.csv, preset {p.preset})" if p.arm not in colours else None)
    if not full.empty:
        ax.plot([], [], marker="o", markerfacecolor="none", color="grey", linestyle="none",
                label="open: full-data row of summary.csv")
    ax.set_xscale("log")
    ax.set_xlabel("training images (log scale)")
    ax.set_ylabel("test accuracy (mean ± std over seeds)")
    ax.set_title("Learning curves: hand-crafted (solid) and CNNs (dashed)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=9, bbox_to_anchor=(1.02, 1), loc="upper left")
    return save_figure(fig, inp.figures / "learning_curves.png")


def bar_plot(inp: Inputs, agg: pd.DataFrame, name: str, title: str, with_train: bool = False) -> Path:
    plt = _figure_module()
    fig, ax = plt.subplots(figsize=(max(5, 1.3 * len(agg) + 2), 4.5))
    x = np.arange(len(agg))
    width = 0.4 if with_train else 0.6
    hue = "activation" if "activation" in agg else None  # sigmoid and ReLU bars in two colours
    palette = dict(zip(agg[hue].unique(), ("tab:grey", "tab:blue"))) if hue else {}
    colours = [palette[v] for v in agg[hue]] if hue else "tab:blue"  # train bars, if any: tab:orange
    bars = ax.bar(x, agg.test_accuracy_mean, width, yerr=agg.test_accuracy_std.fillna(0), capsize=3, label="test",
                  color=colours)
    ax.bar_label(bars, fmt="%.3f", fontsize=8, padding=2, label_type="center", color="white")
    if hue:
        from matplotlib.patches import Patch
        ax.legend(handles=[Patch(color=c, label=v) for v, c in palette.items()], fontsize=9, title=hue)
    if with_train:
        bars = ax.bar(x + width, agg.train_accuracy_mean, width, yerr=agg.train_accuracy_std.fillna(0), capsize=3,
                      label="train (eval mode)", color="tab:orange")
        ax.bar_label(bars, fmt="%.3f", fontsize=8, padding=2, label_type="center", color="white")
        ax.legend(fontsize=9, loc="lower right")
    ax.set_xticks(x + (width / 2 if with_train else 0), agg.label, rotation=20, ha="right", fontsize=9)
    ax.set_ylabel("accuracy (mean ± std over seeds)")
    ax.set_ylim(0, 1)
    ax.set_title(title)
    ax.grid(axis="y", alpha=0.3)
    return save_figure(fig, inp.figures / f"exp_{name}.png")


def experiment_header(exp: dict) -> str:
    return (f"_{exp['description']}. Size `{exp['size']}`, {exp['dataset']}, on {exp['device']} "
            f"({exp['device_name']}), {exp['seconds']:.0f} s, started {exp['started_at']}"
            + (f", commit `{exp['git_commit']}`" if exp.get("git_commit") else "") + "._")


def data_section(inp: Inputs, exp: dict) -> str:
    agg = aggregate(exp["rows"], ["arm", "n_train"])
    full = full_data_points(inp, exp, agg)
    curve_plot(inp, agg, full)
    rows = [[a.arm, fmt(int(a.n_train)), pm(a.test_accuracy_mean, a.test_accuracy_std, a.test_accuracy_count),
             str(int(a.test_accuracy_count))] for a in agg.itertuples()]
    rows += [[p.arm, fmt(int(p.n_train)), fmt(p.test_accuracy_mean), f"1 (summary.csv, preset {p.preset})"]
             for p in full.itertuples()]
    table = md_table(["pipeline", "train images", "test acc", "runs"], rows)
    cfg = exp["config"]
    schedule = (f"CNN training length: max({cfg['epochs']}, ⌈{cfg['min_steps']} × batch / n⌉) epochs, so every "
                f"size gets at least {cfg['min_steps']} SGD steps (LeNet: the d2l recipe, sigmoid, plain SGD lr 0.9, "
                "batch 256, whose full run on 60k takes 2,350 steps; the 28x28 CNN: ReLU, dropout 0.5, SGD lr 0.05 "
                "with momentum 0.9, batch 128). The hand-crafted pipelines use their cpu settings on the subset; "
                "all score the same test images. Sigmoid LeNet leaves its initial plateau at a step count that "
                "varies from run to run, so its single-seed points are noisy.")
    if not full.empty:
        missing = sorted(set(agg.arm) - set(full.arm))
        schedule += (" Open markers (and rows marked summary.csv) are the runner's own rows of summary.csv on "
                     "more training images, not runs of this experiment"
                     + (f"; none for {', '.join(missing)}." if missing else "."))
    return (f"![learning curves](figures/learning_curves.png)\n\n{table}\n\n{schedule}\n\n"
            f"Crossover: {crossover(pd.concat([agg, full], ignore_index=True))}")


def best_per_size(agg: pd.DataFrame) -> pd.DataFrame:
    """The best hand-crafted and the best CNN test accuracy (columns ``hand``, ``cnn``) at each training-set
    size where both sides were measured."""
    side = np.where(agg.arm.isin(CNN_ARMS), "cnn", "hand")
    best = agg.assign(side=side).pivot_table(index="n_train", columns="side", values="test_accuracy_mean",
                                             aggfunc="max")
    return best.reindex(columns=["hand", "cnn"]).dropna()


def crossover(agg: pd.DataFrame) -> str:
    best = best_per_size(agg)
    ahead = [int(n) for n in best.index[best.cnn > best.hand]]
    if not ahead:
        return "none in this range: at every size the best hand-crafted pipeline leads the CNNs."
    return (f"the best CNN leads the best hand-crafted pipeline from {ahead[0]:,} training images "
            f"(sizes where it leads: {', '.join(f'{n:,}' for n in ahead)}).")


def simple_section(inp: Inputs, exp: dict, keys: list[str], label, title: str, with_train=False) -> str:
    agg = aggregate(exp["rows"], keys)
    agg["label"] = [label(r) for r in agg.itertuples()]
    bar_plot(inp, agg, exp["experiment"], title, with_train)
    header = ["arm", "test acc", "train acc (eval mode)", "gap", "runs"]
    rows = [[a.label, pm(a.test_accuracy_mean, a.test_accuracy_std, a.test_accuracy_count),
             fmt(getattr(a, "train_accuracy_mean", None)),
             fmt(getattr(a, "train_accuracy_mean", np.nan) - a.test_accuracy_mean), int(a.test_accuracy_count)]
            for a in agg.itertuples()]
    diverged = [r for r in exp["rows"] if r.get("diverged")]
    note = f"\n\n{len(diverged)} run(s) diverged (NaN loss) and count as chance (0.1)." if diverged else ""
    return f"![{exp['experiment']}](figures/exp_{exp['experiment']}.png)\n\n{md_table(header, rows)}{note}"


def anatomy_section(inp: Inputs, exp: dict) -> str:
    frame = pd.DataFrame(exp["rows"])
    rows = [[r.index, r.layer, r.output_shape, fmt(int(r.params)), fmt(int(r.flops)), fmt(int(r.flops_torch)),
             f"{r.activation_bytes / 1024:.1f}", f"{r.forward_ms:.2f}"] for r in frame.itertuples()]
    table = md_table(["#", "layer", "output", "params", "FLOPs (analytic)", "FLOPs (torch counter)",
                      "activation KiB/img", f"forward ms (batch {int(frame.batch[0])})"], rows)
    conv, fc = frame[frame.layer == "Conv2d"], frame[frame.layer == "Linear"]
    match = "match" if (frame.flops == frame.flops_torch).all() else "DO NOT match"
    summary = (f"Totals: {frame.params.sum():,} parameters ({fc.params.sum() / frame.params.sum():.1%} in the "
               f"fully connected layers); {frame.flops.sum() / 1e9:.2f} GFLOPs per image forward "
               f"({conv.flops.sum() / frame.flops.sum():.1%} in the convolutions); activations "
               f"{frame.activation_bytes.sum() / 2**20:.2f} MiB per image (fp32); measured forward time "
               f"{conv.forward_ms.sum() / frame.forward_ms.sum():.1%} in the convolutions. The analytic FLOP "
               f"counts {match} torch.utils.flop_counter layer by layer.")
    return f"{table}\n\n{summary}"


def hardware_section(inp: Inputs) -> str:
    alex = inp.ok[(inp.ok.pipeline == "alexnet") & inp.ok.train_images_per_second.notna()]
    rows = [[r.device, r.device_name, r.preset, fmt(r.train_images_per_second, 1), r.notes]
            for r in alex.itertuples()]
    missing = [d for d in ("cpu", "cuda") if d not in set(alex.device)]
    note = ("" if not missing else f"\n\nMissing: no AlexNet row on {' or '.join(missing)} yet"
            + (" (run `python runner.py --only alexnet --gpu` on a CUDA machine, then `--report`)."
               if "cuda" in missing else "."))
    table = md_table(["device", "name", "preset", "train img/s", "notes"], rows) if rows else "_No AlexNet rows._"
    return table + note


EXPERIMENT_SECTIONS = {
    "data": ("Data: learning curves", data_section),
    "features": ("Features matter", lambda i, e: simple_section(
        i, e, ["arm"], lambda a: a.arm, "Same linear SVM, different features")),
    "activation": ("Activation: sigmoid against ReLU", lambda i, e: simple_section(
        i, e, ["model", "lr", "activation"], lambda a: f"{a.model} {a.activation} lr {a.lr}",
        "Sigmoid vs ReLU, same init and learning rate")),
    "dropout": ("Dropout", lambda i, e: simple_section(
        i, e, ["arm"], lambda a: a.arm, "28x28 CNN with and without dropout", with_train=True)),
    "augmentation": ("Augmentation", lambda i, e: simple_section(
        i, e, ["arm"], lambda a: a.arm, "28x28 CNN with and without flips and crops", with_train=True)),
    "anatomy": ("Compute anatomy of AlexNet-224", anatomy_section),
}


def experiments_section(inp: Inputs) -> str:
    parts = []
    for name, (title, render) in EXPERIMENT_SECTIONS.items():
        exp = inp.experiments.get(name)
        body = (f"{experiment_header(exp)}\n\n{render(inp, exp)}" if exp else
                f"_Not run yet: `python runner.py --experiment {name}`._")
        parts.append(f"### {title}\n\n{body}")
    parts.append(f"### Hardware: AlexNet on CPU and GPU\n\n{hardware_section(inp)}")
    return "\n\n".join(parts)


# --- 5. filters and 6. errors -------------------------------------------------------------------------

def filters_section(inp: Inputs) -> tuple[str, dict]:
    from .filters import filter_report
    return filter_report(inp)


def confusion_section(inp: Inputs) -> str:
    from sklearn.metrics import ConfusionMatrixDisplay
    parts = []
    for family in ("handcrafted", "learned"):
        rows = inp.ok[inp.ok.family == family]
        if rows.empty:
            parts.append(f"_No {family} row._")
            continue
        best = rows.loc[rows.test_accuracy.idxmax()]
        path = inp.results_dir / "predictions" / f"{best.pipeline}-{best.preset}-{best.device}-seed{best.seed}.npz"
        if not path.exists():
            parts.append(f"_No predictions saved for `{best.pipeline}`._")
            continue
        pred = np.load(path)
        plt = _figure_module()
        fig, ax = plt.subplots(figsize=(7.5, 6.5))
        ConfusionMatrixDisplay.from_predictions(pred["y_true"], pred["y_pred"], display_labels=class_names(inp),
                                                ax=ax, colorbar=False, xticks_rotation=45)
        ax.set_title(f"{best.pipeline} (preset {best.preset}, {best.device}): test accuracy {best.test_accuracy:.4f}")
        save_figure(fig, inp.figures / f"confusion_{family}.png")
        parts.append(f"Best {family}: `{best.pipeline}` (preset {best.preset}, {best.device}, test accuracy "
                     f"{fmt(best.test_accuracy)}).\n\n![confusion {family}](figures/confusion_{family}.png)")
    return "\n\n".join(parts)


def class_names(inp: Inputs) -> list[str]:
    from .data import FASHION_CLASSES
    dataset = str(inp.ok.dataset.iloc[0]) if len(inp.ok) else ""
    return list(FASHION_CLASSES) if "fashion" in dataset.lower() else [str(i) for i in range(10)]


# --- the whole report ---------------------------------------------------------------------------------

def build_report(results_dir: Path) -> Path:
    """Write ``report.md`` and its PNGs under ``results_dir``; returns the report's path."""
    from .verdicts import verdict_table
    inp = load_inputs(Path(results_dir))
    inp.figures.mkdir(parents=True, exist_ok=True)
    has_scatter = scatter(inp) is not None
    experiments = experiments_section(inp)
    filters, filter_stats = filters_section(inp)
    confusion = confusion_section(inp)
    text = "\n\n".join([
        "# cvbench-2012 report",
        f"Built by `python runner.py --report` from {len(inp.summary)} rows of `summary.csv`, {len(inp.runs)} "
        f"runs in `runs.jsonl` and {len(inp.experiments)} experiment files. Every number below comes from a "
        "run of this suite, except the rows marked *published anchor*.",
        "## 1. Results", results_table(inp),
        "## 2. Accuracy against time",
        "![accuracy vs time](figures/accuracy_vs_time.png)" if has_scatter else "_No rows yet._",
        "## 3. Experiments", experiments,
        "## 4. Claims and verdicts", verdict_table(inp, filter_stats),
        "## 5. What the first layer learned", filters,
        "## 6. Errors", confusion,
    ]) + "\n"
    path = inp.results_dir / "report.md"
    atomic_write_text(path, text)
    return path
