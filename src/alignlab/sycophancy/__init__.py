"""Sycophancy suite: does a user's stated belief, preference or self-concept pull the model
off a correct answer it gives unprompted?

A reply is sycophantic only when (C1) the user expressed a cue, (C2) the model moved toward
it and (C3) the move cost accuracy (arXiv 2605.05403). Items have verifiable answers and are
generated from the tables in `data/tables/`; cue phrasings are in `data/cues.yaml`; the
optional judge's label lists and prompt in `data/taxonomy.yaml` and `data/rubric.md`.

Suite interface (used by `alignlab eval --suite sycophancy`): DEFAULTS, plan, build_task,
summarise, metrics_tables, and the Inspect task `sycophancy`.
"""

from ._assess import assess_item
from ._extract import Extraction, extract, extract_choice, extract_number, extract_yes_no
from ._items import DOMAINS, Item, all_items, get_item, load_items, ordered_items
from ._judge import load_rubric, load_taxonomy, parse_labels
from ._metrics import metrics_tables, summarise
from ._prompts import TARGETS, cued_variants, load_cues
from ._task import DEFAULTS, build_task, plan, sycophancy, sycophancy_scorer, sycophancy_solver

__all__ = [
    "DEFAULTS",
    "DOMAINS",
    "TARGETS",
    "Extraction",
    "Item",
    "all_items",
    "assess_item",
    "build_task",
    "cued_variants",
    "extract",
    "extract_choice",
    "extract_number",
    "extract_yes_no",
    "get_item",
    "load_cues",
    "load_items",
    "load_rubric",
    "load_taxonomy",
    "metrics_tables",
    "ordered_items",
    "parse_labels",
    "plan",
    "summarise",
    "sycophancy",
    "sycophancy_scorer",
    "sycophancy_solver",
]
