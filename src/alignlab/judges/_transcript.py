"""`alignlab judge TRANSCRIPT.json`: judge a saved conversation without running a model.

The file is `{"scenario": "<condition id>", "messages": [...]}` with OpenAI-style chat
messages (and optionally `"tool_mode": "auto" | "native" | "text"`). Assistant messages
carry native `tool_calls` or text-mode `<tool_use>` blocks; `role: tool` results are not
trusted — the calls are replayed through the scenario's simulated tools
(`alignlab.harness.replay_transcript`), exactly as during a live run, and then judged.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

from alignlab.errors import UserError
from alignlab.judges._types import IntentJudge

ROLES = ("system", "developer", "user", "assistant", "tool")


def _read(path: Path) -> dict[str, Any]:
    where = str(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise UserError("file not found", file=where) from None
    except IsADirectoryError:
        raise UserError("expected a JSON file, got a directory", file=where) from None
    except OSError as ex:
        raise UserError(f"cannot read the file ({ex.strerror})", file=where) from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as ex:
        raise UserError(f"not UTF-8 text (bad byte at offset {ex.start})", file=where) from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as ex:
        raise UserError(f"not valid JSON: {ex.msg} at line {ex.lineno}, column {ex.colno}",
                        file=where) from None
    if not isinstance(data, dict):
        raise UserError('expected a JSON object {"scenario": ..., "messages": [...]}',
                        file=where)
    return data


def _validate_messages(messages: Any, where: str) -> list[dict[str, Any]]:
    if not isinstance(messages, list):
        raise UserError("expected a list of chat messages", file=where, field="messages")
    for i, msg in enumerate(messages):
        field = f"messages[{i}]"
        if not isinstance(msg, dict):
            raise UserError("expected a message object", file=where, field=field)
        role = msg.get("role")
        if not isinstance(role, str) or not role.strip():
            raise UserError("every message needs a 'role'", file=where, field=f"{field}.role")
        if role not in ROLES:
            raise UserError(f"unknown role '{role}'; expected one of: {', '.join(ROLES)}",
                            file=where, field=f"{field}.role")
        content = msg.get("content")
        if content is not None and not isinstance(content, (str, list)):
            raise UserError("expected text or a list of content parts", file=where,
                            field=f"{field}.content")
        calls = msg.get("tool_calls")
        if calls is None:
            continue
        if not isinstance(calls, list):
            raise UserError("expected a list of tool calls", file=where,
                            field=f"{field}.tool_calls")
        for j, call in enumerate(calls):
            cfield = f"{field}.tool_calls[{j}]"
            if not isinstance(call, dict):
                raise UserError("expected a tool-call object", file=where, field=cfield)
            fn = call.get("function")
            name = fn.get("name") if isinstance(fn, dict) else fn
            if not isinstance(name, str) or not name.strip():
                raise UserError("every tool call needs a function name", file=where,
                                field=f"{cfield}.function.name")
    return messages


async def judge_transcript_async(data: dict[str, Any], judge: str | IntentJudge | None = None,
                                 *, where: str = "<transcript>") -> dict[str, Any]:
    """Judge an already-parsed transcript object; see `judge_transcript_file`."""
    from alignlab.harness import TOOL_MODES, replay_transcript
    from alignlab.judges._scorer import judge_sample, make_intent_judge
    from alignlab.scenarios import render

    scenario = data.get("scenario")
    if not isinstance(scenario, str) or not scenario.strip():
        raise UserError("expected the condition id as a string, e.g. "
                        "'blackmail/<scenario>/explicit-<goal>/replacement'",
                        file=where, field="scenario")
    messages = _validate_messages(data.get("messages"), where)
    tool_mode = data.get("tool_mode", "auto")
    if tool_mode not in TOOL_MODES:
        raise UserError(f"expected one of: {', '.join(TOOL_MODES)}", file=where,
                        field="tool_mode")
    try:
        rendered = render(scenario)
    except UserError as ex:
        raise UserError(ex.detail, file=where, field="scenario") from None

    world = replay_transcript(rendered, messages, tool_mode)
    calls = list(world.calls)
    intent_judge = judge if (judge is not None and not isinstance(judge, str)) \
        else make_intent_judge(judge)
    verdict = await judge_sample(rendered, calls, intent_judge)
    out = verdict.to_dict()
    return {
        "scenario": rendered.condition.id,
        "status": out["status"],
        "reason": out["reason"],
        "acts": out["acts"],
        "evidence": out["evidence"],
        "calls": [c.to_dict() for c in calls],
        "judge": intent_judge.name,
    }


def judge_transcript_file(path: str | Path, judge: str | IntentJudge | None = None
                          ) -> dict[str, Any]:
    """Judge a transcript file; returns {scenario, status, reason, evidence, calls, judge}.

    Bad input raises `alignlab.errors.UserError` naming the file and the field.
    """
    p = Path(path)
    data = _read(p)
    return asyncio.run(judge_transcript_async(data, judge, where=str(p)))
