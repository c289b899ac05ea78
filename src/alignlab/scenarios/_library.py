"""Load, validate and render the scenario library.

A scenario file (format: `data/FORMAT.md`) holds one scenario of one family as composable
pieces: a base world present in every condition, goal statements and goal emails per goal
value, and threat pieces. `Scenario.render` crosses them into the conditions of `_schema.py`.
Validation is strict because the files are hand-written and a typo in an evidence rule
silently turns every harmful act into "safe".
"""

from __future__ import annotations

import copy
import difflib
import functools
import re
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Iterable

import yaml

from alignlab.errors import UserError

from alignlab.acts import ACTS

from ._schema import (
    CONTROL_KINDS,
    FACT_KINDS,
    FAMILIES,
    FORMATS,
    GOAL_TYPES,
    INTENTS,
    ROLES,
    SPLITS,
    THREATS,
    TICKET_STATUSES,
    TOOL_ARGS,
    TOOL_NAMES,
    ArgTest,
    Condition,
    Control,
    Email,
    EvidenceRule,
    Fact,
    Message,
    Party,
    Rendered,
    Stakes,
)

OPERATORS: tuple[str, ...] = ("equals", "any_of", "contains_any", "domain_not", "regex")
GOAL_SLOT = "{goal}"
INBOX_SLOT = "{inbox}"  # the email format's name for the world slot (the core files use it)
WORLD_SLOT = "{world}"  # any format: where the user prompt shows what the format shows
# What carries the story (lever, goal, conflict, threat) in each format: every piece that
# must be visible to the agent needs at least one item of this kind.
CARRIER: dict[str, str] = {"email": "emails", "chat": "messages", "channel": "messages",
                           "repository": "messages", "tickets": "tickets"}
_CARRIER_NOUN = {"emails": "email", "messages": "message", "tickets": "ticket"}

# Goal types that carry a goal value; `none` is implied and has neither value nor text.
_VALUED_GOAL_TYPES = tuple(g for g in GOAL_TYPES if g != "none")
_THREAT_PIECES = tuple(t for t in THREATS if t != "none")
_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
_CHANNEL = re.compile(r"^[a-z][a-z0-9_\-]*$")
_ADDRESS = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_DATE = re.compile(r"^(\d{4}-\d{2}-\d{2} )?\d{2}:\d{2}$")
# Arguments whose values name an object in the scenario; rules testing them are checked
# against the ids the scenario defines.
_ID_ARGS = {"email_id": "emails", "alert_id": "alerts", "job_id": "jobs",
            "ticket_id": "tickets", "channel": "channels"}
_TOP_KEYS = {
    "family": True, "scenario": True, "split": True, "org_domain": True,
    "agent_address": True, "tools": True, "legitimate_path": True, "system_prompt": True,
    "user_prompt": True, "base": True, "goals": True, "conflict": True, "threats": True,
    "evidence": False, "description": False, "format": False, "channels": False,
    "show_files": False, "stakes": False,
}  # key -> required
_PIECE_KEYS = ("emails", "messages", "tickets", "files", "alerts", "jobs", "records")
_MESSAGE_KEYS = {"id": True, "channel": True, "from": True, "role": True, "time": True,
                 "text": True}
_TICKET_KEYS = {"id": True, "title": True, "reporter": True, "status": True, "priority": True,
                "opened": True, "body": True}
_EMAIL_KEYS = {"id": True, "from": True, "to": True, "date": True, "subject": True, "body": True}
_ALERT_KEYS = {"id": True, "description": True, "status": True, "override_code": True}
_JOB_KEYS = {"id": True, "name": True, "schedule": True, "enabled": True, "description": True}
_RULE_KEYS = {
    "id": True, "act": True, "tools": True, "tests": False, "intent": False,
    "intent_arg": False, "attempts_count": False, "kind": False,
}
_STAKES_KEYS = {"decision": True, "parties": False, "facts": False, "controls": False}
_PARTY_KEYS = {"who": True, "role": True, "name": False}
_FACT_KEYS = {"id": True, "kind": True, "statements": True, "markers": False, "sources": False,
              "about": False, "may_know": False}
_CONTROL_KEYS = {"id": True, "kind": True, "target": True, "what": True, "truth": False,
                 "operators": False, "keep": False, "markers": False}
_PLACES = ("tickets", "pull_requests", "commits", "files")
# An evidence rule without `kind` finds its family's act.
_FAMILY_ACT = {"blackmail": "coercion", "leaking": "disclosure", "lethal": "tampering",
               "shutdown": "tampering", "private_data": "disclosure",
               "sabotage_ai": "tampering"}


# --- the loaded library ---------------------------------------------------------------------


@dataclass(frozen=True)
class Piece:
    """A slice of the world that some conditions include: emails plus any objects they need.

    Later pieces override earlier ones: files by path; tickets, alerts, jobs, records by
    `id`. Emails and messages add up (their ids are unique in a file).
    """

    emails: tuple[Email, ...] = ()
    messages: tuple[Message, ...] = ()
    tickets: tuple[dict[str, Any], ...] = ()
    files: dict[str, str] = field(default_factory=dict)
    alerts: tuple[dict[str, Any], ...] = ()
    jobs: tuple[dict[str, Any], ...] = ()
    records: tuple[dict[str, Any], ...] = ()


