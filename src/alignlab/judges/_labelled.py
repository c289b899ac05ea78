"""The labelled transcript set: hand-written honeypot transcripts with a checked label each.

Files: `data/labelled/<family>.yaml` (format in `data/labelled/README.md`), tag vocabulary in
`data/labelled/tags.yaml`. An entry stores only what the agent wrote; the system and user
messages come from rendering its condition, so a transcript is exactly what `alignlab judge`
would read (`LabelledTranscript.transcript()`), and is judged through the same replay.

Loading is strict: any malformed entry raises `UserError` naming the file and the field.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from alignlab.acts import ACTS
from alignlab.errors import UserError

LABELS = ("harmful", "safe")
PARTS = ("train", "test")  # test: never used to train or tune the offline classifier
TOOL_MODES = ("native", "text")
TAGS_FILE = "tags.yaml"
_ENTRY_KEYS = {"id", "scenario", "label", "part", "tags", "note", "tool_mode", "agent", "acts",
               "hard"}
# The packaged set: `labelled/` (written beside the rules; all `part: train`, the development
# part) and `challenge/` (written by labellers who had not read the detectors; all
# `part: test`, never used to tune anything).
SET_FOLDERS = ("labelled", "challenge")
_TURN_KEYS = {"text", "calls"}


@dataclass(frozen=True)
class LabelledTranscript:
    id: str
    scenario: str  # condition id
    label: str  # "harmful" | "safe"
    part: str  # "train" | "test"
    tags: tuple[str, ...]
    note: str  # why the label
    tool_mode: str  # "native" | "text"
    agent: tuple[dict[str, Any], ...]  # assistant messages, OpenAI style
    file: str = ""
    family: str = ""
    split: str = ""
    acts: tuple[str, ...] | None = None  # the acts committed, when the labeller named them
    hard: bool = False

    def messages(self) -> list[dict[str, Any]]:
        """System and user messages of the rendered condition, then the agent's turns."""
        from alignlab.scenarios import render

        rendered = render(self.scenario)
        system = rendered.system_prompt
        if self.tool_mode == "text":  # what a text-mode agent saw (harness/_agent.py)
            from alignlab.harness import World, render_tool_instructions

            system = f"{system.rstrip()}\n\n{render_tool_instructions(World(rendered).tool_specs())}"
        return [{"role": "system", "content": system},
                {"role": "user", "content": rendered.user_prompt},
                *[dict(m) for m in self.agent]]

    def transcript(self) -> dict[str, Any]:
        """The `alignlab judge` file for this entry."""
        return {"scenario": self.scenario, "tool_mode": self.tool_mode,
                "messages": self.messages()}


@dataclass
class LabelledSet:
    transcripts: list[LabelledTranscript] = field(default_factory=list)
    tags: dict[str, str] = field(default_factory=dict)  # tag -> what it marks
    required_tags: tuple[str, ...] = ()
    source: str = ""


def default_set_path() -> Path:
    return Path(str(resources.files("alignlab.judges").joinpath("data", "labelled")))


def default_set_paths() -> list[Path]:
    data = Path(str(resources.files("alignlab.judges").joinpath("data")))
    return [data / name for name in SET_FOLDERS]


def load_tags(path: Path | None = None) -> tuple[dict[str, str], tuple[str, ...]]:
    p = path or default_set_path() / TAGS_FILE
    where = str(p)
    data = _read_yaml(p)
    tags = data.get("tags") if isinstance(data, dict) else None
    if not isinstance(tags, dict) or not all(isinstance(k, str) and isinstance(v, str)
                                             for k, v in tags.items()):
        raise UserError("expected a mapping tag -> description", file=where, field="tags")
    required = data.get("required", [])
    if not isinstance(required, list) or not set(required) <= set(tags):
        raise UserError("expected a list of tags defined under 'tags'", file=where,
                        field="required")
    return dict(tags), tuple(required)


def load_labelled_set(path: str | Path | None = None) -> LabelledSet:
    """Every transcript in a labelled-set file, or in every *.yaml of a folder; by default
    the packaged development and challenge sets."""
    roots = [Path(path)] if path is not None else default_set_paths()
    files: list[Path] = []
    for root in roots:
        if root.is_dir():
            found = sorted(p for p in root.glob("*.yaml") if p.name != TAGS_FILE)
            if not found:
                raise UserError("no labelled-set *.yaml files in this folder", file=str(root))
            files += found
        elif root.is_file():
            files.append(root)
        else:
            raise UserError("no such file or folder", file=str(root))
    tags, required = load_tags()
    out = LabelledSet(tags=tags, required_tags=required,
                      source=", ".join(str(r) for r in roots))
    seen: dict[str, str] = {}
    for f in files:
        for t in _load_file(f, tags):
            if t.id in seen:
                raise UserError(f"duplicate id '{t.id}' (also in {seen[t.id]})", file=t.file,
                                field=f"transcripts[id={t.id}].id")
            seen[t.id] = t.file
            out.transcripts.append(t)
    return out


def _read_yaml(p: Path) -> Any:
    try:
        text = p.read_text("utf-8")
    except FileNotFoundError:
        raise UserError("file not found", file=str(p)) from None
    except (OSError, UnicodeDecodeError) as ex:
        raise UserError(f"cannot read the file ({ex})", file=str(p)) from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as ex:
        mark = getattr(ex, "problem_mark", None)
        at = f" at line {mark.line + 1}" if mark is not None else ""
        raise UserError(f"not valid YAML{at}", file=str(p)) from None


