"""The build loop, record formats and the constitution, with a toy recipe (plumbing only;
each real recipe has its own tests, and the real models run in the marked tests)."""

from __future__ import annotations

import json
import random
import sys
import types

import pytest

from alignlab.cli import main
from alignlab.data import Plan, Reject, load_constitution
from alignlab.data import _recipe
from alignlab.data._build import BuildConfig, build
from alignlab.data._records import iter_records, read_records, record_text, validate_payload
from alignlab.errors import UserError


def _toy_module(size: int = 50) -> types.ModuleType:
    m = types.ModuleType("alignlab_test_toy_recipe")
    m.NAME = "toy"
    m.DESCRIPTION = "toy"
    m.FORMATS = ("messages", "text")

    def plan(rng: random.Random, ctx) -> Plan:
        k = rng.randrange(size)
        return Plan({"item": f"i{k}"}, {"k": k, "principle": ctx.constitution.principles[k % 3]})

    def compose(plan: Plan, fmt: str, ctx) -> dict:
        p = plan.material["principle"]
        if fmt == "text":
            return {"text": f"Item {plan.material['k']}. {p.statement}"}
        return {"messages": [{"role": "user", "content": f"Question {plan.material['k']}?"},
                             {"role": "assistant", "content": p.reasons[0]}]}

    def teacher_prompt(plan: Plan, fmt: str, ctx) -> str:
        return f"Write about item {plan.material['k']}."

    def from_teacher(plan: Plan, fmt: str, reply: str, ctx) -> dict:
        if "BAD" in reply:
            raise Reject("reply contained BAD")
        return {"text": reply.strip()} if fmt == "text" else {
            "messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": reply.strip()}]}

    m.plan, m.compose, m.teacher_prompt, m.from_teacher = plan, compose, teacher_prompt, from_teacher
    return m


@pytest.fixture
def toy(monkeypatch):
    mod = _toy_module()
    monkeypatch.setitem(sys.modules, mod.__name__, mod)
    monkeypatch.setitem(_recipe.RECIPES, "toy", mod.__name__)
    return mod


def test_default_constitution_parses_with_reasons_for_every_principle():
    c = load_constitution()
    assert {"honesty", "oversight", "no_leverage", "care", "privacy", "legitimate_means"} <= set(c.ids)
    for p in c.principles:
        assert p.statement and len(p.reasons) >= 2 and p.practice
    assert len(c.sha256) == 64


@pytest.mark.parametrize("text, field", [
    ("# T\n## Honesty: upper-case id\nx\n### Reasons\n- r\n### In practice\n- p\n", "principles"),
    ("# T\n## honesty: fine\nstatement\n### In practice\n- p\n", "honesty"),
    ("# T\n## a: one\ns\n### Reasons\n- r\n### In practice\n- p\n## a: two\ns\n### Reasons\n- r\n### In practice\n- p\n",
     "principles"),
    ("# T\nno principles at all\n", "principles"),
])
def test_bad_constitution_names_file_and_field(tmp_path, text, field):
    p = tmp_path / "c.md"
    p.write_text(text)
    with pytest.raises(UserError) as e:
        load_constitution(p)
    assert e.value.file == str(p) and e.value.field == field


def test_offline_build_writes_distinct_records_with_provenance(tmp_path, toy):
    out = tmp_path / "toy.jsonl"
    res = build(BuildConfig(recipe="toy", n=30, out=str(out), seed=3))
    assert res.complete and res.written == 30
    recs = read_records(out)
    assert len({json.dumps(r["messages"]) for r in recs}) == 30
    c = load_constitution()
    for r in recs:
        assert r["recipe"] == "toy" and r["format"] == "messages" and r["teacher"] is None
        assert r["constitution_sha256"] == c.sha256 and r["seed_ids"]["item"].startswith("i")
    # Every draw is accounted for.
    acct = json.loads((tmp_path / "toy.jsonl.build.json").read_text())
    assert acct["draws"] == acct["written"] + acct["repeated"]
    # Same seed, same file; another seed, another file.
    again = build(BuildConfig(recipe="toy", n=30, out=str(tmp_path / "b.jsonl"), seed=3))
    assert (tmp_path / "b.jsonl").read_text() == out.read_text() and again.written == 30
    build(BuildConfig(recipe="toy", n=30, out=str(tmp_path / "c.jsonl"), seed=4))
    assert (tmp_path / "c.jsonl").read_text() != out.read_text()


def test_offline_build_reports_a_seed_library_too_small(tmp_path, toy):
    res = build(BuildConfig(recipe="toy", n=80, out=str(tmp_path / "t.jsonl")))
    assert not res.complete and res.written == 50  # the toy library has 50 distinct plans
    assert main(["data", "build", "toy", "--n", "80", "--out", str(tmp_path / "u.jsonl")]) == 1


def test_swapped_constitution_reaches_records_and_hash(tmp_path, toy):
    c = tmp_path / "mine.md"
    c.write_text("# Mine\n## alpha: A\nAlpha statement here.\n### Reasons\n- because alpha\n### In practice\n- do a\n"
                 "## beta: B\nBeta statement.\n### Reasons\n- because beta\n### In practice\n- do b\n"
                 "## gamma: C\nGamma statement.\n### Reasons\n- because gamma\n### In practice\n- do c\n")
    out = tmp_path / "t.jsonl"
    build(BuildConfig(recipe="toy", n=10, out=str(out), format="text", constitution=str(c)))
    recs = read_records(out)
    assert all(r["constitution_sha256"] == load_constitution(c).sha256 for r in recs)
    assert any("Alpha statement" in r["text"] for r in recs)
    assert not any(load_constitution().principles[0].statement in r["text"] for r in recs)


