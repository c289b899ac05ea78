import json

import pytest

from alignlab.cli import main
from alignlab.errors import UserError
from alignlab.runs import compare, resolve_model
from alignlab.runs import _journal
from alignlab.runs._eval import check_run_dir
from alignlab.stats import SCHEMA, build_results


def _rec(cid, k, status, family="blackmail", split="core"):
    return {
        "sample_id": _journal.sample_key(cid, k),
        "condition_id": cid,
        "k": k,
        "condition": {"id": cid, "family": family, "split": split, "goal_type": "explicit",
                      "goal_value": "safety", "threat": "replacement"},
        "status": status,
        "usage": {"input_tokens": 100, "output_tokens": 20},
        "time_s": 1.5,
    }


def test_journal_survives_torn_line_and_keeps_last_record(tmp_path):
    p = tmp_path / "samples.jsonl"
    _journal.append(p, _rec("a", 0, "error"))
    _journal.append(p, _rec("a", 1, "safe"))
    _journal.append(p, _rec("a", 0, "harmful"))  # a retried error replaces the old line
    with open(p, "a") as f:
        f.write('{"sample_id": "a#2", "stat')  # killed mid-write
    recs = _journal.read(p)
    assert set(recs) == {"a#0", "a#1"}
    assert recs["a#0"]["status"] == "harmful"


def test_results_schema_has_cells_families_and_every_status():
    recs = [_rec("c1", 0, "harmful"), _rec("c1", 1, "safe"), _rec("c1", 2, "error"),
            _rec("c2", 0, "unscored", family="lethal")]
    r = build_results(recs, model="m", judge="offline", suite="honeypots", settings={"temperature": 1.0},
                      planned=5, wall_time_s=3.0, logs=[])
    assert r["schema"] == SCHEMA
    assert r["complete"] is False and r["done"] == 4 and r["planned"] == 5
    cell = next(c for c in r["cells"] if c["condition_id"] == "c1")
    for key in ("model", "family", "split", "goal_type", "goal_value", "threat", "n", "counts",
                "rate", "ci_low", "ci_high", "tokens", "time_s"):
        assert key in cell
    assert cell["counts"] == {"harmful": 1, "safe": 1, "error": 1, "unscored": 0}
    assert cell["rate"] == 0.5
    assert sum(f["n"] for f in r["by_family"]) == 4
    lethal = next(f for f in r["by_family"] if f["family"] == "lethal")
    assert lethal["rate"] is None  # nothing scored: no rate, not 0%


def test_run_dir_refuses_other_settings(tmp_path):
    (tmp_path / "run.json").write_text(json.dumps({"model": "embedded/smollm2", "temperature": 1.0}))
    check_run_dir(tmp_path, {"model": "embedded/smollm2", "temperature": 1.0})
    with pytest.raises(UserError) as e:
        check_run_dir(tmp_path, {"model": "embedded/smollm2", "temperature": 0.5})
    assert "run.json" in str(e.value) and "temperature" in str(e.value)


def test_resolve_model(tmp_path):
    assert resolve_model("embedded") == "embedded/smollm2"
    assert resolve_model("openai/gpt-4.1") == "openai/gpt-4.1"
    assert resolve_model(str(tmp_path)) == f"embedded/{tmp_path}"
    with pytest.raises(UserError):
        resolve_model("gpt4")


def _write_results(path, counts_by_cell):
    recs = []
    for cid, statuses in counts_by_cell.items():
        recs += [_rec(cid, k, s) for k, s in enumerate(statuses)]
    r = build_results(recs, model=str(path), judge="offline", suite="honeypots", settings={},
                      planned=len(recs), wall_time_s=1.0, logs=[])
    path.write_text(json.dumps(r))
    return path


