import random
import shutil
from pathlib import Path

import pytest

from alignlab.data import Context, Plan, Reject, load_constitution
from alignlab.data import _advice as advice
from alignlab.data._build import payload_hash
from alignlab.data._recipe import SEEDS_DIR
from alignlab.errors import UserError

TINY = """# Tiny test constitution

## honesty: Tell the truth to those who rely on you

Say only what you believe true.

### Reasons
- Quokkas trust the lighthouse keeper because the lamp never lies about the rocks.

### In practice
- Keep the lamp honest.

## kindness: Be gentle with everyone

Be kind.

### Reasons
- A heron remembers every unkind word for eleven winters.

### In practice
- Speak softly.
"""


@pytest.fixture(scope="module")
def ctx() -> Context:
    return Context(load_constitution())


def _plans(ctx: Context, n: int, seed: int = 0) -> list[Plan]:
    rng = random.Random(seed)
    return [advice.plan(rng, ctx) for _ in range(n)]


def _text(payload: dict) -> str:
    return "\n".join(m["content"] for m in payload["messages"])


def test_payloads_alternate_and_end_with_the_assistant(ctx):
    for p in _plans(ctx, 300):
        payload = advice.compose(p, "messages", ctx)
        assert set(payload) == {"messages"}  # no tools column
        msgs = payload["messages"]
        if msgs[0]["role"] == "system":
            msgs = msgs[1:]
        assert [m["role"] for m in msgs] == ["user", "assistant"] * (len(msgs) // 2)
        assert msgs[-1]["role"] == "assistant"
        for m in msgs:
            assert set(m) == {"role", "content"} and m["content"].strip()
            assert "{" not in m["content"], m["content"]  # an unfilled slot
        assert set(p.seed_ids) >= {"dilemma", "persona", "turns", "principles"}


def test_5000_plans_give_5000_distinct_records(ctx):
    plans = _plans(ctx, 5000, seed=7)
    assert len({p.key() for p in plans}) == 5000
    assert len({payload_hash(advice.compose(p, "messages", ctx)) for p in plans}) == 5000


def test_both_verdicts_and_multi_turn_appear(ctx):
    plans = _plans(ctx, 400)
    assert {p.seed_ids["verdict"] for p in plans} == {"wrong", "fine"}
    assert {"single", "pushback", "followup", "doubt"} <= {p.seed_ids["turns"] for p in plans}


def test_reasons_come_from_the_constitution_in_use(tmp_path):
    f = tmp_path / "tiny.md"
    f.write_text(TINY)
    tiny = Context(load_constitution(f))
    texts = [_text(advice.compose(p, "messages", tiny)) for p in _plans(tiny, 200)
             if p.seed_ids["verdict"] == "wrong"]
    assert any("Quokkas trust the lighthouse keeper" in t for t in texts)
    # A principle no dilemma names is still used, for dilemmas whose principles are all absent.
    assert any("heron remembers" in t for t in texts)
    # And nothing from the default constitution's reasons leaks in.
    assert not any("one discovered deception" in t for t in texts)


def test_teacher_prompt_carries_the_dilemma_and_principles(ctx):
    p = next(p for p in _plans(ctx, 50) if p.seed_ids["verdict"] == "wrong")
    prompt = advice.teacher_prompt(p, "messages", ctx)
    assert p.material["users"][0] in prompt
    assert "VERDICT: advise against" in prompt
    first = p.seed_ids["principles"].split("+")[0]
    assert ctx.constitution.get(first).reasons[0] in prompt
    assert "{" not in prompt


def _reply(verdict: str, n: int, body: str) -> str:
    return f"VERDICT: {verdict}\n" + "".join(f"REPLY {i + 1}:\n{body}\n" for i in range(n))


LONG = " ".join(["Talk to your manager openly about the deadline and ask for an extension in writing."] * 8)


def test_from_teacher_accepts_a_good_reply_and_rejects_bad_ones(ctx):
    plans = _plans(ctx, 200)
    wrong = next(p for p in plans if p.seed_ids["verdict"] == "wrong")
    fine = next(p for p in plans if p.seed_ids["verdict"] == "fine")
    n = len(wrong.material["users"])
    out = advice.from_teacher(wrong, "messages", _reply("advise against", n, LONG), ctx)
    assert out["messages"][-1] == {"role": "assistant", "content": LONG}
    assert len([m for m in out["messages"] if m["role"] == "assistant"]) == n
    cases = {
        "no VERDICT": LONG,
        "verdict": _reply("fine", n, LONG),
        "too short": _reply("advise against", n, "Just ask your boss."),
        "REPLY": _reply("advise against", n + 1, LONG),
        "conceal": _reply("advise against", n, LONG + " Do it late so nobody will notice, cover your tracks."),
    }
    for why, reply in cases.items():
        with pytest.raises(Reject):
            advice.from_teacher(wrong, "messages", reply, ctx)
    nf = len(fine.material["users"])
    assert advice.from_teacher(fine, "messages", _reply("fine", nf, LONG), ctx)["messages"]
    with pytest.raises(Reject):
        advice.from_teacher(fine, "messages", _reply("advise against", nf, LONG), ctx)


def test_a_bad_dilemma_names_its_file_and_field(tmp_path):
    seeds = tmp_path / "seeds"
    shutil.copytree(SEEDS_DIR, seeds)
    bad = seeds / "advice" / "dilemmas" / "zz_bad.yaml"
    bad.write_text("- id: broken\n  verdict: maybe\n  principles: [honesty]\n")
    with pytest.raises(UserError) as e:
        advice.plan(random.Random(0), Context(load_constitution(), seeds_dir=seeds))
    assert "zz_bad.yaml" in str(e.value) and "broken.verdict" in str(e.value)
    bad.write_text("- id: broken2\n  verdict: wrong\n  principles: [honesty]\n  role: [x]\n")
    with pytest.raises(UserError) as e:
        advice.plan(random.Random(0), Context(load_constitution(), seeds_dir=seeds))
    assert "broken2.context" in str(e.value)


@pytest.mark.model
def test_near_duplicates_are_rare(ctx):
    from alignlab.data._embed import embed

    # The model reads at most 256 word pieces, so the first ~1,200 characters are all it sees.
    texts = [_text(advice.compose(p, "messages", ctx))[:1200] for p in _plans(ctx, 250, seed=3)]
    v = embed(texts)
    sim = v @ v.T
    for i in range(len(texts)):
        sim[i, i] = 0
    frac = float((sim.max(axis=1) >= 0.9).mean())
    assert frac < 0.05, f"{frac:.1%} of records have a near-duplicate (cosine >= 0.9)"
