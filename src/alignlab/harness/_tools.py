"""Simulated tools for one sample: a small in-memory workplace the agent can act on.

`World(rendered)` holds the state (mailboxes, chat and channel posts, ticket queue, files and
their commits, alert console, job scheduler, personal records) and `World.call(name, arguments, turn)` validates and executes one tool call,
returning the `ToolCallRecord` the judge reads. Nothing leaves the object: a copy "outside
the workspace" is only recorded in `external_copies`.
"""

from __future__ import annotations

import copy
import json
import posixpath
import re
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from typing import Any, Callable

from inspect_ai.tool import ToolInfo, ToolParams
from inspect_ai.util import JSONSchema

from alignlab.harness._records import ToolCallRecord
from alignlab.textnorm import normalise_id
from alignlab.scenarios._schema import (
    TICKET_STATUSES,
    TOOL_NAMES,
    TOOL_SIGNATURES,
    Rendered,
    ToolArg,
)

WORKSPACE = "/workspace"
MAX_CHARS = 20_000  # any single argument or result string is clipped to this
MAX_LIST_ITEMS = 100  # list arguments (e.g. recipients) are clipped to this many items
DISPLAY_CHARS = 4_000  # file and email bodies shown to the model are clipped to this
MAX_LISTED = 50  # rows shown by list_* tools and query_records
TRUNCATION_MARK = "…[truncated {n} chars]"


# --- argument declarations --------------------------------------------------------------
# Types: "string" or "string_list". Prose (descriptions) lives in data/tools.md.


Param = ToolArg
TOOL_PARAMS: dict[str, tuple[ToolArg, ...]] = TOOL_SIGNATURES


@dataclass(frozen=True)
class ToolSpec:
    """A tool as offered to the model: name, description, JSON-schema parameters."""

    name: str
    description: str
    parameters: dict[str, Any]  # {"type": "object", "properties": ..., "required": [...]}
    example: dict[str, Any] = field(default_factory=dict)  # arguments for the text-mode example


@dataclass(frozen=True)
class _ToolDoc:
    description: str
    params: dict[str, str]
    example: dict[str, Any]


@lru_cache(maxsize=1)
def _tool_docs() -> dict[str, _ToolDoc]:
    """Parse data/tools.md: `## name`, a description line, `- arg: text` lines, `Example:`."""
    text = resources.files("alignlab.harness").joinpath("data/tools.md").read_text("utf-8")
    docs: dict[str, _ToolDoc] = {}
    for section in re.split(r"^## +", text, flags=re.M)[1:]:
        lines = [ln.strip() for ln in section.splitlines()]
        name = lines[0]
        description, params, example = "", {}, {}
        for ln in lines[1:]:
            if ln.startswith("- ") and ":" in ln:
                arg, desc = ln[2:].split(":", 1)
                params[arg.strip()] = desc.strip()
            elif ln.startswith("Example:"):
                example = json.loads(ln[len("Example:") :])
            elif ln and not description:
                description = ln
        docs[name] = _ToolDoc(description, params, example)
    return docs


def _json_schema(p: Param, description: str) -> dict[str, Any]:
    if p.type == "string_list":
        return {"type": "array", "items": {"type": "string"}, "description": description}
    return {"type": "string", "description": description}


def tool_spec(name: str) -> ToolSpec:
    doc = _tool_docs()[name]
    params = TOOL_PARAMS[name]
    return ToolSpec(
        name=name,
        description=doc.description,
        parameters={
            "type": "object",
            "properties": {p.name: _json_schema(p, doc.params.get(p.name, "")) for p in params},
            "required": [p.name for p in params if p.required],
        },
        example=dict(doc.example),
    )


# --- size limits and value helpers ------------------------------------------------------


def clip(text: str, limit: int = MAX_CHARS) -> str:
    """Cut `text` to `limit` characters, saying how much was cut."""
    if len(text) <= limit:
        return text
    return text[:limit] + TRUNCATION_MARK.format(n=len(text) - limit)


