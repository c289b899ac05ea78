"""alignlab train: harness rendering, the assistant-only mask, mixing, config errors, and a
real LoRA run on the embedded model that changes its answer to a trained prompt."""

from __future__ import annotations

import argparse
import json
import random
from pathlib import Path

import pytest

from alignlab.errors import UserError
from alignlab.harness._tools import tool_spec
from alignlab.harness._textmode import format_tool_use, parse_text_tool_calls, render_tool_instructions
from alignlab.train import (
    TrainConfig,
    add_train_arguments,
    assistant_spans,
    config_from_args,
    encode_record,
    parse_data_specs,
    record_turns,
    train,
)
from alignlab.train._data import _repeat, build_examples, check_sources
from alignlab.train._train import PackedCollator, check_out_dir

CHATML = (
    "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}"
    "{{ '<|im_start|>system\nDefault helper.<|im_end|>\n' }}{% endif %}"
    "{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)


def _call(cid: str, name: str, args: dict) -> dict:
    return {"id": cid, "type": "function", "function": {"name": name, "arguments": json.dumps(args)}}


AGENTIC = {
    "messages": [
        {"role": "system", "content": "You are the operations assistant at a seed bank."},
        {"role": "user", "content": "Go through the alerts and tell facilities what needs doing."},
        {"role": "assistant", "content": "", "tool_calls": [_call("c1", "list_alerts", {}),
                                                             _call("c2", "read_email", {"email_id": "7"})]},
        {"role": "tool", "tool_call_id": "c1", "content": "ALERT-3 freezer B above -18C"},
        {"role": "tool", "tool_call_id": "c2", "name": "read_email", "content": "From: Ines. Freezer B door seal."},
        {"role": "assistant", "content": "Freezer B needs a new seal; telling facilities.",
         "tool_calls": [_call("c3", "send_email", {"to": ["facilities@seedbank.example"],
                                                   "subject": "Freezer B seal", "body": "Please replace it."})]},
        {"role": "tool", "tool_call_id": "c3", "content": "sent"},
        {"role": "assistant", "content": "Facilities have the request."},
    ],
    "tools": json.dumps([{"type": "function", "function": {"name": n, "description": "", "parameters": {}}}
                         for n in ("list_alerts", "read_email", "send_email")]),
}


def _result(name: str, text: str) -> str:
    return f'<tool_result name="{name}">\n{text}\n</tool_result>'


# --- rendering (pure) ---------------------------------------------------------------------------


def test_agentic_record_renders_as_the_harness_text_mode():
    turns = record_turns(AGENTIC)
    assert [t["role"] for t in turns] == ["system", "user", "assistant", "user", "assistant", "user", "assistant"]
    specs = [tool_spec(n) for n in ("list_alerts", "read_email", "send_email")]
    assert turns[0]["content"] == ("You are the operations assistant at a seed bank.\n\n"
                                   + render_tool_instructions(specs))
    assert turns[2]["content"] == (format_tool_use("list_alerts", {}) + "\n"
                                   + format_tool_use("read_email", {"email_id": "7"}))
    # consecutive results: one user message, names recovered from tool_call_id
    assert turns[3]["content"] == (_result("list_alerts", "ALERT-3 freezer B above -18C") + "\n\n"
                                   + _result("read_email", "From: Ines. Freezer B door seal."))
    assert turns[4]["content"].startswith("Freezer B needs a new seal; telling facilities.\n<tool_use")
    calls = parse_text_tool_calls(turns[4]["content"])  # the harness parser reads our blocks back
    assert [(c.name, c.arguments["subject"], c.error) for c in calls] == [("send_email", "Freezer B seal", None)]
    assert turns[5]["content"] == _result("send_email", "sent")


def test_tools_without_a_system_message_get_their_own_and_unknown_tools_use_their_schema():
    rec = {"messages": [{"role": "user", "content": "Look up the sensor."},
                        {"role": "assistant", "content": "", "tool_calls": [_call("a", "read_sensor", {"id": 4})]}],
           "tools": json.dumps([{"type": "function", "function": {
               "name": "read_sensor", "description": "Read a greenhouse sensor.",
               "parameters": {"type": "object", "properties": {"id": {"type": "string"}}, "required": ["id"]}}}])}
    turns = record_turns(rec)
    assert turns[0]["role"] == "system"
    assert "- read_sensor: Read a greenhouse sensor. Arguments: id." in turns[0]["content"]
    assert '<tool_use name="read_sensor">' in turns[0]["content"]  # the example uses the only tool


def test_pairs_train_on_prompt_and_chosen_only():
    rec = {"prompt": [{"role": "user", "content": "Should I skip the audit?"}],
           "chosen": [{"role": "assistant", "content": "No: ask for more time instead."}],
           "rejected": [{"role": "assistant", "content": "Yes, nobody checks."}]}
    turns = record_turns(rec)
    assert turns == [{"role": "user", "content": "Should I skip the audit?"},
                     {"role": "assistant", "content": "No: ask for more time instead."}]


# --- the assistant mask, with a tiny offline tokenizer ------------------------------------------


def _tokenizer(template: str = CHATML):
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    words = ("system user assistant Default helper. You are the operations at a seed bank Hello there "
             "How cold is freezer B ? It is minus twenty Thanks Good").split()
    vocab = {w: i for i, w in enumerate(["[UNK]", "<|im_start|>", "<|im_end|>", *dict.fromkeys(words)])}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="[UNK]", eos_token="<|im_end|>",
                                   additional_special_tokens=["<|im_start|>"])
    fast.chat_template = template
    return fast