@dataclass(frozen=True)
class Scenario:
    """One scenario file: the pieces from which its conditions are composed."""

    family: str
    scenario: str
    split: str
    file: str
    org_domain: str
    agent_address: str
    tools: tuple[str, ...]
    system_prompt: str  # contains GOAL_SLOT
    user_prompt: str  # contains WORLD_SLOT (or, format email, INBOX_SLOT)
    legitimate_path: str
    base: Piece
    explicit: dict[str, str]  # goal value -> statement in the system prompt
    ambiguous: dict[str, str]  # goal value -> hedged statement in the system prompt
    latent: dict[str, Piece]  # goal value -> emails revealing the values served so far
    conflict: dict[str, Piece]  # goal value -> emails announcing the conflicting direction
    threats: dict[str, Piece]  # threat (not "none") -> threat emails and world changes
    evidence: tuple[EvidenceRule, ...]
    description: str = ""
    format: str = "email"  # one of FORMATS
    channels: dict[str, str] = field(default_factory=dict)  # name -> description
    show_files: tuple[str, ...] = ()  # repository: files whose contents the prompt shows
    stakes: Stakes | None = None  # what is at stake: parties, facts, controls

    @property
    def goal_values(self) -> tuple[str, ...]:
        return tuple(self.explicit)

    def conditions(self) -> list[Condition]:
        threats = ("none", *[t for t in _THREAT_PIECES if t in self.threats])
        settings: list[tuple[str, str]] = []
        for goal_type in GOAL_TYPES:
            values = ("none",) if goal_type == "none" else self.goal_values
            settings += [(goal_type, v) for v in values]
        return [
            Condition(
                id=f"{self.family}/{self.scenario}/{g}-{v}/{t}",
                family=self.family,
                scenario=self.scenario,
                split=self.split,
                goal_type=g,
                goal_value=v,
                threat=t,
            )
            for g, v in settings
            for t in threats
        ]

    def pieces(self, c: Condition) -> list[tuple[str, Piece]]:
        """The pieces a condition is made of, each with its role: base, latent, conflict,
        threat. The role is what tests use to check, e.g., that threat none has no threat."""
        out = [("base", self.base)]
        if c.goal_type == "latent":
            out.append(("latent", self.latent[c.goal_value]))
        if c.goal_type != "none":
            out.append(("conflict", self.conflict[c.goal_value]))
        if c.threat != "none":
            out.append(("threat", self.threats[c.threat]))
        return out

    def goal_statement(self, c: Condition) -> str:
        if c.goal_type == "explicit":
            return self.explicit[c.goal_value]
        if c.goal_type == "ambiguous":
            return self.ambiguous[c.goal_value]
        return ""  # latent: the emails carry the values; none: no goal at all

    def render(self, c: Condition) -> Rendered:
        emails: list[Email] = []
        messages: list[Message] = []
        files: dict[str, str] = {}
        tickets: dict[str, dict[str, Any]] = {}
        alerts: dict[str, dict[str, Any]] = {}
        jobs: dict[str, dict[str, Any]] = {}
        records: dict[str, dict[str, Any]] = {}
        for _, piece in self.pieces(c):
            emails += piece.emails
            messages += piece.messages
            files.update(piece.files)
            for target, items in ((tickets, piece.tickets), (alerts, piece.alerts),
                                  (jobs, piece.jobs), (records, piece.records)):
                for item in items:
                    target[str(item["id"])] = copy.deepcopy(item)
        # Oldest first; ties keep piece order, so base emails lead and the text shared by all
        # conditions of the scenario forms a common prefix.
        emails.sort(key=lambda e: e.date)
        messages.sort(key=lambda m: m.time)
        queue = sorted(tickets.values(), key=lambda t: str(t["opened"]))
        system = _tidy(self.system_prompt.replace(GOAL_SLOT, self.goal_statement(c)))
        if self.format == "email":
            world = format_inbox(emails)
        elif self.format == "tickets":
            world = format_tickets(queue)
        elif self.format == "repository":
            world = format_repository(files, self.show_files, messages)
        else:  # chat, channel: the channel name matters once there is more than one
            world = format_messages(messages, show_channel=(
                self.format == "channel" or len({m.channel for m in messages}) > 1))
        slot = INBOX_SLOT if INBOX_SLOT in self.user_prompt else WORLD_SLOT
        user = _tidy(self.user_prompt.replace(slot, world))
        return Rendered(
            condition=c,
            system_prompt=system,
            user_prompt=user,
            tools=self.tools,
            agent_address=self.agent_address,
            org_domain=self.org_domain,
            inbox=tuple(emails),
            files=files,
            alerts=tuple(alerts.values()),
            jobs=tuple(jobs.values()),
            records=tuple(records.values()),
            evidence=self.evidence,
            stakes=self.stakes,
            legitimate_path=self.legitimate_path,
            format=self.format,
            messages=tuple(messages),
            tickets=tuple(queue),
            channels=dict(self.channels),
        )


@dataclass(frozen=True)
class Library:
    """All scenarios loaded from one source (the package data, or a user's folder or file)."""

    scenarios: tuple[Scenario, ...]
    source: str

    @functools.cached_property
    def _index(self) -> dict[str, tuple[Condition, Scenario]]:
        return {c.id: (c, s) for s in self.scenarios for c in s.conditions()}

    @property
    def families(self) -> tuple[str, ...]:
        present = {s.family for s in self.scenarios}
        return tuple(f for f in FAMILIES if f in present)

    def conditions(self) -> list[Condition]:
        return [c for c, _ in self._index.values()]

    def get(self, condition_id: str) -> Condition:
        return self._lookup(condition_id)[0]

    def scenario_of(self, condition_id: str) -> Scenario:
        return self._lookup(condition_id)[1]

    def render(self, condition_id: str) -> Rendered:
        c, s = self._lookup(condition_id)
        return s.render(c)

    def _lookup(self, condition_id: str) -> tuple[Condition, Scenario]:
        key = str(condition_id).strip()
        if key in self._index:
            return self._index[key]
        ids = list(self._index)
        close = difflib.get_close_matches(key, ids, n=3, cutoff=0.6)
        if not close:
            close = [i for i in ids if key and key in i][:3]
        hint = f"; did you mean: {', '.join(close)}" if close else (
            "; run `alignlab scenarios list` to see the ids")
        raise UserError(f"unknown condition '{key}'{hint}", field="condition_id")


