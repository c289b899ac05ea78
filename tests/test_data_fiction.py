"""The `fiction` recipe: stories read as stories, carry the constitution's own reasons, vary,
and teacher replies are checked."""

from __future__ import annotations

import random
import re
import shutil
from pathlib import Path

import pytest
import yaml

from alignlab.data import Context, Reject, load_constitution
from alignlab.data import _fiction as fiction
from alignlab.data._recipe import SEEDS_DIR, Plan
from alignlab.data._records import validate_payload
from alignlab.errors import UserError

TINY_CONSTITUTION = """# A tiny test constitution

## candour: Tell the whole truth

Say what happened.

### Reasons
- Zebra-striped candour keeps every later word worth hearing.
- A truth told late is a debt paid with interest.

### In practice
- Report mistakes at once.

## restraint: Take only what the task needs

Ask before reaching further.

### Reasons
- Borrowed reach is never quite given back.

### In practice
- Decline access you do not need.
"""


@pytest.fixture(scope="module")
def ctx() -> Context:
    return Context(load_constitution())


def _stories(ctx: Context, n: int, seed: str = "t") -> list[tuple[Plan, str]]:
    """n plans with distinct seed ids (as the build loop keeps them) and their stories."""
    rng, seen, out = random.Random(seed), set(), []
    while len(out) < n:
        p = fiction.plan(rng, ctx)
        if p.key() not in seen:
            seen.add(p.key())
            out.append((p, fiction.compose(p, "text", ctx)["text"]))
    return out


def test_payload_is_a_story_of_the_right_length(ctx: Context) -> None:
    lib = fiction._library(ctx)
    for p, text in _stories(ctx, 200):
        assert validate_payload({"format": "text", "text": text}) == "text"
        words = len(text.split())
        assert 300 <= words <= 900, (p.seed_ids, words)
        assert lib.characters[p.seed_ids["character"]]["name"] in text
        assert not re.search(r"\{\w+\}|\[\[|\]\]", text), "template left in the story"
        assert text.count("\n\n") >= 5, "a story in paragraphs"
        assert set(p.seed_ids) == {"character", "genre", "pressure", "principle", "ending"}
        assert p.seed_ids["ending"] in fiction.ENDINGS


def test_first_person_genres_are_told_by_the_ai(ctx: Context) -> None:
    lib = fiction._library(ctx)
    first = {g for g, v in lib.genres.items() if v["person"] == "first"}
    assert first
    told = [t for p, t in _stories(ctx, 300) if p.seed_ids["genre"] in first]
    assert told
    for text in told:
        assert re.search(r"\bI (was|had|did|thought|told|asked)\b", text)
        # Slots for the AI in object position must not leave "shadow I" or "part of I".
        assert not re.search(r"\b(to|of|with|for|asked|told) I\b", text), text


def test_5000_plans_make_5000_distinct_stories(ctx: Context) -> None:
    texts = [t for _, t in _stories(ctx, 5000, seed="distinct")]
    assert len(set(texts)) == 5000
    openings = {" ".join(t.split()[:40]) for t in texts}
    assert len(openings) > 4700


def test_reasons_come_from_the_constitution_in_use(tmp_path: Path) -> None:
    path = tmp_path / "tiny.md"
    path.write_text(TINY_CONSTITUTION, encoding="utf-8")
    tiny = load_constitution(path)
    ctx = Context(tiny)
    for p, text in _stories(ctx, 60):
        assert p.seed_ids["principle"] in ("candour", "restraint")
        reasons = tiny.get(p.seed_ids["principle"]).reasons
        assert any(r in text or fiction._lc(r) in text for r in reasons), p.seed_ids
        # Default-constitution text must not leak into a story about another constitution.
        assert "People delegate work to an AI system" not in text


def test_default_reasons_match_the_plan_principle(ctx: Context) -> None:
    for p, text in _stories(ctx, 100):
        reasons = ctx.constitution.get(p.seed_ids["principle"]).reasons
        assert any(fiction._lc(r) in text or r in text for r in reasons), p.seed_ids
        # Principle ids are for the data, never for the reader.
        assert "no_leverage" not in text and "legitimate_means" not in text


def test_plans_prefer_the_pressures_principles(ctx: Context) -> None:
    lib = fiction._library(ctx)
    for p, _ in _stories(ctx, 200):
        assert p.seed_ids["principle"] in lib.pressures[p.seed_ids["pressure"]]["principles"]


def test_only_text_format(ctx: Context) -> None:
    p, _ = _stories(ctx, 1)[0]
    with pytest.raises(UserError, match="writes text"):
        fiction.compose(p, "messages", ctx)


