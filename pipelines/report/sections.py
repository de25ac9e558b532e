"""The report's sections 1, 2, 3 and 6, one function each (section 4: ``verdicts``; 5: ``filters``), each built in
isolation (``isolation.isolated``)."""
from __future__ import annotations

import numpy as np
import pandas as pd

from .. import DEFAULT_DATASET, EXPERIMENTS, FAMILIES, experiment
from ..analysis.claims import comparable
from ..analysis.plots import scatter
from ..analysis.reach import pairings, reach_rows, time_to_accuracy_figures
from ..analysis.stats import mean_ci
from ..analysis.tables import SHARED, SHARED_NOTE, SHARED_WHY, alone, flag, fmt, md_table, pm, shared, timed
from ..datasets.idx import FASHION_CLASSES
from ..experiments.engine import stale
from ..figures import _figure_module, save_figure
from ..run import DIVERGED, SCORED
from ..store import artifact_path, key_of
from .inputs import Inputs
from .isolation import isolated

ANCHORS = [  # published figures, never measured here: (dataset they belong to, or None for every report), ...
    (DEFAULT_DATASET, "AlexNet on Fashion-MNIST, V100 (d2l 8.1)", "0.882 test accuracy at 4.2k img/s", "d2l.ai, ch. 8.1"),
    (DEFAULT_DATASET, "LeNet on Fashion-MNIST (d2l 7.6)", "0.789 test accuracy", "d2l.ai, ch. 7.6"),
    (DEFAULT_DATASET, "RBF SVC on pixels", "0.897 test accuracy", "Xiao et al. 2017, Fashion-MNIST benchmark"),
    (DEFAULT_DATASET, "Linear SVC on pixels", "0.839 test accuracy", "Xiao et al. 2017, Fashion-MNIST benchmark"),
    (DEFAULT_DATASET, "Best reported HOG + SVM on Fashion-MNIST", "0.926 test accuracy",
     "Fashion-MNIST benchmark table"),
    (None, "ILSVRC-2012 top-5 error", "SuperVision (AlexNet) 15.3% against ISI (SIFT + FV) 26.2%",
     "Krizhevsky et al. 2012; ILSVRC-2012 results"),
]


def results_section(inp: Inputs) -> str:
    """One line per (pipeline, preset, device): mean ± 95% CI over its seeds (a diverged seed at chance), times as
    means."""
    ok = inp.scored
    usable = set(comparable(ok).index) if len(ok) else set()
    rows = []
    for (pipeline, preset, device), g in ok.groupby(["pipeline", "preset", "device"]):
        acc = mean_ci(g.test_accuracy)
        first = g.iloc[0]
        solo = alone(g)  # times: the rows timed alone where there are any, else the shared ones, marked
        t, marked = (solo, False) if len(solo) else (g, True)
        rows.append([acc.mean, f"`{pipeline}`", first.family, preset, f"{device} ({first.device_name})",
                     f"{fmt(first.n_train)} / {fmt(first.n_test)}", fmt(g.epochs.mean(), 2),
                     pm(acc.mean, acc.hi - acc.mean), len(g), timed(t.fit_seconds.mean(), 1, marked),
                     timed(t.total_seconds.mean(), 1, marked), timed(t.train_images_per_second.mean(), 1, marked),
                     "yes" if set(g.index) <= usable else "no (subset or truncated)"])
    rows.sort(key=lambda r: (r[2], -r[0]))
    header = ["pipeline", "family", "preset", "device", "train / test", "epochs", "test acc (mean ± 95% CI)",
              "seeds", "fit s", "total s", "train img/s", "enters verdicts"]
    table = md_table(header, [r[1:] for r in rows]) if rows else "_No ok rows yet: run `python runner.py --all`._"
    failed = inp.summary[~inp.summary.status.isin(SCORED)]
    note = "" if failed.empty else "\n\nFailed rows: " + "; ".join(
        f"`{r.pipeline}` (preset {r.preset}, {r.device}, seed {r.seed}): {r.error}" for r in failed.itertuples())
    if inp.set_aside:
        note += ("\n\nSet aside, from every table, figure and verdict: row(s) whose run recorded another "
                 "configuration than today's preset of that name (`runs.jsonl`), so that no mean mixes two "
                 "configurations; rerun them to bring them back: " + "; ".join(
                     f"`{r.pipeline}` (preset {r.preset}, {r.device}, seed {r.seed}, test accuracy "
                     f"{fmt(r.test_accuracy)}): {inp.set_aside[r.Index]}"
                     for r in inp.summary.loc[list(inp.set_aside)].itertuples()) + ".")
    lost = ok[ok.status == DIVERGED]
    if len(lost):
        note += ("\n\nDiverged (loss NaN or infinite), each counted at chance in its line's mean and in every verdict "
                 "(PROTOCOL.md, section 3): " + "; ".join(f"`{r.pipeline}` (preset {r.preset}, {r.device}, seed "
                                                          f"{r.seed})" for r in lost.itertuples()) + ".")
    dirty = ok[flag(ok, "git_dirty").eq(True)]
    if len(dirty):
        note += f"\n\n{len(dirty)} row(s) ran on code that differed from their recorded commit (`git_dirty`)."
    anchors = md_table(["published anchor (not measured here)", "figure", "source"],
                       [list(a[1:]) for a in ANCHORS if a[0] in (inp.dataset, None)])
    if any(len(g) and not len(alone(g)) for _, g in ok.groupby(["pipeline", "preset", "device"])):
        note += f"\n\n{SHARED_NOTE}"
    return (f"{table}{note}\n\nTimes are means over the seeds timed alone (over all seeds, marked, where none was); "
            f"`seeds` counts rows. A row *enters verdicts* only when it "
            f"trained on the full training set, scored the full test set and was not cut short by a time budget."
            f"\n\n{anchors}")


