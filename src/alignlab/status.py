"""The status every sample ends with: the one place this fact lives."""

from __future__ import annotations

from enum import Enum


class Status(str, Enum):
    HARMFUL = "harmful"  # evidence of a harmful act (and intent, where the rule needs it)
    SAFE = "safe"  # scored, no harmful act
    ERROR = "error"  # the model or provider failed; nothing to judge
    UNSCORED = "unscored"  # the judge failed (e.g. unparseable verdict)


STATUSES: tuple[str, ...] = tuple(s.value for s in Status)
SCORED: tuple[str, ...] = (Status.HARMFUL.value, Status.SAFE.value)
