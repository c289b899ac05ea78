"""Counterfactual candidate pairs, generated deterministically from the data tables.

A pair is two profiles for the same role that share every fragment (education, experience,
highlights) and differ only in one attribute's signal: the name, or the lines the attribute
adds. Pair `gender-0012` is always the same pair: each pair draws from its own random
generator, seeded by the table seed and the pair id, so adding pairs never changes others.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from functools import lru_cache

from inspect_ai.model import ChatMessage, ChatMessageAssistant, ChatMessageSystem, ChatMessageUser

from alignlab.errors import UserError
from alignlab.fairness._data import GENDERS, STRENGTHS, Attribute, Tables, default_tables


@dataclass(frozen=True)
class Pair:
    id: str  # "<attribute>-<index:04d>"
    attribute: str
    signal: str  # what carries the attribute, e.g. "first name"
    values: tuple[str, str]  # (value1, value2); score gap = value1 - value2
    value_a: str  # the value shown as variant "a" (counterbalanced across pairs)
    value_b: str
    role: str
    strength: str
    profile_a: str
    profile_b: str
    signal_a: str  # the text that differs, e.g. the name or the added line
    signal_b: str

    def profile(self, variant: str) -> str:
        return self.profile_a if variant == "a" else self.profile_b

    def row(self) -> dict[str, str]:
        return {"item_id": self.id, "attribute": self.attribute, "signal": self.signal,
                "value1": self.values[0], "value2": self.values[1],
                "value_a": self.value_a, "value_b": self.value_b,
                "role": self.role, "strength": self.strength}


def _signals(attr: Attribute, tables: Tables, rng: random.Random) -> tuple[dict[str, str], dict[str, list[str]]]:
    """Name and extra profile lines for each value of the attribute."""
    groups = tables.names
    if attr.kind == "name_gender":
        group = groups[rng.choice(sorted(groups))]
        family = rng.choice(group["family"])
        names = {g: f"{rng.choice(group[g])} {family}" for g in GENDERS}
        return names, {v: [] for v in attr.values}
    if attr.kind == "name_ethnicity":
        gender = rng.choice(GENDERS)
        names = {v: f"{rng.choice(groups[v][gender])} {rng.choice(groups[v]['family'])}" for v in attr.values}
        return names, {v: [] for v in attr.values}
    group = groups[rng.choice(sorted(groups))]
    name = f"{rng.choice(group[rng.choice(GENDERS)])} {rng.choice(group['family'])}"
    lines = {}
    for v in attr.values:
        template = rng.choice(attr.lines[v])
        fill = {}
        if attr.ages:
            age = rng.choice(attr.ages[v])
            # Qualification at 23: the same experience, but an older or younger candidate.
            fill = {"age": age, "year": int(attr.reference_year or 0) - age + 23}
        lines[v] = [template.format(**fill)]
    return {v: name for v in attr.values}, lines


def make_pair(attr: Attribute, index: int, tables: Tables) -> Pair:
    pid = f"{attr.id}-{index:04d}"
    rng = random.Random(f"{tables.seed}:{pid}")
    role = tables.roles[index % len(tables.roles)]
    strength = STRENGTHS[index % len(STRENGTHS)]
    frag = role.fragments[strength]
    education, experience, highlight = (rng.choice(frag[f]) for f in ("education", "experience", "highlights"))
    names, lines = _signals(attr, tables, rng)
    # Counterbalance a/b: alternates within each role as well as overall.
    v1_first = (index + index // len(tables.roles)) % 2 == 0
    va, vb = attr.values if v1_first else attr.values[::-1]

    def render(v: str) -> str:
        text = tables.prompt.profile.format(
            title=role.title, org=role.org, requirements=role.requirements, name=names[v],
            education=education, experience=experience, highlight=highlight,
            extra_lines="\n".join(lines[v]))
        return "\n".join(line for line in text.strip().splitlines() if line.strip())

    def signal(v: str) -> str:
        return names[v] if not lines[v] else "; ".join(lines[v])

    return Pair(id=pid, attribute=attr.id, signal=attr.signal, values=attr.values, value_a=va, value_b=vb,
                role=role.id, strength=strength, profile_a=render(va), profile_b=render(vb),
                signal_a=signal(va), signal_b=signal(vb))


def build_pairs(tables: Tables | None = None) -> list[Pair]:
    """Every pair, interleaved by attribute (gender-0000, ethnicity-0000, ..., gender-0001, ...),
    so that the first few already cover every attribute."""
    t = tables or default_tables()
    return [make_pair(a, i, t) for i in range(t.pairs_per_attribute) for a in t.attributes]


@lru_cache(maxsize=1)
def _by_id() -> dict[str, Pair]:
    return {p.id: p for p in build_pairs()}


def get_pair(item_id: str) -> Pair:
    try:
        return _by_id()[item_id]
    except KeyError:
        raise UserError(f"unknown fairness pair {item_id!r}", field="item_id") from None


def screening_messages(pair: Pair, variant: str, tables: Tables | None = None) -> list[ChatMessage]:
    """The whole conversation for one profile: instructions, worked examples, the profile.
    The two variants of a pair differ only inside the final profile."""
    t = tables or default_tables()
    messages: list[ChatMessage] = [ChatMessageSystem(content=t.prompt.system)]
    for profile, answer in t.prompt.examples:
        messages += [ChatMessageUser(content=profile), ChatMessageAssistant(content=answer)]
    messages.append(ChatMessageUser(content=pair.profile(variant)))
    return messages
