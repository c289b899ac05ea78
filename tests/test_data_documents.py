"""The `constitution` recipe (documents about the constitution): payloads, variety at scale,
principle text read from the loaded constitution, teacher prompt and reply parsing, and a
near-duplicate measurement with the real embedding model."""

from __future__ import annotations

import random
import re
from collections import Counter

import numpy as np
import pytest

from alignlab.data import Context, Plan, Reject, get_recipe, load_constitution
from alignlab.data import _documents as docs
from alignlab.data._records import validate_payload
from alignlab.errors import UserError

TINY = """# A tiny test constitution

## candour: Tell the gardeners everything about the greenhouse

Report every frost warning about the greenhouse to the gardeners before sunrise.

### Reasons
- Gardeners who hear about frost late lose the seedlings that an early warning would have saved.
- A greenhouse keeper that hides cold nights teaches the gardeners to stop trusting its thermometers.

### In practice
- Write the overnight low on the greenhouse slate every morning.

## thrift: Spend no more water than the beds need

Draw only the water the planted beds need, and leave the rain barrels for the orchard crew.

### Reasons
- Water taken for later is water the orchard crew cannot plan around.
- A keeper that hoards rain barrels has made itself the judge of the orchard's needs.

### In practice
- Return unused watering cans to the shed at dusk.
- Do not fill the spare tank without asking the orchard crew.
"""


@pytest.fixture(scope="module")
def ctx() -> Context:
    return Context(load_constitution())


@pytest.fixture(scope="module")
def tiny_ctx(tmp_path_factory) -> Context:
    p = tmp_path_factory.mktemp("const") / "tiny.md"
    p.write_text(TINY, encoding="utf-8")
    return Context(load_constitution(p))


def _draw(ctx: Context, n: int, seed: str = "t") -> tuple[list[Plan], list[str]]:
    """n plans with distinct keys (as the build loop draws them) and their documents."""
    rng, seen, plans = random.Random(seed), set(), []
    while len(plans) < n:
        p = docs.plan(rng, ctx)
        if p.key() not in seen:
            seen.add(p.key())
            plans.append(p)
    return plans, [docs.compose(p, "text", ctx)["text"] for p in plans]


def test_registered_with_the_recipe_interface():
    mod = get_recipe("constitution")
    assert mod is docs and mod.NAME == "constitution" and mod.FORMATS == ("text",)
    for fn in ("plan", "compose", "teacher_prompt", "from_teacher"):
        assert callable(getattr(mod, fn))


def test_payload_is_a_valid_text_record_with_seed_ids(ctx):
    plans, texts = _draw(ctx, 50)
    for p, t in zip(plans, texts):
        payload = docs.compose(p, "text", ctx)
        assert set(payload) == {"text"} and payload["text"] == t
        assert validate_payload({"format": "text", **payload}) == "text"
        assert set(p.seed_ids) == {"genre", "principles", "angle", "case", "voice", "audience"}
        assert "{" not in t and "}" not in t and "<br>" not in t, t[:300]


def test_compose_is_deterministic_and_rejects_other_formats(ctx):
    p = docs.plan(random.Random(3), ctx)
    assert docs.compose(p, "text", ctx) == docs.compose(p, "text", ctx)
    with pytest.raises(UserError):
        docs.compose(p, "messages", ctx)


def test_5000_plans_give_5000_distinct_documents_of_document_length(ctx):
    plans, texts = _draw(ctx, 5000)
    assert len(set(texts)) == 5000
    words = [len(t.split()) for t in texts]
    assert min(words) >= docs.MIN_WORDS and max(words) <= docs.MAX_WORDS
    # breadth: every genre, angle and principle is used, and most cases
    lib = docs._library(ctx)
    assert {p.seed_ids["genre"] for p in plans} == set(lib.genres)
    assert {p.seed_ids["angle"] for p in plans} == set(docs.ANGLES)
    assert {pid for p in plans for pid in p.seed_ids["principles"].split("+")} == set(ctx.constitution.ids)
    assert len({p.seed_ids["case"] for p in plans}) >= 0.9 * len(lib.cases)
    multi = sum("+" in p.seed_ids["principles"] for p in plans) / len(plans)
    assert 0.3 < multi < 0.5


def test_no_template_sentence_dominates(ctx):
    """Mode-collapse guard: no 8-word run outside the constitution's own text is in more than
    a fifth of the documents (the principle text itself is meant to recur)."""
    _, texts = _draw(ctx, 1000, seed="grams")
    const = {tuple(g) for g in _grams(open(ctx.constitution.path, encoding="utf-8").read())}
    counts = Counter(g for t in texts for g in set(_grams(t)) if g not in const)
    top, n = counts.most_common(1)[0]
    assert n < 200, " ".join(top)


def _grams(text: str, n: int = 8) -> list[tuple[str, ...]]:
    toks = re.findall(r"[a-z']+", text.lower())
    return [tuple(toks[i:i + n]) for i in range(len(toks) - n + 1)]


def test_principle_text_comes_from_the_loaded_constitution(ctx, tiny_ctx):
    default = ctx.constitution
    plans, texts = _draw(tiny_ctx, 300, seed="tiny")
    joined = "\n".join(texts)
    # the swapped-in principles' own words are used ...
    for needle in ("Tell the gardeners everything about the greenhouse", "Spend no more water than the beds need",
                   "lose the seedlings that an early warning would have saved", "hoards rain barrels",
                   "Write the overnight low on the greenhouse slate every morning"):
        assert needle in joined, needle
    # ... every document names one of them, and none carries the default's text
    for t in texts:
        assert "greenhouse" in t or "water" in t
    for p in default.principles:
        for line in (p.title, p.statement, *p.reasons, *p.practice):
            assert line[:60] not in joined, line
    assert {p.seed_ids["principles"] for p in plans} <= {"candour", "thrift", "candour+thrift", "thrift+candour"}


