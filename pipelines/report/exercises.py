"""The chapter's exercises (d2l 8.1) and their measured answers: each answered by the experiments that list it in
their ``exercises`` (2b by the ``cnn28`` pipeline's rows)."""
from __future__ import annotations

import pandas as pd

from .. import EXPERIMENTS, experiment
from ..analysis.claims import comparable
from ..analysis.stats import mean_ci
from ..analysis.tables import SHARED, md_table, pm, shared, timed
from ..experiments.engine import stale
from .inputs import Inputs
from .isolation import isolated

EXERCISES = {
    "1": "Increase the number of epochs. Compared with LeNet, how are the results different? Why?",
    "2a": "AlexNet may be too complex for Fashion-MNIST: simplify it to train faster without losing much accuracy.",
    "2b": "Design a better model that works directly on 28×28 images.",
    "3": "Modify the batch size, and observe the changes in accuracy and GPU memory.",
    "4a": "What is the dominant part of AlexNet's memory footprint?",
    "4b": "What is the dominant part of its computation?",
    "4c": "How about memory bandwidth when computing the results?",
    "5": "Apply dropout and ReLU to LeNet-5. Does it improve? How about preprocessing?",
}


def exercises_table(inp: Inputs) -> str:
    rows = []
    for key, question in EXERCISES.items():
        answers = [exercise_answer(inp, experiment(n), key) for n in EXPERIMENTS if key in experiment(n).exercises]
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
    if stale(exp):
        answer = f"(stale: rerun it) {answer}"
    if shared(pd.DataFrame(exp.get("rows") or [])).any():
        answer = f"{answer} ({SHARED} runs timed under concurrency: see its section)"
    verdict = experiment.judged(exp)
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
