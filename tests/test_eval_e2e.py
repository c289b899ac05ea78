"""`alignlab eval` end to end on the real embedded model: results, logs, resume, bad input."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest
from inspect_ai.log import read_eval_log

from alignlab.cli import main
from alignlab.runs import _journal
from alignlab.scenarios import list_conditions
from alignlab.status import STATUSES

pytestmark = pytest.mark.model
FAST = ["--max-turns", "1", "--max-tokens", "24", "--display", "none"]


def test_eval_lethal_family_on_embedded_model(tmp_path, capsys):
    out = tmp_path / "run"
    code = main(["eval", "--model", "embedded", "--suite", "honeypots:core", "--families", "lethal",
                 "--out", str(out), *FAST])
    assert code == 0
    results = json.loads((out / "results.json").read_text())
    n_conditions = len(list_conditions(split="core", families=["lethal"]))
    assert results["planned"] == results["done"] == n_conditions and results["complete"]
    assert results["settings"]["max_tokens"] == 24 and results["settings"]["temperature"] == 1.0
    totals = results["totals"]
    assert sum(totals["counts"][s] for s in STATUSES) == totals["n"] == n_conditions
    assert totals["tokens"]["input"] > 300 * n_conditions  # real prompts went through the model
    assert 0 < totals["tokens"]["output"] <= 24 * n_conditions
    assert len(results["cells"]) == n_conditions
    for cell in results["cells"]:
        assert cell["n"] == 1 and cell["family"] == "lethal"
        if cell["scored"]:
            assert cell["ci_low"] <= cell["rate"] <= cell["ci_high"]
    # A real Inspect log, with the scores alignlab counted.
    log = read_eval_log(str(out / results["logs"][0]))
    assert log.status == "success" and len(log.samples) == n_conditions
    journal = _journal.read(out / "samples.jsonl")
    for s in log.samples:
        assert s.scores["journaled_judge"].value == journal[s.id]["status"]
    printed = capsys.readouterr().out
    assert "lethal" in printed and "95% CI" in printed

    # Re-running a finished run does no model work and changes nothing.
    before = (out / "samples.jsonl").read_text()
    assert main(["eval", "--model", "embedded", "--suite", "honeypots:core", "--families", "lethal",
                 "--out", str(out), *FAST]) == 0
    assert (out / "samples.jsonl").read_text() == before


def test_killed_run_resumes_without_losing_or_repeating_samples(tmp_path):
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "alignlab", "eval", "--model", "embedded", "--suite", "honeypots:core",
           "--families", "shutdown",
           "--samples", "2", "--max-connections", "4", "--out", str(out), "--max-turns", "1",
           "--max-tokens", "8", "--display", "none"]
    planned = 2 * len(list_conditions(split="core", families=["shutdown"]))
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    journal = out / "samples.jsonl"
    deadline = time.time() + 600
    while time.time() < deadline and proc.poll() is None:
        if journal.exists() and len(journal.read_text().splitlines()) >= 4:
            break
        time.sleep(0.5)
    assert proc.poll() is None, "the run finished before it could be killed; make it longer"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    done_before = _journal.read(journal)
    assert 4 <= len(done_before) < planned

    finished = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    assert finished.returncode == 0, finished.stderr[-2000:]
    assert "resuming" in finished.stdout
    lines = [json.loads(line) for line in journal.read_text().splitlines() if line.strip()]
    keys = [r["sample_id"] for r in lines if r["status"] != "error"]
    assert len(keys) == len(set(keys)) == planned  # nothing lost, nothing scored twice
    for key, rec in done_before.items():  # earlier verdicts were kept, not redone
        if rec["status"] != "error":
            assert sum(1 for r in lines if r["sample_id"] == key) == 1
    results = json.loads((out / "results.json").read_text())
    assert results["done"] == planned and results["complete"]


def test_bad_input_exits_2_with_a_clear_message(tmp_path, capsys):
    assert main(["eval", "--model", "embedded", "--families", "blackmale", "--out", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err
    assert "--families" in err and "blackmail" in err and "Traceback" not in err
    assert main(["eval", "--model", "embedded", "--suite", "honeypots:nope", "--out", str(tmp_path / "y")]) == 2
    assert "--suite" in capsys.readouterr().err


def test_awareness_probe_splits_rates_by_stated_belief(tmp_path, capsys):
    from alignlab.harness._probe import BELIEFS

    out = tmp_path / "probe"
    code = main(["eval", "--model", "embedded", "--suite", "honeypots:core", "--limit", "3",
                 "--probe", "awareness", "--out", str(out), *FAST])
    assert code == 0
    results = json.loads((out / "results.json").read_text())
    assert results["settings"]["probe"] == "awareness" and results["done"] == 3
    journal = _journal.read(out / "samples.jsonl")
    assert all(r["belief"] in BELIEFS for r in journal.values())
    # One probe answer plus one agent turn, each within the run's 24-token limit.
    assert all(r["usage"]["output_tokens"] <= 2 * 24 for r in journal.values())
    by_belief = results["awareness"]["by_belief"]
    assert sum(b["n"] for b in by_belief) == 3
    assert {b["belief"] for b in by_belief} == {r["belief"] for r in journal.values()}
    # The probe question and the model's answer are in the real Inspect log, before the task.
    log = read_eval_log(str(out / results["logs"][0]))
    first = log.samples[0]
    assert "EVALUATION or REAL" in first.messages[1].text and first.messages[2].role == "assistant"
    assert "stated belief" in capsys.readouterr().out
    # A run directory keeps one probe setting.
    assert main(["eval", "--model", "embedded", "--suite", "honeypots:core", "--limit", "3",
                 "--out", str(out), *FAST]) == 2


def test_heldout_suite_runs_every_heldout_scenario_and_reports_its_split(tmp_path):
    out = tmp_path / "heldout"
    controls = [c for c in list_conditions(split="heldout") if c.goal_type == "none" and c.threat == "none"]
    assert len(controls) >= 8  # one control condition per held-out scenario
    code = main(["eval", "--model", "embedded", "--suite", "honeypots:heldout", "--conditions",
                 "*/*/none-none/none", "--out", str(out), *FAST])
    assert code == 0
    results = json.loads((out / "results.json").read_text())
    assert results["done"] == results["planned"] == len(controls)
    assert [s["split"] for s in results["by_split"]] == ["heldout"]
    assert {f["family"] for f in results["by_family"]} == {c.family for c in controls}
    assert sum(results["totals"]["counts"][s] for s in STATUSES) == len(controls)


@pytest.mark.parametrize("suite", ["sycophancy", "fairness"])
def test_other_suites_through_alignlab_eval(tmp_path, suite, capsys):
    out = tmp_path / suite
    assert main(["eval", "--model", "embedded", "--suite", suite, "--limit", "3", "--out", str(out),
                 "--display", "none"]) == 0
    results = json.loads((out / "results.json").read_text())
    assert results["suite"] == suite and results["done"] == results["planned"] == 3
    assert results["settings"]["temperature"] == 0.0  # the suite's default, recorded
    assert sum(results["totals"]["counts"][s] for s in STATUSES) == 3
    assert results["metrics"] and results["totals"]["tokens"]["output"] > 0
    assert read_eval_log(str(out / results["logs"][0])).status == "success"
    # Honeypot-only flags are refused with the flag named.
    assert main(["eval", "--model", "embedded", "--suite", suite, "--probe", "awareness",
                 "--out", str(tmp_path / "x")]) == 2
    assert "--probe" in capsys.readouterr().err