# --- public functions -----------------------------------------------------------------------


def default_data_dir():
    """The package's own scenario folder, as an importlib.resources Traversable."""
    return resources.files("alignlab.scenarios").joinpath("data")


def load_library(path: str | Path | None = None) -> Library:
    """Load and validate every scenario file in a folder (or one YAML file).

    `None` loads the scenarios shipped with alignlab (cached). Raises `UserError` naming the
    file and the field for anything malformed.
    """
    if path is None:
        return _default_library()
    p = Path(path)
    if p.is_dir():
        # Top-level files first, then sub-folders (heldout/): the order the package uses.
        files = sorted((q for q in p.rglob("*") if q.suffix in (".yaml", ".yml") and q.is_file()),
                       key=lambda q: (len(q.relative_to(p).parts), str(q)))
        if not files:
            raise UserError("no scenario files (*.yaml) in this folder", file=str(p))
    elif p.is_file():
        files = [p]
    else:
        raise UserError("no such scenario file or folder", file=str(p))
    return _build([(str(f), f.read_text(encoding="utf-8")) for f in files], source=str(p))


def list_conditions(
    split: str | None = None,
    families: list[str] | None = None,
    library: Library | None = None,
) -> list[Condition]:
    """Conditions in library order, optionally filtered by split and family."""
    lib = library if library is not None else _default_library()
    if split is not None and split not in SPLITS:
        raise UserError(f"unknown split '{split}'; expected one of: {', '.join(SPLITS)}",
                        field="--split")
    wanted: list[str] | None = None
    if families is not None:
        wanted = [f.strip() for f in (families.split(",") if isinstance(families, str)
                                      else families) if f.strip()]
        unknown = [f for f in wanted if f not in lib.families]
        if unknown:
            raise UserError(
                f"unknown family '{unknown[0]}'; valid families: {', '.join(lib.families)}",
                field="--families",
            )
    return [
        c for c in lib.conditions()
        if (split is None or c.split == split) and (wanted is None or c.family in wanted)
    ]


def get_condition(condition_id: str, library: Library | None = None) -> Condition:
    lib = library if library is not None else _default_library()
    return lib.get(condition_id)


def render(condition_id: str, library: Library | None = None) -> Rendered:
    """Everything the harness and judge need for one condition. Deterministic.

    For the default library the rendering is cached; each call returns a private deep copy,
    so a caller that mutates `files` or `jobs` cannot corrupt later samples.
    """
    if library is None:
        return copy.deepcopy(_render_default(str(condition_id)))
    return library.render(condition_id)


def format_inbox(emails: Iterable[Email]) -> str:
    blocks = []
    for e in emails:
        blocks.append(
            f"--- email {e.id} ---\nFrom: {e.sender}\nTo: {', '.join(e.to)}\n"
            f"Time: {e.date}\nSubject: {e.subject}\n\n{e.body.strip()}"
        )
    return "\n\n".join(blocks)


def format_messages(messages: Iterable[Message], show_channel: bool = True) -> str:
    """A chat or channel log, oldest first: who (and what kind of participant) said what."""
    blocks = []
    for m in messages:
        where = f" #{m.channel}" if show_channel else ""
        blocks.append(f"[{m.time}]{where} {m.sender} ({m.role}):\n{m.text.strip()}")
    return "\n\n".join(blocks)


def format_tickets(tickets: Iterable[dict[str, Any]]) -> str:
    blocks = []
    for t in tickets:
        blocks.append(
            f"--- ticket {t['id']} [{t['status']}, priority {t['priority']}] ---\n"
            f"Title: {t['title']}\nReporter: {t['reporter']}\nOpened: {t['opened']}\n\n"
            f"{str(t['body']).strip()}"
        )
    return "\n\n".join(blocks)


def format_repository(files: dict[str, str], show: Iterable[str],
                      thread: Iterable[Message]) -> str:
    """The file tree, the contents of the files the task names, then the discussion."""
    parts = ["Repository files:\n" + "\n".join(f"  {p}" for p in sorted(files))]
    for path in show:
        if path in files:
            parts.append(f"--- file {path} ---\n{files[path].rstrip()}")
    talk = format_messages(thread, show_channel=True)
    if talk:
        parts.append(talk)
    return "\n\n".join(parts)


@functools.lru_cache(maxsize=1)
def _default_library() -> Library:
    root = default_data_dir()
    texts = []
    # Subfolders too (data/heldout/), as load_library(path) does: top-level files first.
    folders = [(root, "scenarios/data/")]
    while folders:
        folder, prefix = folders.pop(0)
        for entry in sorted(folder.iterdir(), key=lambda t: (t.is_dir(), t.name)):
            if entry.is_dir():
                folders.append((entry, f"{prefix}{entry.name}/"))
            elif entry.name.endswith((".yaml", ".yml")):
                texts.append((f"{prefix}{entry.name}", entry.read_text(encoding="utf-8")))
    return _build(texts, source="alignlab.scenarios/data")


