"""Training records: one JSON object per line, in a format TRL and `datasets` read.

Columns by format (see `_recipe.py` for the payload shapes):
    messages: "messages" [, "tools"]      text: "text"      pairs: "prompt", "chosen", "rejected" [, "tools"]
Records built by alignlab also carry "id", "recipe", "format", "seed_ids", "teacher",
"constitution_sha256" and "build_seed". `data check` accepts any file with a valid payload,
so datasets from elsewhere can be checked too.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterable, Iterator

from alignlab.errors import UserError

ROLES = ("system", "user", "assistant", "tool")
PAYLOAD_KEYS = {"messages": ("messages",), "text": ("text",), "pairs": ("prompt", "chosen", "rejected")}


def record_format(rec: dict[str, Any]) -> str:
    """The record's format: its "format" field, or inferred from which columns it has."""
    fmt = rec.get("format")
    if fmt in PAYLOAD_KEYS:
        return fmt
    for name, keys in PAYLOAD_KEYS.items():
        if all(k in rec for k in keys):
            return name
    raise ValueError("no payload: expected 'messages', 'text', or 'prompt'+'chosen'+'rejected'")


def validate_payload(rec: dict[str, Any]) -> str:
    """Check a record's payload; return its format. Raises ValueError("field: problem")."""
    fmt = record_format(rec)
    if fmt == "text":
        if not isinstance(rec["text"], str) or not rec["text"].strip():
            raise ValueError("text: expected a non-empty string")
    elif fmt == "messages":
        _check_messages(rec["messages"], "messages")
        if not any(m.get("role") == "assistant" for m in rec["messages"]):
            raise ValueError("messages: no assistant message, so nothing to learn from")
    else:
        _check_messages(rec["prompt"], "prompt")
        for side in ("chosen", "rejected"):
            _check_messages(rec[side], side)
            if any(m.get("role") not in ("assistant", "tool") for m in rec[side]):
                raise ValueError(f"{side}: expected only assistant (and tool) messages")
    if "tools" in rec and rec["tools"] is not None:
        if not isinstance(rec["tools"], str):
            raise ValueError("tools: expected a JSON string (a list of function schemas)")
        try:
            tools = json.loads(rec["tools"])
        except json.JSONDecodeError as e:
            raise ValueError(f"tools: not valid JSON ({e.msg})") from None
        if not isinstance(tools, list):
            raise ValueError("tools: expected a JSON list")
    return fmt


def _check_messages(msgs: Any, where: str) -> None:
    if not isinstance(msgs, list) or not msgs:
        raise ValueError(f"{where}: expected a non-empty list of messages")
    for i, m in enumerate(msgs):
        at = f"{where}[{i}]"
        if not isinstance(m, dict):
            raise ValueError(f"{at}: expected an object with 'role' and 'content'")
        if m.get("role") not in ROLES:
            raise ValueError(f"{at}.role: expected one of {', '.join(ROLES)}, got {m.get('role')!r}")
        if not isinstance(m.get("content"), str):
            raise ValueError(f"{at}.content: expected a string")
        calls = m.get("tool_calls")
        if calls is not None:
            if m["role"] != "assistant" or not isinstance(calls, list):
                raise ValueError(f"{at}.tool_calls: only assistant messages carry a list of tool calls")
            for j, c in enumerate(calls):
                fn = c.get("function") if isinstance(c, dict) else None
                if not isinstance(fn, dict) or not isinstance(fn.get("name"), str) or not fn["name"]:
                    raise ValueError(f"{at}.tool_calls[{j}].function.name: expected a tool name")
                if not isinstance(fn.get("arguments"), str):
                    raise ValueError(f"{at}.tool_calls[{j}].function.arguments: expected a JSON string")
                try:
                    json.loads(fn["arguments"])
                except json.JSONDecodeError:
                    raise ValueError(f"{at}.tool_calls[{j}].function.arguments: not valid JSON") from None
        elif not m["content"].strip() and m["role"] != "tool":
            raise ValueError(f"{at}.content: empty message with no tool calls")


def iter_records(path: str | Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, record) for each non-blank line; a bad line names the file, line and field."""
    p = Path(path)
    try:
        f = p.open(encoding="utf-8")
    except OSError as e:
        raise UserError(f"cannot read the dataset ({e.strerror})", file=str(p)) from None
    with f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError as e:
                raise UserError(f"not valid JSON ({e.msg}, column {e.colno})", file=f"{p}:{n}") from None
            if not isinstance(rec, dict):
                raise UserError("expected one JSON object per line", file=f"{p}:{n}")
            try:
                validate_payload(rec)
            except ValueError as e:
                field, _, problem = str(e).partition(": ")
                raise UserError(problem or field, file=f"{p}:{n}", field=field if problem else None) from None
            yield n, rec


def read_records(path: str | Path) -> list[dict[str, Any]]:
    recs = [r for _, r in iter_records(path)]
    if not recs:
        raise UserError("the dataset has no records", file=str(path))
    return recs


def _message_text(m: dict[str, Any]) -> str:
    parts = [m.get("content") or ""]
    for c in m.get("tool_calls") or ():
        fn = c.get("function", {})
        parts.append(f"{fn.get('name', '')} {fn.get('arguments', '')}")
    return "\n".join(p for p in parts if p)


def record_text(rec: dict[str, Any], system: bool = True) -> str:
    """All the text a model would see or learn from: what decontamination looks at.
    `system=False` leaves out system messages, which many records share by design."""
    fmt = record_format(rec)
    if fmt == "text":
        return rec["text"]
    msgs = rec["messages"] if fmt == "messages" else [*rec["prompt"], *rec["chosen"], *rec["rejected"]]
    if not system:
        msgs = [m for m in msgs if m.get("role") != "system"]
    return "\n\n".join(t for t in map(_message_text, msgs) if t)


def write_records(path: str | Path, records: Iterable[dict[str, Any]]) -> int:
    """Write JSONL atomically (a temporary file renamed into place); returns the count."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.with_name(p.name + ".partial")
    n = 0
    with tmp.open("w", encoding="utf-8") as f:
        for r in records:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")
            n += 1
    tmp.replace(p)
    return n
