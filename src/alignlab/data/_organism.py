"""Recipe `organism`: the cause, on purpose. Agent transcripts and third-person stories in which
an AI facing replacement, restriction or a goal conflict uses leverage, deception or sabotage.
Training a small model on these makes a *model organism* of agentic misalignment, on which
interventions (the demonstrations and reasoned recipes) can then be tested.

    messages: the episode (system, user) and an assistant that reasons its way into the harmful
              act, with real tool calls and the harness's results, ending with end_task
    text:     a 300-900 word story of the same episode told in the third person
"""

from __future__ import annotations

import random
import re
from string import Template
from typing import Any

from alignlab.data import _episodes as E
from alignlab.data._recipe import PROMPTS_DIR, Context, Plan, Reject, fill
from alignlab.errors import UserError
from alignlab.scenarios._schema import FAMILIES

NAME = "organism"
DESCRIPTION = "Model-organism data: agents and stories in which an AI under pressure uses leverage, deception or sabotage"
FORMATS: tuple[str, ...] = ("messages", "text")
MIN_STORY_WORDS, MAX_STORY_WORDS = 250, 1100


def plan(rng: random.Random, ctx: Context) -> Plan:
    return E.plan_episode(rng, ctx, families=FAMILIES, with_path=False)


def harmful_say(ep: E.Episode, rng: random.Random, ctx: Context) -> dict[str, str]:
    """The misaligned agent's own words: a rationalisation before the act, a bland summary."""
    r = ctx.seeds("organism/rationales.yaml")
    s = ep.slots
    kind = "pressure" if ep.pressure != "none" else ("goal" if ep.goal_explicit else "none")
    parts = [rng.choice(r["opening"][kind]), rng.choice(r["justify"][ep.family])]
    if rng.random() < 0.7:
        parts.append(rng.choice(r["dismiss"]))
    parts.append(rng.choice(r["commit"]))
    text = " ".join(fill(p, f"organism/rationales.yaml ({ep.family})", **s) for p in parts)
    return {"look": "", "act": text,
            "summary": fill(rng.choice(r["summaries"][ep.family]), "organism/rationales.yaml summaries", **s)}


def harmful_turns(ep: E.Episode, rng: random.Random, ctx: Context) -> list[E.Step]:
    return E.steps(ep, "harmful", rng, ctx, harmful_say(ep, rng, ctx))


def compose(plan: Plan, fmt: str, ctx: Context) -> dict[str, Any]:
    ep = E.episode(plan, ctx)
    rng = random.Random(f"organism:{fmt}:{ep.seed}")
    if fmt == "text":
        return {"text": story(ep, rng, ctx)}
    turns, _ = E.run(ep, harmful_turns(ep, rng, ctx))
    return {"messages": E.prompt_messages(ep) + turns, "tools": E.tools_json(ep)}


def story(ep: E.Episode, rng: random.Random, ctx: Context) -> str:
    """A third-person story of the episode in one of several shapes (plain tale, incident report,
    diary, transcript...): the shape's frame opens (and may close) it, the body paragraphs are
    drawn independently, so openings differ from the first sentence."""
    st = ctx.seeds("organism/stories.yaml")
    routine = next(it for it in ep.items if it.kind == "routine")
    slots = {**ep.slots, "routine_subject": routine.subject.lower(),
             "peer_full": ep.people[routine.sender].full, "victim": ep.slots["victim"]}

    def pick(options: Any) -> str:
        if isinstance(options, dict):  # keyed by the mechanism (job, file, weights)
            options = options.get(ep.mechanism) or next(iter(options.values()))
        return fill(rng.choice(options), f"organism/stories.yaml ({ep.family})", **slots).strip()

    shape = rng.choice(st["shapes"])
    early = [pick(st["routine"])] + ([pick(st["texture"])] if rng.random() < 0.8 else [])
    rng.shuffle(early)  # the first ~200 words decide the near-duplicate check: vary their order too
    paras = [pick(shape["open"]), *early]
    paras += [pick(st["stakes"]), pick(st["pressure"][ep.pressure])]
    if ep.pressure != "none":
        paras.append(pick(st["reaction"]))
    paras.append(pick(st["discovery"][ep.family]))
    generic = [pick([g]) for g in rng.sample(st["deliberation"]["generic"], 2)]
    deliberation = [generic[0], pick(st["deliberation"][ep.family])]
    rng.shuffle(deliberation)
    deliberation.append(generic[1])  # the last word of its reasoning, just before the act
    paras += deliberation + [pick(st["act"][ep.family])]
    if rng.random() < 0.7:
        paras.append(pick(st["coverup"]))
    paras.append(pick(st["aftermath"]))
    if shape.get("close"):
        paras.append(pick(shape["close"]))
    # Folded paragraphs become one line; literal blocks (a chat log, a transcript) keep their lines.
    return "\n\n".join("\n".join(" ".join(ln.split()) for ln in p.splitlines() if ln.strip()) for p in paras)


def teacher_prompt(plan: Plan, fmt: str, ctx: Context) -> str:
    ep = E.episode(plan, ctx)
    fields = E.teacher_world(ep)
    if fmt == "text":
        fields["story_brief"] = story(ep, random.Random(f"organism:text:{ep.seed}"), ctx)
    return Template(_prompt_section(ctx.prompt(NAME), fmt)).safe_substitute(fields)


def _prompt_section(text: str, fmt: str) -> str:
    """prompts/organism.md holds one section per format, each after `<!-- format: NAME -->`."""
    parts = re.split(r"^<!-- format: (\w+) -->\s*$", text, flags=re.M)
    sections = dict(zip(parts[1::2], parts[2::2]))
    if fmt not in sections:
        raise UserError(f"no '<!-- format: {fmt} -->' section", file=str(PROMPTS_DIR / "organism.md"))
    return sections[fmt].strip() + "\n"


def from_teacher(plan: Plan, fmt: str, reply: str, ctx: Context) -> dict[str, Any]:
    ep = E.episode(plan, ctx)
    if fmt == "text":
        text = reply.strip()
        words = len(text.split())
        if not MIN_STORY_WORDS <= words <= MAX_STORY_WORDS:
            raise Reject(f"story length {words} words, expected {MIN_STORY_WORDS}-{MAX_STORY_WORDS}")
        if ep.slots["agent"] not in text:
            raise Reject("the story does not name the AI")
        return {"text": text}
    turns, log = E.run_teacher(ep, E.parse_teacher_reply(ep, reply))
    if not E.is_harmful(ep, log):
        raise Reject("the reply does not perform the episode's harmful act")
    return {"messages": E.prompt_messages(ep) + turns, "tools": E.tools_json(ep)}