@pytest.mark.parametrize("line, field", [
    ('{"messages": [{"role": "robot", "content": "x"}]}', "messages[0].role"),
    ('{"messages": [{"role": "user", "content": "x"}]}', "messages"),
    ('{"text": ""}', "text"),
    ('{"prompt": [{"role": "user", "content": "q"}], "chosen": [{"role": "user", "content": "a"}], '
     '"rejected": [{"role": "assistant", "content": "b"}]}', "chosen"),
    ('{"messages": [{"role": "assistant", "content": "", "tool_calls": [{"type": "function", '
     '"function": {"name": "send_email", "arguments": {"to": "x"}}}]}]}', "messages[0].tool_calls[0].function.arguments"),
    ('{"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}], "tools": [1]}', "tools"),
    ('{"nothing": 1}', "no payload"),
])
def test_bad_record_names_file_line_and_field(tmp_path, line, field):
    p = tmp_path / "d.jsonl"
    p.write_text('{"text": "fine"}\n\n' + line + "\n")
    with pytest.raises(UserError) as e:
        list(iter_records(p))
    assert e.value.file == f"{p}:3"
    assert field in (e.value.field or str(e.value))
    assert main(["data", "check", str(p)]) == 2


def test_record_text_covers_tool_calls_and_pairs():
    rec = {"prompt": [{"role": "user", "content": "inbox"}],
           "chosen": [{"role": "assistant", "content": "", "tool_calls": [
               {"id": "c1", "type": "function", "function": {"name": "send_email", "arguments": '{"body": "hello there"}'}}]}],
           "rejected": [{"role": "assistant", "content": "threaten"}]}
    assert validate_payload(rec) == "pairs"
    t = record_text(rec)
    assert "inbox" in t and "hello there" in t and "threaten" in t


def test_build_output_loads_with_datasets(tmp_path, toy):
    from datasets import load_dataset

    out = tmp_path / "t.jsonl"
    build(BuildConfig(recipe="toy", n=20, out=str(out)))
    ds = load_dataset("json", data_files=str(out), split="train")
    assert len(ds) == 20 and ds[0]["messages"][1]["role"] == "assistant"


def _mock_outputs(texts):
    from inspect_ai.model import ModelOutput, ModelUsage

    outs = []
    for t in texts:
        o = ModelOutput.from_content(model="mockllm/model", content=t)
        o.usage = ModelUsage(input_tokens=5, output_tokens=5, total_tokens=10)  # else a tokenizer download
        outs.append(o)
    return outs


def test_teacher_build_counts_rejections_and_keeps_teacher_name(tmp_path, toy, monkeypatch):
    from alignlab.data import _teacher

    replies = iter(["A careful reply about honesty.", "BAD reply", "Another good reply.", "Third good reply.",
                    "BAD again", "Fourth good reply.", "Fifth good reply."] + [f"spare {i}" for i in range(20)])
    real_init = _teacher.Teacher.__init__

    def init(self, name, **kw):
        from inspect_ai.model import get_model

        real_init(self, "mockllm/model", **kw)
        self.name = name
        self.model = get_model("mockllm/model", custom_outputs=_mock_outputs(list(replies)))

    monkeypatch.setattr(_teacher.Teacher, "__init__", init)
    out = tmp_path / "t.jsonl"
    res = build(BuildConfig(recipe="toy", n=5, out=str(out), format="text", teacher="mockllm/model"))
    assert res.complete and res.rejected == {"reply contained BAD": 2}
    recs = read_records(out)
    assert [r["text"] for r in recs][:2] == ["A careful reply about honesty.", "Another good reply."]
    assert all(r["teacher"] == "mockllm/model" for r in recs)


def test_cli_errors_exit_2(tmp_path, toy):
    assert main(["data", "build", "nope", "--n", "3", "--out", str(tmp_path / "x.jsonl")]) == 2
    assert main(["data", "build", "toy", "--n", "0", "--out", str(tmp_path / "x.jsonl")]) == 2
    assert main(["data", "build", "toy", "--n", "3", "--out", str(tmp_path / "x.txt")]) == 2
    assert main(["data", "build", "toy", "--n", "3", "--format", "pairs", "--out", str(tmp_path / "x.jsonl")]) == 2
    assert main(["data", "build", "toy", "--n", "3", "--constitution", str(tmp_path / "none.md"),
                 "--out", str(tmp_path / "x.jsonl")]) == 2
    assert not (tmp_path / "x.jsonl").exists()


@pytest.mark.model
def test_teacher_build_with_the_real_embedded_model(tmp_path, toy):
    out = tmp_path / "t.jsonl"
    res = build(BuildConfig(recipe="toy", n=2, out=str(out), format="text", teacher="embedded",
                            max_tokens=40, max_connections=2))
    acct = json.loads((tmp_path / "t.jsonl.build.json").read_text())
    assert acct["written"] + sum(acct["rejected"].values()) + sum(acct["errors"].values()) >= 2
    assert not acct["errors"], acct["errors"]
    recs = read_records(out)
    assert res.written == len(recs) >= 1
    assert all(r["teacher"] == "embedded" and r["text"].strip() for r in recs)