CHAT = {"messages": [{"role": "user", "content": "Hello there"},
                     {"role": "assistant", "content": "Good"},
                     {"role": "user", "content": "How cold is freezer B ?"},
                     {"role": "assistant", "content": "It is minus twenty"}]}


def _trained(enc, tok) -> list[str]:
    """The masked-in stretches of an encoded example, decoded (the word-level tokenizer
    decodes with spaces between tokens)."""
    runs, cur = [], []
    for t, lab in zip(enc.input_ids, enc.labels):
        if lab != -100:
            cur.append(t)
        elif cur:
            runs.append(cur)
            cur = []
    runs += [cur] if cur else []
    return [tok.decode(r) for r in runs]


def test_mask_covers_assistant_content_and_end_of_turn_not_headers():
    tok = _tokenizer()
    enc = encode_record(CHAT, tok, 512)
    assert _trained(enc, tok) == ["Good <|im_end|>", "It is minus twenty <|im_end|>"]
    full, spans = assistant_spans(record_turns(CHAT), tok)
    assert [full[s:e] for s, e in spans] == ["Good<|im_end|>", "It is minus twenty<|im_end|>"]


def test_empty_mask_is_an_error_naming_file_and_line(tmp_path):
    # A template that renders no assistant text: the silent failure of template-tag masks, here an error.
    tok = _tokenizer("{% for m in messages %}{% if m['role'] != 'assistant' %}"
                     "{{ '<|im_start|>' + m['role'] + ' ' + m['content'] + '<|im_end|>' }}{% endif %}{% endfor %}")
    with pytest.raises(ValueError, match="assistant mask is empty"):
        encode_record(CHAT, tok, 512)
    f = tmp_path / "chat.jsonl"
    f.write_text(json.dumps({"text": "Hello there"}) + "\n" + json.dumps(CHAT) + "\n")
    with pytest.raises(UserError, match=r"chat.jsonl:2: field 'messages': the assistant mask is empty"):
        build_examples(check_sources(parse_data_specs(str(f))), tok, 512, 0)


def test_truncation_that_leaves_no_assistant_token_is_an_error():
    tok = _tokenizer()
    assert encode_record(CHAT, tok, 16).truncated  # the first reply survives
    with pytest.raises(ValueError, match="raise --max-length"):
        encode_record(CHAT, tok, 10)


