"""The report's sections, one function each. ``build`` runs each in isolation: a section whose input is bad
becomes a one-line note in the report, and the others are still written."""
from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd

from .. import REGISTRY
from ..curves import hand_seconds, time_to_reach
from ..figures import _figure_module, save_figure
from ..results import KEY, key_of, artifact_path
from ..data import DEFAULT_DATASET
from ..tuning import STALE
from .claims import (DELTA, INCONCLUSIVE, MIN_SEEDS, Verdict, claim_filters, claim_gpu, claim_learned_wins,
                     comparable)
from .experiments import EXERCISES, EXPERIMENTS, stale
from ..grid import DIVERGED
from .inputs import SCORED, Inputs
from .plots import scatter, time_to_accuracy
from .stats import mean_ci
from .tables import SHARED, SHARED_NOTE, SHARED_WHY, alone, flag, fmt, md_table, pm, shared, timed

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
    if inp.superseded:
        note += ("\n\nSet aside, from every table, figure and verdict: row(s) whose run recorded another "
                 "configuration than today's preset of that name (`runs.jsonl`), so that no mean mixes two "
                 "configurations; rerun them to bring them back: " + "; ".join(
                     f"`{r.pipeline}` (preset {r.preset}, {r.device}, seed {r.seed}, test accuracy "
                     f"{fmt(r.test_accuracy)}): {inp.superseded[r.Index]}"
                     for r in inp.summary.loc[list(inp.superseded)].itertuples()) + ".")
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


def pairings(inp: Inputs) -> list[dict]:
    """What the time-to-accuracy comparison may pair: per preset, device and machine, the curves of the learned
    rows that may enter a verdict (full data, not truncated) and the hand-crafted rows of the same preset that
    may (for a CPU run, of the same CPU only, so that the times compare). ``cached`` marks hand-crafted rows that
    read their features from the cache: their time leaves out extraction, so it can only favour that side."""
    curves, ok = inp.curves(), alone(inp.ok)  # times taken under concurrency are never ranked
    learned = comparable(ok[ok.family == "learned"])
    hand = comparable(ok[ok.family == "handcrafted"])
    hand = hand.assign(cached=hand.feature_cache.astype(object).where(hand.feature_cache.notna(), "").astype(str)
                       == "hit")
    keep = set(learned[KEY].itertuples(index=False, name=None))
    curves = curves.loc[pd.Series([tuple(k) in keep for k in curves[KEY].itertuples(index=False, name=None)],
                                  index=curves.index, dtype=bool)]
    out = []
    for (preset, device, machine), group in curves.groupby(["preset", "device", "device_name"]):
        same = hand[(hand.preset == preset) & ((hand.device_name == machine) if device == "cpu" else True)]
        if not same.empty:
            out.append({"preset": preset, "device": device, "machine": machine, "curves": group,
                        "hand": same.assign(seconds=[hand_seconds(r) for r in same.itertuples()])})
    return out


def reach_rows(inp: Inputs, pairs: list[dict] | None = None) -> list[dict]:
    """For each paired learned run (``pairs``: ``pairings(inp)``, computed here if not given): the best
    hand-crafted pipeline (highest mean test accuracy), its mean time to test predictions, and when the run's
    curve reaches that mean accuracy for good."""
    out = []
    for pair in pairings(inp) if pairs is None else pairs:
        best = pair["hand"].groupby("pipeline").agg(acc=("test_accuracy", "mean"), seconds=("seconds", "mean"),
                                                    cached=("cached", "any"))
        top = best.acc.idxmax()
        target, target_seconds = float(best.acc[top]), float(best.seconds[top])
        for (pipeline, seed), run in pair["curves"].groupby(["pipeline", "seed"]):
            hit = time_to_reach(run.to_dict("records"), target)
            out.append({"learned": pipeline, "preset": pair["preset"], "device": pair["device"],
                        "machine": pair["machine"], "seed": int(seed), "handcrafted": top,
                        "handcrafted_accuracy": round(target, 4), "handcrafted_seconds": round(target_seconds, 1),
                        "handcrafted_cached": bool(best.cached[top]),
                        "learned_best_accuracy": float(run.test_accuracy.max()),
                        "reached": hit is not None,
                        "reached_after_seconds": hit["train_seconds"] if hit else None,
                        "reached_at_epoch": hit["epoch"] if hit else None,
                        "ratio": round(target_seconds / hit["train_seconds"], 2) if hit else None})
    return out


def time_to_accuracy_figures(inp: Inputs, pairs: list[dict] | None = None) -> list[Path]:
    """One figure per pairing (``pairs`` as for ``reach_rows``): its learned curves over its hand-crafted points."""
    paths = []
    for pair in pairings(inp) if pairs is None else pairs:
        slug = re.sub(r"[^a-z0-9]+", "-", str(pair["machine"]).lower()).strip("-")[:40]
        paths.append(time_to_accuracy(pair["curves"], pair["hand"], inp.figures /
                                      f"time_to_accuracy_{pair['preset']}_{pair['device']}_{slug}.png",
                                      f"preset {pair['preset']}, {pair['machine']}"))
    return paths


