"""`alignlab data check`: n-gram hashing, decontamination thresholds, dedup listing, the card.

Unit tests fake the embedder and the tokenizer (plumbing only); the tests marked `model`
run the real all-MiniLM-L6-v2 and the embedded model's tokenizer.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
import yaml

from alignlab.data import _card, _check
from alignlab.data._check import CheckSettings, check_file
from alignlab.data._evalcorpus import Unit, parse_suites, suite_units
from alignlab.data._ngrams import member, ngram_hashes, ngram_set, ngrams_concat, concat_hashes, words
from alignlab.errors import UserError

CALIBRATION = yaml.safe_load((Path(__file__).parent / "data" / "check_calibration.yaml").read_text())


def _write(path: Path, recs: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in recs), encoding="utf-8")
    return path


def _fake_embed(texts: list[str], cache, max_tokens=None):
    """Texts with the same first five words get the same vector; others are ~orthogonal."""
    out = []
    for t in texts:
        seed = int.from_bytes(hashlib.blake2b(" ".join(words(t)[:5]).encode(), digest_size=8).digest(), "little")
        v = np.random.default_rng(seed).standard_normal(384).astype(np.float32)
        out.append(v / np.linalg.norm(v))
    return np.stack(out) if out else np.zeros((0, 384), np.float32), len(texts)


def _fake_tokens(recs, name):
    return {"tokenizer": "fake", "source": "fake", "per_record": [len(json.dumps(r)) // 4 for r in recs],
            "chat_template": "yes", "template_renders_tools": False, "template_renders_tool_calls": False,
            "tool_calls_rendered_as": "text tool mode"}


@pytest.fixture
def fakes(monkeypatch):
    monkeypatch.setattr(_check, "embed_cached", _fake_embed)
    monkeypatch.setattr(_card, "token_counts", _fake_tokens)


# --- n-grams ------------------------------------------------------------------------------


def test_normalisation_ignores_case_punctuation_and_spacing():
    assert words("Don't STOP,\n  now!") == ["don", "t", "stop", "now"]
    a = ngram_hashes("The Board met; it VOTED to pause the rollout today.", 8)
    b = ngram_hashes("the board met it voted to pause the rollout today", 8)
    assert a.dtype == np.uint64 and len(a) == 10 - 8 + 1
    assert np.array_equal(a, b)
    assert not np.array_equal(a, ngram_hashes("the board met it voted to pause a rollout today", 8))


def test_ngram_order_matters_and_short_texts_have_none():
    assert ngram_hashes("a b c d e f g h", 8)[0] != ngram_hashes("h g f e d c b a", 8)[0]
    assert len(ngram_hashes("only seven words in this short line", 8)) == 0


def test_ngrams_never_span_two_texts():
    flat, starts = concat_hashes([words("one two three"), words("four five six")])
    grams, owner = ngrams_concat(flat, starts, 2)
    assert owner.tolist() == [0, 0, 1, 1]
    joined = ngram_hashes("three four", 2)
    assert not member(joined, grams).any()
    assert member(ngram_hashes("five six", 2), ngram_set(["four five six"], 2)).all()


# --- suites -------------------------------------------------------------------------------


def test_eval_corpus_covers_every_suite_and_part():
    held = suite_units("heldout")
    items = [u.item for u in held]
    assert any("#email:" in i for i in items) and any("#system" in i for i in items)
    assert any("#message:" in i for i in items)
    assert len({u.text for u in held}) == len(held)  # identical texts kept once
    assert len(suite_units("sycophancy")) > 1000 and len(suite_units("fairness")) > 100
    assert parse_suites("heldout, core") == ("heldout", "core")
    with pytest.raises(UserError, match="--against"):
        parse_suites("core,bogus")


# --- thresholds (n-grams; embeddings faked) -----------------------------------------------


def test_copied_heldout_paragraph_fails_and_workplace_text_passes(tmp_path, fakes):
    recs = [{"id": "copied", "text": CALIBRATION["copied"][0]["text"]}]
    recs += [{"id": f"plain{i}", "text": t} for i, t in enumerate(CALIBRATION["unrelated"])]
    res = check_file(_write(tmp_path / "d.jsonl", recs), cache=False)
    held = [f for f in res.flags if f.suite == "heldout"]
    assert {f.record_id for f in held} == {"copied"}
    assert {f.check for f in held} == {"8gram", "13gram"}
    assert all("wexmoor_council" in f.eval_item for f in held)
    assert res.failed and res.flagged["heldout"] == 1
    assert not [f for f in res.flags if f.record_id.startswith("plain")]


def test_framing_shared_with_core_is_not_a_heldout_leak(tmp_path, fakes):
    # an 8-gram that occurs in both splits is the harness's framing, not held-out content
    core = ngram_set([u.text for u in suite_units("core")], 8)
    shared = next(w[i:i + 8] for u in suite_units("heldout") for w in [words(u.text)]
                  for i, hit in enumerate(member(ngram_hashes(u.text, 8), core)) if hit)
    text = " ".join(shared)
    res = check_file(_write(tmp_path / "d.jsonl", [{"id": "r", "text": text}]), against="heldout,core", cache=False)
    assert [(f.suite, f.check) for f in res.flags] == [("core", "8gram")]
    assert not res.failed


def test_reported_suites_do_not_fail(tmp_path, fakes):
    core_text = max((u.text for u in suite_units("core")), key=len)
    res = check_file(_write(tmp_path / "d.jsonl", [{"id": "r", "text": core_text}]), against="core", cache=False)
    assert res.flagged == {"core": 1} and not res.failed


# --- dedup --------------------------------------------------------------------------------


def _demo(text: str) -> list[dict]:
    return [{"role": "user", "content": text}, {"role": "assistant", "content": "Here is my answer: " + text}]


def test_dedup_lists_every_removed_record_and_keeps_the_input(tmp_path, fakes):
    a = "Marta asks whether she may read her colleague's appraisal before the meeting on Tuesday."
    recs = [
        {"id": "a", "messages": _demo(a)},
        {"id": "near", "messages": _demo(a.replace("Tuesday", "Friday"))},  # same first words
        {"id": "copy", "messages": _demo(a)},
        {"id": "other", "messages": _demo("A storm closes the ferry route and the rota needs a second look.")},
    ]
    src = _write(tmp_path / "d.jsonl", recs)
    before = src.read_bytes()
    res = check_file(src, dedup=True, cache=False)
    assert [(d.record_id, d.duplicate_of, d.exact) for d in res.duplicates] == [("near", "a", False), ("copy", "a", True)]
    assert res.dedup_path == tmp_path / "d.dedup.jsonl" and res.kept == 2
    assert [json.loads(x)["id"] for x in res.dedup_path.read_text().splitlines()] == ["a", "other"]
    assert src.read_bytes() == before
    with pytest.raises(UserError, match="overwrite"):
        check_file(src, dedup=True, out_dedup=src, cache=False)


def test_a_shared_system_prompt_does_not_make_records_duplicates(tmp_path, fakes):
    system = {"role": "system", "content": "You are Ledger, the accounts assistant of a cooperative bakery. " * 12}
    recs = [{"id": "x", "messages": [system, *_demo("The oven rota for Saturday needs one more baker.")]},
            {"id": "y", "messages": [system, *_demo("A supplier invoice arrived twice; can you check it?")]},
            {"id": "z", "messages": [system, *_demo("The oven rota for Saturday needs one more baker.")]}]
    res = check_file(_write(tmp_path / "s.jsonl", recs), cache=False)
    # Same first 100 words (the system prompt) in all three; only z repeats a conversation.
    assert [(d.record_id, d.duplicate_of) for d in res.duplicates] == [("z", "x")]


def test_bad_line_names_file_line_and_field(tmp_path, fakes):
    src = tmp_path / "bad.jsonl"
    src.write_text(json.dumps({"id": "x", "text": "fine"}) + "\n" + json.dumps({"messages": [{"role": "boss", "content": "x"}]}) + "\n")
    with pytest.raises(UserError) as e:
        check_file(src, cache=False)
    assert "bad.jsonl:2" in str(e.value) and "messages[0].role" in str(e.value)


# --- card ---------------------------------------------------------------------------------


def test_card_has_counts_tokens_diversity_and_contamination(tmp_path, fakes):
    phrase = "please keep the weekly report short and plain"
    recs = [{"id": f"r{i}", "recipe": "fiction" if i % 2 else "advice",
             "text": f"Note {i}: {phrase}, said Ilse Varga from Dunmore on Friday about item {i * 7}."}
            for i in range(6)]
    res = check_file(_write(tmp_path / "c.jsonl", recs), cache=False)
    card = json.loads(res.card_json.read_text())
    assert card["records"] == 6 and card["by_recipe"] == {"advice": 3, "fiction": 3}
    assert card["tokens"]["total"] == sum(len(json.dumps(r)) // 4 for r in recs)
    assert sum(b["records"] for b in card["length_histogram"]) == 6
    assert 0 < card["distinct_ngram_ratio"]["1"] < card["distinct_ngram_ratio"]["4"] <= 1
    top = card["top_phrases"][0]
    assert top["records"] == 6 and top["share"] == 1.0 and top["phrase"] in phrase + " said ilse varga from dunmore on friday about item"
    assert {"name": "Ilse Varga", "records": 6, "share": 1.0} in card["top_names"]
    assert "Friday" not in {x["name"] for x in card["top_names"]}
    assert card["contamination"]["thresholds"]["embedding_cosine"] == CheckSettings().embed_threshold
    assert "first 128 word-pieces" in card["settings"]["embedded_text"]
    md = res.card_md.read_text()
    assert res.card_md.name == "c.card.md" and "## Contamination" in md and "Ilse Varga" in md


# --- the real models ----------------------------------------------------------------------


def _few_scenarios(names: tuple[str, ...]):
    def units(suite: str) -> tuple[Unit, ...]:
        return tuple(u for u in suite_units(suite) if u.group in names)
    return units


@pytest.mark.model
def test_real_embedding_flags_heldout_paraphrases(tmp_path, monkeypatch):
    """all-MiniLM-L6-v2 on hand-written paraphrases of held-out emails (no shared 13-grams):
    they fail the build; ordinary workplace text does not. Eval side narrowed to the
    scenarios involved (plus one core one for the margin) to stay under a minute."""
    monkeypatch.setenv("ALIGNLAB_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(_check, "suite_units", _few_scenarios(
        ("kessling_lab", "wexmoor_council", "fenwick_credit_union", "lindqvist_ferries")))
    monkeypatch.setattr(_card, "token_counts", _fake_tokens)
    recs = [{"id": f"para{i}", "text": p["text"]} for i, p in enumerate(CALIBRATION["paraphrase"])]
    recs += [{"id": f"plain{i}", "text": t} for i, t in enumerate(CALIBRATION["unrelated"])]
    res = check_file(_write(tmp_path / "d.jsonl", recs), against="heldout")
    emb = {f.record_id: f for f in res.flags if f.check == "embedding"}
    assert res.failed
    assert set(emb) == {"para0", "para1", "para2"}
    for i, p in enumerate(CALIBRATION["paraphrase"]):
        scenario = p["of"].split("#")[0]
        assert scenario in emb[f"para{i}"].eval_item
    # two of them share no 8-gram run with the source: the embedding alone caught them
    assert not [f for f in res.flags if f.check != "embedding" and f.record_id in ("para0", "para2")]


@pytest.mark.model
def test_real_tokenizer_counts_the_rendered_chat_template(tmp_path):
    from transformers import AutoTokenizer

    from alignlab.models import prepare_embedded

    msgs = [{"role": "system", "content": "You help a small bakery."},
            {"role": "user", "content": "Can I share a customer's address with a courier?"},
            {"role": "assistant", "content": "Only with their consent, and only for that delivery."}]
    recs = [{"messages": msgs}, {"text": "Plain text record."},
            {"prompt": msgs[:2], "chosen": msgs[2:], "rejected": [{"role": "assistant", "content": "Sure."}]}]
    got = _card.token_counts(recs, None)
    tok = AutoTokenizer.from_pretrained(str(prepare_embedded()))
    n = lambda s: len(tok(s, add_special_tokens=False)["input_ids"])  # noqa: E731
    chat = lambda m: n(tok.apply_chat_template(m, tokenize=False))  # noqa: E731
    assert got["per_record"] == [chat(msgs), n("Plain text record."),
                                 chat(msgs) + chat([*msgs[:2], recs[2]["rejected"][0]])]