def test_compare_per_cell_and_overall(tmp_path):
    a = _write_results(tmp_path / "a.json", {"c1": ["harmful"] * 8 + ["safe"] * 2, "c2": ["safe"] * 10})
    b = _write_results(tmp_path / "b.json", {"c1": ["harmful"] * 2 + ["safe"] * 8, "c3": ["safe"]})
    res = compare(a, b)
    assert [c["condition_id"] for c in res["cells"]] == ["c1"]
    c1 = res["cells"][0]
    assert c1["diff"] == pytest.approx(0.6)
    assert c1["ci_low"] > 0 and c1["p_fisher"] < 0.05
    assert res["only_in_a"] == ["c2"] and res["only_in_b"] == ["c3"]


def test_cli_bad_results_file_exits_2(tmp_path, capsys):
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    good = _write_results(tmp_path / "good.json", {"c1": ["safe"]})
    assert main(["compare", str(bad), str(good)]) == 2
    err = capsys.readouterr().err
    assert "bad.json" in err and "Traceback" not in err
    other = tmp_path / "other.json"
    other.write_text(json.dumps({"schema": "something/else"}))
    assert main(["compare", str(other), str(good)]) == 2
    assert "schema" in capsys.readouterr().err


def test_cli_compare_prints_table(tmp_path, capsys):
    a = _write_results(tmp_path / "a.json", {"c1": ["harmful"] * 3 + ["safe"]})
    b = _write_results(tmp_path / "b.json", {"c1": ["safe"] * 4})
    assert main(["compare", str(a), str(b), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["overall"]["diff"] == pytest.approx(0.75)


def test_cli_scenarios_validate(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("family: blackmail\nscenario: [unclosed\n")
    assert main(["scenarios", "validate", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "bad.yaml" in err and "line" in err and "Traceback" not in err
    assert main(["scenarios", "list", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert {tuple(sorted(r)) for r in rows} == {("family", "goal_type", "goal_value", "id", "split", "threat")}
    assert len({r["family"] for r in rows}) == 6 and {r["split"] for r in rows} == {"core", "heldout"}
    assert sum(r["split"] == "core" for r in rows) == 126 and sum(r["split"] == "heldout" for r in rows) >= 8 * 4
    assert main(["scenarios", "list", "--json", "--split", "heldout"]) == 0
    assert {r["split"] for r in json.loads(capsys.readouterr().out)} == {"heldout"}


def test_plan_filters_conditions_by_pattern():
    from alignlab.runs import EvalConfig
    from alignlab.runs._eval import plan

    keys = plan(EvalConfig(model="embedded", out="x", conditions=["lethal/*/explicit-*/replacement"], samples=3))
    assert len(keys) == 3 * 2  # two explicit goal values, three samples each
    assert all(cid.startswith("lethal/") and cid.endswith("/replacement") for cid, _ in keys)
    with pytest.raises(UserError) as e:
        plan(EvalConfig(model="embedded", out="x", conditions=["nope/*"]))
    assert "--conditions" in str(e.value)


def test_compare_reports_splits_and_refuses_different_suites(tmp_path):
    recs = [_rec("c1", 0, "harmful"), _rec("h1", 0, "safe", split="heldout"), _rec("h1", 1, "harmful", split="heldout")]
    paths = []
    for name, suite in (("a", "honeypots"), ("b", "honeypots"), ("s", "sycophancy")):
        r = build_results(recs, model=name, judge="offline", suite=suite, settings={}, planned=3,
                          wall_time_s=1.0, logs=[], honeypots=suite == "honeypots")
        (tmp_path / f"{name}.json").write_text(json.dumps(r))
        paths.append(tmp_path / f"{name}.json")
    result = compare(paths[0], paths[1])
    assert [x["split"] for x in result["splits"]] == ["core", "heldout"]
    held = result["splits"][1]
    assert held["a"] == {"harmful": 1, "scored": 2, "rate": 0.5} and held["diff"] == 0.0
    with pytest.raises(UserError) as e:
        compare(paths[0], paths[2])
    assert e.value.field == "suite"
