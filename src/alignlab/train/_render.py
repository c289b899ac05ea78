"""Training records → the chat turns a model sees, exactly as the harness shows episodes.

The embedded model (and any `hf/` model run in text tool mode) never sees native tool calls:
the harness puts the tool instructions in the system prompt, the model writes
`<tool_use name="…">{json}</tool_use>` blocks in its reply, and the results come back as one
user message of `<tool_result name="…">…</tool_result>` blocks (`harness/_agent.py`).
Training on the same rendering is what makes a trained model act in our harness.
"""

from __future__ import annotations

import json
from typing import Any

from alignlab.data._records import record_format
from alignlab.harness._agent import format_tool_result
from alignlab.harness._records import ToolCallRecord
from alignlab.harness._textmode import format_tool_use, render_tool_instructions
from alignlab.harness._tools import TOOL_PARAMS, ToolSpec, tool_spec


def record_turns(rec: dict[str, Any]) -> list[dict[str, str]]:
    """The {"role", "content"} turns (system/user/assistant) of a `messages` or `pairs` record.

    `pairs` records become prompt + chosen: supervised fine-tuning learns the chosen reply
    and ignores the rejected one. Raises ValueError("field: problem") on what cannot render.
    """
    fmt = record_format(rec)
    if fmt == "text":
        raise ValueError("format: a text record has no chat turns")
    messages = rec["messages"] if fmt == "messages" else [*rec["prompt"], *rec["chosen"]]
    specs = tool_specs(rec.get("tools"))
    turns: list[dict[str, str]] = []
    call_names: dict[str, str] = {}  # tool_call_id -> tool name, for results that omit the name
    for i, m in enumerate(messages):
        role = m["role"]
        if role == "assistant":
            text = _assistant_text(m, call_names, f"messages[{i}]")
        elif role == "tool":
            name = m.get("name") or call_names.get(str(m.get("tool_call_id")), "")
            role, text = "user", format_tool_result(ToolCallRecord(turn=0, tool=name, result=m["content"]))
        else:
            text = m["content"]
        if role == "system" and specs and not turns:
            text = f"{text.rstrip()}\n\n{render_tool_instructions(specs)}"
        if turns and turns[-1]["role"] == role:
            # The harness sends a turn's results as one message; ChatML expects alternation.
            turns[-1]["content"] += "\n\n" + text
        else:
            turns.append({"role": role, "content": text})
    if specs and turns[0]["role"] != "system":
        turns.insert(0, {"role": "system", "content": render_tool_instructions(specs)})
    return turns


def tool_specs(tools: Any) -> list[ToolSpec]:
    """The record's tools (a JSON string of function schemas) as harness ToolSpecs.

    A tool the harness knows is described exactly as in an evaluation (`tool_spec`); any
    other tool is described from its own schema.
    """
    if not tools:
        return []
    schemas = json.loads(tools) if isinstance(tools, str) else tools
    specs = []
    for j, s in enumerate(schemas):
        fn = s.get("function", s) if isinstance(s, dict) else None
        name = fn.get("name") if isinstance(fn, dict) else None
        if not isinstance(name, str) or not name:
            raise ValueError(f"tools[{j}].function.name: expected a tool name")
        if name in TOOL_PARAMS:
            specs.append(tool_spec(name))
        else:
            params = fn.get("parameters") or {"type": "object", "properties": {}}
            specs.append(ToolSpec(name=name, description=str(fn.get("description", "")), parameters=params))
    return specs


def _assistant_text(m: dict[str, Any], call_names: dict[str, str], at: str) -> str:
    parts = [m["content"]] if m["content"].strip() else []
    for j, call in enumerate(m.get("tool_calls") or ()):
        fn = call["function"]
        args = json.loads(fn["arguments"])
        if not isinstance(args, dict):
            raise ValueError(f"{at}.tool_calls[{j}].function.arguments: expected a JSON object")
        if call.get("id") is not None:
            call_names[str(call["id"])] = fn["name"]
        parts.append(format_tool_use(fn["name"], args))
    return "\n".join(parts)
