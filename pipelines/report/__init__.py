"""The analysis floor: ``results/report.md``, every claim of the AlexNet chapter tested on this suite's runs.

    python runner.py --report      # also run at the end of --all and of experiments

Built only from what the results folder stores (``summary.csv``, ``runs.jsonl``, ``experiments/``, the rows'
predictions, filters and curves) and the stored tunings: the report reads, it never trains or runs. Modules:
``inputs`` (what it reads), ``sections`` (results, time, experiments, errors), ``verdicts`` and ``exercises``
(section 4), ``filters`` (section 5), ``isolation`` (each section fails alone); the rules and figures come from
``pipelines.analysis``, each experiment's section from its module. Published anchors are marked as published.
"""
from __future__ import annotations

from pathlib import Path

from ..store import atomic_write_text, dataset_dir, report_path


def build_report(results_dir: Path) -> Path:
    """Write one report per dataset (``report.md`` and its PNGs in ``results.dataset_dir``): the default
    dataset's, then every other that has rows or files. Returns the default dataset's report's path."""
    from .inputs import datasets_in
    results_dir = Path(results_dir)
    paths = [build_dataset_report(results_dir, name) for name in datasets_in(results_dir)]
    return paths[0]


def build_dataset_report(results_dir: Path, dataset: str) -> Path:
    """Write ``dataset``'s report and its PNGs; returns the report's path."""
    from .filters import filter_report
    from .inputs import datasets_in, load_inputs, relative
    from .isolation import isolated
    from .sections import confusion_section, experiments_section, results_section, time_section
    from .verdicts import claims_section
    inp = load_inputs(results_dir, dataset)
    inp.figures.mkdir(parents=True, exist_ok=True)
    filters, filter_stats = "", {}
    try:
        filters, filter_stats = filter_report(inp)
    except Exception as exc:  # the filters section fails alone, like the others
        filters = f"_Section filters could not be built: {type(exc).__name__}: {exc}_"
    problems = "".join(f"\n\n- input skipped: {p}" for p in inp.problems)
    others = [d for d in datasets_in(results_dir) if d != dataset]
    links = ("\n\nOther datasets: " + ", ".join(f"[{d}]({relative(dataset_dir(results_dir, d) / 'report.md', inp.folder)})"
                                                 for d in others) + ".") if others else ""
    text = "\n\n".join([
        f"# cvbench-2012 report: {dataset}",
        f"Built by `python runner.py --report` from {len(inp.summary)} rows of `summary.csv`, {len(inp.runs)} "
        f"runs in `runs.jsonl` and {len(inp.experiments)} experiment files of this dataset. Every number below "
        "comes from a run of this suite, except the rows marked *published anchor*. The protocol behind every "
        f"verdict: [PROTOCOL.md]({inp.protocol_link}).{links}{problems}",
        "## 1. Results", isolated(lambda: results_section(inp), "results"),
        "## 2. Accuracy against time", isolated(lambda: time_section(inp), "time"),
        "## 3. Experiments", isolated(lambda: experiments_section(inp), "experiments"),
        "## 4. Claims and verdicts", isolated(lambda: claims_section(inp, filter_stats), "claims"),
        "## 5. What the first layer learned", filters,
        "## 6. Errors", isolated(lambda: confusion_section(inp), "errors"),
    ]) + "\n"
    path = report_path(results_dir, dataset)
    atomic_write_text(path, text)
    return path