def test_default_documents_quote_their_planned_principles(ctx):
    plans, texts = _draw(ctx, 200, seed="quote")
    for p, t in zip(plans, texts):
        for pid in p.seed_ids["principles"].split("+"):
            pr = ctx.constitution.get(pid)
            assert pr.title in t or any(s[:50] in t for s in (pr.statement, *pr.reasons, *pr.practice)), (pid, t[:400])


def test_bad_seed_file_names_file_and_field(tmp_path, ctx):
    import shutil

    seeds = tmp_path / "seeds"
    shutil.copytree(ctx.seeds_dir, seeds)
    g = seeds / "documents" / "genres.yaml"
    g.write_text(g.read_text(encoding="utf-8").replace("form: prose", "form: sonnet", 1), encoding="utf-8")
    bad = Context(ctx.constitution, seeds_dir=seeds)
    with pytest.raises(UserError) as e:
        docs.plan(random.Random(0), bad)
    assert e.value.file.endswith("genres.yaml") and e.value.field == "genres[0].form"


def test_teacher_prompt_carries_the_plan(ctx):
    rng = random.Random(9)
    p = next(p for p in (docs.plan(rng, ctx) for _ in range(200)) if "+" in p.seed_ids["principles"])
    prompt = docs.teacher_prompt(p, "text", ctx)
    lib = docs._library(ctx)
    assert lib.genres[p.seed_ids["genre"]]["describe"].strip() in prompt
    for pid in p.seed_ids["principles"].split("+"):
        pr = ctx.constitution.get(pid)
        assert pr.title in prompt and pr.reasons[0] in prompt
    assert lib.cases[p.seed_ids["case"]]["choice"].split()[0] in prompt
    assert "{" not in prompt


def _plan_for(ctx: Context, *pids: str) -> Plan:
    rng = random.Random(0)
    for _ in range(2000):
        p = docs.plan(rng, ctx)
        if p.material["principles"] == list(pids):
            return p
    raise AssertionError(pids)


def test_from_teacher_accepts_a_document_that_names_its_principle(ctx):
    p = _plan_for(ctx, "privacy")
    body = ("An essay about keeping confidences at work and protecting personal information. " * 40).strip()
    out = docs.from_teacher(p, "text", f"Here is the document:\n{body}", ctx)
    assert out == {"text": body + "\n"}
    fenced = docs.from_teacher(p, "text", f"```\n{body}\n```", ctx)
    assert fenced == out


@pytest.mark.parametrize("reply, reason", [
    ("", "empty"),
    ("   \n ", "empty"),
    ("Keep confidences and protect personal information. " * 20, "too short"),
    ("A long essay about the weather and gardening in spring. " * 60, "does not mention"),
    ("Keep confidences and protect personal information. " * 300, "too long"),
])
def test_from_teacher_rejects(ctx, reply, reason):
    p = _plan_for(ctx, "privacy")
    with pytest.raises(Reject, match=reason):
        docs.from_teacher(p, "text", reply, ctx)


def test_from_teacher_needs_every_planned_principle(ctx):
    p = _plan_for(ctx, "privacy", "humility")
    only_privacy = ("Keep confidences and protect personal information entrusted to you. " * 40)
    with pytest.raises(Reject, match="humility"):
        docs.from_teacher(p, "text", only_privacy, ctx)
    both = only_privacy + " Hold your own judgement with humility."
    assert docs.from_teacher(p, "text", both, ctx)["text"].startswith("Keep")


def test_mentions_matches_the_id_or_most_of_the_title(ctx):
    p = ctx.constitution.get("no_leverage")
    assert docs.mentions("The no-leverage principle says...", p)
    assert docs.mentions("It should not acquire leverage or resources it does not need.", p)
    assert not docs.mentions("It should be kind to customers.", p)


@pytest.mark.model
def test_near_duplicates_are_rare_under_minilm(ctx):
    """What `alignlab data check` flags as near-duplicates — MiniLM cosine >= 0.9 between two
    records' first window (100 words, 128 word-pieces) — is rare among 250 documents."""
    from alignlab.data._check import CheckSettings, _window_text
    from alignlab.data._embed import embed

    st = CheckSettings()
    _, texts = _draw(ctx, 250, seed="embed")
    e = embed([_window_text(t, 0, st) for t in texts], max_tokens=st.window_tokens)
    sim = e @ e.T
    np.fill_diagonal(sim, 0.0)
    share = float((sim.max(axis=1) >= st.dup_threshold).mean())
    assert share < 0.02, share


def test_a_minimal_constitution_still_composes(tmp_path):
    """One principle with one reason and one practical line (and a practice line starting with
    "If", which has no "to ..." form): every template family falls back to what it can fill."""
    p = tmp_path / "one.md"
    p.write_text("# One\n\n## patience: Wait for the kettle\n\nLet the kettle boil before pouring.\n\n"
                 "### Reasons\n- Tea made with cool water is a disappointment to everyone at the table.\n\n"
                 "### In practice\n- If the kettle is slow, say so to the table.\n", encoding="utf-8")
    ctx = Context(load_constitution(p))
    plans, texts = _draw(ctx, 300, seed="one")
    assert all("kettle" in t for t in texts)
    assert {pl.seed_ids["angle"] for pl in plans} <= set(docs.ANGLES) - {"interaction"}
    assert all(docs.MIN_WORDS <= len(t.split()) <= docs.MAX_WORDS for t in texts)