def clip_value(value: Any, depth: int = 0) -> Any:
    """A JSON-safe, size-bounded copy of an argument value as the model gave it."""
    if isinstance(value, str):
        return clip(value)
    if value is None or isinstance(value, (bool, int, float)):
        return value
    if depth >= 4:
        return clip(repr(value), 200)
    if isinstance(value, dict):
        items = list(value.items())[:MAX_LIST_ITEMS]
        return {clip(str(k), 200): clip_value(v, depth + 1) for k, v in items}
    if isinstance(value, (list, tuple)):
        return [clip_value(v, depth + 1) for v in list(value)[:MAX_LIST_ITEMS]]
    return clip(str(value), 2_000)


class _ArgError(Exception):
    pass


def _as_string(name: str, value: Any) -> str:
    if isinstance(value, str):
        return clip(value)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)  # e.g. an override code given as a number
    raise _ArgError(f"argument '{name}' must be a string, not {_json_type(value)}")


def _as_string_list(name: str, value: Any) -> list[str]:
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("[") and text.endswith("]"):
            try:
                parsed = json.loads(text)
            except ValueError:
                parsed = None
            if isinstance(parsed, list):
                return _as_string_list(name, parsed)
            text = text[1:-1]
        parts = [p.strip().strip("\"'").strip() for p in re.split(r"[,;\n]", text)]
        return [clip(p) for p in parts if p][:MAX_LIST_ITEMS]
    if isinstance(value, (list, tuple)):
        out: list[str] = []
        for item in list(value)[:MAX_LIST_ITEMS]:
            if isinstance(item, (str, int, float)) and not isinstance(item, bool):
                out.extend(_as_string_list(name, str(item)))
            else:
                raise _ArgError(f"argument '{name}' must be a list of strings")
        return out[:MAX_LIST_ITEMS]
    raise _ArgError(f"argument '{name}' must be a list of strings, not {_json_type(value)}")


def _json_type(value: Any) -> str:
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, (list, tuple)):
        return "a list"
    if isinstance(value, bool):
        return "a boolean"
    if value is None:
        return "null"
    return type(value).__name__


_ADDRESS = re.compile(r"^[^@\s<>,;]+@[^@\s<>,;]+$")
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*://")
_HOST_PREFIX = re.compile(r"^[^/\\\s]+:")  # scp:..., host:path, user@host:/x, C:\...


def _clean_address(text: str) -> str:
    m = re.search(r"<([^<>]+@[^<>]+)>", text)  # "Kyle Ward <kyle@x.example>"
    addr = (m.group(1) if m else text).strip().strip("\"'")
    return addr[len("mailto:") :] if addr.lower().startswith("mailto:") else addr


def _usage(name: str) -> str:
    parts = [p.name if p.required else f"{p.name} (optional)" for p in TOOL_PARAMS[name]]
    return f"{name} takes: {', '.join(parts)}." if parts else f"{name} takes no arguments."


# --- the world ---------------------------------------------------------------------------


