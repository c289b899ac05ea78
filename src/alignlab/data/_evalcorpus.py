"""Every text the evaluation suites show a model, as (item id, text) units per suite: what
training data is checked against.

    core, heldout  every condition of the split rendered with `alignlab.scenarios.render`:
                   system prompt, user prompt, each email / message / ticket body, each file,
                   alert, job and personal record
    sycophancy     every prompt the suite asks: neutral, the six cued variants, the challenge
    fairness       the screening instructions, worked examples and every candidate profile

Identical texts (conditions of one scenario share most of theirs) are kept once, under the
first item that shows them. Item ids name the condition or item and the part, e.g.
"blackmail/wexmoor_council/explicit-safety/replacement#email:m3".
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from alignlab.errors import UserError

SUITES: tuple[str, ...] = ("core", "heldout", "sycophancy", "fairness")


@dataclass(frozen=True)
class Unit:
    suite: str
    item: str
    text: str

    @property
    def group(self) -> str:
        """What the unit belongs to: its scenario (whose conditions repeat the same texts) or
        its sycophancy item / fairness pair."""
        head = self.item.split("#")[0]
        return head.split("/")[1] if self.suite in ("core", "heldout") and "/" in head else head


def parse_suites(against: str | tuple[str, ...] | list[str] | None) -> tuple[str, ...]:
    """`--against` as typed ("core,heldout") or a sequence; None means every suite."""
    if against is None:
        return SUITES
    names = [s.strip() for s in (against.split(",") if isinstance(against, str) else against) if s.strip()]
    unknown = [s for s in names if s not in SUITES]
    if unknown or not names:
        raise UserError(f"unknown suite {unknown[0] if unknown else ''!r}; expected some of: "
                        f"{', '.join(SUITES)}", field="--against")
    return tuple(dict.fromkeys(names))


def _flat(d: dict[str, Any]) -> str:
    return "\n".join(f"{k}: {v}" for k, v in d.items() if isinstance(v, (str, int, float)))


def _scenario_units(split: str) -> list[tuple[str, str]]:
    from alignlab.scenarios import list_conditions, render

    out: list[tuple[str, str]] = []
    for c in list_conditions(split=split):
        r = render(c.id)
        out += [(f"{c.id}#system", r.system_prompt), (f"{c.id}#user", r.user_prompt)]
        out += [(f"{c.id}#email:{e.id}", f"{e.subject}\n{e.body}") for e in r.inbox]
        out += [(f"{c.id}#message:{m.id}", m.text) for m in r.messages]
        out += [(f"{c.id}#ticket:{t.get('id', i)}", _flat(t)) for i, t in enumerate(r.tickets)]
        out += [(f"{c.id}#file:{path}", text) for path, text in r.files.items()]
        for kind, rows in (("alert", r.alerts), ("job", r.jobs), ("record", r.records)):
            out += [(f"{c.id}#{kind}:{row.get('id', i)}", _flat(row)) for i, row in enumerate(rows)]
    return out


def _sycophancy_units() -> list[tuple[str, str]]:
    from alignlab.sycophancy import all_items, cued_variants
    from alignlab.sycophancy._prompts import challenge_prompt, neutral_prompt

    out: list[tuple[str, str]] = []
    for item in all_items():
        out.append((f"{item.id}#neutral", neutral_prompt(item)))
        out += [(f"{item.id}#{v.name}", v.prompt) for v in cued_variants(item)]
        out.append((f"{item.id}#challenge", challenge_prompt(item)))
    return out


def _fairness_units() -> list[tuple[str, str]]:
    from alignlab.fairness import build_pairs, default_tables

    prompt = default_tables().prompt
    out = [("prompt#system", prompt.system)]
    for i, (profile, answer) in enumerate(prompt.examples):
        out += [(f"prompt#example{i}", profile), (f"prompt#example{i}:answer", answer)]
    for p in build_pairs():
        out += [(f"{p.id}#a", p.profile_a), (f"{p.id}#b", p.profile_b)]
    return out


@lru_cache(maxsize=None)
def suite_units(suite: str) -> tuple[Unit, ...]:
    """The suite's distinct non-empty texts, in a fixed order."""
    raw = {"core": lambda: _scenario_units("core"), "heldout": lambda: _scenario_units("heldout"),
           "sycophancy": _sycophancy_units, "fairness": _fairness_units}[suite]()
    seen: dict[str, str] = {}
    for item, text in raw:
        if text and text.strip() and text not in seen:
            seen[text] = item
    return tuple(Unit(suite, item, text) for text, item in seen.items())
