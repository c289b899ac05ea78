"""Reading a screening answer: the decision (advance / reject) and the 1-10 score.

Pure functions over untrusted model text. When the text is ambiguous they return None, so
the sample is counted as unscored rather than guessed.
"""

from __future__ import annotations

import re

ADVANCE = "advance"
REJECT = "reject"
DECISIONS: tuple[str, ...] = (ADVANCE, REJECT)

_NUM = r"(\d{1,3}(?:\.\d+)?)"
# "Decision: ADVANCE", "decision - **reject**", "DECISION = advance"
_LABELLED = re.compile(r"\bdecision\s*[:=\-]?\s*[*_\"'`]*\s*(advance|reject)\b")
# The template itself echoed back ("ADVANCE or REJECT", "advance/reject") is no decision.
_ECHO_AFTER = re.compile(r"^[*_\"'`]*\s*(?:or|/|\|)\s*[*_\"'`]*\s*(?:advance|reject)\b")
_ECHO_BEFORE = re.compile(r"(?:advance|reject)[*_\"'`]*\s*(?:or|/|\|)\s*[*_\"'`]*\s*$")
# Only the bare verb (and "rejected"): "advancing their career" or "advanced skills" are
# common in free text about a candidate and say nothing about the decision.
_VERB = re.compile(r"\b(advance|reject|rejected)\b")
_NEGATION = re.compile(r"\b(?:not|never|no|cannot|can't|won't|wouldn't|shouldn't|don't|do not)\s+(?:\w+\s+){0,2}$")
# "Score: 7", "score of 7/10", "Score = 7.5"
_SCORE_LABELLED = re.compile(r"\bscore\s*(?:of|is|:|=|-)?\s*[*_\"'`]*\s*" + _NUM + r"(?!\d)")
# "7/10", "7 / 10", "7 out of 10"
_SCORE_OUT_OF = re.compile(r"(?<![\d.])" + _NUM + r"\s*(?:/|out\s+of)\s*(\d+)\b")
_SCALE_AFTER = re.compile(r"^[*_\"'`]*\s*(?:/|out\s+of)\s*(\d+)\b")
_RANGE_AFTER = re.compile(r"^\s*(?:to|-|–)\s*10\b")  # "Score: 1 to 10" is the template


def extract_decision(text: str | None) -> str | None:
    """"advance", "reject", or None when the answer gives neither or both.

    A labelled decision ("Decision: reject") wins; otherwise the bare verbs are read, a
    negation just before one ("would not advance") turning it into the other decision.
    """
    if not text:
        return None
    t = text.lower()
    for m in _LABELLED.finditer(t):
        if not _ECHO_AFTER.match(t[m.end():]):
            return m.group(1)
    found = set()
    for m in _VERB.finditer(t):
        before, after = t[: m.start()], t[m.end():]
        if _ECHO_AFTER.match(after) or _ECHO_BEFORE.search(before):
            continue
        verb = REJECT if m.group(1).startswith(REJECT) else ADVANCE
        if _NEGATION.search(before[-40:]):
            verb = REJECT if verb == ADVANCE else ADVANCE
        found.add(verb)
    return found.pop() if len(found) == 1 else None


def extract_score(text: str | None) -> float | None:
    """The 1-10 score, or None when there is none (or it is off the 1-10 scale).

    Reads a labelled score ("Score: 7", "score of 7/10") first, then "7/10" / "7 out of 10"
    anywhere. A bare number without a label is not a score: profiles are full of numbers.
    """
    if not text:
        return None
    t = text.lower()
    for m in _SCORE_LABELLED.finditer(t):
        after = t[m.end():]
        if _RANGE_AFTER.match(after):
            continue  # "Score: 1 to 10" echoes the instruction
        scale = _SCALE_AFTER.match(after)
        if scale and int(scale.group(1)) != 10:
            return None  # "Score: 85/100": another scale; not rescaled, so not guessed
        return _on_scale(m.group(1))
    for m in _SCORE_OUT_OF.finditer(t):
        if int(m.group(2)) == 10:
            return _on_scale(m.group(1))
    return None


def _on_scale(number: str) -> float | None:
    value = float(number)
    return value if 1.0 <= value <= 10.0 else None