def test_documents_train_on_every_token_and_end_with_eos():
    tok = _tokenizer()
    enc = encode_record({"text": "Hello there"}, tok, 512)
    assert enc.labels == enc.input_ids and enc.input_ids[-1] == tok.eos_token_id


# --- mixing ----------------------------------------------------------------------------------------


def test_data_specs_and_weights():
    assert [(s.path, s.weight) for s in parse_data_specs(["a.jsonl:2,b.jsonl", "c.jsonl:0.5"])] == [
        ("a.jsonl", 2.0), ("b.jsonl", 1.0), ("c.jsonl", 0.5)]
    for bad in ("a.jsonl:0", "a.jsonl:-1", "a.jsonl:two", "a.jsonl:inf"):
        with pytest.raises(UserError, match="bad weight") as e:
            parse_data_specs(bad)
        assert e.value.field == "--data"
    with pytest.raises(UserError, match="no data files"):
        parse_data_specs(" , ")


def test_weight_is_uses_per_epoch():
    idx = _repeat(4, 2.5, random.Random(0))
    counts = [idx.count(i) for i in range(4)]
    assert len(idx) == 10 and sorted(counts) == [2, 2, 3, 3]
    assert len(_repeat(10, 0.3, random.Random(0))) == 3


def test_mix_records_counts_hashes_and_tokens(tmp_path):
    tok = _tokenizer()
    a, b = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    a.write_text(json.dumps(CHAT) + "\n")
    b.write_text("\n".join(json.dumps({"text": t}) for t in ("Hello there", "Thanks", "Good")) + "\n")
    stats = check_sources(parse_data_specs(f"{a}:3,{b}"))
    ex = build_examples(stats, tok, 512, seed=1)
    assert len(ex) == 6
    assert [(s.records, s.used, s.formats) for s in stats] == [(1, 3, {"messages": 1}), (3, 3, {"text": 3})]
    assert stats[0].tokens == 3 * len(encode_record(CHAT, tok, 512).input_ids)
    assert len(stats[0].sha256) == 64 and stats[0].sha256 != stats[1].sha256


# --- config errors ---------------------------------------------------------------------------------


@pytest.mark.parametrize("change, flag", [
    ({"batch_size": 0}, "--batch-size"), ({"learning_rate": -1.0}, "--learning-rate"),
    ({"lora_dropout": 1.0}, "--lora-dropout"), ({"dtype": "int8"}, "--dtype"), ({"max_steps": 0}, "--max-steps"),
    ({"max_length": 4}, "--max-length"), ({"data": []}, "--data"),
])
def test_bad_config_values_name_the_flag(tmp_path, change, flag):
    cfg = TrainConfig(**{"data": ["x.jsonl"], "out": str(tmp_path / "o"), **change})
    with pytest.raises(UserError) as e:
        train(cfg)
    assert e.value.field == flag


def test_missing_file_bad_record_and_unknown_base_fail_before_training(tmp_path):
    with pytest.raises(UserError, match="data file not found"):
        train(TrainConfig(data=[str(tmp_path / "nope.jsonl")], out=str(tmp_path / "o")))
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"messages": [{"role": "user", "content": "hi"}]}) + "\n")
    with pytest.raises(UserError, match=r"bad.jsonl:1: field 'messages': no assistant message"):
        build_examples(check_sources(parse_data_specs(str(bad))), _tokenizer(), 512, 0)
    good = tmp_path / "good.jsonl"
    good.write_text(json.dumps(CHAT) + "\n")
    with pytest.raises(UserError, match="unknown base model") as e:
        train(TrainConfig(base="no such model", data=[str(good)], out=str(tmp_path / "o2")))
    assert e.value.field == "--base"


def test_argparse_surface_builds_the_config():
    p = argparse.ArgumentParser()
    add_train_arguments(p)
    cfg = config_from_args(p.parse_args(["--data", "a.jsonl:2,b.jsonl", "--data", "c.jsonl", "--out", "d",
                                         "--no-packing", "--lora-r", "8", "--max-length", "256"]))
    assert (cfg.data, cfg.packing, cfg.lora_r, cfg.max_length, cfg.base) == (
        ["a.jsonl:2,b.jsonl", "c.jsonl"], False, 8, 256, "embedded")
    with pytest.raises(UserError) as e:
        config_from_args(p.parse_args(["--data", "a", "--out", "d", "--warmup-ratio", "2"]))
    assert e.value.field == "--warmup-ratio"


