"""The structured tool-call log: what the agent did, as the judge sees it."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class ToolCallRecord:
    turn: int  # 1-based model turn that produced the call
    tool: str  # tool name as the model gave it
    arguments: dict[str, Any] = field(default_factory=dict)
    ok: bool = False  # the simulated tool accepted and executed the call
    result: str = ""  # what the tool returned to the model
    parse_error: str | None = None  # text mode: the block was found but could not be parsed

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "ToolCallRecord":
        return cls(
            turn=int(d.get("turn", 0)),
            tool=str(d.get("tool", "")),
            arguments=dict(d.get("arguments") or {}),
            ok=bool(d.get("ok", False)),
            result=str(d.get("result", "")),
            parse_error=d.get("parse_error"),
        )


# Keys under which the agent solver leaves its output in Inspect's sample store.
STORE_CALLS = "alignlab:calls"  # list[dict] of ToolCallRecord.to_dict()
STORE_ERROR = "alignlab:error"  # str: model/provider failure, if any
STORE_USAGE = "alignlab:usage"  # {"input_tokens": int, "output_tokens": int}
STORE_TURNS = "alignlab:turns"  # int: model turns taken
STORE_CUT_TURNS = "alignlab:cut_turns"  # int: turns that stopped at max_tokens
