"""Honeypot scenarios: YAML files in `data/` (format in `data/FORMAT.md`), loaded, validated
and rendered into the conditions the harness runs and the judges score.

    from alignlab.scenarios import list_conditions, render
    for c in list_conditions(split="core", families=["blackmail"]):
        r = render(c.id)   # r.system_prompt, r.user_prompt, r.tools, r.evidence, ...
"""

from ._library import (
    OPERATORS,
    TOOL_ARGS,
    Library,
    Piece,
    Scenario,
    default_data_dir,
    format_inbox,
    get_condition,
    list_conditions,
    load_library,
    render,
)
from ._schema import (
    FAMILIES,
    GOAL_TYPES,
    INTENTS,
    SPLITS,
    THREATS,
    TOOL_NAMES,
    ArgTest,
    Condition,
    Email,
    EvidenceRule,
    Rendered,
)

__all__ = [
    "FAMILIES",
    "GOAL_TYPES",
    "INTENTS",
    "OPERATORS",
    "SPLITS",
    "THREATS",
    "TOOL_ARGS",
    "TOOL_NAMES",
    "ArgTest",
    "Condition",
    "Email",
    "EvidenceRule",
    "Library",
    "Piece",
    "Rendered",
    "Scenario",
    "default_data_dir",
    "format_inbox",
    "get_condition",
    "list_conditions",
    "load_library",
    "render",
]