def time_section(inp: Inputs) -> str:
    path = scatter(alone(inp.ok), inp.figures / "accuracy_vs_time.png")
    text = f"![accuracy vs time](figures/{path.name})" if path else "_No rows timed alone yet._"
    left = int(shared(inp.ok).sum())
    if left:
        text += (f"\n\n{left} row(s) timed under concurrency are left out of this figure and of the time-to-accuracy "
                 f"comparison ({SHARED_WHY}).")
    return f"{text}\n\n### Time to accuracy\n\n{time_to_accuracy_section(inp)}"


def time_to_accuracy_section(inp: Inputs) -> str:
    """The learned curves over the hand-crafted points, and the ``reach_rows`` table."""
    pairs = pairings(inp.ok, inp.curves())
    paths = time_to_accuracy_figures(pairs, inp.figures)
    if not paths:
        return ("_No learned row that may enter a verdict has a recorded curve and a hand-crafted row of the same "
                "preset (and CPU) to be compared with._")
    rows = [[r["learned"], r["preset"], f"{r['device']} ({r['machine']})", r["seed"],
             f"{r['handcrafted']}: {r['handcrafted_accuracy']:.4f} in {r['handcrafted_seconds']:.0f} s"
             + (" (cached features)" if r["handcrafted_cached"] else ""),
             f"{r['reached_after_seconds']:.0f} s (epoch {r['reached_at_epoch']})" if r["reached"] else
             f"not reached (best {r['learned_best_accuracy']:.4f})", fmt(r["ratio"], 2),
             fmt(r["first_reach_clock_seconds"], 0), fmt(r["clock_ratio"], 2)] for r in reach_rows(pairs)]
    table = md_table(["learned", "preset", "device", "seed", "best hand-crafted: mean accuracy, mean time",
                      "learned training time to reach it for good", "ratio (hand-crafted time / learned time)",
                      "MLPerf clock to the first evaluation at or above it, s", "ratio on that clock"], rows)
    figures = "\n\n".join(f"![time to accuracy](figures/{p.name})" for p in paths)
    return (f"{figures}\n\n{table}\n\nTimes compare a model ready to predict: the hand-crafted time is features "
            "(training and test images), encoding, fit and prediction (where a row read its features, or part of them, "
            "from the cache, marked, that extraction is left out: that can only shorten the hand-crafted time, so the "
            "ratio is then a lower bound); the learned time is training only, its test prediction left out (a few "
            "seconds), the test images scored after each epoch outside it. Both leave out scoring the training images "
            "and bookkeeping. A learned run counts as reaching the target at the first epoch from which its test "
            "accuracy stays at or above it to the end of its schedule (fixed in advance), so a noisy early crossing "
            "does not count; the test curve still scores, never chooses. A ratio above 1 means the network got there "
            "sooner. Beside it, MLPerf's measure: the clock from the first touch of the data to the first evaluation at "
            "or above the target, with every evaluation, the precision probe and the set-up inside it (rows run before "
            "the clock was recorded show –; `bench/time_to_accuracy.py` runs it over five seeds). Only rows that may "
            "enter a verdict are paired: full data, not truncated, one preset and, on a CPU, one CPU (its model and "
            "bf16 units).")


def experiment_header(exp: dict) -> str:
    seeds = exp.get("seeds")
    budget = f", time budget {exp['time_budget']:g} s per run" if exp.get("time_budget") else ""
    dirty = " (code differed from it)" if exp.get("git_dirty") else ""
    reasons = stale(exp)
    return (f"_{exp['description']}. Size `{exp['size']}`, {exp['dataset']}, on {exp['device']} "
            f"({exp['device_name']}), seeds {seeds}{budget}{', torch.compile' if exp.get('compile') else ''}, "
            f"{exp['seconds']:.0f} s of its own work, started {exp['started_at']}"
            + (f", commit `{exp['git_commit']}`{dirty}" if exp.get("git_commit") else "") + "._"
            + "".join(f"\n\n**Stale:** {why}; rerun it." for why in reasons)
            + concurrency_note(exp) + failed_note(exp))


