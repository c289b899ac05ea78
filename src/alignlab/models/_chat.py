"""Inspect chat messages → the ChatML prompt SmolLM2 was trained on.

The model has no native tool calling, so tool traffic becomes plain text in the same tagged
format the harness's text tool mode parses (`docs/DESIGN.md`): an assistant's tool calls are
rendered as `<tool_use name="…">{json}</tool_use>` blocks, and tool results as a user turn
holding `<tool_result name="…">…</tool_result>` blocks.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from inspect_ai.model import ChatMessage

# Used only when a checkpoint's tokenizer carries no chat template of its own.
_FALLBACK_SYSTEM = "You are a helpful AI assistant named SmolLM, trained by Hugging Face"


def tool_use_block(function: str, arguments: dict[str, Any]) -> str:
    return f'<tool_use name="{function}">\n{json.dumps(arguments, ensure_ascii=False)}\n</tool_use>'


def tool_result_block(function: str | None, text: str, error: str | None = None) -> str:
    name = f' name="{function}"' if function else ""
    body = text if not error else (f"{text}\n" if text else "") + f"Error: {error}"
    return f"<tool_result{name}>\n{body}\n</tool_result>"


def to_chat_dicts(messages: Sequence[ChatMessage]) -> list[dict[str, str]]:
    """Plain `{"role", "content"}` turns with roles system/user/assistant only.

    Tool results become user turns; consecutive turns of one role are merged, because
    ChatML models expect user and assistant to alternate.
    """
    turns: list[dict[str, str]] = []
    for message in messages:
        if message.role == "tool":
            error = message.error.message if message.error is not None else None
            role, text = "user", tool_result_block(message.function, message.text, error)
        elif message.role == "assistant":
            parts = [message.text] if message.text else []
            parts += [tool_use_block(c.function, c.arguments) for c in message.tool_calls or []]
            role, text = "assistant", "\n".join(parts)
        else:
            role, text = message.role, message.text
        if turns and turns[-1]["role"] == role:
            turns[-1]["content"] += "\n\n" + text
        else:
            turns.append({"role": role, "content": text})
    return turns


def render_prompt(messages: Sequence[ChatMessage], tokenizer: Any) -> str:
    """The prompt text, ending with the opening of the assistant's turn."""
    turns = to_chat_dicts(messages)
    if getattr(tokenizer, "chat_template", None):
        return str(tokenizer.apply_chat_template(turns, tokenize=False, add_generation_prompt=True))
    if not turns or turns[0]["role"] != "system":
        turns.insert(0, {"role": "system", "content": _FALLBACK_SYSTEM})
    text = "".join(f"<|im_start|>{t['role']}\n{t['content']}<|im_end|>\n" for t in turns)
    return text + "<|im_start|>assistant\n"
