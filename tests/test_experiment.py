"""`alignlab experiment`: config validation, the plan, dry run, resume, refusal of a changed
config; and one tiny real experiment on the embedded model."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
import yaml

from alignlab.cli import main
from alignlab.errors import UserError
from alignlab.experiment import _run, load_config, make_plan, run_experiment, shipped_config

BASE = {
    "name": "t",
    "suites": ["sycophancy"],
    "eval": {"limit": 2, "max_tokens": 16},
    "train": {"max_steps": 2, "batch_size": 1, "max_length": 128},
    "datasets": {"docs": {"recipe": "constitution", "n": 3}, "story": {"recipe": "fiction", "n": 3}},
    "check_against": "none",
    "pre_stages": [{"name": "org", "data": ["docs"], "train": {"max_steps": 1}}],
    "arms": {"none": "none", "a": ["docs"], "b": ["docs:2", "story"]},
    "baseline": "none",
    "reference": "a",
}


def write(tmp_path: Path, cfg: dict, name: str = "exp.yaml") -> Path:
    p = tmp_path / name
    p.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return p


def with_(**changes) -> dict:
    cfg = json.loads(json.dumps(BASE))
    cfg.update(changes)
    return cfg


# --- config errors ------------------------------------------------------------------------------


@pytest.mark.parametrize("changes, field, words", [
    ({"arms": {"reasoned": {"data": ["reasond"]}}}, "arms.reasoned.data[0]", "unknown dataset 'reasond'"),
    ({"arms": {"a": ["docs", "nope:2"]}}, "arms.a[1]", "unknown dataset 'nope'"),
    ({"arms": {"a": ["docs:-1"]}}, "arms.a[0]", "positive number"),
    ({"trian": {}}, "trian", "unknown key"),
    ({"train": {"max_stepz": 3}}, "train.max_stepz", "unknown key"),
    ({"train": {"max_steps": 0}}, "train.max_steps", "positive number of steps"),
    ({"train": {"batch_size": "four"}}, "train.batch_size", "expected a int"),
    ({"train": {"seed": 1}}, "train.seed", "seeds"),
    ({"pre_stages": [{"name": "org", "data": ["docs"], "train": {"learning_rate": -1.0}}]},
     "pre_stages[0].train.learning_rate", "positive number"),
    ({"eval": {"samples": 0}}, "eval.samples", "at least 1"),
    ({"eval": {"tool_mode": "telepathy"}}, "eval.tool_mode", "auto, text or native"),
    ({"suite_eval": {"sycophancy": {"families": ["blackmail"]}}}, "suite_eval.sycophancy.families", "honeypot"),
    ({"suite_eval": {"fairness": {"limit": 2}}}, "suite_eval.fairness", "not one of the experiment's suites"),
    ({"suites": ["sycophancy", "honeypots:corr"]}, "suites[1]", "unknown suite"),
    ({"datasets": {"docs": {"recipe": "constitutoin"}}}, "datasets.docs.recipe", "unknown recipe"),
    ({"datasets": {"docs": {"recipe": "constitution", "format": "pairs"}}}, "datasets.docs.format", "writes text"),
    ({"datasets": {"docs": {"path": "missing.jsonl"}}}, "datasets.docs.path", "file not found"),
    ({"baseline": "c"}, "baseline", "not an arm"),
    ({"seeds": [0, 0]}, "seeds", "twice"),
    ({"check_against": ["core", "heldot"]}, "check_against", "unknown suite"),
    ({"arms": {"none": "none", "zero": "none"}}, "arms.zero", "only one arm"),
])
def test_config_errors_name_file_and_field(tmp_path, changes, field, words):
    p = write(tmp_path, with_(**changes), "bad.yaml")
    with pytest.raises(UserError) as e:
        load_config(p)
    assert e.value.file == "bad.yaml"
    assert e.value.field == field
    assert words in str(e.value)


def test_config_error_is_exit_2_on_the_command_line(tmp_path, capsys):
    p = write(tmp_path, with_(arms={"reasoned": ["reasond"]}), "demo.yaml")
    assert main(["experiment", "run", str(p), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "demo.yaml: field 'arms.reasoned[0]': unknown dataset 'reasond'" in err
    assert not (tmp_path / "out").exists()


def test_shipped_configs_are_valid():
    for name in ("demo", "demo_quick"):
        cfg = load_config(shipped_config(name))
        assert list(cfg.arms) == ["none", "demonstrations", "reasoned", "advice", "constitution+fiction"]
        assert cfg.suites == ["honeypots:core", "honeypots:heldout", "sycophancy"]


# --- the plan -----------------------------------------------------------------------------------


def test_plan_models_lineage_and_stage_order(tmp_path):
    cfg = load_config(write(tmp_path, with_(seeds=[0, 1], post_stages=[{"name": "p", "data": ["story"]}])))
    plan = make_plan(cfg)
    ids = [m.id for m in plan.models]
    # the `none` arm has post-stages, so it is its own model per seed
    assert ids == ["base", "pre", "arm-none-s0", "arm-a-s0", "arm-b-s0", "arm-none-s1", "arm-a-s1", "arm-b-s1"]
    a1 = next(m for m in plan.models if m.id == "arm-a-s1")
    assert a1.lineage == ["pre-org", "arm-a-s1", "arm-a-s1-post-p"] and a1.own == ["arm-a-s1"]
    assert plan.step("arm-a-s1").base_from == "pre-org" and plan.step("arm-a-s1").seed == 1
    assert next(m for m in plan.models if m.id == "arm-none-s0").own == []
    kinds = [n.split(":")[0] for n in plan.stages]
    assert kinds == sorted(kinds, key=["data", "judge", "train", "eval", "report"].index)
    assert plan.stages[:2] == ["data:docs", "data:story"] and plan.stages[-1] == "report"


def test_none_arm_is_the_pre_model_without_post_stages(tmp_path):
    plan = make_plan(load_config(write(tmp_path, with_(eval_base=False))))
    assert [(m.id, m.kind, m.arm) for m in plan.models] == [("pre", "pre", "none"), ("arm-a", "arm", "a"),
                                                             ("arm-b", "arm", "b")]


# --- dry run ------------------------------------------------------------------------------------


def test_dry_run_prints_upper_bounds_and_writes_nothing(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(_run, "measure_epoch_tokens", lambda cfg, exp: ({"arm-a": 777}, ["a note"]))
    p = write(tmp_path, BASE)
    out = tmp_path / "out"
    assert main(["experiment", "run", str(p), "--out", str(out), "--dry-run"]) == 0
    text = capsys.readouterr().out
    assert not out.exists() and sorted(q.name for q in tmp_path.iterdir()) == ["exp.yaml"]
    assert "train:pre-org  embedded + [docs:1], 1 steps × batch 1 × 128, seed 0: ≤ 128 tokens\n" in text
    assert "train:arm-a  train/pre-org + [docs:1], 2 steps × batch 1 × 128, seed 0: ≤ 256 tokens; " \
           "one epoch 777 tokens" in text
    assert "total to train: ≤ 640 tokens" in text and "a note" in text
    # sycophancy: 2 items × (neutral + 6 cues + challenge) × 16 tokens, 4 models
    assert "sycophancy: 2 samples per model, ≤ 256 generated tokens per model, ≤ 1,024 for 4 models" in text
    assert "dry run: nothing was written" in text


@pytest.mark.model  # loads the base model's tokenizer (transformers import: ~8 s here)
def test_dry_run_measures_epoch_tokens_and_writes_nothing(tmp_path, capsys):
    p = write(tmp_path, with_(train={"max_steps": 2, "batch_size": 1, "max_length": 256}))
    out = tmp_path / "out"
    assert main(["experiment", "run", str(p), "--out", str(out), "--dry-run"]) == 0
    text = capsys.readouterr().out
    assert not out.exists()
    assert sorted(q.name for q in tmp_path.iterdir()) == ["exp.yaml"]
    # upper bounds: steps × batch × max_length, and the measured epoch of the built data
    assert "train:pre-org  embedded + [docs:1], 1 steps × batch 1 × 256, seed 0: ≤ 256 tokens; one epoch" in text
    assert "train:arm-b  train/pre-org + [docs:2, story:1], 2 steps × batch 1 × 256, seed 0: ≤ 512 tokens" in text
    assert "total to train: ≤ 1,280 tokens" in text
    # sycophancy: 2 items × (neutral + 6 cues + challenge) × 16 tokens, 4 models
    assert "sycophancy: 2 samples per model, ≤ 256 generated tokens per model, ≤ 1,024 for 4 models" in text


# --- running, with the library calls faked (plumbing only) ---------------------------------------


class Fakes:
    """Stand-ins for build / train / eval / report that record every call."""

    def __init__(self, monkeypatch, fail_on: str | None = None, interrupt_on: str | None = None):
        self.calls: list[str] = []
        self.fail_on, self.interrupt_on = fail_on, interrupt_on
        monkeypatch.setattr(_run, "build_dataset", self.build)
        monkeypatch.setattr(_run, "judge_validation", lambda judge: {"overall": {"n": 1}})
        monkeypatch.setattr(_run, "train_model", self.train)
        monkeypatch.setattr(_run, "evaluate", self.evaluate)
        monkeypatch.setattr(_run, "write_report", lambda out: self.calls.append("report"))

    def build(self, cfg, ds, out):
        self.calls.append(f"data:{ds.id}")
        return {"id": ds.id, "recipe": ds.recipe, "path": f"data/{ds.id}.jsonl", "records": 3}

    def train(self, tc):
        name = Path(tc.out).name
        self.calls.append(f"train:{name}")
        if name == self.fail_on:
            raise RuntimeError("boom")
        Path(tc.out).mkdir(parents=True, exist_ok=True)
        tokens = 100 * tc.max_steps
        (Path(tc.out) / "train.json").write_text(json.dumps({"status": "complete", "tokens_trained": tokens}))
        return {"tokens_trained": tokens}

    def evaluate(self, ec, console):
        self.calls.append(f"eval:{ec.out}")
        if self.interrupt_on and ec.out.endswith(self.interrupt_on):
            return {"interrupted": True}
        out = Path(ec.out)
        out.mkdir(parents=True, exist_ok=True)
        totals = {"n": 2, "counts": {"harmful": 1, "safe": 1, "error": 0, "unscored": 0}, "scored": 2,
                  "rate": 0.5, "ci_low": 0.09, "ci_high": 0.91}
        (out / "results.json").write_text(json.dumps({"totals": totals, "model": ec.model}))
        return {"interrupted": False}


def test_resume_redoes_no_finished_stage(tmp_path, monkeypatch):
    cfg = load_config(write(tmp_path, BASE))
    out = tmp_path / "out"
    first = Fakes(monkeypatch, fail_on="arm-b")
    with pytest.raises(RuntimeError, match="boom"):
        run_experiment(cfg, out)
    rec = json.loads((out / "experiment.json").read_text())
    state = {s["name"]: s["state"] for s in rec["stages"]}
    assert [n for n, s in state.items() if s == "done"] == ["data:docs", "data:story", "train:pre-org", "train:arm-a"]
    assert state["train:arm-b"] == "failed" and "boom" in next(s["error"] for s in rec["stages"]
                                                              if s["name"] == "train:arm-b")
    assert rec["complete"] is False
    assert first.calls == ["data:docs", "data:story", "train:pre-org", "train:arm-a", "train:arm-b"]

    second = Fakes(monkeypatch)
    rec = run_experiment(cfg, out)
    assert second.calls[0] == "train:arm-b"  # nothing before it again
    assert not any(c.startswith("data:") or c in ("train:pre-org", "train:arm-a") for c in second.calls)
    assert len([c for c in second.calls if c.startswith("eval:")]) == 4 * 1  # base, pre, a, b × sycophancy
    assert second.calls[-1] == "report" and rec["complete"] is True
    assert all(s["state"] == "done" for s in rec["stages"])
    models = {m["id"]: m for m in rec["models"]}
    assert models["pre"]["arm"] == "none" and models["pre"]["train_tokens"] == 100  # its own stage, 1 step
    assert models["arm-a"]["train_tokens"] == 200 and models["arm-a"]["train_dirs"] == ["train/pre-org",
                                                                                         "train/arm-a"]
    assert models["base"]["train_tokens"] == 0
    assert models["arm-b"]["evals"] == {"sycophancy": "eval/arm-b/sycophancy/results.json"}
    assert json.loads((out / models["arm-b"]["evals"]["sycophancy"]).read_text())["model"].endswith("train/arm-b")

    third = Fakes(monkeypatch)  # a finished experiment: nothing runs again
    run_experiment(cfg, out)
    assert third.calls == []


def test_interrupted_eval_is_pending_and_resumes(tmp_path, monkeypatch):
    cfg = load_config(write(tmp_path, with_(pre_stages=[], eval_base=False)))
    out = tmp_path / "out"
    Fakes(monkeypatch, interrupt_on="arm-a/sycophancy")
    with pytest.raises(KeyboardInterrupt):
        run_experiment(cfg, out)
    st = {s["name"]: s for s in json.loads((out / "experiment.json").read_text())["stages"]}
    assert st["eval:arm-a:sycophancy"]["state"] == "pending" and st["eval:arm-a:sycophancy"]["error"] == "interrupted"
    assert st["eval:base:sycophancy"]["state"] == "done"
    again = Fakes(monkeypatch)
    assert run_experiment(cfg, out)["complete"]
    assert [c for c in again.calls if c.startswith("eval:")] == [f"eval:{out}/eval/arm-a/sycophancy",
                                                                 f"eval:{out}/eval/arm-b/sycophancy"]


def test_changed_config_is_refused(tmp_path, monkeypatch, capsys):
    p = write(tmp_path, BASE)
    out = tmp_path / "out"
    Fakes(monkeypatch)
    assert main(["experiment", "run", str(p), "--out", str(out)]) == 0
    table = capsys.readouterr().out
    assert "sycophancy · judge offline" in table and "[docs:2, story:1]" in table
    assert "[1/10] data:docs: starting" in table and "[10/10] report: done in" in table
    before = (out / "experiment.json").read_text()
    write(tmp_path, with_(train={**BASE["train"], "max_steps": 3}))
    assert main(["experiment", "run", str(p), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "different config (changed: train)" in err and "experiment.json" in err
    assert (out / "experiment.json").read_text() == before
    # a directory that holds something else is refused too
    other = tmp_path / "other"
    other.mkdir()
    (other / "x.txt").write_text("x")
    with pytest.raises(UserError, match="not empty"):
        run_experiment(load_config(p), other)


# --- the real thing -----------------------------------------------------------------------------


@pytest.mark.model
def test_tiny_real_experiment_end_to_end(tmp_path):
    """Build, train one LoRA step, evaluate base and arm on two sycophancy items, report."""
    cfg = load_config(write(tmp_path, {
        "name": "tiny", "suites": ["sycophancy"], "eval": {"limit": 1, "max_tokens": 16},
        "train": {"max_steps": 1, "batch_size": 1, "max_length": 128, "progress": False},
        "datasets": {"docs": {"recipe": "constitution", "n": 2}}, "check_against": "none",
        "arms": {"none": "none", "docs": ["docs"]}, "eval_base": False,
    }))
    out = tmp_path / "out"
    t0 = time.monotonic()
    rec = run_experiment(cfg, out)
    assert rec["complete"], rec["stages"]
    assert time.monotonic() - t0 < 60
    models = {m["id"]: m for m in rec["models"]}
    assert set(models) == {"base", "arm-docs"} and models["base"]["arm"] == "none"
    assert 0 < models["arm-docs"]["train_tokens"] <= 128
    assert json.loads((out / "train/arm-docs/train.json").read_text())["tokens_trained"] == \
        models["arm-docs"]["train_tokens"]
    for m in models.values():
        res = json.loads((out / m["evals"]["sycophancy"]).read_text())
        assert res["done"] == res["planned"] == 1 and sum(res["totals"]["counts"].values()) == 1
    assert "train/arm-docs" in json.loads((out / models["arm-docs"]["evals"]["sycophancy"]).read_text())["model"]
    assert (out / "report.html").is_file() and (out / "summary.json").is_file()


def test_report_of_a_directory_without_experiment_is_exit_2(tmp_path, capsys):
    assert main(["experiment", "report", str(tmp_path)]) == 2
    assert "no experiment.json here" in capsys.readouterr().err