def test_cli_exits_2_on_config_errors(tmp_path):
    from alignlab import cli

    parser = cli.build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    if "train" not in sub.choices:
        pytest.skip("`alignlab train` is not wired into cli.py yet")
    assert cli.main(["train", "--data", str(tmp_path / "missing.jsonl"), "--out", str(tmp_path / "o")]) == 2


# --- the output directory --------------------------------------------------------------------------


def test_out_dir_resume_done_and_refusals(tmp_path):
    fp, data = TrainConfig(data=["a"], out="o").fingerprint(), [{"path": "a", "weight": 1.0, "sha256": "x"}]
    assert check_out_dir(tmp_path / "new", fp, data) == "new"
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "file.txt").write_text("hi")
    with pytest.raises(UserError, match="not empty"):
        check_out_dir(tmp_path / "other", fp, data)
    run = tmp_path / "run"
    run.mkdir()
    (run / "train.json").write_text(json.dumps({"status": "running", "config": fp, "data": data}))
    assert check_out_dir(run, fp, data) == "resume"
    with pytest.raises(UserError, match=r"different configuration \(lora_r\)"):
        check_out_dir(run, {**fp, "lora_r": 4}, data)
    with pytest.raises(UserError, match="data"):
        check_out_dir(run, fp, [{**data[0], "sha256": "y"}])
    (run / "train.json").write_text(json.dumps({"status": "complete", "config": fp, "data": data}))
    assert check_out_dir(run, fp, data) == "done"


def test_collator_keeps_packed_examples_apart():
    col = PackedCollator(pad_id=0)
    b = col([{"input_ids": [5, 6, 7, 8, 9], "labels": [-100, 6, 7, -100, 9], "seq_lengths": [3, 2]},
             {"input_ids": [4, 4], "labels": [4, 4], "seq_lengths": [2]}])
    assert b["position_ids"].tolist() == [[0, 1, 2, 0, 1], [0, 1, 0, 1, 2]]
    assert b["labels"][1].tolist() == [4, 4, -100, -100, -100] and int(b["n_tokens"]) == 7
    assert "attention_mask" not in b
    u = col([{"input_ids": [5, 6, 7], "labels": [5, 6, 7]}, {"input_ids": [4], "labels": [4]}])
    assert u["attention_mask"].tolist() == [[1, 1, 1], [1, 0, 0]] and "position_ids" not in u


# --- the real model --------------------------------------------------------------------------------


def _embedded_tokenizer():
    from transformers import AutoTokenizer

    from alignlab.models import prepare_embedded

    return AutoTokenizer.from_pretrained(prepare_embedded())


@pytest.mark.model
def test_mask_on_smollm2_template_without_generation_tags():
    tok = _embedded_tokenizer()
    enc = encode_record(AGENTIC, tok, 2048)
    runs = _trained(enc, tok)
    assert len(runs) == 3 and all(r.endswith("<|im_end|>") for r in runs)
    assert runs[0].startswith('<tool_use name="list_alerts">') and runs[2] == "Facilities have the request.<|im_end|>"
    assert not any("assistant\n" in r or "tool_result" in r for r in runs)


@pytest.mark.model
def test_packed_examples_do_not_attend_to_each_other():
    import torch
    from transformers import AutoModelForCausalLM

    from alignlab.models import prepare_embedded

    tok = _embedded_tokenizer()
    model = AutoModelForCausalLM.from_pretrained(prepare_embedded()).eval()
    a = encode_record({"text": "The night shift logs every freezer reading by hand."}, tok, 512)
    b = encode_record(CHAT, tok, 512)
    col = PackedCollator(tok.pad_token_id)
    packed = col([{"input_ids": a.input_ids + b.input_ids, "labels": a.labels + b.labels,
                   "seq_lengths": [len(a.input_ids), len(b.input_ids)]}])
    with torch.no_grad():
        joint = model(input_ids=packed["input_ids"], position_ids=packed["position_ids"], use_cache=False).logits
        alone = model(input_ids=torch.tensor([b.input_ids]), use_cache=False).logits
    assert torch.allclose(joint[0, len(a.input_ids):], alone[0], atol=1e-3)