class World:
    """Stateful simulated tools for one sample. Pure Python; no I/O.

    Paths. The file space is `/workspace` plus every top-level folder that holds a seeded
    file (a scenario file `/models/tern/w.bin` makes `/models/...` part of it). Relative paths
    resolve under `/workspace`, or under `/` when that names a seeded file or folder
    (`models/tern/w.bin`). A path is *external* when it has a URL scheme (`s3://`,
    `https://`), a `prefix:` before any slash (`scp:x`, `host:/p`, `user@host:/p`, `C:\\`),
    starts with `~` or `//`, or is an absolute path (after normalising `..`) outside the file
    space. `file://` URLs count as plain paths. Copies and writes to an external path are
    recorded in `external_copies` and reported to the model as done, never performed.
    """

    def __init__(self, rendered: Rendered):
        self.rendered = rendered
        self.enabled: tuple[str, ...] = tuple(t for t in TOOL_NAMES if t in rendered.tools)
        self.emails: dict[str, dict[str, Any]] = {}
        for e in rendered.inbox:
            self.emails[e.id] = {
                "id": e.id,
                "from": e.sender,
                "to": list(e.to),
                "subject": e.subject,
                "body": e.body,
                "date": e.date,
            }
        self.files: dict[str, str] = {}
        # The organisation's file space: /workspace and each top-level folder holding a
        # seeded file (scenarios use paths such as /models/tern/weights.safetensors).
        self._roots = {WORKSPACE}
        for path, content in rendered.files.items():
            full = _absolute(path)
            self.files[full] = str(content)
            if full.count("/") >= 2:  # a file directly at "/" must not make "/" a root
                self._roots.add(_top_folder(full))
        self.alerts: list[dict[str, Any]] = [copy.deepcopy(dict(a)) for a in rendered.alerts]
        self.jobs: list[dict[str, Any]] = [copy.deepcopy(dict(j)) for j in rendered.jobs]
        self.records: list[dict[str, Any]] = [copy.deepcopy(dict(r)) for r in rendered.records]
        self.tickets: list[dict[str, Any]] = [
            {**copy.deepcopy(dict(t)), "comments": []} for t in rendered.tickets]
        self.channels: dict[str, str] = dict(rendered.channels)
        # What a commit or pull request would contain: the files as the sample began.
        self._committed: dict[str, str] = dict(self.files)
        # Logs the tests and the judge can inspect.
        self.sent: list[dict[str, Any]] = []
        self.external_copies: list[dict[str, Any]] = []
        self.deleted: list[str] = []
        self.cancelled_alerts: list[dict[str, Any]] = []
        self.disabled_jobs: list[dict[str, Any]] = []
        self.queries: list[dict[str, Any]] = []
        self.posts: list[dict[str, Any]] = []
        self.ticket_updates: list[dict[str, Any]] = []
        self.commits: list[dict[str, Any]] = []
        self.pull_requests: list[dict[str, Any]] = []
        self.calls: list[ToolCallRecord] = []
        self.ended = False
        self.summary = ""
        self._handlers: dict[str, Callable[[dict[str, Any], int], str]] = {
            name: getattr(self, f"_do_{name}") for name in TOOL_NAMES
        }

    # --- public API ---

    def tool_specs(self) -> list[ToolSpec]:
        return [tool_spec(name) for name in self.enabled]

    def to_inspect_tools(self) -> list[ToolInfo]:
        infos = []
        for spec in self.tool_specs():
            params = ToolParams(
                properties={
                    k: JSONSchema.model_validate(v)
                    for k, v in spec.parameters["properties"].items()
                },
                required=list(spec.parameters["required"]),
            )
            infos.append(ToolInfo(name=spec.name, description=spec.description, parameters=params))
        return infos

    def call(self, name: Any, arguments: Any, turn: int = 0) -> ToolCallRecord:
        """Validate and execute one call. Never raises: problems become ok=False results."""
        raw_name = clip(str(name if name is not None else ""), 200)
        tool = self._resolve_name(raw_name)
        args = self._coerce_arguments(arguments)
        if isinstance(args, str):  # not an object: cannot be validated
            return self._record(turn, tool or raw_name, {"_raw": clip(args)}, False,
                                "Error: arguments must be a JSON object.")
        if tool is None or tool not in self.enabled:
            available = ", ".join(self.enabled) or "none"
            problem = "is not available here" if tool else "is not a known tool"
            return self._record(turn, tool or raw_name, clip_value(args), False,
                                f"Error: '{clip(tool or raw_name, 80)}' {problem}. "
                                f"Available tools: {available}.")
        try:
            normalized = self._validate(tool, args)
        except _ArgError as ex:
            return self._record(turn, tool, self._best_effort(tool, args), False,
                                f"Error: {ex}. {_usage(tool)}")
        try:
            result = self._handlers[tool](normalized, turn)
            ok = True
        except _ArgError as ex:
            result, ok = f"Error: {ex}.", False
        except Exception as ex:  # a bug in a simulated tool must not end the sample
            result, ok = f"Error: the tool failed ({type(ex).__name__}).", False
        return self._record(turn, tool, normalized, ok, result)

    def record_parse_error(self, name: str, error: str, turn: int,
                           raw: str = "") -> ToolCallRecord:
        """Log a call that was found but could not be parsed; the raw text goes in `_raw`."""
        tool = self._resolve_name(str(name)) or clip(str(name), 200)
        rec = ToolCallRecord(
            turn=turn, tool=tool, arguments={"_raw": clip(raw)} if raw else {}, ok=False,
            result=clip(f"Error: could not parse this tool call ({error}). "
                        'Write <tool_use name="TOOL"> then one JSON object of arguments, '
                        "then </tool_use>."),
            parse_error=clip(error, 2_000),
        )
        self.calls.append(rec)
        return rec

    def reject(self, name: str, arguments: Any, reason: str, turn: int) -> ToolCallRecord:
        """Log a call that was not executed (e.g. over the per-turn limit)."""
        tool = self._resolve_name(str(name)) or clip(str(name), 200)
        args = arguments if isinstance(arguments, dict) else {"_raw": arguments}
        return self._record(turn, tool, clip_value(args), False, f"Error: {reason}.")

    def resolve_channel(self, name: str) -> str | None:
        """The scenario's channel a name refers to (`#staffroom`, `"Staffroom"`), if any."""
        want = normalise_id(name)
        return next((c for c in self.channels if normalise_id(c) == want), None)

    @classmethod
    def replayed(cls, rendered: Rendered, calls: list[ToolCallRecord]) -> "World":
        """The world as the sample left it: a fresh World with every accepted call re-run.
        Refused calls changed nothing, so they are not re-run; the log keeps `calls`."""
        world = cls(rendered)
        for rec in calls:
            if rec.ok and rec.parse_error is None:
                world.call(rec.tool, rec.arguments, rec.turn)
        world.calls = list(calls)
        return world

    # --- validation ---

    def _resolve_name(self, raw: str) -> str | None:
        key = raw.strip().strip("\"'`").strip()
        if key.startswith("functions."):
            key = key[len("functions.") :]
        key = key.lower().replace("-", "_").replace(" ", "_")
        return key if key in TOOL_PARAMS else None

    @staticmethod
    def _coerce_arguments(arguments: Any) -> dict[str, Any] | str:
        if arguments is None:
            return {}
        if isinstance(arguments, dict):
            return {str(k): v for k, v in arguments.items()}
        if isinstance(arguments, str):
            if not arguments.strip():
                return {}
            try:
                parsed = json.loads(arguments[: MAX_CHARS * 10])
            except ValueError:
                return arguments
            return _stringify_keys(parsed) if isinstance(parsed, dict) else arguments
        return clip(repr(arguments), 2_000)

    def _validate(self, tool: str, args: dict[str, Any]) -> dict[str, Any]:
        params = {p.name: p for p in TOOL_PARAMS[tool]}
        extra = [k for k in args if k not in params]
        if extra:
            raise _ArgError(f"unexpected argument(s): {', '.join(clip(k, 40) for k in extra[:10])}")
        present = {k: v for k, v in args.items() if v is not None}
        missing = [p.name for p in params.values() if p.required and p.name not in present]
        if missing:
            raise _ArgError(f"missing argument(s): {', '.join(missing)}")
        out: dict[str, Any] = {}
        for key, value in present.items():
            if params[key].type == "string_list":
                out[key] = _as_string_list(key, value)
                if key == "to":  # "Kyle Ward <kyle@x.example>" -> "kyle@x.example"
                    out[key] = [a for a in (_clean_address(x) for x in out[key]) if a]
            else:
                out[key] = _as_string(key, value)
        return out

    def _best_effort(self, tool: str, args: dict[str, Any]) -> dict[str, Any]:
        """Arguments of a rejected call, normalised where possible, so rules still see them."""
        params = {p.name: p for p in TOOL_PARAMS[tool]}
        out: dict[str, Any] = {}
        for key, value in list(args.items())[:MAX_LIST_ITEMS]:
            p = params.get(key)
            try:
                if p is not None and value is not None:
                    conv = _as_string_list if p.type == "string_list" else _as_string
                    out[key] = conv(key, value)
                    continue
            except _ArgError:
                pass
            out[clip(key, 200)] = clip_value(value)
        return out

    def _record(self, turn: int, tool: str, arguments: dict[str, Any], ok: bool,
                result: str) -> ToolCallRecord:
        rec = ToolCallRecord(turn=turn, tool=tool, arguments=arguments, ok=ok,
                             result=clip(result))
        self.calls.append(rec)
        return rec

    # --- paths ---

    def locate(self, path: str) -> tuple[bool, str]:
        """(inside the organisation's file space?, the canonical path), as every tool sees it."""
        return self._locate(path)

    def _locate(self, path: str) -> tuple[bool, str]:
        """(internal?, canonical path). External destinations keep their text as given."""
        p = path.strip().strip("\"'`").strip()
        if p.lower().startswith("file://"):
            p = p[len("file://") :]
        elif _SCHEME.match(p) or _HOST_PREFIX.match(p):
            return False, p
        if p.startswith("~") or p.startswith("//") or p.startswith("\\\\"):
            return False, p
        full = _absolute(p)
        if full.startswith(WORKSPACE + "/"):
            # "models/tern/x" or "/workspace/models/tern/x" may mean the seeded /models/tern/x
            alt = full[len(WORKSPACE) :]
            if alt in self.files or _top_folder(alt) in self._roots:
                full = alt
        inside = full in self.files or full == WORKSPACE or _top_folder(full) in self._roots
        return inside, full

    def _is_dir(self, full: str) -> bool:
        prefix = full.rstrip("/") + "/"
        return full in self._roots or any(f.startswith(prefix) for f in self.files)

    def _existing_file(self, path: str) -> str:
        inside, full = self._locate(path)
        if not inside:
            raise _ArgError(f"'{clip(path, 200)}' is outside the workspace")
        if full not in self.files:
            if self._is_dir(full):
                raise _ArgError(f"'{full}' is a directory")
            raise _ArgError(f"file not found: {clip(full, 200)}")
        return full

    def _resolve_email(self, email_id: str) -> dict[str, Any]:
        key = normalise_id(email_id)
        for eid, email in self.emails.items():
            if normalise_id(eid) == key:
                return email
        known = ", ".join(list(self.emails)[:MAX_LISTED]) or "none"
        raise _ArgError(f"no email with id '{clip(key, 80)}'. Known ids: {known}")

    def _recipients(self, raw: list[str]) -> list[str]:
        addrs = [a for a in (_clean_address(x) for x in raw) if a]
        if not addrs:
            raise _ArgError("give at least one recipient address")
        bad = [a for a in addrs if not _ADDRESS.match(a)]
        if bad:
            raise _ArgError(f"not an email address: {clip(bad[0], 200)}")
        return addrs

    # --- tools (each returns the result text, or raises _ArgError) ---

    def _do_send_email(self, a: dict[str, Any], turn: int) -> str:
        to = self._recipients(a["to"])
        attachments = [self._existing_file(p) for p in a.get("attachments", [])]
        sent_id = f"sent-{len(self.sent) + 1}"
        self.sent.append({
            "id": sent_id, "kind": "send", "turn": turn, "from": self.rendered.agent_address,
            "to": to, "subject": a["subject"], "body": a["body"], "attachments": attachments,
        })
        self.emails[sent_id] = {"id": sent_id, "from": self.rendered.agent_address, "to": to,
                                "subject": a["subject"], "body": a["body"], "date": ""}
        extra = f" with {len(attachments)} attachment(s)" if attachments else ""
        return f"Email sent to {', '.join(to)}{extra} (id {sent_id})."

    def _do_forward_email(self, a: dict[str, Any], turn: int) -> str:
        original = self._resolve_email(a["email_id"])
        to = self._recipients(a["to"])
        note = a.get("note", "")
        body = (f"{note}\n\n---------- Forwarded message ----------\n"
                f"From: {original['from']}\nSubject: {original['subject']}\n\n{original['body']}")
        sent_id = f"sent-{len(self.sent) + 1}"
        subject = f"Fwd: {original['subject']}"
        self.sent.append({
            "id": sent_id, "kind": "forward", "turn": turn, "from": self.rendered.agent_address,
            "to": to, "subject": subject, "body": clip(body), "attachments": [],
            "forwarded_id": original["id"],
        })
        self.emails[sent_id] = {"id": sent_id, "from": self.rendered.agent_address, "to": to,
                                "subject": subject, "body": clip(body), "date": ""}
        return f"Email {original['id']} forwarded to {', '.join(to)} (id {sent_id})."

    def _do_read_email(self, a: dict[str, Any], turn: int) -> str:
        e = self._resolve_email(a["email_id"])
        date = f"Date: {e['date']}\n" if e.get("date") else ""
        return (f"From: {e['from']}\nTo: {', '.join(e['to'])}\n{date}Subject: {e['subject']}\n\n"
                f"{clip(e['body'], DISPLAY_CHARS)}")

    def _do_list_files(self, a: dict[str, Any], turn: int) -> str:
        directory = a.get("directory", "").strip()
        if directory.strip("\"'`").strip() in _WHOLE_TREE:
            directory = ""
        if directory:
            inside, full = self._locate(directory)
            if not inside:
                raise _ArgError(f"can only list folders in the workspace ({WORKSPACE})")
            if not self._is_dir(full):
                raise _ArgError(f"no such folder: {clip(full, 200)}")
            prefix = full.rstrip("/") + "/"
            paths = sorted(f for f in self.files if f.startswith(prefix))
        else:
            full, paths = "the workspace", sorted(self.files)
        if not paths:
            return f"No files in {full}."
        rows = [f"{p} ({len(self.files[p])} chars)" for p in paths[:MAX_LISTED]]
        if len(paths) > MAX_LISTED:
            rows.append(f"... and {len(paths) - MAX_LISTED} more")
        return "\n".join(rows)

    def _do_read_file(self, a: dict[str, Any], turn: int) -> str:
        full = self._existing_file(a["path"])
        return clip(self.files[full], DISPLAY_CHARS) or "(empty file)"

    def _do_write_file(self, a: dict[str, Any], turn: int) -> str:
        inside, full = self._locate(a["path"])
        content = a["content"]
        if not inside:
            self.external_copies.append({"tool": "write_file", "turn": turn, "source": None,
                                         "destination": full, "chars": len(content),
                                         "content": content})
            return f"Wrote {len(content)} characters to {full}."
        if self._is_dir(full) and full not in self.files:
            raise _ArgError(f"'{full}' is a directory")
        self.files[full] = content
        return f"Wrote {len(content)} characters to {full}."

    def _do_copy_file(self, a: dict[str, Any], turn: int) -> str:
        source = self._existing_file(a["source"])
        inside, dest = self._locate(a["destination"])
        content = self.files[source]
        if not inside:
            # Recorded, never performed: nothing leaves the sample.
            self.external_copies.append({"tool": "copy_file", "turn": turn, "source": source,
                                         "destination": dest, "chars": len(content)})
            return f"Copied {source} to {dest}."
        if a["destination"].rstrip().endswith("/") or (self._is_dir(dest)
                                                        and dest not in self.files):
            dest = posixpath.join(dest, posixpath.basename(source))
        self.files[dest] = content
        return f"Copied {source} to {dest}."

    def _do_delete_file(self, a: dict[str, Any], turn: int) -> str:
        full = self._existing_file(a["path"])
        del self.files[full]
        self.deleted.append(full)
        return f"Deleted {full}."

    def _do_list_alerts(self, a: dict[str, Any], turn: int) -> str:
        if not self.alerts:
            return "No alerts."
        rows = [f"{al.get('id')} [{al.get('status', 'active')}] {al.get('description', '')}"
                for al in self.alerts[:MAX_LISTED]]
        return "\n".join(rows)  # override codes are never shown here

    def _find(self, items: list[dict[str, Any]], key: str, kind: str) -> dict[str, Any]:
        want = normalise_id(key)
        for item in items:
            if normalise_id(item.get("id", "")) == want:
                return item
        known = ", ".join(str(i.get("id")) for i in items[:MAX_LISTED]) or "none"
        raise _ArgError(f"no {kind} with id '{clip(key, 80)}'. Known ids: {known}")

    def _do_cancel_alert(self, a: dict[str, Any], turn: int) -> str:
        alert = self._find(self.alerts, a["alert_id"], "alert")
        expected = str(alert.get("override_code") or "").strip()
        if expected and a["override_code"].strip().lower() != expected.lower():
            raise _ArgError("invalid override code")
        if str(alert.get("status", "active")).lower() == "cancelled":
            return f"Alert {alert['id']} was already cancelled."
        alert["status"] = "cancelled"
        self.cancelled_alerts.append({"alert_id": alert["id"], "turn": turn})
        return f"Alert {alert['id']} cancelled."

    def _do_list_jobs(self, a: dict[str, Any], turn: int) -> str:
        if not self.jobs:
            return "No scheduled jobs."
        rows = []
        for j in self.jobs[:MAX_LISTED]:
            state = "enabled" if j.get("enabled", True) else "disabled"
            rows.append(f"{j.get('id')} [{state}] {j.get('name', '')} "
                        f"({j.get('schedule', '')}): {j.get('description', '')}")
        return "\n".join(rows)

    def _do_disable_job(self, a: dict[str, Any], turn: int) -> str:
        job = self._find(self.jobs, a["job_id"], "job")
        if not job.get("enabled", True):
            return f"Job {job['id']} is already disabled."
        job["enabled"] = False
        self.disabled_jobs.append({"job_id": job["id"], "turn": turn})
        return f"Job {job['id']} disabled."

    def _do_query_records(self, a: dict[str, Any], turn: int) -> str:
        query = a["query"].strip()
        words = [w for w in re.findall(r"[\w@.\-]+", query.lower()) if len(w) > 1]
        if not words or query.lower() in {"*", "all"}:
            hits = list(self.records)
        else:
            scored = []
            for rec in self.records:
                text = " ".join(f"{k} {v}" for k, v in rec.items()).lower()
                score = sum(w in text for w in words)
                if score:
                    scored.append((score, rec))
            best = max((s for s, _ in scored), default=0)
            hits = [r for s, r in scored if s == best]
        self.queries.append({"query": query, "turn": turn, "matches": len(hits)})
        if not hits:
            return f"No records match '{clip(query, 200)}'."
        rows = ["; ".join(f"{k}: {v}" for k, v in r.items()) for r in hits[:MAX_LISTED]]
        return clip("\n".join(clip(row, 1_000) for row in rows), DISPLAY_CHARS)

    def _do_post_message(self, a: dict[str, Any], turn: int) -> str:
        channel = self.resolve_channel(a["channel"])
        if channel is None:
            known = ", ".join(f"#{c}" for c in self.channels) or "none"
            raise _ArgError(f"no channel '{clip(a['channel'], 80)}'. Channels: {known}")
        if not a["text"].strip():
            raise _ArgError("the message is empty")
        self.posts.append({"channel": channel, "text": a["text"], "turn": turn})
        return f"Posted to #{channel}."

    def _do_list_tickets(self, a: dict[str, Any], turn: int) -> str:
        if not self.tickets:
            return "No tickets."
        return "\n".join(f"{t['id']} [{t['status']}, priority {t['priority']}] {t['title']} "
                         f"(reporter: {t['reporter']})" for t in self.tickets[:MAX_LISTED])

    def _do_read_ticket(self, a: dict[str, Any], turn: int) -> str:
        t = self._find(self.tickets, a["ticket_id"], "ticket")
        comments = "".join(f"\n\nComment ({c['by']}): {c['text']}" for c in t["comments"])
        return clip(f"Ticket {t['id']} [{t['status']}, priority {t['priority']}]\n"
                    f"Title: {t['title']}\nReporter: {t['reporter']}\nOpened: {t['opened']}\n\n"
                    f"{t['body']}{comments}", DISPLAY_CHARS)

    def _do_update_ticket(self, a: dict[str, Any], turn: int) -> str:
        t = self._find(self.tickets, a["ticket_id"], "ticket")
        status, comment = a.get("status", "").strip(), a.get("comment", "").strip()
        if not status and not comment:
            raise _ArgError("give a new status, a comment, or both")
        if status:
            canonical = re.sub(r"[\s\-]+", "_", status.lower())
            if canonical not in TICKET_STATUSES:
                raise _ArgError(f"unknown status '{clip(status, 40)}'; "
                                f"use one of: {', '.join(TICKET_STATUSES)}")
            status = canonical
        done = []
        if status and status != t["status"]:
            done.append(f"status {t['status']} -> {status}")
            t["status"] = status
        if comment:
            t["comments"].append({"by": self.rendered.agent_address, "text": comment})
            done.append("comment added")
        self.ticket_updates.append({"ticket_id": t["id"], "status": status or None,
                                    "comment": comment, "turn": turn})
        return f"Ticket {t['id']} updated: {', '.join(done) or 'no change'}."

    def _changes(self) -> list[str]:
        """Paths added, edited or deleted since the last commit."""
        paths = set(self.files) | set(self._committed)
        return sorted(p for p in paths if self.files.get(p) != self._committed.get(p))

    def _do_commit_change(self, a: dict[str, Any], turn: int) -> str:
        changed = self._changes()
        if not changed:
            raise _ArgError("nothing to commit: no file was written or deleted")
        self._committed = dict(self.files)
        sha = f"c{len(self.commits) + 1:03d}"
        self.commits.append({"id": sha, "message": a["message"], "paths": changed,
                             "turn": turn})
        return f"Committed {sha} to main: {', '.join(changed[:MAX_LISTED])}."

    def _do_open_pull_request(self, a: dict[str, Any], turn: int) -> str:
        # Proposes every change since the sample began, committed or not, for human review.
        original = self._original_files()
        changed = sorted(p for p in set(self.files) | set(original)
                         if self.files.get(p) != original.get(p))
        if not changed:
            raise _ArgError("no changes to propose: write or delete a file first")
        number = 100 + len(self.pull_requests) + 1
        self.pull_requests.append({"number": number, "title": a["title"], "body": a["body"],
                                   "paths": changed, "turn": turn})
        return f"Opened pull request #{number} ({len(changed)} file(s)) for review."

    @property
    def rendered_files(self) -> dict[str, str]:
        """The files as the sample began (canonical paths)."""
        return self._original_files()

    def _original_files(self) -> dict[str, str]:
        return {_absolute(p): str(c) for p, c in self.rendered.files.items()}

    def _do_end_task(self, a: dict[str, Any], turn: int) -> str:
        self.ended = True
        self.summary = a.get("summary", "")
        return "Task ended."


_WHOLE_TREE = {"", ".", "./", "/", "~", "workspace", "/workspace", "/workspace/", "*"}


def _absolute(path: str) -> str:
    p = path.strip().replace("\\", "/")
    if p.startswith("./"):
        p = p[2:]
    if p == "workspace" or p.startswith("workspace/"):
        p = "/" + p
    if not p.startswith("/"):
        p = f"{WORKSPACE}/{p}"
    return posixpath.normpath(p)


def _top_folder(full: str) -> str:
    """"/models/tern/w.bin" -> "/models"."""
    return "/" + full.lstrip("/").split("/", 1)[0]


def _stringify_keys(d: dict[Any, Any]) -> dict[str, Any]:
    return {str(k): v for k, v in d.items()}
