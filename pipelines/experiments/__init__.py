"""The report's experiments: ``engine`` (sizes, arms, plans, resume, files, staleness), ``base`` (the
``Experiment`` interface and shared report pieces) and one module per experiment, each registered by one line in
``pipelines.EXPERIMENTS`` and naming its own arms."""
from __future__ import annotations

from .. import EXPERIMENTS, experiment


def experiment_tunings() -> list:
    """Every experiment's grids (``tuning.Tuning``), in the registry's order."""
    return [t for name in EXPERIMENTS for t in experiment(name).tunings()]