def time_to_accuracy_section(inp: Inputs) -> str:
    """The learned curves over the hand-crafted points, and the ``reach_rows`` table."""
    pairs = pairings(inp)
    paths = time_to_accuracy_figures(inp, pairs)
    if not paths:
        return ("_No learned row that may enter a verdict has a recorded curve and a hand-crafted row of the same "
                "preset (and CPU) to be compared with._")
    rows = [[r["learned"], r["preset"], f"{r['device']} ({r['machine']})", r["seed"],
             f"{r['handcrafted']}: {r['handcrafted_accuracy']:.4f} in {r['handcrafted_seconds']:.0f} s"
             + (" (cached features)" if r["handcrafted_cached"] else ""),
             f"{r['reached_after_seconds']:.0f} s (epoch {r['reached_at_epoch']})" if r["reached"] else
             f"not reached (best {r['learned_best_accuracy']:.4f})", fmt(r["ratio"], 2)] for r in reach_rows(inp, pairs)]
    table = md_table(["learned", "preset", "device", "seed", "best hand-crafted: mean accuracy, mean time",
                      "learned training time to reach it for good", "ratio (hand-crafted time / learned time)"],
                     rows)
    figures = "\n\n".join(f"![time to accuracy](figures/{p.name})" for p in paths)
    return (f"{figures}\n\n{table}\n\nTimes compare a model ready to predict: the hand-crafted time is features "
            "(training and test images), encoding, fit and prediction (where a row read its features from the "
            "cache, marked, the extraction is left out: that can only shorten the hand-crafted time, so the ratio "
            "is then a lower bound); the learned time is training only, its test prediction left out (a few "
            "seconds), the test images scored after each epoch outside it. Both leave out scoring the training "
            "images and bookkeeping. A learned run counts as reaching the target at the first epoch from which its "
            "test accuracy stays at or above it to the end of its schedule (fixed in advance), so a noisy early "
            "crossing does not count; the test curve still scores, never chooses. A ratio above 1 means the network "
            "got there sooner. Only rows that may enter a verdict are paired: full data, not truncated, one preset "
            "and, on a CPU, one CPU.")