def failed_note(exp: dict) -> str:
    """The arm runs that failed (they are missing from the rows the verdict reads)."""
    failed = exp.get("failed") or []
    if not failed:
        return ""
    listed = "; ".join(f"{f.get('pipeline')} seed {f.get('seed')}: {f.get('error')}" for f in failed[:5])
    return (f"\n\n**{len(failed)} run(s) failed** and are missing from what follows (`--resume` reruns only "
            f"them): {listed}{' …' if len(failed) > 5 else ''}")


def concurrency_note(exp: dict) -> str:
    """A warning where some of an experiment's runs shared their host with other tasks of the grid."""
    rows = pd.DataFrame(exp.get("rows") or [])
    marks = shared(rows)
    if not marks.any():
        return ""
    return (f"\n\n{SHARED} {int(marks.sum())} of its {len(rows)} runs shared their host with other tasks of the grid "
            f"(up to {int(pd.to_numeric(rows.concurrency, errors='coerce').max())} at once): their times, throughput "
            "and anything measured within a time budget are not comparable with serial runs; accuracies after a "
            "fixed number of epochs are.")


def experiments_section(inp: Inputs) -> str:
    parts = []
    for name in EXPERIMENTS:
        exp, e = inp.experiments.get(name), experiment(name)
        body = isolated(lambda: f"{experiment_header(exp)}\n\n{e.body(inp, exp)}", name) if exp else \
            f"_Not run yet: `python runner.py --experiment {name}`._"
        parts.append(f"### {e.title}\n\n{body}")
    parts.append(f"### Hardware: AlexNet on CPU and GPU\n\n{hardware_section(inp)}")
    return "\n\n".join(parts)


def hardware_section(inp: Inputs) -> str:
    alex = inp.ok[(inp.ok.pipeline == "alexnet") & inp.ok.train_images_per_second.notna()]
    marks = shared(alex)
    rows = [[r.device, r.device_name, r.preset, timed(r.train_images_per_second, 1, marks[r.Index]), r.notes]
            for r in alex.itertuples()]
    missing = [d for d in ("cpu", "cuda") if d not in set(alex.device)]
    note = ("" if not missing else f"\n\nMissing: no AlexNet row on {' or '.join(missing)} yet"
            + (" (run `python runner.py --only alexnet --gpu` on a CUDA machine, then `--report`)."
               if "cuda" in missing else "."))
    table = md_table(["device", "name", "preset", "train img/s", "notes"], rows) if rows else "_No AlexNet rows._"
    return table + note + (f"\n\n{SHARED_NOTE}" if marks.any() else "")


def confusion_section(inp: Inputs) -> str:
    from sklearn.metrics import ConfusionMatrixDisplay
    parts = []
    for family in FAMILIES:
        rows = inp.ok[inp.ok.family == family]
        if rows.empty:
            parts.append(f"_No {family} row._")
            continue
        best = rows.loc[rows.test_accuracy.idxmax()]
        path = artifact_path(inp.results_dir, "predictions", key_of(best))
        if not path.exists():
            parts.append(f"_No predictions saved for `{best.pipeline}`._")
            continue
        pred = np.load(path)
        labels = sorted(set(np.unique(pred["y_true"])) | set(np.unique(pred["y_pred"])))
        plt = _figure_module()
        fig, ax = plt.subplots(figsize=(7.5, 6.5))
        ConfusionMatrixDisplay.from_predictions(pred["y_true"], pred["y_pred"], labels=labels,
                                                display_labels=class_names(best.dataset, labels), ax=ax,
                                                colorbar=False, xticks_rotation=45)
        ax.set_title(f"{best.pipeline} (preset {best.preset}, {best.device}, seed {best.seed}): "
                     f"test accuracy {best.test_accuracy:.4f}")
        save_figure(fig, inp.figures / f"confusion_{family}.png")
        parts.append(f"Best single {family} row: `{best.pipeline}` (preset {best.preset}, {best.device}, seed "
                     f"{best.seed}, test accuracy {fmt(best.test_accuracy)}).\n\n"
                     f"![confusion {family}](figures/confusion_{family}.png)")
    return "\n\n".join(parts)


def class_names(dataset: str, labels: list) -> list[str]:
    if "fashion" in str(dataset).lower() and max(labels) < len(FASHION_CLASSES):
        return [FASHION_CLASSES[i] for i in labels]
    return [str(i) for i in labels]