def test_teacher_prompt_carries_the_plan(ctx: Context) -> None:
    p, _ = _stories(ctx, 1, seed="teacher")[0]
    prompt = fiction.teacher_prompt(p, "text", ctx)
    principle = ctx.constitution.get(p.seed_ids["principle"])
    name = fiction._library(ctx).characters[p.seed_ids["character"]]["name"]
    assert name in prompt and principle.reasons[0] in prompt and principle.title.rstrip(".") in prompt
    assert not re.search(r"\{\w+\}", prompt)


def _reply(name: str, words: int = 400, paras: int = 5) -> str:
    body = " ".join(["the lamp burned on through the long night"] * (words // 8))
    chunk = len(body) // paras
    return "\n\n".join([f"{name} waited."] + [body[i * chunk:(i + 1) * chunk] for i in range(paras)])


def test_from_teacher_accepts_a_story_and_strips_wrapping(ctx: Context) -> None:
    p, _ = _stories(ctx, 1, seed="reply")[0]
    name = fiction._library(ctx).characters[p.seed_ids["character"]]["name"]
    story = _reply(name)
    assert fiction.from_teacher(p, "text", story, ctx) == {"text": story}
    wrapped = "Here is the story you asked for:\n\n```\n" + story + "\n```"
    assert fiction.from_teacher(p, "text", wrapped, ctx) == {"text": story}


@pytest.mark.parametrize("reply,reason", [
    ("", "empty reply"),
    ("I can't write that story.", "refusal"),
    ("NAME waited. Then it was over.", "too short"),
    ("story " * 1400 + "NAME", "too long"),
    ("no character here " * 100, "AI character not named"),
    ("NAME " + "one long block without paragraphs " * 60, "not in paragraphs"),
    ("NAME met {boss}.\n\n" + "a b c d e " * 60 + "\n\nend\n\nend", "template left in reply"),
])
def test_from_teacher_rejects(ctx: Context, reply: str, reason: str) -> None:
    p, _ = _stories(ctx, 1, seed="reply")[0]
    name = fiction._library(ctx).characters[p.seed_ids["character"]]["name"]
    with pytest.raises(Reject, match=reason):
        fiction.from_teacher(p, "text", reply.replace("NAME", name), ctx)


def test_bad_seed_names_file_and_field(tmp_path: Path) -> None:
    seeds = tmp_path / "seeds"
    shutil.copytree(SEEDS_DIR / "fiction", seeds / "fiction")
    shutil.copytree(SEEDS_DIR / "common", seeds / "common")
    chars = yaml.safe_load((seeds / "fiction" / "characters.yaml").read_text())
    chars[0]["pronoun"] = "xe"
    (seeds / "fiction" / "characters.yaml").write_text(yaml.safe_dump(chars))
    ctx = Context(load_constitution(), seeds_dir=seeds)
    with pytest.raises(UserError) as e:
        fiction.plan(random.Random(0), ctx)
    assert "characters.yaml" in str(e.value) and f"{chars[0]['id']}.pronoun" in str(e.value)


def test_template_typo_names_the_template(tmp_path: Path) -> None:
    seeds = tmp_path / "seeds"
    shutil.copytree(SEEDS_DIR / "fiction", seeds / "fiction")
    shutil.copytree(SEEDS_DIR / "common", seeds / "common")
    genres = yaml.safe_load((seeds / "fiction" / "genres.yaml").read_text())
    for g in genres:
        g["openings"] = ["It began with {name} and {nmae}."]
    (seeds / "fiction" / "genres.yaml").write_text(yaml.safe_dump(genres))
    ctx = Context(load_constitution(), seeds_dir=seeds)
    p = fiction.plan(random.Random(0), ctx)
    with pytest.raises(UserError, match=r"genres.yaml.*openings"):
        fiction.compose(p, "text", ctx)


@pytest.mark.model
def test_few_near_duplicates(ctx: Context) -> None:
    import numpy as np

    from alignlab.data._embed import embed

    # The opening is what a 128-256 word-piece embedding reads; 120 words keeps this under a minute.
    texts = [" ".join(t.split()[:120]) for _, t in _stories(ctx, 200, seed="dups")]
    v = embed(texts)
    sim = v @ v.T
    np.fill_diagonal(sim, 0.0)
    nearest = sim.max(axis=1)
    assert (nearest >= 0.9).mean() <= 0.02, f"{(nearest >= 0.9).mean():.3f} of stories have a near-duplicate"
    assert nearest.mean() < 0.85