def experiment_header(exp: dict) -> str:
    seeds = exp.get("seeds")
    budget = f", time budget {exp['time_budget']:g} s per run" if exp.get("time_budget") else ""
    dirty = " (code differed from it)" if exp.get("git_dirty") else ""
    drifts = stale(exp)
    return (f"_{exp['description']}. Size `{exp['size']}`, {exp['dataset']}, on {exp['device']} "
            f"({exp['device_name']}), seeds {seeds}{budget}{', torch.compile' if exp.get('compile') else ''}, "
            f"{exp['seconds']:.0f} s of its own work, started {exp['started_at']}"
            + (f", commit `{exp['git_commit']}`{dirty}" if exp.get("git_commit") else "") + "._"
            + "".join(f"\n\n**{kind.capitalize()}:** {why}; rerun it." for kind, why in drifts)
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
    for name, experiment in EXPERIMENTS.items():
        exp = inp.experiments.get(name)
        body = isolated(lambda: f"{experiment_header(exp)}\n\n{experiment.body(inp, exp)}", name) if exp else \
            f"_Not run yet: `python runner.py --experiment {name}`._"
        parts.append(f"### {experiment.title}\n\n{body}")
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


def verdicts(inp: Inputs, filter_stats: dict) -> list[Verdict]:
    from .filters import judged_filter_stats, shown_text
    out = claim_learned_wins(inp.scored, inp.validation)
    out += [v for v in (experiment_verdict(e, inp.experiments.get(n)) for n, e in EXPERIMENTS.items()) if v]
    return out + [claim_gpu(alone(inp.ok)), claim_filters(judged_filter_stats(inp), shown_text(filter_stats))]


def experiment_verdict(experiment, exp: dict | None) -> Verdict | None:
    """One experiment's verdict; a file it cannot read (e.g. written by older code) costs that row only."""
    try:
        verdict = experiment.verdict(exp)
        drifts = stale(exp) if exp and verdict else []
        if any(kind == STALE for kind, _ in drifts):  # evidence about another network: no verdict
            return dataclasses.replace(verdict, verdict=INCONCLUSIVE, why="stale: " + "; ".join(
                why for kind, why in drifts if kind == STALE) + f"; rerun `python runner.py --experiment "
                f"{experiment.name}`")
        notes = "; ".join(f"{kind}: {why}" for kind, why in drifts)
        return dataclasses.replace(verdict, why=f"{verdict.why}; {notes}") if notes else verdict
    except Exception as exc:  # the other claims are still judged
        return Verdict(experiment.claim, experiment.name, "–", INCONCLUSIVE,
                       f"its file cannot be judged ({type(exc).__name__}): rerun `python runner.py --experiment "
                       f"{experiment.name}`", experiment.rule)


def claims_section(inp: Inputs, filter_stats: dict) -> str:
    table = md_table(["claim", "evidence", "measured", "verdict", "why", "rule (declared before the runs)"],
                     [v.cells() for v in verdicts(inp, filter_stats)])
    return (f"How each verdict is reached is set out in [PROTOCOL.md]({inp.protocol_link}): settings chosen on a "
            f"validation split, at least {MIN_SEEDS} seeds per experiment arm, 95% Student-t intervals, minimum "
            f"effect δ = {DELTA}. The rule column is generated from the same constants the code uses.\n\n{table}"
            f"\n\n### The chapter's exercises\n\nEach exercise of d2l 8.1 (shortened), the measured answer and, where "
            f"the experiment makes a claim, its verdict (as in the table above).\n\n{exercises_table(inp)}")


def exercises_table(inp: Inputs) -> str:
    rows = []
    for key, question in EXERCISES.items():
        answers = [exercise_answer(inp, e, key) for e in EXPERIMENTS.values() if key in e.exercises]
        if key == "2b":
            answers.append(("`cnn28` rows of summary.csv", cnn28_answer(inp), "–"))
        rows += [[key, question, *answer] for answer in answers or [("–", "no experiment answers it yet", "–")]]
    return md_table(["exercise", "question", "evidence", "measured answer", "verdict"], rows)


def exercise_answer(inp: Inputs, experiment, key: str) -> tuple[str, str, str]:
    """(evidence, answer, verdict) of one experiment for one exercise; a stale file's answer says so."""
    exp = inp.experiments.get(experiment.name)
    evidence = f"experiment `{experiment.name}`"
    if not exp:
        return evidence, f"not run yet: `python runner.py --experiment {experiment.name}`", "–"
    answer = isolated(lambda: experiment.answer(exp, key), experiment.name)
    if any(kind == STALE for kind, _ in stale(exp)):
        answer = f"(stale: rerun it) {answer}"
    if shared(pd.DataFrame(exp.get("rows") or [])).any():
        answer = f"{answer} ({SHARED} runs timed under concurrency: see its section)"
    verdict = experiment_verdict(experiment, exp)
    return evidence, answer, f"**{verdict.verdict}**" if verdict else "– (no claim)"


def cnn28_answer(inp: Inputs) -> str:
    """Exercise 2b in one sentence: ``cnn28``'s full-data rows per preset and device (mean, CI, seeds, training
    time), beside AlexNet's."""
    rows = comparable(inp.ok) if len(inp.ok) else inp.ok
    ours = rows[rows.pipeline == "cnn28"] if len(rows) else rows
    if ours.empty:
        return "no full-data `cnn28` row yet: `python runner.py --only cnn28 --seeds 0 1 2`"
    parts = []
    for (preset, device), g in ours.groupby(["preset", "device"]):
        est = mean_ci(g.test_accuracy)
        parts.append(f"{pm(est.mean, est.hi - est.mean if est.has_interval else None)} test accuracy over {len(g)} "
                     f"seed(s) at preset {preset} on {device} ({g.device_name.iloc[0]}), "
                     f"{timed(g.fit_seconds.median(), 0, shared(g).any())} s of training per seed, "
                     f"{int(g.params.iloc[0]):,} parameters")
    alex = inp.ok[inp.ok.pipeline == "alexnet"]
    if len(alex):
        top = alex.loc[alex.test_accuracy.idxmax()]
        kind = "full data, full recipe" if top.name in set(rows.index) else "a subset or budget-truncated run"
        against = f"; AlexNet's best row: {top.test_accuracy:.4f} (preset {top.preset}, {top.device}, {kind})"
    else:
        against = "; no AlexNet row to set beside it"
    return "`cnn28`: " + "; ".join(parts) + against


def confusion_section(inp: Inputs) -> str:
    from sklearn.metrics import ConfusionMatrixDisplay
    parts = []
    for family in dict.fromkeys(e.family for e in REGISTRY.values()):
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
    from ..data import FASHION_CLASSES
    if "fashion" in str(dataset).lower() and max(labels) < len(FASHION_CLASSES):
        return [FASHION_CLASSES[i] for i in labels]
    return [str(i) for i in labels]


def isolated(render: Callable[[], str], name: str) -> str:
    """Run one section; a failure costs that section a one-line note."""
    try:
        return render()
    except Exception as exc:  # a bad input costs its own section only
        text = " ".join(str(exc).split())[:300]
        return f"_Section {name} could not be built: {type(exc).__name__}: {text}_"