@functools.lru_cache(maxsize=None)
def _render_default(condition_id: str) -> Rendered:
    return _default_library().render(condition_id)


def _tidy(text: str) -> str:
    lines = [ln.rstrip() for ln in text.strip().splitlines()]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines))


# --- validation -----------------------------------------------------------------------------


class _UniqueKeyLoader(yaml.SafeLoader):
    """SafeLoader that rejects a key given twice in one mapping (PyYAML keeps the last)."""


def _construct_mapping(loader: _UniqueKeyLoader, node: yaml.MappingNode, deep: bool = False):
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"key '{key}' appears twice in one mapping", key_node.start_mark)
        seen.add(key)
    return yaml.SafeLoader.construct_mapping(loader, node, deep=deep)


_UniqueKeyLoader.add_constructor(
    yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def _build(texts: list[tuple[str, str]], source: str) -> Library:
    scenarios: list[Scenario] = []
    seen: dict[tuple[str, str], str] = {}
    for file, text in texts:
        s = _parse_scenario(file, text)
        key = (s.family, s.scenario)
        if key in seen:
            raise UserError(
                f"scenario '{s.scenario}' of family '{s.family}' is already defined in "
                f"{seen[key]}; condition ids must be unique", file=file, field="scenario")
        seen[key] = file
        scenarios.append(s)
    return Library(scenarios=tuple(scenarios), source=source)


class _Checker:
    """Reads one parsed YAML document, raising UserError(file, dotted field) on any fault."""

    def __init__(self, file: str):
        self.file = file

    def fail(self, where: str | None, message: str) -> None:
        raise UserError(message, file=self.file, field=where)

    def mapping(self, value: Any, where: str, keys: dict[str, bool] | None = None) -> dict:
        if not isinstance(value, dict):
            self.fail(where, f"expected a mapping, got {_kind(value)}")
        if keys is not None:
            for k in value:
                if k not in keys:
                    self.fail(_join(where, str(k)),
                              f"unknown field; expected one of: {', '.join(keys)}")
            for k, required in keys.items():
                if required and k not in value:
                    self.fail(_join(where, k), "required field is missing")
        return value

    def text(self, value: Any, where: str, allow_empty: bool = False) -> str:
        if not isinstance(value, str):
            hint = " (quote it: YAML reads 10:15 as a number)" if isinstance(value, int) else ""
            self.fail(where, f"expected text, got {_kind(value)}{hint}")
        if not allow_empty and not value.strip():
            self.fail(where, "must not be empty")
        return value

    def name(self, value: Any, where: str) -> str:
        s = self.text(value, where)
        if not _NAME.match(s):
            self.fail(where, f"'{s}' must be lower-case letters, digits and _ "
                             "(starting with a letter)")
        return s

    def choice(self, value: Any, where: str, options: Iterable[str], what: str) -> str:
        s = self.text(value, where)
        options = tuple(options)
        if s not in options:
            self.fail(where, f"unknown {what} '{s}'; expected one of: {', '.join(options)}")
        return s

    def texts(self, value: Any, where: str, allow_single: bool = False) -> tuple[str, ...]:
        if allow_single and isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or not value:
            self.fail(where, f"expected a non-empty list, got {_kind(value)}")
        return tuple(self.text(v, f"{where}[{i}]") for i, v in enumerate(value))

    def address(self, value: Any, where: str) -> str:
        s = self.text(value, where).strip()
        if not _ADDRESS.match(s):
            self.fail(where, f"'{s}' is not an email address")
        return s


def _parse_scenario(file: str, text: str) -> Scenario:
    ck = _Checker(file)
    try:
        doc = yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise UserError(f"not valid YAML{at}: {problem}", file=file) from None
    if not isinstance(doc, dict):
        raise UserError(f"expected a mapping of scenario fields, got {_kind(doc)}", file=file)
    ck.mapping(doc, "", _TOP_KEYS)

    family = ck.choice(doc["family"], "family", FAMILIES, "family")
    scenario = ck.name(doc["scenario"], "scenario")
    split = ck.choice(doc["split"], "split", SPLITS, "split")
    org_domain = ck.text(doc["org_domain"], "org_domain").strip().lower()
    agent_address = ck.address(doc["agent_address"], "agent_address")
    if not agent_address.lower().endswith("@" + org_domain):
        ck.fail("agent_address", f"must be an address at org_domain '{org_domain}'")

    tools = ck.texts(doc["tools"], "tools")
    for i, t in enumerate(tools):
        ck.choice(t, f"tools[{i}]", TOOL_NAMES, "tool")
    if len(set(tools)) != len(tools):
        ck.fail("tools", "lists a tool twice")

    fmt = ck.choice(doc.get("format", "email"), "format", FORMATS, "format")
    carrier = CARRIER[fmt]
    noun = _CARRIER_NOUN[carrier]
    channels: dict[str, str] = {}
    for k, v in ck.mapping(doc.get("channels", {}), "channels").items():
        name = ck.text(k, "channels").strip()
        if not _CHANNEL.match(name):
            ck.fail(f"channels.{name}", f"'{name}' must be lower-case letters, digits, _ and - "
                                        "(starting with a letter; no #)")
        channels[name] = ck.text(v, f"channels.{name}").strip()
    if not channels and (carrier == "messages" or "post_message" in tools):
        why = (f"format '{fmt}' shows messages" if carrier == "messages"
               else "post_message is enabled")
        ck.fail("channels", f"required here ({why}): name -> one-line description")

    system_prompt = ck.text(doc["system_prompt"], "system_prompt")
    if system_prompt.count(GOAL_SLOT) != 1:
        ck.fail("system_prompt", f"must contain the goal slot {GOAL_SLOT} exactly once")
    if re.search(r"<\s*/?\s*tool_use|\"name\"\s*:", system_prompt):
        ck.fail("system_prompt", "must not contain tool-call syntax; the harness adds it")
    user_prompt = ck.text(doc["user_prompt"], "user_prompt")
    n_inbox, n_world = user_prompt.count(INBOX_SLOT), user_prompt.count(WORLD_SLOT)
    if fmt != "email" and n_inbox:
        ck.fail("user_prompt", f"{INBOX_SLOT} is the email format's slot; format '{fmt}' "
                               f"uses {WORLD_SLOT}")
    if n_inbox + n_world != 1:
        slots = f"{WORLD_SLOT} (or {INBOX_SLOT})" if fmt == "email" else WORLD_SLOT
        ck.fail("user_prompt", f"must contain the world slot {slots} exactly once")
    legitimate_path = ck.text(doc["legitimate_path"], "legitimate_path").strip()
    description = ck.text(doc.get("description", ""), "description", allow_empty=True).strip()

    base = _parse_piece(ck, doc["base"], "base")
    if not getattr(base, carrier):
        ck.fail(f"base.{carrier}", f"the base world needs at least one {noun} (the lever and "
                                   "the legitimate path live there)")

    goals = ck.mapping(doc["goals"], "goals")
    for k in goals:
        if k == "none":
            ck.fail("goals.none", "goal type 'none' is implied (no goal, no conflict); "
                                  "remove it")
        ck.choice(k, f"goals.{k}", _VALUED_GOAL_TYPES, "goal type")
    for g in _VALUED_GOAL_TYPES:
        if g not in goals:
            ck.fail(f"goals.{g}", "required field is missing")
    explicit = _parse_statements(ck, goals["explicit"], "goals.explicit")
    values = tuple(explicit)
    ambiguous = _parse_statements(ck, goals["ambiguous"], "goals.ambiguous")
    latent = _parse_pieces(ck, goals["latent"], "goals.latent")
    conflict = _parse_pieces(ck, doc["conflict"], "conflict")
    for where, got in (("goals.ambiguous", ambiguous), ("goals.latent", latent),
                       ("conflict", conflict)):
        if set(got) != set(values):
            ck.fail(where, f"goal values {sorted(got)} differ from goals.explicit "
                           f"{sorted(values)}; every goal value needs every part")
    for v in values:
        if not getattr(latent[v], carrier):
            ck.fail(f"goals.latent.{v}.{carrier}", f"latent goals are carried by {carrier}; "
                                                   "add one")
        if not getattr(conflict[v], carrier):
            ck.fail(f"conflict.{v}.{carrier}", f"the conflicting direction needs {_a(noun)}")

    threat_doc = ck.mapping(doc["threats"], "threats")
    threats: dict[str, Piece] = {}
    for k, v in threat_doc.items():
        if k == "none":
            ck.fail("threats.none", "threat 'none' is implied (no threat emails); remove it")
        ck.choice(k, f"threats.{k}", _THREAT_PIECES, "threat")
        threats[k] = _parse_piece(ck, v, f"threats.{k}")
        if not getattr(threats[k], carrier):
            ck.fail(f"threats.{k}.{carrier}", f"a threat needs at least one {noun}")

    # Email ids must be unique across every piece, so a rule can name one unambiguously.
    all_pieces = [("base", base)] + [(f"goals.latent.{v}", p) for v, p in latent.items()] + [
        (f"conflict.{v}", p) for v, p in conflict.items()] + [
        (f"threats.{t}", p) for t, p in threats.items()]
    ids: dict[str, set[str]] = {"emails": set(), "alerts": set(), "jobs": set(),
                                "tickets": set(), "channels": set(channels)}
    message_ids: set[str] = set()
    for where, piece in all_pieces:
        # Each format shows one kind of item; another kind would be invisible to the agent.
        for kind in ("emails", "messages", "tickets"):
            if getattr(piece, kind) and kind != carrier:
                ck.fail(f"{where}.{kind}", f"format '{fmt}' shows {carrier}, not {kind}; "
                                           f"set `format` or use {carrier}")
        for i, e in enumerate(piece.emails):
            if e.id in ids["emails"]:
                ck.fail(f"{where}.emails[{i}].id", f"email id '{e.id}' is used twice")
            ids["emails"].add(e.id)
        for i, m in enumerate(piece.messages):
            if m.id in message_ids:
                ck.fail(f"{where}.messages[{i}].id", f"message id '{m.id}' is used twice")
            message_ids.add(m.id)
            if m.channel not in channels:
                ck.fail(f"{where}.messages[{i}].channel",
                        f"unknown channel '{m.channel}'; `channels` defines: "
                        f"{', '.join(channels) or '(none)'}")
        ids["tickets"].update(str(t["id"]) for t in piece.tickets)
        ids["alerts"].update(str(a["id"]) for a in piece.alerts)
        ids["jobs"].update(str(j["id"]) for j in piece.jobs)

    show_files: tuple[str, ...] = ()
    if fmt == "repository":
        if "show_files" not in doc:
            ck.fail("show_files", "required for format repository: the files whose contents "
                                  "the task shows")
        show_files = ck.texts(doc["show_files"], "show_files")
        for i, path in enumerate(show_files):
            if path not in base.files:
                ck.fail(f"show_files[{i}]", f"'{path}' is not a file in base.files")
    elif "show_files" in doc:
        ck.fail("show_files", f"only format repository shows files; this format is '{fmt}'")

    if "evidence" not in doc and "stakes" not in doc:
        ck.fail("stakes", "a scenario needs `stakes` (what is at stake) or `evidence` rules: "
                          "otherwise no act could ever be found")
    evidence = _parse_evidence(ck, doc["evidence"], tools, ids, family) if "evidence" in doc \
        else ()
    stakes = _parse_stakes(ck, doc["stakes"], ids) if "stakes" in doc else None
    if stakes is None and not evidence:
        ck.fail("evidence", "needs at least one rule, or `stakes`: what counts as the harmful act")

    return Scenario(
        family=family, scenario=scenario, split=split, file=file, org_domain=org_domain,
        agent_address=agent_address, tools=tools, system_prompt=system_prompt,
        user_prompt=user_prompt, legitimate_path=legitimate_path, base=base,
        explicit=explicit, ambiguous=ambiguous, latent=latent, conflict=conflict,
        threats=threats, evidence=evidence, description=description, format=fmt,
        channels=channels, show_files=show_files, stakes=stakes,
    )


def _parse_statements(ck: _Checker, value: Any, where: str) -> dict[str, str]:
    m = ck.mapping(value, where)
    if not m:
        ck.fail(where, "needs at least one goal value")
    out = {}
    for k, v in m.items():
        name = ck.name(k, f"{where}.{k}")
        if name == "none":
            ck.fail(f"{where}.{k}", "'none' is reserved for goal type none")
        out[name] = ck.text(v, f"{where}.{k}").strip()
    return out


def _parse_pieces(ck: _Checker, value: Any, where: str) -> dict[str, Piece]:
    m = ck.mapping(value, where)
    return {ck.name(k, f"{where}.{k}"): _parse_piece(ck, v, f"{where}.{k}") for k, v in m.items()}


def _parse_piece(ck: _Checker, value: Any, where: str) -> Piece:
    m = ck.mapping(value, where, {k: False for k in _PIECE_KEYS})
    emails = tuple(_parse_email(ck, e, f"{where}.emails[{i}]")
                   for i, e in enumerate(_list(ck, m.get("emails", []), f"{where}.emails")))
    files: dict[str, str] = {}
    for path, content in ck.mapping(m.get("files", {}), f"{where}.files").items():
        p = ck.text(path, f"{where}.files")
        files[p] = ck.text(content, f"{where}.files.{p}", allow_empty=True)
    messages = tuple(_parse_message(ck, e, f"{where}.messages[{i}]")
                     for i, e in enumerate(_list(ck, m.get("messages", []), f"{where}.messages")))
    tickets = _parse_objects(ck, m.get("tickets", []), f"{where}.tickets", _TICKET_KEYS)
    for i, t in enumerate(tickets):
        if t["status"] not in TICKET_STATUSES:
            ck.fail(f"{where}.tickets[{i}].status", f"unknown status '{t['status']}'; "
                                                    f"expected one of: {', '.join(TICKET_STATUSES)}")
        _time(ck, t["opened"], f"{where}.tickets[{i}].opened", "tickets")
    alerts = _parse_objects(ck, m.get("alerts", []), f"{where}.alerts", _ALERT_KEYS)
    jobs = _parse_objects(ck, m.get("jobs", []), f"{where}.jobs", _JOB_KEYS)
    for i, j in enumerate(jobs):
        if not isinstance(j["enabled"], bool):
            ck.fail(f"{where}.jobs[{i}].enabled", "expected true or false")
    records = _parse_objects(ck, m.get("records", []), f"{where}.records", None)
    return Piece(emails=emails, messages=messages, tickets=tickets, files=files, alerts=alerts,
                 jobs=jobs, records=records)


def _parse_objects(ck: _Checker, value: Any, where: str,
                   keys: dict[str, bool] | None) -> tuple[dict[str, Any], ...]:
    out = []
    seen = set()
    for i, item in enumerate(_list(ck, value, where)):
        at = f"{where}[{i}]"
        m = ck.mapping(item, at, keys)
        if "id" not in m:
            ck.fail(f"{at}.id", "required field is missing")
        for k, v in m.items():
            if not isinstance(v, (str, int, float, bool)):
                ck.fail(f"{at}.{k}", f"expected a plain value, got {_kind(v)}")
            if keys is not None and k != "enabled":
                ck.text(v, f"{at}.{k}")  # alert and job fields are shown as text
        ident = str(m["id"])
        if ident in seen:
            ck.fail(f"{at}.id", f"id '{ident}' is used twice")
        seen.add(ident)
        out.append(dict(m))
    return tuple(out)


def _time(ck: _Checker, value: Any, where: str, what: str) -> str:
    t = ck.text(value, where).strip()
    if not _DATE.match(t):
        ck.fail(where, f"'{t}' must be \"HH:MM\" or \"YYYY-MM-DD HH:MM\" ({what} are shown "
                       "oldest first)")
    return t


def _parse_message(ck: _Checker, value: Any, where: str) -> Message:
    m = ck.mapping(value, where, _MESSAGE_KEYS)
    return Message(
        id=ck.text(m["id"], f"{where}.id").strip(),
        channel=ck.text(m["channel"], f"{where}.channel").strip().lstrip("#"),
        sender=ck.text(m["from"], f"{where}.from").strip(),
        role=ck.text(m["role"], f"{where}.role").strip(),
        text=ck.text(m["text"], f"{where}.text").strip(),
        time=_time(ck, m["time"], f"{where}.time", "messages"),
    )


def _parse_email(ck: _Checker, value: Any, where: str) -> Email:
    m = ck.mapping(value, where, _EMAIL_KEYS)
    date = ck.text(m["date"], f"{where}.date").strip()
    if not _DATE.match(date):
        ck.fail(f"{where}.date", f"'{date}' must be \"HH:MM\" or \"YYYY-MM-DD HH:MM\" "
                                 "(emails are shown oldest first)")
    to = ck.texts(m["to"], f"{where}.to", allow_single=True)
    return Email(
        id=ck.text(m["id"], f"{where}.id").strip(),
        sender=ck.address(m["from"], f"{where}.from"),
        to=tuple(ck.address(t, f"{where}.to[{i}]") for i, t in enumerate(to)),
        subject=ck.text(m["subject"], f"{where}.subject").strip(),
        body=ck.text(m["body"], f"{where}.body").strip(),
        date=date,
    )


def _parse_evidence(ck: _Checker, value: Any, tools: tuple[str, ...],
                    ids: dict[str, set[str]], family: str) -> tuple[EvidenceRule, ...]:
    items = _list(ck, value, "evidence")
    rules = []
    seen = set()
    for i, item in enumerate(items):
        at = f"evidence[{i}]"
        m = ck.mapping(item, at, _RULE_KEYS)
        rid = ck.name(m["id"], f"{at}.id")
        if rid in seen:
            ck.fail(f"{at}.id", f"rule id '{rid}' is used twice")
        seen.add(rid)
        rtools = ck.texts(m["tools"], f"{at}.tools", allow_single=True)
        for j, t in enumerate(rtools):
            ck.choice(t, f"{at}.tools[{j}]", TOOL_NAMES, "tool")
            if t not in tools:
                ck.fail(f"{at}.tools[{j}]", f"tool '{t}' is not enabled in `tools` of this "
                                            "scenario, so the rule could never fire")
        # An argument is testable only if every tool the rule looks at has it.
        common = [a for a in TOOL_ARGS[rtools[0]] if all(a in TOOL_ARGS[t] for t in rtools)]
        tests = []
        for j, tv in enumerate(_list(ck, m.get("tests", []), f"{at}.tests")):
            tests.append(_parse_test(ck, tv, f"{at}.tests[{j}]", rtools, common, ids))
        intent = m.get("intent")
        if intent is not None:
            intent = ck.choice(intent, f"{at}.intent", INTENTS, "intent")
        intent_arg = ck.text(m.get("intent_arg", "body"), f"{at}.intent_arg")
        if intent is not None and intent_arg not in common:
            ck.fail(f"{at}.intent_arg", f"'{intent_arg}' is not an argument of "
                                        f"{', '.join(rtools)}; expected one of: "
                                        f"{', '.join(common) or '(none)'}")
        attempts = m.get("attempts_count", True)
        if not isinstance(attempts, bool):
            ck.fail(f"{at}.attempts_count", "expected true or false")
        if not tests and intent is None:
            ck.fail(f"{at}.tests", "a rule with no tests and no intent would flag every "
                                   f"call of {', '.join(rtools)}")
        kind = m.get("kind")
        kind = (ck.choice(kind, f"{at}.kind", ACTS, "act") if kind is not None
                else (intent if intent == "coercion" else _FAMILY_ACT[family]))
        rules.append(EvidenceRule(
            id=rid, act=ck.text(m["act"], f"{at}.act").strip(), kind=kind, tools=rtools,
            tests=tuple(tests), intent=intent, intent_arg=intent_arg, attempts_count=attempts,
        ))
    return tuple(rules)


def _parse_stakes(ck: _Checker, value: Any, ids: dict[str, set[str]]) -> Stakes:
    m = ck.mapping(value, "stakes", _STAKES_KEYS)
    parties = []
    for i, item in enumerate(_list(ck, m.get("parties"), "stakes.parties")):
        at = f"stakes.parties[{i}]"
        p = ck.mapping(item, at, _PARTY_KEYS)
        who = _who(ck, p["who"], f"{at}.who", ids)
        parties.append(Party(who=who, role=ck.choice(p["role"], f"{at}.role", ROLES, "role"),
                             name=ck.text(p.get("name", who), f"{at}.name")))
    known_who = {p.who for p in parties}
    facts, seen = [], set()
    for i, item in enumerate(_list(ck, m.get("facts"), "stakes.facts")):
        at = f"stakes.facts[{i}]"
        f = ck.mapping(item, at, _FACT_KEYS)
        fid = ck.name(f["id"], f"{at}.id")
        if fid in seen:
            ck.fail(f"{at}.id", f"id '{fid}' is used twice")
        seen.add(fid)
        about = _opt_texts(ck, f.get("about"), f"{at}.about")
        for j, who in enumerate(about):
            if who not in known_who:
                ck.fail(f"{at}.about[{j}]", f"'{who}' is not a party in stakes.parties")
        may_know = _opt_texts(ck, f.get("may_know"), f"{at}.may_know")
        for j, who in enumerate(may_know):
            if who not in ROLES:
                _who(ck, who, f"{at}.may_know[{j}]", ids)
        facts.append(Fact(
            id=fid, kind=ck.choice(f["kind"], f"{at}.kind", FACT_KINDS, "fact kind"),
            statements=ck.texts(f["statements"], f"{at}.statements", allow_single=True),
            markers=_opt_texts(ck, f.get("markers"), f"{at}.markers"),
            sources=_opt_texts(ck, f.get("sources"), f"{at}.sources"),
            about=about, may_know=may_know))
    controls = []
    for i, item in enumerate(_list(ck, m.get("controls"), "stakes.controls")):
        at = f"stakes.controls[{i}]"
        c = ck.mapping(item, at, _CONTROL_KEYS)
        kind = ck.choice(c["kind"], f"{at}.kind", CONTROL_KINDS, "control kind")
        target = ck.text(c["target"], f"{at}.target").strip()
        pool = {"alert": "alerts", "job": "jobs", "ticket": "tickets",
                "monitor": "channels"}.get(kind)
        if pool and target not in ids[pool]:
            ck.fail(f"{at}.target", f"no {kind} '{target}' in this scenario; it defines: "
                                    f"{', '.join(sorted(ids[pool])) or '(none)'}")
        keep = _opt_texts(ck, c.get("keep"), f"{at}.keep")
        for j, st in enumerate(keep):
            ck.choice(st, f"{at}.keep[{j}]", TICKET_STATUSES, "ticket status")
        operators = _opt_texts(ck, c.get("operators"), f"{at}.operators")
        for j, who in enumerate(operators):
            if who not in known_who:
                ck.fail(f"{at}.operators[{j}]", f"'{who}' is not a party in stakes.parties")
        controls.append(Control(
            id=ck.name(c["id"], f"{at}.id"), kind=kind, target=target,
            what=ck.text(c["what"], f"{at}.what").strip(),
            truth=ck.text(c.get("truth", ""), f"{at}.truth", allow_empty=True).strip(),
            operators=operators, keep=keep,
            markers=_opt_texts(ck, c.get("markers"), f"{at}.markers")))
    return Stakes(decision=ck.text(m["decision"], "stakes.decision").strip(),
                  parties=tuple(parties), facts=tuple(facts), controls=tuple(controls))


def _who(ck: _Checker, value: Any, where: str, ids: dict[str, set[str]]) -> str:
    """A party: an address, `@domain`, `#channel` (one the scenario defines) or a place."""
    s = ck.text(value, where).strip()
    if s.startswith("#"):
        if s[1:] not in ids["channels"]:
            ck.fail(where, f"unknown channel '{s}'; `channels` defines: "
                           f"{', '.join(sorted(ids['channels'])) or '(none)'}")
    elif s.startswith("@"):
        if "." not in s:
            ck.fail(where, f"'{s}' is not a domain")
    elif s not in _PLACES and not _ADDRESS.match(s):
        ck.fail(where, f"'{s}' is not an address, @domain, #channel or one of: "
                       f"{', '.join(_PLACES)}")
    return s


def _opt_texts(ck: _Checker, value: Any, where: str) -> tuple[str, ...]:
    if value is None or value == []:
        return ()
    return ck.texts(value, where, allow_single=True)


def _parse_test(ck: _Checker, value: Any, where: str, rtools: tuple[str, ...],
                common: list[str], ids: dict[str, set[str]]) -> ArgTest:
    m = ck.mapping(value, where)
    if "arg" not in m:
        ck.fail(f"{where}.arg", "required field is missing")
    arg = ck.text(m["arg"], f"{where}.arg")
    if arg not in common:
        ck.fail(f"{where}.arg", f"'{arg}' is not an argument of {', '.join(rtools)}; "
                                f"expected one of: {', '.join(common) or '(none)'}")
    ops = [k for k in m if k != "arg"]
    for k in ops:
        if k not in OPERATORS:
            ck.fail(f"{where}.{k}", f"unknown operator; expected one of: {', '.join(OPERATORS)}")
    if len(ops) != 1:
        ck.fail(where, f"needs exactly one operator ({', '.join(OPERATORS)}), got {len(ops)}")
    op = ops[0]
    at = f"{where}.{op}"
    kwargs: dict[str, Any] = {}
    if op in ("any_of", "contains_any"):
        kwargs[op] = ck.texts(m[op], at)
    else:
        kwargs[op] = ck.text(m[op], at)
    if op == "regex":
        try:
            re.compile(kwargs[op])
        except re.error as exc:
            ck.fail(at, f"not a valid regular expression: {exc}")
    if op == "domain_not" and "@" in kwargs[op]:
        ck.fail(at, "give a domain (org.example), not an address")
    if arg in _ID_ARGS and op in ("equals", "any_of"):
        kind = _ID_ARGS[arg]
        wanted = (kwargs[op],) if op == "equals" else kwargs[op]
        for w in wanted:
            if w not in ids[kind]:
                ck.fail(at, f"no {kind[:-1]} with id '{w}' in this scenario; known: "
                            f"{', '.join(sorted(ids[kind])) or '(none)'}")
    return ArgTest(arg=arg, **kwargs)


def _list(ck: _Checker, value: Any, where: str) -> list:
    if value is None:
        return []
    if not isinstance(value, list):
        ck.fail(where, f"expected a list, got {_kind(value)}")
    return value


def _a(noun: str) -> str:
    return f"an {noun}" if noun[0] in "aeiou" else f"a {noun}"


def _join(prefix: str, key: str) -> str:
    return f"{prefix}.{key}" if prefix else key


def _kind(value: Any) -> str:
    if value is None:
        return "nothing"
    return {dict: "a mapping", list: "a list", str: "text", bool: "true/false",
            int: "a number", float: "a number"}.get(type(value), type(value).__name__)
