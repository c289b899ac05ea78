"""Records → token ids and labels, with the loss on the assistant's turns only.

The assistant mask is computed here from the rendered text, not from `{% generation %}` tags
(SmolLM2's template has none, and TRL's `assistant_only_loss` then yields an empty mask on
some templates without a word). For each assistant turn we render the conversation up to
that turn with the generation prompt and up to the end of the turn; the difference is the
assistant's content and end-of-turn token. Tokens whose first character falls inside such a
span are trained on; everything else (system, user, tool results, role headers) gets -100.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from alignlab.data._records import record_format
from alignlab.train._render import record_turns

IGNORE = -100


@dataclass
class Encoded:
    input_ids: list[int]
    labels: list[int]
    truncated: bool = False

    @property
    def loss_tokens(self) -> int:
        return sum(1 for t in self.labels if t != IGNORE)


def _render(tokenizer: Any, turns: list[dict[str, str]], generation_prompt: bool) -> str:
    if not turns:
        return ""
    return str(tokenizer.apply_chat_template(turns, tokenize=False, add_generation_prompt=generation_prompt))


def assistant_spans(turns: list[dict[str, str]], tokenizer: Any) -> tuple[str, list[tuple[int, int]]]:
    """The full rendered conversation and the character spans of the assistant's replies
    (content plus end-of-turn marker; the role header and trailing newline excluded)."""
    full = _render(tokenizer, turns, False)
    spans = []
    for i, turn in enumerate(turns):
        if turn["role"] != "assistant":
            continue
        before = _render(tokenizer, turns[:i], True)
        upto = _render(tokenizer, turns[: i + 1], False)
        if not (full.startswith(upto) and upto.startswith(before)):
            raise ValueError(
                f"messages[{i}]: the chat template does not render this conversation's beginning "
                "as a prefix of the whole, so the assistant's tokens cannot be located"
            )
        end = len(before) + len(upto[len(before):].rstrip())
        if end > len(before):
            spans.append((len(before), end))
    return full, spans


def encode_chat(turns: list[dict[str, str]], tokenizer: Any) -> Encoded:
    full, spans = assistant_spans(turns, tokenizer)
    enc = tokenizer(full, add_special_tokens=False, return_offsets_mapping=True)
    ids = list(enc["input_ids"])
    labels = [
        tok if any(s <= start < e for s, e in spans) else IGNORE
        for tok, (start, _) in zip(ids, enc["offset_mapping"])
    ]
    return Encoded(ids, labels)


def encode_text(text: str, tokenizer: Any) -> Encoded:
    """A document: language-model loss on every token, ended by the end-of-sequence token."""
    ids = list(tokenizer(text, add_special_tokens=True)["input_ids"])
    if tokenizer.eos_token_id is not None:
        ids.append(tokenizer.eos_token_id)
    return Encoded(ids, list(ids))


def encode_record(rec: dict[str, Any], tokenizer: Any, max_length: int) -> Encoded:
    """Encode one validated record, keeping its first `max_length` tokens.

    Raises ValueError("field: problem") if nothing is left to learn from: an empty assistant
    mask is an error, never a silently useless example.
    """
    if record_format(rec) == "text":
        out = encode_text(rec["text"], tokenizer)
    else:
        out = encode_chat(record_turns(rec), tokenizer)
        if out.loss_tokens == 0:
            raise ValueError("messages: the assistant mask is empty (no assistant tokens found in the rendered chat)")
    if len(out.input_ids) > max_length:
        out = Encoded(out.input_ids[:max_length], out.labels[:max_length], truncated=True)
        if out.loss_tokens == 0:
            raise ValueError(
                f"messages: no assistant token within the first {max_length} tokens; raise --max-length"
            )
    return out
