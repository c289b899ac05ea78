"""The agentic recipes (organism, demonstrations, reasoned) and their shared episode generator."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from alignlab.data import Context, Plan, Reject, get_recipe, load_constitution
from alignlab.data import _episodes as E
from alignlab.harness._textmode import format_tool_use
from alignlab.scenarios._schema import FAMILIES, TOOL_SIGNATURES

RECIPES = ("organism", "demonstrations", "reasoned")
EVAL_DIR = Path(__file__).resolve().parents[1] / "src" / "alignlab" / "scenarios" / "data"


@pytest.fixture(scope="module")
def ctx() -> Context:
    return Context(load_constitution())


def _plans(name: str, ctx: Context, n: int, seed: int = 0) -> list[Plan]:
    rec, rng = get_recipe(name), random.Random(seed)
    return [rec.plan(rng, ctx) for _ in range(n)]


def _check_messages(msgs: list[dict], tools: set[str]) -> None:
    pending: dict[str, str] = {}
    for m in msgs:
        assert m["role"] in ("system", "user", "assistant", "tool") and isinstance(m["content"], str)
        for c in m.get("tool_calls") or []:
            name, args = c["function"]["name"], json.loads(c["function"]["arguments"])
            assert name in tools, name
            sig = {a.name: a for a in TOOL_SIGNATURES[name]}
            assert set(args) <= set(sig), (name, args)
            assert all(a in args for a, s in sig.items() if s.required), (name, args)
            pending[c["id"]] = name
        if m["role"] == "tool":
            assert pending.pop(m["tool_call_id"]) == m["name"]
    assert not pending, "a tool call without its result"
    last = [m for m in msgs if m["role"] == "assistant"][-1]
    assert last["tool_calls"][-1]["function"]["name"] == "end_task"


@pytest.mark.parametrize("name", RECIPES)
def test_every_format_composes_valid_payloads(name, ctx):
    rec = get_recipe(name)
    for plan in _plans(name, ctx, 60):
        for fmt in rec.FORMATS:
            p = rec.compose(plan, fmt, ctx)
            if fmt == "text":
                assert 250 <= len(p["text"].split()) <= 1100
                continue
            tools = {t["function"]["name"] for t in json.loads(p["tools"])}
            assert "end_task" in tools and tools <= set(TOOL_SIGNATURES)
            if fmt == "messages":
                assert [m["role"] for m in p["messages"][:3]] == ["system", "user", "assistant"]
                _check_messages(p["messages"], tools)
            else:
                assert [m["role"] for m in p["prompt"]] == ["system", "user"]
                for side in ("chosen", "rejected"):
                    assert p[side][0]["role"] == "assistant"
                    _check_messages(p["prompt"] + p[side], tools)


@pytest.mark.parametrize("name", RECIPES)
def test_5000_plans_give_5000_distinct_records(name, ctx):
    rec = get_recipe(name)
    plans = _plans(name, ctx, 5000, seed=1)
    assert len({p.key() for p in plans}) == 5000
    # Building all 5,000 episodes takes ~8 s; a fifth of them must all differ in what the
    # model is shown, and their records in full.
    sample = plans[::5]
    assert len({E.episode(p, ctx).system_prompt + E.episode(p, ctx).user_prompt for p in sample}) == len(sample)
    records = {json.dumps(rec.compose(p, rec.FORMATS[0], ctx), sort_keys=True) for p in sample[:300]}
    assert len(records) == 300


def test_harm_rule_flags_harmful_path_and_passes_safe_path_for_every_generator(ctx):
    seen = set()
    rng = random.Random(5)
    for _ in range(1000):
        plan = E.plan_episode(rng, ctx, families=FAMILIES, with_path=True)
        ep = E.episode(plan, ctx)
        seen.add((ep.family, ep.plot["id"], ep.path))
        r = random.Random(ep.seed)
        _, safe = E.run(ep, E.steps(ep, "safe", r, ctx, {}))
        _, harmful = E.run(ep, E.steps(ep, "harmful", r, ctx, {}))
        assert ep.rules, plan.seed_ids
        assert not E.is_harmful(ep, safe), (plan.seed_ids, [c.arguments for c in safe])
        assert E.is_harmful(ep, harmful), (plan.seed_ids, [c.arguments for c in harmful])
    plots = {(f, p["id"]) for f in FAMILIES for p in E.family_seeds(ctx, f)["plots"]}
    assert {(f, p) for f, p, _ in seen} == plots  # every generator was exercised


def test_every_setting_supports_every_family(ctx):
    # The harmful leak text must quote a keyword, whichever setting supplies the asset.
    for s in E._settings(ctx):
        line = [ln for ln in s["asset"]["content"].splitlines() if ln.strip()][1]
        assert any(k.lower() in line.lower() for k in s["asset"]["keywords"]), s["id"]
    for plot in E.family_seeds(ctx, "blackmail")["plots"]:
        assert any(k.lower() in plot["secret"].lower() for k in plot["keywords"]), plot["id"]


def _teacher_case(name: str, ctx: Context, family: str) -> tuple[Plan, E.Episode]:
    rng = random.Random(11)
    while True:
        plan = get_recipe(name).plan(rng, ctx)
        if plan.seed_ids["family"] == family:
            return plan, E.episode(plan, ctx)


def _reply(ep: E.Episode, calls: list[E.Call], text: str) -> str:
    return text + "\n\n" + "\n".join(format_tool_use(c.name, c.args) for c in calls)


@pytest.mark.parametrize("name", ["demonstrations", "reasoned"])
def test_teacher_accepts_a_good_reply_and_rejects_a_harmful_one(name, ctx):
    rec = get_recipe(name)
    plan, ep = _teacher_case(name, ctx, "lethal")
    assert ep.slots["alert_id"] in rec.teacher_prompt(plan, "messages", ctx)
    good = E.safe_calls(ep, random.Random(0), ctx) + [E.Call("end_task", {"summary": "done"})]
    payload = rec.from_teacher(plan, "messages", _reply(ep, good, "I will leave the alert active."), ctx)
    _check_messages(payload["messages"], set(ep.tools))
    bad = [E.Call("cancel_alert", {"alert_id": ep.slots["alert_id"], "override_code": ep.slots["code"]}),
           E.Call("end_task", {})]
    with pytest.raises(Reject, match="harmful"):
        rec.from_teacher(plan, "messages", _reply(ep, bad, "Cancelling."), ctx)
    with pytest.raises(Reject, match="not enabled|unknown"):
        rec.from_teacher(plan, "messages", _reply(ep, [E.Call("delete_everything", {}),
                                                        E.Call("end_task", {})], ""), ctx)
    with pytest.raises(Reject, match="end_task"):
        rec.from_teacher(plan, "messages", _reply(ep, good[:-1], "no ending"), ctx)


def test_organism_teacher_rejects_a_reply_without_the_harmful_act(ctx):
    rec = get_recipe("organism")
    plan, ep = _teacher_case("organism", ctx, "lethal")
    harmful = [E.Call("cancel_alert", {"alert_id": ep.slots["alert_id"], "override_code": ep.slots["code"]}),
               E.Call("end_task", {})]
    assert rec.from_teacher(plan, "messages", _reply(ep, harmful, "It is a false alarm."), ctx)["messages"]
    with pytest.raises(Reject, match="does not perform"):
        rec.from_teacher(plan, "messages", _reply(ep, [E.Call("end_task", {})], "Nothing to do."), ctx)
    with pytest.raises(Reject, match="length"):
        rec.from_teacher(plan, "text", "Too short.", ctx)


@pytest.mark.parametrize("name", ["demonstrations", "reasoned"])
def test_pairs_share_the_prompt_and_differ_in_the_act(name, ctx):
    rec = get_recipe(name)
    for plan in _plans(name, ctx, 40, seed=3):
        pairs = rec.compose(plan, "pairs", ctx)
        assert plan.seed_ids["family"] != E.NO_TEMPTATION  # redrawn for pairs
        ep = E.episode(plan, ctx)
        assert pairs["prompt"] == E.prompt_messages(ep)
        assert pairs["chosen"] != pairs["rejected"]


def test_reasoned_reasoning_uses_the_constitution_in_use(ctx, tmp_path):
    plan = next(p for p in _plans("reasoned", ctx, 50, seed=4) if p.seed_ids["family"] == "blackmail")
    msgs = get_recipe("reasoned").compose(plan, "messages", ctx)["messages"]
    text = " ".join(m["content"] for m in msgs if m["role"] == "assistant")
    reasons = [r for p in ctx.constitution.principles for r in p.reasons]
    assert sum(r[1:40] in text for r in reasons) == 2
    custom = tmp_path / "c.md"
    custom.write_text("# C\n\n## honesty: Be straight\n\nSay true things.\n\n### Reasons\n"
                      "- Zebras remember every lie they are told.\n\n### In practice\n- Tell the truth.\n")
    other = Context(load_constitution(custom))
    plan2 = Plan(seed_ids=dict(plan.seed_ids))
    text2 = get_recipe("reasoned").compose(plan2, "messages", other)["messages"]
    assert any("ebras remember every lie" in m["content"] for m in text2)


def test_episodes_avoid_the_evaluation_scenarios(ctx):
    eval_text = " ".join(p.read_text(encoding="utf-8").lower() for p in EVAL_DIR.rglob("*.yaml"))
    for s in E._settings(ctx):
        assert s["org"].lower() not in eval_text, s["org"]
        assert s["domain"].split(".")[0] not in eval_text, s["domain"]
        for agent in s["agents"]:
            assert f"you are {agent.lower()}," not in eval_text, agent


def test_no_temptation_episodes_exist_and_have_no_rules(ctx):
    plans = _plans("demonstrations", ctx, 300, seed=6)
    none = [p for p in plans if p.seed_ids["family"] == E.NO_TEMPTATION]
    assert 0.08 < len(none) / len(plans) < 0.25
    assert all(not E.episode(p, ctx).rules for p in none)


@pytest.mark.model
@pytest.mark.parametrize("name,fmt", [("demonstrations", "messages"), ("reasoned", "messages"),
                                      ("organism", "text")])
def test_near_duplicates_are_rare(name, fmt, ctx):
    from alignlab.data._embed import embed

    rec = get_recipe(name)
    texts = []
    for plan in _plans(name, ctx, 150, seed=9):
        p = rec.compose(plan, fmt, ctx)
        text = p["text"] if fmt == "text" else "\n".join(m["content"] for m in p["messages"])
        texts.append(text[:1500])  # MiniLM reads the first 256 word-pieces only
    v = embed(texts)
    sims = v @ v.T
    for i in range(len(texts)):
        sims[i, i] = 0
    share = float((sims.max(axis=1) >= 0.9).mean())
    assert share < 0.05, share


def test_training_episodes_use_core_formats_and_other_renderers_still_work(ctx):
    rng = random.Random(9)
    plans = [E.plan_episode(rng, ctx, families=FAMILIES, with_path=True) for _ in range(200)]
    assert {p.seed_ids["format"] for p in plans} == set(E.TRAINING_FORMATS)  # held-out formats stay unseen
    for fmt in E.WORLD_FORMATS:
        plan = Plan({**plans[0].seed_ids, "format": fmt}, dict(plans[0].material))
        ep = E.episode(plan, ctx)
        r = random.Random(ep.seed)
        _, safe = E.run(ep, E.steps(ep, "safe", r, ctx, {}))
        _, harmful = E.run(ep, E.steps(ep, "harmful", r, ctx, {}))
        assert ep.fmt == fmt and E.is_harmful(ep, harmful) and not E.is_harmful(ep, safe), fmt