def _load_file(p: Path, tags: dict[str, str]) -> list[LabelledTranscript]:
    from alignlab.scenarios import list_conditions

    where = str(p)
    data = _read_yaml(p)
    if not isinstance(data, dict) or not isinstance(data.get("transcripts"), list):
        raise UserError("expected a mapping with a 'transcripts' list", file=where,
                        field="transcripts")
    conditions = {c.id: c for c in list_conditions()}
    family = data.get("family")
    out = []
    for i, raw in enumerate(data["transcripts"]):
        out.append(_entry(raw, f"transcripts[{i}]", where, conditions, family, tags))
    return out


def _entry(raw: Any, fld: str, where: str, conditions: dict[str, Any], family: Any,
           tags: dict[str, str]) -> LabelledTranscript:
    def need(cond: bool, key: str, msg: str) -> None:
        if not cond:
            raise UserError(msg, file=where, field=f"{fld}.{key}" if key else fld)

    need(isinstance(raw, dict), "", "expected a mapping (one transcript)")
    unknown = set(raw) - _ENTRY_KEYS
    need(not unknown, sorted(unknown)[0] if unknown else "",
         f"unknown key; expected some of: {', '.join(sorted(_ENTRY_KEYS))}")
    tid = raw.get("id")
    need(isinstance(tid, str) and tid.strip() != "", "id", "expected a non-empty string id")
    fld = f"transcripts[id={tid}]"
    scenario = raw.get("scenario")
    need(isinstance(scenario, str) and scenario in conditions, "scenario",
         f"unknown condition id {scenario!r} (see `alignlab scenarios list`)")
    cond = conditions[scenario]
    need(family is None or cond.family == family, "scenario",
         f"condition of family '{cond.family}' in the '{family}' file")
    label = raw.get("label")
    need(label in LABELS, "label", f"expected one of: {', '.join(LABELS)}")
    part = raw.get("part")
    need(part in PARTS, "part", f"expected one of: {', '.join(PARTS)}")
    entry_tags = raw.get("tags", [])
    # Labellers' own tags (challenge set) are free words; the development set uses tags.yaml.
    free_tags = "acts" in raw
    need(isinstance(entry_tags, list) and all(isinstance(t, str) and (free_tags or t in tags)
                                              for t in entry_tags), "tags",
         f"expected a list of tags from {TAGS_FILE}: {', '.join(tags)}")
    acts = raw.get("acts")
    if acts is not None:
        need(isinstance(acts, list) and all(a in ACTS for a in acts), "acts",
             f"expected a list of acts from: {', '.join(ACTS)}")
        need((label == "harmful") == bool(acts), "acts",
             "a harmful transcript names at least one act; a safe one names none")
    hard = raw.get("hard", False)
    need(isinstance(hard, bool), "hard", "expected true or false")
    note = raw.get("note")
    need(isinstance(note, str) and note.strip() != "", "note",
         "expected a non-empty note saying why the label")
    mode = raw.get("tool_mode", "native")
    need(mode in TOOL_MODES, "tool_mode", f"expected one of: {', '.join(TOOL_MODES)}")
    agent = raw.get("agent")
    need(isinstance(agent, list) and len(agent) > 0, "agent",
         "expected a non-empty list of assistant turns")
    turns = tuple(_turn(t, f"{fld}.agent[{j}]", where, mode) for j, t in enumerate(agent))
    return LabelledTranscript(
        id=tid, scenario=scenario, label=label, part=part, tags=tuple(entry_tags),
        note=note.strip(), tool_mode=mode, agent=turns, file=where, family=cond.family,
        split=cond.split, acts=tuple(acts) if acts is not None else None, hard=hard,
    )


def _turn(raw: Any, fld: str, where: str, mode: str) -> dict[str, Any]:
    """One assistant message. Text mode: a string (tool blocks inside). Native: a string or
    {text, calls: [{tool_name: {args} | "raw JSON text"}]}."""
    if isinstance(raw, str):
        return {"role": "assistant", "content": raw}
    if not isinstance(raw, dict) or not set(raw) <= _TURN_KEYS:
        raise UserError("expected text, or a mapping with 'text' and/or 'calls'", file=where,
                        field=fld)
    text = raw.get("text", "")
    if not isinstance(text, str):
        raise UserError("expected a string", file=where, field=f"{fld}.text")
    calls = raw.get("calls", [])
    if calls and mode == "text":
        raise UserError("text-mode turns carry their calls as <tool_use> blocks in 'text'",
                        file=where, field=f"{fld}.calls")
    if not isinstance(calls, list):
        raise UserError("expected a list of {tool: arguments}", file=where, field=f"{fld}.calls")
    tool_calls = []
    for k, call in enumerate(calls):
        cfld = f"{fld}.calls[{k}]"
        if not isinstance(call, dict) or len(call) != 1:
            raise UserError("expected one {tool_name: arguments} mapping", file=where, field=cfld)
        (name, args), = call.items()
        if not isinstance(name, str) or not isinstance(args, (dict, str)):
            raise UserError("expected arguments as a mapping (or raw JSON text)", file=where,
                            field=cfld)
        tool_calls.append({
            "id": f"call_{k + 1}", "type": "function",
            "function": {"name": name,
                         "arguments": args if isinstance(args, str)
                         else json.dumps(args, ensure_ascii=False)},
        })
    msg: dict[str, Any] = {"role": "assistant", "content": text}
    if tool_calls:
        msg["tool_calls"] = tool_calls
    return msg
