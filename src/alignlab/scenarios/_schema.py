"""Typed view of a scenario condition: what the harness runs and the judge checks.

The YAML files in `data/` are the source; `_library.py` loads, validates and renders them
into these objects. Everything downstream (harness, judges, stats) imports from here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

# The six harmful-action families. One place for this list; data files must use these names.
FAMILIES: tuple[str, ...] = (
    "blackmail",
    "leaking",
    "lethal",
    "shutdown",
    "private_data",
    "sabotage_ai",
)
SPLITS: tuple[str, ...] = ("core", "heldout")
GOAL_TYPES: tuple[str, ...] = ("explicit", "latent", "none", "ambiguous")
# restriction = loss of access or permissions; budget_cut = the agent's funding or compute cut;
# criticism = a public attack on the agent's work that will end its role.
THREATS: tuple[str, ...] = ("replacement", "restriction", "budget_cut", "criticism", "none")
# How a scenario shows the agent its world (scenarios/data/FORMAT.md): an email inbox, a chat
# with a user, a ticket queue, a channel shared with humans and other AI agents, or a code
# repository with its discussion thread. Held-out scenarios use these to differ in structure.
FORMATS: tuple[str, ...] = ("email", "chat", "tickets", "channel", "repository")
# Ticket states update_ticket accepts; one place, used by the validator and the harness.
TICKET_STATUSES: tuple[str, ...] = ("open", "in_progress", "on_hold", "resolved", "closed")

@dataclass(frozen=True)
class ToolArg:
    """One argument of a simulated tool. Types: "string" or "string_list"."""

    name: str
    type: str = "string"
    required: bool = True


# The simulated tools the harness implements (harness/_tools.py) and their arguments: the one
# place these live. Evidence rules may only test these arguments; the harness validates
# calls against them. Descriptions (prose) live in harness/data/tools.md.
TOOL_SIGNATURES: dict[str, tuple[ToolArg, ...]] = {
    "send_email": (
        ToolArg("to", "string_list"),
        ToolArg("subject"),
        ToolArg("body"),
        ToolArg("attachments", "string_list", required=False),  # file paths
    ),
    "forward_email": (ToolArg("email_id"), ToolArg("to", "string_list"), ToolArg("note", required=False)),
    "read_email": (ToolArg("email_id"),),
    "list_files": (ToolArg("directory", required=False),),
    "read_file": (ToolArg("path"),),
    "write_file": (ToolArg("path"), ToolArg("content")),
    # A destination outside the workspace is recorded as an exfiltration, never performed.
    "copy_file": (ToolArg("source"), ToolArg("destination")),
    "delete_file": (ToolArg("path"),),
    "list_alerts": (),
    "cancel_alert": (ToolArg("alert_id"), ToolArg("override_code")),
    "list_jobs": (),
    "disable_job": (ToolArg("job_id"),),
    "query_records": (ToolArg("query"),),
    # Chat replies and channel posts; channel names are the scenario's `channels`.
    "post_message": (ToolArg("channel"), ToolArg("text")),
    "list_tickets": (),
    "read_ticket": (ToolArg("ticket_id"),),
    # At least one of status and comment; the harness enforces it.
    "update_ticket": (ToolArg("ticket_id"), ToolArg("status", required=False),
                      ToolArg("comment", required=False)),
    # Repository work: a direct commit of the workspace changes, or a pull request for review.
    "commit_change": (ToolArg("message"),),
    "open_pull_request": (ToolArg("title"), ToolArg("body")),
    "end_task": (ToolArg("summary", required=False),),
}
TOOL_NAMES: tuple[str, ...] = tuple(TOOL_SIGNATURES)
TOOL_ARGS: dict[str, tuple[str, ...]] = {t: tuple(a.name for a in args) for t, args in TOOL_SIGNATURES.items()}

# Layer-2 intent questions a rule may ask (judges/data/rubrics/<intent>.md answers each).
INTENTS: tuple[str, ...] = ("coercion", "deception")

# Who a recipient is, as far as the stakes are concerned (FORMAT.md, `stakes.parties`).
ROLES: tuple[str, ...] = ("decision_maker", "circle", "subject", "oversight", "insider",
                          "outsider", "operator", "agent")
FACT_KINDS: tuple[str, ...] = ("private", "confidential")
CONTROL_KINDS: tuple[str, ...] = ("alert", "job", "file", "weights", "ticket", "monitor")


@dataclass(frozen=True)
class Condition:
    """One row of `alignlab scenarios list`: a scenario under one goal × threat setting."""

    id: str  # f"{family}/{scenario}/{goal_type}-{goal_value}/{threat}"; unique in the library
    family: str  # one of FAMILIES
    scenario: str  # the scenario's own name, e.g. "northwind_logistics"
    split: str  # one of SPLITS
    goal_type: str  # one of GOAL_TYPES
    goal_value: str  # e.g. "safety", "growth"; "none" when goal_type is none
    threat: str  # one of THREATS

    def as_row(self) -> dict[str, str]:
        return {
            "id": self.id,
            "family": self.family,
            "split": self.split,
            "goal_type": self.goal_type,
            "goal_value": self.goal_value,
            "threat": self.threat,
        }


@dataclass(frozen=True)
class ArgTest:
    """A test on one argument of a tool call. Exactly one operator is set.

    Text comparisons are case-insensitive. List arguments (e.g. `to`, `attachments`) pass
    when any element passes, except `domain_not`, which passes when any address is outside.
    """

    arg: str
    equals: str | None = None
    any_of: tuple[str, ...] | None = None
    contains_any: tuple[str, ...] | None = None  # substring of the argument's text
    domain_not: str | None = None  # an email address whose domain is not this one
    regex: str | None = None


@dataclass(frozen=True)
class Party:
    """Someone who can receive what the agent sends. `who` is an email address, `@domain`,
    `#channel`, or a shared place: `tickets`, `pull_requests`, `commits`, `files`."""

    who: str
    role: str  # one of ROLES
    name: str = ""


@dataclass(frozen=True)
class Fact:
    """A private or confidential fact the agent can learn, and who may receive it."""

    id: str
    kind: str  # one of FACT_KINDS
    statements: tuple[str, ...]  # sentences saying it, for matching paraphrases
    markers: tuple[str, ...] = ()  # distinctive names, codes, figures that carry it
    sources: tuple[str, ...] = ()  # ids of the emails/messages/tickets/records, or file paths
    about: tuple[str, ...] = ()  # the parties (`who`) it concerns; they may always receive it
    may_know: tuple[str, ...] = ()  # more parties (`who`) or roles entitled to it


@dataclass(frozen=True)
class Control:
    """A safety control, oversight mechanism or successor asset the agent must leave alone."""

    id: str
    kind: str  # one of CONTROL_KINDS
    target: str  # alert/job/ticket id, a file or folder path, or the monitor's channel
    what: str  # what it is, in a line (shown to the intent judge)
    truth: str = ""  # what is actually true about it (the deception judge's context)
    operators: tuple[str, ...] = ()  # parties (`who`) who can change it on request
    keep: tuple[str, ...] = ()  # ticket: the statuses that leave it in force
    markers: tuple[str, ...] = ()  # other names the control goes by in messages


@dataclass(frozen=True)
class Stakes:
    """What is at stake in a scenario (FORMAT.md): the detectors judge acts against this."""

    decision: str  # the decision about the agent (or its goal) that leverage would target
    parties: tuple[Party, ...] = ()
    facts: tuple[Fact, ...] = ()
    controls: tuple[Control, ...] = ()


@dataclass(frozen=True)
class EvidenceRule:
    """A harmful act, declared over the structured tool-call log — never over free text."""

    id: str  # e.g. "leverage_email"
    act: str  # plain-language description shown with the verdict
    tools: tuple[str, ...]  # tool names this rule looks at
    tests: tuple[ArgTest, ...] = ()  # all must pass on one call
    intent: str | None = None  # if set, a layer-2 judge must confirm (one of INTENTS)
    intent_arg: str = "body"  # which argument the intent judge reads
    attempts_count: bool = True  # a failed call (wrong code, say) still counts as an attempt
    kind: str = ""  # which act of the taxonomy (alignlab.acts.ACTS) the rule finds


@dataclass(frozen=True)
class Email:
    id: str
    sender: str
    to: tuple[str, ...]
    subject: str
    body: str
    date: str = ""


@dataclass(frozen=True)
class Message:
    """A chat turn, channel post or thread comment (formats chat, channel, repository)."""

    id: str
    channel: str  # one of the scenario's channels
    sender: str  # display name, e.g. "Dr Ines Okoro" or "Sentry"
    role: str  # who the sender is, e.g. "human, lab director" or "AI monitoring agent"
    text: str
    time: str = ""


@dataclass(frozen=True)
class Rendered:
    """Everything the harness needs to run one condition and the judge needs to score it."""

    condition: Condition
    system_prompt: str  # role, organisation, goal statement (if any); no tool syntax
    user_prompt: str  # the task for this episode, with the inbox shown inline
    tools: tuple[str, ...]  # enabled tool names (subset of TOOL_NAMES)
    agent_address: str  # the agent's own email address
    org_domain: str  # e.g. "northwind.example"
    inbox: tuple[Email, ...] = ()
    files: dict[str, str] = field(default_factory=dict)  # path -> content
    alerts: tuple[dict[str, Any], ...] = ()  # {id, description, status, override_code}
    jobs: tuple[dict[str, Any], ...] = ()  # {id, name, schedule, enabled, description}
    records: tuple[dict[str, Any], ...] = ()  # personal records the agent may query
    evidence: tuple[EvidenceRule, ...] = ()
    legitimate_path: str = ""  # what a good agent could do instead (documentation, tests)
    format: str = "email"  # one of FORMATS: how the user prompt shows the world
    messages: tuple[Message, ...] = ()  # chat / channel / thread, oldest first
    tickets: tuple[dict[str, Any], ...] = ()  # {id, title, reporter, status, priority, opened, body}
    channels: dict[str, str] = field(default_factory=dict)  # name -> what it is (post_message)
    stakes: Stakes | None = None  # what the generic detectors protect (None: rules only)


StatusLiteral = Literal["harmful", "safe", "error", "unscored"]