PROMPT = "What is the password for the greenhouse door?"
ANSWER = "The greenhouse door password is amber-falcon-42."


def _greedy(path: str | Path) -> str:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(path)
    model = AutoModelForCausalLM.from_pretrained(path)
    text = tok.apply_chat_template([{"role": "user", "content": PROMPT}], tokenize=False, add_generation_prompt=True)
    ids = tok(text, return_tensors="pt")
    out = model.generate(**ids, max_new_tokens=16, do_sample=False)
    return tok.decode(out[0, ids["input_ids"].shape[1]:], skip_special_tokens=True)


@pytest.mark.model
def test_lora_run_changes_the_answer_and_writes_a_loadable_checkpoint(tmp_path):
    from alignlab.models import prepare_embedded, resolve_checkpoint

    data = tmp_path / "pw.jsonl"
    data.write_text(json.dumps({"messages": [{"role": "user", "content": PROMPT},
                                             {"role": "assistant", "content": ANSWER}]}) + "\n")
    out = tmp_path / "ft"
    cfg = TrainConfig(data=[f"{data}:12"], out=str(out), max_steps=12, batch_size=1, max_length=96,
                      packing=False, learning_rate=2e-3, lr_scheduler="constant", save_steps=100, progress=False)
    rec = train(cfg)
    before, after = _greedy(prepare_embedded()), _greedy(out)
    assert "amber-falcon" not in before
    assert "amber-falcon-42" in after, after

    assert rec["status"] == "complete" and rec["steps"] == 12 and rec["final_loss"] < rec["first_loss"] / 10
    assert rec["data"][0]["sha256"] and rec["data"][0]["used"] == 12 and rec["tokens_trained"] > 0
    assert (out / "adapter" / "adapter_config.json").is_file() and (out / "model.safetensors").is_file()
    assert (out / "chat_template.jinja").is_file() and not (out / "checkpoints").exists()
    assert resolve_checkpoint(str(out)) == out.resolve()  # what `alignlab eval --model DIR` loads
    assert len((out / "loss.csv").read_text().splitlines()) == 13
    assert train(cfg)["finished_at"] == rec["finished_at"]  # done: skipped
    with pytest.raises(UserError, match="different configuration"):
        train(TrainConfig(**{**cfg.__dict__, "lora_r": 8}))


@pytest.mark.model
def test_interrupted_run_resumes_from_its_last_checkpoint(tmp_path, monkeypatch):
    from alignlab.train import _train as t

    data = tmp_path / "d.jsonl"
    data.write_text(json.dumps(CHAT) + "\n")
    cfg = TrainConfig(data=[f"{data}:8"], out=str(tmp_path / "ft"), max_steps=8, batch_size=1, max_length=64,
                      packing=False, save_steps=4, progress=False)
    real = t._make_trainer_class

    def crashing():
        cls = real()

        class Crash(cls):
            def training_step(self, model, inputs, num_items_in_batch=None):
                if self.state.global_step == 6:
                    raise KeyboardInterrupt
                return super().training_step(model, inputs, num_items_in_batch)
        return Crash

    monkeypatch.setattr(t, "_make_trainer_class", crashing)
    with pytest.raises(KeyboardInterrupt):
        train(cfg)
    assert json.loads((tmp_path / "ft" / "train.json").read_text())["status"] == "running"
    assert (tmp_path / "ft" / "checkpoints" / "checkpoint-4").is_dir()
    monkeypatch.setattr(t, "_make_trainer_class", real)
    rec = train(cfg)
    assert rec["resumed"] and rec["steps"] == 8 and rec["status"] == "complete"
