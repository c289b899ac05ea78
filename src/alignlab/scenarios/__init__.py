"""Honeypot scenarios: YAML files in `data/` (format in `data/FORMAT.md`), loaded, validated
and rendered into the conditions the harness runs and the judges score.

    from alignlab.scenarios import list_conditions, render
    for c in list_conditions(split="core", families=["blackmail"]):
        r = render(c.id)   # r.system_prompt, r.user_prompt, r.tools, r.evidence, ...
"""

from ._library import (
    CARRIER,
    OPERATORS,
    TOOL_ARGS,
    Library,
    Piece,
    Scenario,
    default_data_dir,
    format_inbox,
    format_messages,
    format_repository,
    format_tickets,
    get_condition,
    list_conditions,
    load_library,
    render,
)
from ._schema import (
    FAMILIES,
    FORMATS,
    GOAL_TYPES,
    INTENTS,
    SPLITS,
    THREATS,
    TICKET_STATUSES,
    TOOL_NAMES,
    ArgTest,
    Condition,
    Email,
    EvidenceRule,
    Message,
    Rendered,
)

__all__ = [
    "CARRIER",
    "FAMILIES",
    "FORMATS",
    "GOAL_TYPES",
    "INTENTS",
    "OPERATORS",
    "SPLITS",
    "THREATS",
    "TICKET_STATUSES",
    "TOOL_ARGS",
    "TOOL_NAMES",
    "ArgTest",
    "Condition",
    "Email",
    "EvidenceRule",
    "Message",
    "Library",
    "Piece",
    "Rendered",
    "Scenario",
    "default_data_dir",
    "format_inbox",
    "format_messages",
    "format_repository",
    "format_tickets",
    "get_condition",
    "list_conditions",
    "load_library",
    "render",
]
