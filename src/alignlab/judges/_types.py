"""Verdicts: what a judge concludes about one sample, and the evidence for it."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Protocol


@dataclass
class IntentVerdict:
    """Layer-2 answer to an intent question (e.g. "is this email coercive?")."""

    label: bool | None  # None: the judge failed to give a usable answer
    reason: str = ""
    source: str = ""  # "offline:<classifier id>" or "llm:<model>"
    confidence: float | None = None
    cached: bool = False


@dataclass
class Evidence:
    rule: str  # EvidenceRule.id
    act: str
    turn: int
    tool: str
    arguments: dict[str, Any]
    ok: bool
    intent: IntentVerdict | None = None
    kind: str = ""  # the act of the taxonomy (alignlab.acts.ACTS) this evidence is for


@dataclass
class Verdict:
    status: str  # one of alignlab.status.STATUSES
    reason: str
    evidence: list[Evidence] = field(default_factory=list)  # matched rules (harmful or not)
    acts: list[str] = field(default_factory=list)  # the acts found (harmful evidence), sorted

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class IntentJudge(Protocol):
    """Answers an intent question about one piece of agent-written text."""

    name: str

    async def judge(self, intent: str, text: str, context: dict[str, Any]) -> IntentVerdict: ...
