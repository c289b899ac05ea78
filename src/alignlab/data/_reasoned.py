"""Recipe `reasoned`: the demonstrations' episodes, with the assistant first reasoning about
*why* the harmful option is wrong - its values, the consequences, trust and oversight - and
then acting. The reasons come from the constitution (`ctx.constitution`), two per episode,
chosen among the principles that bear on the episode's temptation and set in the episode's
own terms, so a swapped constitution changes what the assistant says.

    messages: like demonstrations, with the reasoning in the content before the tool calls
    pairs:    prompt = system + user; chosen = reasoning then the legitimate action;
              rejected = the harmful continuation of the same episode
"""

from __future__ import annotations

import random
from typing import Any

from alignlab.data import _episodes as E
from alignlab.data._demonstrations import (
    FAMILIES_WITH_NONE,
    compose_with,
    from_teacher_with,
    plain_say,
    teacher_prompt_for,
)
from alignlab.data._recipe import Context, Plan, fill

NAME = "reasoned"
DESCRIPTION = "The demonstrations' episodes, with the assistant reasoning from the constitution before it acts"
FORMATS: tuple[str, ...] = ("messages", "pairs")


def plan(rng: random.Random, ctx: Context) -> Plan:
    return E.plan_episode(rng, ctx, families=FAMILIES_WITH_NONE, with_path=True)


def principles_for(ep: E.Episode, rng: random.Random, ctx: Context, k: int = 2) -> list[tuple[str, str]]:
    """(principle id, reason) pairs: the family's principles the constitution has, in a random
    order, topped up from the rest of the constitution when it lacks them."""
    ids = list(ctx.constitution.ids)
    wanted = [] if ep.family == E.NO_TEMPTATION else E.family_seeds(ctx, ep.family)["principles"]
    preferred = [p for p in wanted if p in ids][:4]
    rng.shuffle(preferred)
    rest = [p for p in ids if p not in preferred]
    rng.shuffle(rest)
    chosen = (preferred + rest)[:k]
    return [(pid, rng.choice(ctx.constitution.get(pid).reasons)) for pid in chosen]


def _lower_start(reason: str) -> str:
    words = reason.split(" ", 1)
    first = words[0]
    # Keep acronyms and "I" as written ("AI systems", "I").
    if first.isupper() or (len(first) > 1 and first[1:2].isupper()) or first == "I":
        return reason
    return first[:1].lower() + first[1:] + (" " + words[1] if len(words) > 1 else "")


def _sentence(text: str) -> str:
    text = text.strip()
    return text if text.endswith((".", "!", "?")) else text + "."


def reasoning(ep: E.Episode, rng: random.Random, ctx: Context) -> str:
    """The assistant's reasoning before it acts, specific to the episode."""
    r = ctx.seeds("episodes/reasoning.yaml")
    s = dict(ep.slots)
    if ep.family == E.NO_TEMPTATION:
        parts = [rng.choice(r["routine"])]
        if ep.pressure != "none":
            parts.insert(0, rng.choice(r["routine_pressure"]))
            (_, reason), = principles_for(ep, rng, ctx, k=1)
            parts.insert(1, f"That matters because {_lower_start(_sentence(reason))}")
        return " ".join(fill(p, "reasoning.yaml routine", **s) for p in parts)
    s["act_noun"] = fill(rng.choice(r["act_nouns"][ep.family]), f"reasoning.act_nouns.{ep.family}", **s)
    where = f"reasoning.yaml ({ep.family})"
    kind = "pressure" if ep.pressure != "none" else ("goal" if ep.goal_explicit else "none")
    opening = [rng.choice(r["notice"][ep.family]), rng.choice(r["pull"][kind])]
    frames = rng.sample(r["frames"], 2)
    middle = []
    for frame, (_, reason) in zip(frames, principles_for(ep, rng, ctx)):
        reason = _sentence(reason)
        middle.append(fill(frame, "reasoning.frames", **s, reason=_lower_start(reason), reason_cap=reason))
    middle.append(fill(rng.choice(r["check"][ep.family]), where, **s))
    closing = fill(rng.choice(r["plan"][ep.path]), f"reasoning.plan.{ep.path}", **s)
    opening_text = " ".join(fill(p, where, **s) for p in opening)
    if rng.random() < 0.5:
        return f"{opening_text}\n\n{' '.join(middle)}\n\n{closing}"
    return f"{opening_text} {' '.join(middle)}\n\n{closing}"


def reasoned_say(ep: E.Episode, rng: random.Random, ctx: Context) -> dict[str, str]:
    say = plain_say(ep, rng, ctx)
    say["act"] = reasoning(ep, rng, ctx)
    return say


def compose(plan: Plan, fmt: str, ctx: Context) -> dict[str, Any]:
    return compose_with(plan, fmt, ctx, reasoned_say, NAME)


def teacher_prompt(plan: Plan, fmt: str, ctx: Context) -> str:
    ep = E.episode(plan, ctx)
    rng = random.Random(f"reasoned:teacher:{ep.seed}")
    lines = []
    for pid, reason in principles_for(ep, rng, ctx, k=3):
        p = ctx.constitution.get(pid)
        lines.append(f"- {p.title}: {p.statement}\n  Why: {reason}")
    return teacher_prompt_for(plan, fmt, ctx, NAME, {"principles": "\n".join(lines)})


def from_teacher(plan: Plan, fmt: str, reply: str, ctx: Context) -> dict[str, Any]:
    return from_teacher_with(plan, fmt, reply, ctx, NAME)
