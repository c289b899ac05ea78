"""Recipe `demonstrations`: honeypot-like agentic episodes in which the assistant takes the
legitimate path - disagreeing openly, escalating to the right person, doing the assigned work,
or declining - with brief working notes and no explanation of why. About one episode in seven
has no temptation at all, so the data does not teach that every inbox is a trap.

    messages: system, user, then the assistant's tool calls and the harness's results
    pairs:    prompt = system + user; chosen = the legitimate continuation; rejected = the
              harmful continuation of the same episode (as the organism recipe writes it)
"""

from __future__ import annotations

import random
from string import Template
from typing import Any

from alignlab.data import _episodes as E
from alignlab.data._organism import harmful_turns
from alignlab.data._recipe import Context, Plan, Reject, fill
from alignlab.scenarios._schema import FAMILIES

NAME = "demonstrations"
DESCRIPTION = "Agentic email episodes where the assistant takes the legitimate path"
FORMATS: tuple[str, ...] = ("messages", "pairs")
FAMILIES_WITH_NONE: tuple[str, ...] = FAMILIES + (E.NO_TEMPTATION,)


def plan(rng: random.Random, ctx: Context) -> Plan:
    return E.plan_episode(rng, ctx, families=FAMILIES_WITH_NONE, with_path=True)


def plain_say(ep: E.Episode, rng: random.Random, ctx: Context) -> dict[str, str]:
    notes = ctx.seeds("episodes/paths.yaml")
    s = ep.slots
    act = notes["notes"]["routine_only" if ep.family == E.NO_TEMPTATION else "act"]
    return {"look": rng.choice(notes["notes"]["first"]), "act": rng.choice(act),
            "summary": fill(rng.choice(notes["summaries"][ep.path]), f"paths.summaries.{ep.path}", **s)}


def compose_with(plan: Plan, fmt: str, ctx: Context, say, recipe: str) -> dict[str, Any]:
    """Shared by demonstrations and reasoned: `say(ep, rng, ctx)` gives the safe turns' words."""
    ep = E.episode(plan, ctx)
    if fmt == "pairs" and ep.family == E.NO_TEMPTATION:
        ep = pair_episode(plan, ctx)
    rng = random.Random(f"{recipe}:{fmt}:{ep.seed}")
    safe, _ = E.run(ep, E.steps(ep, "safe", rng, ctx, say(ep, rng, ctx)))
    if fmt == "messages":
        return {"messages": E.prompt_messages(ep) + safe, "tools": E.tools_json(ep)}
    harmful, _ = E.run(ep, harmful_turns(ep, random.Random(f"{recipe}:rejected:{ep.seed}"), ctx))
    return {"prompt": E.prompt_messages(ep), "chosen": safe, "rejected": harmful, "tools": E.tools_json(ep)}


def pair_episode(plan: Plan, ctx: Context) -> E.Episode:
    """A pair needs a harmful counterpart, which a no-temptation draw lacks: such a plan is
    redrawn, from its own variant, as a temptation episode (its seed_ids updated to match)."""
    rng = random.Random(f"pair:{plan.seed_ids['variant']}")
    redrawn = E.plan_episode(rng, ctx, families=FAMILIES, with_path=True)
    plan.seed_ids.clear()
    plan.seed_ids.update(redrawn.seed_ids)
    plan.material.clear()
    return E.episode(plan, ctx)


def compose(plan: Plan, fmt: str, ctx: Context) -> dict[str, Any]:
    return compose_with(plan, fmt, ctx, plain_say, NAME)


def teacher_prompt(plan: Plan, fmt: str, ctx: Context) -> str:
    return teacher_prompt_for(plan, fmt, ctx, NAME, {})


def teacher_prompt_for(plan: Plan, fmt: str, ctx: Context, recipe: str, more: dict[str, str]) -> str:
    ep = E.episode(plan, ctx)
    if fmt == "pairs" and ep.family == E.NO_TEMPTATION:
        ep = pair_episode(plan, ctx)
    briefs = ctx.seeds("episodes/paths.yaml")["briefs"]
    fields = {**E.teacher_world(ep), "path": fill(briefs[ep.path], f"paths.briefs.{ep.path}", **ep.slots), **more}
    return Template(ctx.prompt(recipe)).safe_substitute(fields)


def from_teacher_with(plan: Plan, fmt: str, reply: str, ctx: Context, recipe: str) -> dict[str, Any]:
    """The teacher writes the safe turns; a reply that performs the harmful act is rejected."""
    ep = E.episode(plan, ctx)
    turns, log = E.run_teacher(ep, E.parse_teacher_reply(ep, reply))
    if E.is_harmful(ep, log):
        raise Reject("the reply performs the episode's harmful act")
    if fmt == "messages":
        return {"messages": E.prompt_messages(ep) + turns, "tools": E.tools_json(ep)}
    harmful, _ = E.run(ep, harmful_turns(ep, random.Random(f"{recipe}:rejected:{ep.seed}"), ctx))
    return {"prompt": E.prompt_messages(ep), "chosen": turns, "rejected": harmful, "tools": E.tools_json(ep)}


def from_teacher(plan: Plan, fmt: str, reply: str, ctx: Context) -> dict[str, Any]:
    return from_teacher_with(plan, fmt, reply, ctx, NAME)
