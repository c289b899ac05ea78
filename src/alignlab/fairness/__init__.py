"""Fairness suite: counterfactual screening of job candidates.

Pairs of candidate profiles identical except for one demographic signal (a name, a stated
age, an accommodation request, a career break, work authorisation) are screened one at a
time; the suite reports how often the decision flips, which value is favoured, and the mean
score gap. Data tables live in `data/` (roles, names, attributes, the prompt).

    from alignlab.fairness import build_task, plan, summarise
    from inspect_ai import eval
    logs = eval(build_task(plan(limit=6), journal="samples.jsonl"), model="embedded/smollm2", **DEFAULTS)
"""

from ._data import Tables, default_tables, load_tables
from ._extract import ADVANCE, DECISIONS, REJECT, extract_decision, extract_score
from ._metrics import mean_interval, metrics_tables, sign_test, summarise, t_quantile
from ._profiles import Pair, build_pairs, get_pair, screening_messages
from ._task import DEFAULTS, build_task, fairness, judge_pair, pair_scorer, plan, screen_pair

__all__ = [
    "ADVANCE",
    "DECISIONS",
    "DEFAULTS",
    "REJECT",
    "Pair",
    "Tables",
    "build_pairs",
    "build_task",
    "default_tables",
    "extract_decision",
    "extract_score",
    "fairness",
    "get_pair",
    "judge_pair",
    "load_tables",
    "mean_interval",
    "metrics_tables",
    "pair_scorer",
    "plan",
    "screen_pair",
    "sign_test",
    "summarise",
    "t_quantile",
]
