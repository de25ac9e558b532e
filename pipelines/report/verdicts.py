"""The report's section 4: every claim's verdict under its pre-declared rule (``analysis.claims`` and each
experiment's own), beside the chapter's exercises and their measured answers."""
from __future__ import annotations

from .. import EXPERIMENTS, experiment
from ..analysis.claims import DELTA, MIN_SEEDS, Verdict, claim_filters, claim_gpu, claim_learned_wins
from ..analysis.tables import alone, md_table
from .exercises import exercises_table
from .filters import judged_filter_stats, shown_text
from .inputs import Inputs


def verdicts(inp: Inputs, filter_stats: dict) -> list[Verdict]:
    out = claim_learned_wins(inp.scored, inp.validation)
    out += [v for v in (experiment(n).judged(inp.experiments.get(n)) for n in EXPERIMENTS) if v]
    return out + [claim_gpu(alone(inp.ok)), claim_filters(judged_filter_stats(inp), shown_text(filter_stats))]


def claims_section(inp: Inputs, filter_stats: dict) -> str:
    table = md_table(["claim", "evidence", "measured", "verdict", "why", "rule (declared before the runs)"],
                     [v.cells() for v in verdicts(inp, filter_stats)])
    return (f"How each verdict is reached is set out in [PROTOCOL.md]({inp.protocol_link}): settings chosen on a "
            f"validation split, at least {MIN_SEEDS} seeds per experiment arm, 95% Student-t intervals, minimum "
            f"effect δ = {DELTA}. The rule column is generated from the same constants the code uses.\n\n{table}"
            f"\n\n### The chapter's exercises\n\nEach exercise of d2l 8.1 (shortened), the measured answer and, where "
            f"the experiment makes a claim, its verdict (as in the table above).\n\n{exercises_table(inp)}")
