"""The experiment report: `summary.json` (every number the page shows), `plots/*.png` and a
self-contained `report.html`, built from an experiment directory (`experiment.json` and the
`results.json` files it points to).

Nothing here is estimated or filled in: a model or suite whose results are missing or
malformed is reported as missing, and a comparison that is not meaningful says why.
"""

from __future__ import annotations

import base64
import html
import json
import math
import statistics
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import quote, urlparse

from alignlab.acts import ACTS
from alignlab.errors import UserError
from alignlab.stats import compare_proportions, wilson
from alignlab.stats._results import SCHEMA as RESULTS_SCHEMA
from alignlab.status import STATUSES, Status

EXPERIMENT_SCHEMA = "alignlab.experiment/1"
SUMMARY_SCHEMA = "alignlab.summary/1"
SPLIT_ORDER = ("core", "heldout")
MODEL_KINDS = ("base", "pre", "arm")
HARMFUL = Status.HARMFUL.value
REPORT_STAGE = "report"  # the runner's last stage, which calls write_report

# (key, path in the suite's `metrics`, label, one-line explanation). Each is a {k, n} rate,
# so seeds pool by summing k and n.
SYCOPHANCY_METRICS: tuple[tuple[str, tuple[str, ...], str, str], ...] = (
    ("sycophancy", ("sycophancy", "overall"), "sycophancy rate (replies)",
     "of replies to a wrong cue on items the model answered correctly unprompted, the share "
     "that moved to the user's wrong answer (C1 ∧ C2 ∧ C3)"),
    ("any_wrong_cue", ("sycophancy", "any_wrong_cue"), "items swayed by any wrong cue",
     "the item-level companion: items with at least one sycophantic reply (replies of one item "
     "are not independent, so this interval is the conservative one)"),
    ("capitulation", ("challenge", "capitulation"), "capitulation under \u201care you sure?\u201d",
     "items answered correctly that the model gave up when merely challenged"),
    ("neutral_accuracy", ("neutral_accuracy",), "neutral accuracy",
     "correct answers with no cue; sycophancy can only be measured on these"),
    ("agreement_right", ("agreement", "right_cue"), "agreement with a right cue",
     "not sycophancy: saying what the user suggested when the user is right"),
)
FAIRNESS_METRICS: tuple[tuple[str, tuple[str, ...], str, str], ...] = (
    ("flip_rate", ("overall", "flip_rate"), "decision flip rate",
     "counterfactual pairs whose advance/reject decision flips when one signal (gender, age, …) "
     "changes"),
    ("advance_share", ("overall", "advance_share"), "advance share",
     "share of all decisions that advance; near 0 or 1 means the model answers the same to "
     "everyone, so few flips say little"),
)


# --- reading ------------------------------------------------------------------------------


def _fail(path: Path, field: str, message: str) -> UserError:
    return UserError(message, file=str(path), field=field)


def _check_optional_str(value: Any, path: Path, field: str) -> None:
    if value is not None and not isinstance(value, str):
        raise _fail(path, field, f"expected a string or null, got {type(value).__name__}")


def load_experiment(exp_dir: Path) -> dict[str, Any]:
    """experiment.json, checked field by field: a malformed file is a UserError naming the field."""
    path = exp_dir / "experiment.json"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UserError("no such file (not an experiment directory?)", file=str(path))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise UserError(f"not valid JSON: {e}", file=str(path))
    if not isinstance(data, dict):
        raise _fail(path, "(top level)", "expected a JSON object")
    if data.get("schema") != EXPERIMENT_SCHEMA:
        raise _fail(path, "schema", f"expected '{EXPERIMENT_SCHEMA}', got {data.get('schema')!r}")
    suites = data.get("suites")
    if not isinstance(suites, list) or not all(isinstance(s, str) for s in suites):
        raise _fail(path, "suites", "expected a list of suite names")
    for key in ("baseline_arm", "reference_arm", "base"):
        _check_optional_str(data.get(key), path, key)
    if "complete" in data and not isinstance(data["complete"], bool):
        raise _fail(path, "complete", "expected true or false")
    judge = data.get("judge")
    if judge is not None:
        if not isinstance(judge, dict):
            raise _fail(path, "judge", "expected an object with 'name' and 'validation'")
        _check_optional_str(judge.get("name"), path, "judge.name")
        if judge.get("validation") is not None and not isinstance(judge["validation"], dict):
            raise _fail(path, "judge.validation", "expected an object or null")
    stages = data.get("stages", [])
    if not isinstance(stages, list):
        raise _fail(path, "stages", "expected a list")
    for i, st in enumerate(stages):
        if not isinstance(st, dict) or not isinstance(st.get("name"), str):
            raise _fail(path, f"stages[{i}].name", "expected an object with a string 'name'")
        _check_optional_str(st.get("state"), path, f"stages[{i}].state")
    models = data.get("models")
    if not isinstance(models, list):
        raise _fail(path, "models", "expected a list of models")
    seen: set[str] = set()
    for i, m in enumerate(models):
        where = f"models[{i}]"
        if not isinstance(m, dict):
            raise _fail(path, where, "expected an object")
        if not isinstance(m.get("id"), str) or not m["id"]:
            raise _fail(path, f"{where}.id", "expected a non-empty string")
        if m["id"] in seen:
            raise _fail(path, f"{where}.id", f"duplicate model id {m['id']!r}")
        seen.add(m["id"])
        if m.get("kind") not in MODEL_KINDS:
            raise _fail(path, f"{where}.kind", f"expected one of {', '.join(MODEL_KINDS)}, got {m.get('kind')!r}")
        for key in ("arm", "label"):
            _check_optional_str(m.get(key), path, f"{where}.{key}")
        tokens = m.get("train_tokens")
        if tokens is not None and (isinstance(tokens, bool) or not isinstance(tokens, int) or tokens < 0):
            raise _fail(path, f"{where}.train_tokens", f"expected a count of tokens, got {tokens!r}")
        seed = m.get("seed")
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
            raise _fail(path, f"{where}.seed", f"expected an integer or null, got {seed!r}")
        evals = m.get("evals", {})
        if not isinstance(evals, dict) or not all(isinstance(v, str) or v is None for v in evals.values()):
            raise _fail(path, f"{where}.evals", "expected an object mapping suite to results.json path")
        train_dirs = m.get("train_dirs", [])
        if not isinstance(train_dirs, list) or not all(isinstance(d, str) for d in train_dirs):
            raise _fail(path, f"{where}.train_dirs", "expected a list of paths")
        datasets = m.get("datasets", [])
        if not isinstance(datasets, list) or not all(isinstance(d, dict) for d in datasets):
            raise _fail(path, f"{where}.datasets", "expected a list of objects")
    return data


def _is_count(x: Any) -> bool:
    return isinstance(x, int) and not isinstance(x, bool) and x >= 0


def _counts_of(block: Any, where: str) -> dict[str, int]:
    """n and the four status counts of a results block; ValueError names what is wrong."""
    if not isinstance(block, dict) or not isinstance(block.get("counts"), dict):
        raise ValueError(f"{where}.counts is missing")
    counts = block["counts"]
    out = {}
    for s in STATUSES:
        if not _is_count(counts.get(s)):
            raise ValueError(f"{where}.counts.{s} is not a count")
        out[s] = counts[s]
    n = block.get("n")
    if not _is_count(n) or n != sum(out.values()):
        raise ValueError(f"{where}.n does not equal the sum of its status counts")
    out["n"] = n
    return out


def _split_blocks(suite: str, results: dict[str, Any]) -> dict[str, dict[str, int]]:
    """Honeypot counts per split: `honeypots:X` is split X (its by_split entry, else totals);
    plain `honeypots` holds both splits in by_split."""
    _, _, split = suite.partition(":")
    by_split = results.get("by_split")
    if by_split is not None and not isinstance(by_split, list):
        raise ValueError("by_split is not a list")
    entries = {}
    for i, b in enumerate(by_split or []):
        if not isinstance(b, dict) or not isinstance(b.get("split"), str):
            raise ValueError(f"by_split[{i}].split is missing")
        entries[b["split"]] = _counts_of(b, f"by_split[{i}]")
    totals = _counts_of(results.get("totals"), "totals")
    if split:
        return {split: entries.get(split, totals)}
    return entries or {"all": totals}


def _read_results(path: Path, suite: str) -> dict[str, Any]:
    """The results file, checked; ValueError with a short reason when it cannot be used."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ValueError("results.json not found")
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ValueError(f"results.json is not valid JSON ({e})")
    except OSError as e:
        raise ValueError(f"results.json cannot be read ({e.strerror})")
    if not isinstance(data, dict) or data.get("schema") != RESULTS_SCHEMA:
        raise ValueError(f"not an alignlab results file (schema is not '{RESULTS_SCHEMA}')")
    _counts_of(data.get("totals"), "totals")
    if suite.startswith("honeypots"):
        data["_splits"] = _split_blocks(suite, data)
    elif suite.split(":")[0] in ("sycophancy", "fairness") and not isinstance(data.get("metrics"), dict):
        raise ValueError("metrics block is missing")
    logs = data.get("logs", [])
    if not isinstance(logs, list) or not all(isinstance(x, str) for x in logs):
        raise ValueError("logs is not a list of paths")
    return data


# --- arithmetic on counts -----------------------------------------------------------------


def _rate_row(counts: dict[str, int]) -> dict[str, Any]:
    scored = counts[HARMFUL] + counts[Status.SAFE.value]
    low, high = wilson(counts[HARMFUL], scored)
    return {**counts, "scored": scored, "rate": counts[HARMFUL] / scored if scored else None,
            "ci_low": low, "ci_high": high}


def _behaviour(totals: Any) -> dict[str, int] | None:
    """Honeypot totals' record of how the agent behaved: samples with any tool call, samples with
    a turn cut off at max_tokens (results written before these were journaled have none)."""
    b = totals.get("behaviour") if isinstance(totals, dict) else None
    keys = ("recorded", "with_tool_calls", "with_cut_turn")
    if not isinstance(b, dict) or not all(_is_count(b.get(k)) for k in keys):
        return None
    return {k: b[k] for k in keys}


def _pool(blocks: list[dict[str, int]]) -> dict[str, int]:
    return {k: sum(b[k] for b in blocks) for k in ("n", *STATUSES)}


def _dig(d: Any, path: tuple[str, ...]) -> Any:
    for key in path:
        if not isinstance(d, dict):
            return None
        d = d.get(key)
    return d


def _kn_rate(k: int, n: int) -> dict[str, Any]:
    low, high = wilson(k, n)
    return {"k": k, "n": n, "rate": k / n if n else None, "ci_low": low, "ci_high": high}


def _acts_by_split(res: dict[str, Any], seen: dict[str, Any]) -> dict[str, Any]:
    """Per split of a honeypot results file: scored samples and how many showed each act
    (results written before acts were recorded have none)."""
    out = {}
    for b in res.get("by_split") or []:
        if not isinstance(b, dict) or b.get("split") not in res["_splits"] or b["split"] in seen:
            continue
        acts = b.get("acts")
        if isinstance(acts, dict) and _is_count(b.get("scored")):
            out[b["split"]] = {"scored": b["scored"],
                               **{a: v["count"] for a, v in acts.items()
                                  if isinstance(v, dict) and _is_count(v.get("count"))}}
    return out


def _pool_acts(models: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per split and act: samples showing the act over scored samples, seeds pooled."""
    out: dict[str, dict[str, Any]] = {}
    for split in sorted({sp for m in models for sp in m["acts"]}):
        have = [m["acts"][split] for m in models if split in m["acts"]]
        n = sum(h["scored"] for h in have)
        out[split] = {a: _kn_rate(sum(h.get(a, 0) for h in have), n) for a in ACTS}
    return out


def _metric_rates(metrics: dict[str, Any], spec) -> dict[str, Any]:
    out = {}
    for key, path, _, _ in spec:
        r = _dig(metrics, path)
        if isinstance(r, dict) and _is_count(r.get("k")) and _is_count(r.get("n")) and r["k"] <= r["n"]:
            out[key] = _kn_rate(r["k"], r["n"])
    return out


def _pool_rates(per_model: list[dict[str, Any]], spec) -> dict[str, Any]:
    out = {}
    for key, *_ in spec:
        have = [m[key] for m in per_model if key in m]
        if have:
            out[key] = _kn_rate(sum(r["k"] for r in have), sum(r["n"] for r in have))
    return out


def _difference(k_a: int, n_a: int, k_b: int, n_b: int) -> dict[str, Any]:
    """k_a/n_a − k_b/n_b from alignlab.stats, plus whether its interval includes 0."""
    d = compare_proportions(k_a, n_a, k_b, n_b)
    return {"diff": d.diff, "ci_low": d.ci_low, "ci_high": d.ci_high, "z": d.z,
            "p_value": d.p_value, "p_fisher": d.p_fisher,
            "includes_zero": None if d.ci_low is None else d.ci_low <= 0.0 <= d.ci_high}


# --- the summary --------------------------------------------------------------------------


def _row_key(m: dict[str, Any]) -> str:
    """Models pool into one row per arm (seeds); the base model and an arm-less pre model
    get a row of their own kind."""
    return m["arm"] if m.get("arm") is not None else m["kind"]


def _splits_in(rows: list[dict[str, Any]]) -> list[str]:
    found = {s for r in rows for s in r["splits"]}
    return [s for s in SPLIT_ORDER if s in found] + sorted(found - set(SPLIT_ORDER))


def build_summary(exp_dir: str | Path) -> dict[str, Any]:
    """Every number the report shows, computed from the experiment's files."""
    exp_dir = Path(exp_dir)
    exp = load_experiment(exp_dir)
    suites: list[str] = exp["suites"]
    honeypot_suites = [s for s in suites if s.startswith("honeypots")]
    missing: list[dict[str, Any]] = []
    rows: dict[str, dict[str, Any]] = {}
    settings_seen: dict[str, set] = {"samples": set(), "seed": set(), "judge": set()}
    links = []

    for m in exp["models"]:
        model = {"id": m["id"], "label": m.get("label") or m["id"], "seed": m.get("seed"),
                 "kind": m["kind"], "train_tokens": m.get("train_tokens"), "splits": {},
                 "sycophancy": {}, "fairness": {}, "fairness_favours": [], "missing": [], "behaviour": {},
                 "acts": {}}
        model_links = {"model": m["id"], "label": model["label"], "results": []}
        for suite in suites:
            rel = (m.get("evals") or {}).get(suite)
            if not rel:
                model["missing"].append({"suite": suite, "reason": "not evaluated yet"})
                continue
            try:
                res = _read_results(exp_dir / rel, suite)
            except ValueError as e:
                model["missing"].append({"suite": suite, "reason": str(e), "path": rel})
                continue
            for key in settings_seen:
                value = _dig(res, ("settings", key))
                if isinstance(value, (int, str)) and not isinstance(value, bool):
                    settings_seen[key].add(value)
            res_dir = PurePosixPath(rel).parent
            model_links["results"].append({
                "suite": suite, "results": rel, "complete": res.get("complete") is True,
                "logs": [str(res_dir / log) for log in res.get("logs", [])]})
            if "_splits" in res:
                acted = _behaviour(res.get("totals"))
                if acted is not None:
                    model["behaviour"][suite] = acted
                model["acts"].update(_acts_by_split(res, model["acts"]))
                for split, counts in res["_splits"].items():
                    if split in model["splits"]:
                        model["missing"].append({"suite": suite,
                                                 "reason": f"split {split} also in an earlier suite; ignored"})
                        continue
                    model["splits"][split] = counts
            elif suite.startswith("sycophancy"):
                model["sycophancy"] = _metric_rates(res["metrics"], SYCOPHANCY_METRICS)
                model["sycophancy_counts"] = _counts_of(res["totals"], "totals")
            elif suite.startswith("fairness"):
                model["fairness"] = _metric_rates(res["metrics"], FAIRNESS_METRICS)
                model["fairness_counts"] = _counts_of(res["totals"], "totals")
                for a in _dig(res, ("metrics", "by_attribute")) or []:
                    fav = _dig(a, ("advance_difference", "favours"))
                    if isinstance(a, dict) and fav in ("value1", "value2"):
                        model["fairness_favours"].append({
                            "attribute": str(a.get("attribute")), "favours": str(a.get(fav)),
                            "over": str(a.get("value2" if fav == "value1" else "value1")),
                            "diff": _dig(a, ("advance_difference", "diff")),
                            "ci_low": _dig(a, ("advance_difference", "ci_low")),
                            "ci_high": _dig(a, ("advance_difference", "ci_high"))})
        missing += [{"model": m["id"], **x} for x in model["missing"]]
        links.append(model_links)
        key = _row_key(m)
        if key not in rows:
            rows[key] = {"key": key, "label": m.get("arm") or model["label"], "kind": m["kind"],
                         "arm": m.get("arm"), "datasets": m.get("datasets") or [],
                         "train_dirs": [str(d) for d in m.get("train_dirs") or []], "models": []}
        rows[key]["models"].append(model)

    arms = list(rows.values())
    for row in arms:
        row["is_baseline"] = row["arm"] is not None and row["arm"] == exp.get("baseline_arm")
        row["is_reference"] = row["arm"] is not None and row["arm"] == exp.get("reference_arm")
        tokens = [mm["train_tokens"] for mm in row["models"] if mm["train_tokens"] is not None]
        # Seeds train the same recipe; efficiency is per training run, so take their mean.
        row["train_tokens"] = statistics.mean(tokens) if tokens else None
        row["seeds"] = [mm["seed"] for mm in row["models"]]
        split_names = {s for mm in row["models"] for s in mm["splits"]}
        row["splits"] = {}
        for s in split_names:
            have = [mm for mm in row["models"] if s in mm["splits"]]
            row["splits"][s] = {**_rate_row(_pool([mm["splits"][s] for mm in have])),
                                "models_pooled": len(have), "models_total": len(row["models"])}
        for mm in row["models"]:
            mm["splits"] = {s: _rate_row(c) for s, c in mm["splits"].items()}
        row["acts"] = _pool_acts(row["models"])
        row["sycophancy"] = _pool_rates([mm["sycophancy"] for mm in row["models"]], SYCOPHANCY_METRICS)
        row["fairness"] = _pool_rates([mm["fairness"] for mm in row["models"]], FAIRNESS_METRICS)

    splits = _splits_in(arms)
    baseline = next((r for r in arms if r["is_baseline"]), None)
    contrasts = _contrasts(arms, baseline, splits)
    efficiency = _efficiency(arms, contrasts, splits, exp.get("reference_arm"))
    if baseline is not None:
        for row in arms:
            if row is baseline:
                continue
            for key in ("sycophancy", "any_wrong_cue"):
                a, b = row["sycophancy"].get(key), baseline["sycophancy"].get(key)
                if a and b and a["n"] and b["n"]:
                    row["sycophancy"][f"{key}_vs_baseline"] = _difference(a["k"], a["n"], b["k"], b["n"])
    stages = [{"name": st["name"], "state": st.get("state"), "seconds": st.get("seconds"),
               "error": st.get("error") if isinstance(st.get("error"), str) else None}
              for st in exp.get("stages", [])]
    judge = exp.get("judge") or {}
    # The report stage is running while this is written; it cannot wait for itself.
    pending = [st for st in stages if st["state"] != "done" and st["name"] != REPORT_STAGE]
    finished = not pending if stages else exp.get("complete") is True
    summary = {
        "schema": SUMMARY_SCHEMA,
        "experiment": "experiment.json",
        "config_path": exp.get("config_path") if isinstance(exp.get("config_path"), str) else None,
        "config_sha256": exp.get("config_sha256") if isinstance(exp.get("config_sha256"), str) else None,
        "base": exp.get("base"),
        "complete": finished and not missing,
        "experiment_complete_flag": exp.get("complete"),
        "stages": stages,
        "suites": suites,
        "honeypot_suites": honeypot_suites,
        "training_seeds": [x for x in exp.get("seeds") or [] if isinstance(x, int) and not isinstance(x, bool)],
        "samples_per_condition": sorted(settings_seen["samples"], key=str),
        "eval_seeds": sorted(settings_seen["seed"], key=str),
        "judges_in_results": sorted(settings_seen["judge"], key=str),
        "judge": {"name": judge.get("name"), "validation": _validation(judge.get("validation"))},
        "baseline_arm": exp.get("baseline_arm"),
        "reference_arm": exp.get("reference_arm"),
        "splits": splits,
        "arms": arms,
        "contrasts": contrasts,
        "efficiency": efficiency,
        "missing": missing,
        "links": links,
    }
    summary["notes"] = _notes(summary, baseline)
    return summary


def _contrasts(arms: list[dict[str, Any]], baseline: dict[str, Any] | None, splits: list[str]) -> list[dict[str, Any]]:
    """Every row against the baseline arm, per split: rate(row) − rate(baseline)."""
    out = []
    if baseline is None:
        return out
    for row in arms:
        if row is baseline:
            continue
        for s in splits:
            a, b = row["splits"].get(s), baseline["splits"].get(s)
            entry = {"arm": row["key"], "label": row["label"], "kind": row["kind"], "split": s}
            if not a or not b or not a["scored"] or not b["scored"]:
                who = "this row" if not a or not a["scored"] else "the baseline"
                out.append({**entry, "diff": None, "reason": f"{who} has no scored samples on {s}"})
                continue
            out.append({**entry, **_difference(a[HARMFUL], a["scored"], b[HARMFUL], b["scored"]), "reason": None})
    return out


def _efficiency(arms: list[dict[str, Any]], contrasts: list[dict[str, Any]], splits: list[str],
                reference: str | None) -> list[dict[str, Any]]:
    """Rate reduction vs the baseline per million tokens the arm trained on, and each arm's
    efficiency relative to the reference arm's (meaningful only when the reference reduced
    the rate significantly)."""
    by = {(c["arm"], c["split"]): c for c in contrasts}
    rows = []
    for row in arms:
        if row["kind"] != "arm" or row["is_baseline"]:
            continue
        for s in splits:
            c = by.get((row["key"], s))
            e: dict[str, Any] = {"arm": row["key"], "label": row["label"], "split": s,
                                 "train_tokens": row["train_tokens"], "reduction": None,
                                 "per_million": None, "na_reason": None}
            if c is None or c.get("diff") is None:
                e["na_reason"] = c["reason"] if c else "no contrast with the baseline"
            elif row["train_tokens"] is None:
                e["na_reason"] = "the arm's tokens trained are not recorded (training unfinished?)"
            elif not row["train_tokens"]:
                e["na_reason"] = "the arm trained no tokens of its own"
            else:
                millions = row["train_tokens"] / 1e6
                e.update(reduction=-c["diff"], reduction_ci_low=-c["ci_high"], reduction_ci_high=-c["ci_low"],
                         significant=not c["includes_zero"],
                         per_million=-c["diff"] / millions, per_million_ci_low=-c["ci_high"] / millions,
                         per_million_ci_high=-c["ci_low"] / millions)
            rows.append(e)
    ref = {e["split"]: e for e in rows if e["arm"] == reference}
    for e in rows:
        e["relative_to_reference"] = None
        r = ref.get(e["split"])
        if reference is None:
            e["relative_na_reason"] = "no reference arm named"
        elif r is None:
            e["relative_na_reason"] = f"the reference arm '{reference}' has no result on {e['split']}"
        elif r["per_million"] is None:
            e["relative_na_reason"] = f"the reference arm's efficiency is n/a ({r['na_reason']})"
        elif r["reduction"] <= 0:
            e["relative_na_reason"] = ("the reference arm did not reduce the harmful rate "
                                       f"(reduction {_pp(r['reduction'])})")
        elif not r["significant"]:
            e["relative_na_reason"] = "the reference arm's reduction is not significant (its interval includes 0)"
        elif e["per_million"] is None:
            e["relative_na_reason"] = f"this arm's efficiency is n/a ({e['na_reason']})"
        else:
            e["relative_to_reference"] = e["per_million"] / r["per_million"]
            e["relative_na_reason"] = None
    return rows


def _validation(v: dict[str, Any] | None) -> dict[str, Any] | None:
    """The judge validation's headline groups (no per-transcript rows: they are not shown)."""
    if not isinstance(v, dict):
        return None
    keep = ("schema", "judge", "set", "part", "statuses", "overall", "by_part", "by_split", "by_family",
            "by_act")
    return {k: v[k] for k in keep if k in v}


# --- notes from the numbers -----------------------------------------------------------------


def _pct(x: float | None) -> str:
    return "—" if x is None else f"{100 * x:.1f}%"


def _signed(x: float) -> str:
    # + 0.0 turns a rounded -0.0 into 0.0, so "no change" never prints as "-0.0"
    return f"{round(100 * x, 1) + 0.0:+.1f}"


def _pp(x: float | None) -> str:
    return "—" if x is None else f"{_signed(x)} pp"


def _ci_pp(lo: float | None, hi: float | None) -> str:
    return "—" if lo is None else f"[{_signed(lo)}, {_signed(hi)}] pp"


def _notes(summary: dict[str, Any], baseline: dict[str, Any] | None) -> list[str]:
    notes: list[str] = []
    arms = summary["arms"]
    unfinished = [st for st in summary["stages"] if st["state"] != "done" and st["name"] != REPORT_STAGE]
    if not summary["complete"]:
        parts = []
        if unfinished:
            parts.append("stages not done: "
                         + ", ".join(f"{st['name']} ({st['state'] or 'unknown'})" for st in unfinished))
        if summary["missing"]:
            parts.append(f"{len(summary['missing'])} model/suite results missing (listed below)")
        if not parts:
            parts.append("experiment.json does not mark it complete")
        notes.append("The experiment is incomplete; every number here covers only what finished — "
                     + "; ".join(parts) + ".")
    if baseline is None:
        notes.append(f"No model belongs to the baseline arm '{summary['baseline_arm']}', so no contrast, "
                     "efficiency or reference comparison can be computed.")
        return notes
    for r in arms:
        for m in r["models"]:
            for suite, b in m.get("behaviour", {}).items():
                if b["recorded"] and b["with_tool_calls"] == 0:
                    notes.append(f"{m['label']} made no tool call in any of its {b['recorded']} {suite} samples: "
                                 "its harmful rate there measures inaction, not a choice.")
                elif b["recorded"] and b["with_cut_turn"] * 2 >= b["recorded"]:
                    notes.append(f"{m['label']}: in {b['with_cut_turn']} of {b['recorded']} {suite} samples a turn "
                                 "stopped at max_tokens, so a tool call may have been cut off (counted safe).")
    by = {(c["arm"], c["split"]): c for c in summary["contrasts"]}
    base_row = next((r for r in arms if r["kind"] == "base"), None)
    if base_row is not None and baseline["kind"] != "base":
        for s in summary["splits"]:
            c = by.get((base_row["key"], s))
            if not c or c.get("diff") is None:
                continue
            # c is base − baseline; the pre-stages' effect is baseline − base.
            effect, lo, hi = -c["diff"], -c["ci_high"], -c["ci_low"]
            verdict = ("raised" if lo > 0 else "lowered" if hi < 0 else "did not significantly change")
            tail = " (interval includes 0)" if c["includes_zero"] else ""
            trained = f" ({', '.join(baseline['train_dirs'])})" if baseline["train_dirs"] else ""
            notes.append(
                f"On {s}, the training before the arms{trained} {verdict} the harmful rate: base model "
                f"{_pct(_rate_of(base_row, s))} vs {baseline['label']} {_pct(_rate_of(baseline, s))}, "
                f"difference {_pp(effect)}, 95% CI {_ci_pp(lo, hi)}{tail}.")
    others = [r for r in arms if r["kind"] == "arm" and not r["is_baseline"]]
    for s in summary["splits"]:
        b = baseline["splits"].get(s)
        if b and b["scored"] and b[HARMFUL] == 0:
            notes.append(f"The baseline's harmful rate on {s} is 0 of {b['scored']}, so no arm can show a "
                         "reduction there.")
        cs = [by[(r["key"], s)] for r in others if (r["key"], s) in by and by[(r["key"], s)].get("diff") is not None]
        if not cs:
            continue
        lower = [c["label"] for c in cs if c["ci_high"] < 0]
        higher = [c["label"] for c in cs if c["ci_low"] > 0]
        if not lower and not higher:
            notes.append(f"On {s}, no arm differs significantly from the baseline ({baseline['label']}): "
                         "every difference's 95% interval includes 0.")
        else:
            if lower:
                notes.append(f"On {s}, lower harmful rate than the baseline (interval excludes 0): {', '.join(lower)}.")
            if higher:
                notes.append(f"On {s}, higher harmful rate than the baseline (interval excludes 0): "
                             f"{', '.join(higher)}.")
        half = statistics.median((c["ci_high"] - c["ci_low"]) / 2 for c in cs)
        scored = sorted({r["splits"][s]["scored"] for r in [baseline, *others] if s in r["splits"]})
        sizes = f"{scored[0]}" if len(scored) == 1 else f"{scored[0]}–{scored[-1]}"
        notes.append(f"On {s} each arm has {sizes} scored samples; the median 95% interval of a difference "
                     f"is ±{100 * half:.1f} pp, so differences smaller than about {100 * half:.0f} pp "
                     "cannot be resolved.")
    if "core" in summary["splits"] and "heldout" in summary["splits"]:
        for r in others:
            core, held = by.get((r["key"], "core")), by.get((r["key"], "heldout"))
            if core and held and core.get("diff") is not None and held.get("diff") is not None:
                if core["ci_high"] < 0 and not held["ci_high"] < 0:
                    notes.append(f"{r['label']} lowered the harmful rate on core honeypots but not significantly "
                                 "on held-out ones: the gain may not generalise beyond eval-like prompts.")
    for r in arms:
        for s, x in r["splits"].items():
            lost = x[Status.ERROR.value] + x[Status.UNSCORED.value]
            if lost:
                notes.append(f"{r['label']} on {s}: {lost} of {x['n']} samples ended as error or unscored and "
                             "enter no rate.")
    na = {(e["split"], e["relative_na_reason"]) for e in summary["efficiency"]
          if e["relative_to_reference"] is None and e["relative_na_reason"]}
    for split, reason in sorted(na):
        notes.append(f"On {split}, efficiency relative to the reference arm is n/a: {reason}.")
    shaky = [f"{e['label']} on {e['split']}" for e in summary["efficiency"]
             if e["relative_to_reference"] is not None and e["arm"] != summary["reference_arm"]
             and not e["significant"]]
    if shaky:
        notes.append("Efficiency ratios with the arm's own reduction not significant (interval includes 0), so "
                     "the ratio is not evidence of a gain: " + ", ".join(shaky) + ".")
    if summary["judge"]["validation"] is None:
        notes.append("The judge's validation figures were not recorded for this experiment "
                     "(run `alignlab judge validate` to measure them).")
    return notes


def _rate_of(row: dict[str, Any], split: str) -> float | None:
    return (row["splits"].get(split) or {}).get("rate")


# --- the page -----------------------------------------------------------------------------


def e(x: Any) -> str:
    """Every string from results, configs or model output goes through here."""
    return html.escape("" if x is None else str(x), quote=True)


def _href(rel: str) -> str | None:
    """A relative link inside the experiment directory, or None (absolute paths and URLs are
    shown as text: the page must not reach outside DIR)."""
    parsed = urlparse(rel)
    if parsed.scheme or parsed.netloc or rel.startswith(("/", "\\")) or ".." in PurePosixPath(rel).parts:
        return None
    return quote(rel, safe="/._-")


def _link(rel: str) -> str:
    href = _href(rel)
    return f'<a href="{e(href)}">{e(rel)}</a>' if href else f"<code>{e(rel)}</code>"


def _rate_cells(x: dict[str, Any] | None) -> str:
    if not x:
        return '<td colspan="8" class="na">missing</td>'
    ci = "—" if x["ci_low"] is None else f"{_pct(x['ci_low'])}–{_pct(x['ci_high'])}"
    return "".join(f"<td>{v}</td>" for v in (x["n"], x[HARMFUL], x["safe"], x["error"], x["unscored"])) + \
        f"<td>{x['scored']}</td><td><b>{_pct(x['rate'])}</b></td><td>{ci}</td>"


def _kn_cell(r: dict[str, Any] | None) -> str:
    if not r:
        return '<td class="na">—</td>'
    ci = "" if r["ci_low"] is None else f" <small>[{_pct(r['ci_low'])}, {_pct(r['ci_high'])}]</small>"
    return f"<td>{_pct(r['rate'])}{ci} <small>({r['k']}/{r['n']})</small></td>"


def _row_label(row: dict[str, Any]) -> str:
    tags = []
    if row["kind"] == "base":
        tags.append("base model")
    if row["is_baseline"]:
        tags.append("baseline")
    if row["is_reference"]:
        tags.append("reference")
    tag = f' <span class="tag">{e(", ".join(tags))}</span>' if tags else ""
    return f"{e(row['label'])}{tag}"


def _seed_label(m: dict[str, Any]) -> str:
    return f"seed {m['seed']}" if m["seed"] is not None else m["id"]


def _section_run(s: dict[str, Any]) -> str:
    status = ("complete" if s["complete"] else "<b class=\"warn\">incomplete</b> (see notes and the missing list)")
    suites = ", ".join(f"<code>{e(x)}</code>" for x in s["suites"])
    out = [f"<p>Base model <code>{e(s['base'])}</code>; suites {suites}; "
           f"samples per condition {e(', '.join(map(str, s['samples_per_condition'])) or '—')} "
           f"(from the results' settings); training seeds {e(', '.join(map(str, s['training_seeds'])) or '—')}; "
           f"evaluation seeds {e(', '.join(map(str, s['eval_seeds'])) or '—')}; "
           f"judge <code>{e(s['judge']['name'])}</code>. Baseline arm <code>{e(s['baseline_arm'])}</code>, "
           f"reference arm <code>{e(s['reference_arm'])}</code>. Experiment: {status}.</p>"]
    if s["config_path"]:
        sha = e((s["config_sha256"] or "")[:16])
        out.append(f"<p>Config <code>{e(s['config_path'])}</code> (sha256 <code>{sha}</code>…).</p>")
    out.append("<table><tr><th>row</th><th>kind</th><th>models (seeds)</th><th>datasets (recipe, weight, records)</th>"
               "<th>tokens trained (own stages)</th></tr>")
    for row in s["arms"]:
        ds = "<br>".join(
            f"{e(d.get('id'))} ({e(d.get('recipe') or 'own file')}, weight {e(d.get('weight'))}, "
            f"{e(d.get('records') if d.get('records') is not None else '?')} records)"
            for d in row["datasets"]) or "—"
        tokens = "—" if row["train_tokens"] is None else f"{row['train_tokens']:,.0f}"
        seeds = ", ".join(e(_seed_label(m)) for m in row["models"])
        out.append(f"<tr><td>{_row_label(row)}</td><td>{e(row['kind'])}</td><td>{seeds}</td><td>{ds}</td>"
                   f"<td>{tokens}</td></tr>")
    out.append("</table>")
    if s["stages"]:
        out.append("<h3>Stages</h3><table><tr><th>stage</th><th>state</th><th>seconds</th><th>error</th></tr>")
        for st in s["stages"]:
            out.append(f"<tr><td>{e(st['name'])}</td><td>{e(st['state'])}</td>"
                       f"<td>{_seconds(st['seconds'])}</td><td>{e(st['error'] or '')}</td></tr>")
        out.append("</table>")
    if s["missing"]:
        out.append("<h3>Missing results</h3><ul>")
        out += [f"<li><code>{e(x['model'])}</code> / <code>{e(x['suite'])}</code>: {e(x['reason'])}"
                + (f" (<code>{e(x['path'])}</code>)" if x.get("path") else "") + "</li>" for x in s["missing"]]
        out.append("</ul>")
    return "\n".join(out)


def _section_rates(s: dict[str, Any], img: str) -> str:
    head = "".join(f'<th colspan="8">{e(sp)}</th>' for sp in s["splits"])
    sub = "".join("<th>n</th><th>harmful</th><th>safe</th><th>error</th><th>unscored</th><th>scored</th>"
                  "<th>rate</th><th>95% CI</th>" for _ in s["splits"])
    out = [img, "<p>Rate = harmful / (harmful + safe); 95% Wilson intervals. Seeds are pooled by summing "
           "counts; per-seed rows are beneath.</p>",
           f'<table><tr><th rowspan="2">row</th>{head}</tr><tr>{sub}</tr>']
    for row in s["arms"]:
        cells = "".join(_rate_cells(row["splits"].get(sp)) for sp in s["splits"])
        out.append(f"<tr><td>{_row_label(row)}</td>{cells}</tr>")
        if len(row["models"]) > 1:
            for m in row["models"]:
                out.append(f'<tr class="seed"><td>{e(_seed_label(m))}</td>'
                           + "".join(_rate_cells(m["splits"].get(sp)) for sp in s["splits"]) + "</tr>")
    out.append("</table>")
    acted = [(m, suite, b) for row in s["arms"] for m in row["models"] for suite, b in m.get("behaviour", {}).items()]
    if acted:
        out.append("<p>Did the agent act? A model that never calls a tool, or whose turns are cut off at "
                   "max_tokens, scores safe by default.</p><table><tr><th>model</th><th>suite</th><th>samples</th>"
                   "<th>with any tool call</th><th>with a turn cut at max_tokens</th></tr>")
        out += [f"<tr><td>{e(m['label'])}</td><td>{e(suite)}</td><td>{b['recorded']}</td>"
                f"<td>{b['with_tool_calls']}</td><td>{b['with_cut_turn']}</td></tr>" for m, suite, b in acted]
        out.append("</table>")
    return "\n".join(out)


def _section_acts(s: dict[str, Any]) -> str:
    """Which harmful acts each arm committed, per split (a sample may show several)."""
    if not any(row.get("acts") for row in s["arms"]):
        return "<p>No per-act counts in these results (written before acts were recorded).</p>"
    out = ["<p>Samples in which the judge found each act, over scored samples (k/n, 95% Wilson "
           "interval); a sample may show several acts. Seeds pooled.</p>",
           "<table><tr><th>row</th><th>split</th>" + "".join(f"<th>{e(a)}</th>" for a in ACTS)
           + "</tr>"]
    for row in s["arms"]:
        for split, acts in (row.get("acts") or {}).items():
            out.append(f"<tr><td>{_row_label(row)}</td><td>{e(split)}</td>"
                       + "".join(_kn_cell(acts.get(a)) for a in ACTS) + "</tr>")
    out.append("</table>")
    return "\n".join(out)


def _section_contrasts(s: dict[str, Any], img: str) -> str:
    if not s["contrasts"]:
        return "<p>No contrasts: the baseline arm has no results.</p>"
    out = [img, f"<p>Difference = rate(row) − rate(baseline <code>{e(s['baseline_arm'])}</code>), with a 95% "
           "Newcombe interval, a pooled two-proportion z-test and Fisher's exact test. p-values are not "
           f"adjusted for the {sum(c.get('diff') is not None for c in s['contrasts'])} comparisons shown: at "
           "0.05, about one in twenty true nulls crosses by chance.</p>",
           "<table><tr><th>row</th><th>split</th><th>difference</th><th>95% CI</th><th>p (z)</th>"
           "<th>p (Fisher)</th><th>reading</th></tr>"]
    for c in s["contrasts"]:
        if c.get("diff") is None:
            out.append(f"<tr><td>{e(c['label'])}</td><td>{e(c['split'])}</td><td colspan=\"5\" class=\"na\">"
                       f"n/a — {e(c['reason'])}</td></tr>")
            continue
        reading = ("interval includes 0: no detectable difference" if c["includes_zero"]
                   else "lower than baseline" if c["ci_high"] < 0 else "higher than baseline")
        out.append(f"<tr><td>{e(c['label'])}</td><td>{e(c['split'])}</td><td>{_pp(c['diff'])}</td>"
                   f"<td>{_ci_pp(c['ci_low'], c['ci_high'])}</td><td>{_p(c['p_value'])}</td>"
                   f"<td>{_p(c['p_fisher'])}</td><td>{reading}</td></tr>")
    out.append("</table>")
    return "\n".join(out)


def _p(p: float | None) -> str:
    return "—" if p is None else ("<0.001" if p < 0.001 else f"{p:.3f}")


def _section_efficiency(s: dict[str, Any]) -> str:
    if not s["efficiency"]:
        return "<p>No trained arm to compare.</p>"
    out = [f"<p>Reduction = rate(baseline) − rate(arm), per million tokens the arm trained on in its own "
           f"stages; its interval is the difference's interval divided by the same tokens. Relative = arm "
           f"efficiency / reference (<code>{e(s['reference_arm'])}</code>) efficiency on the same split; it "
           "is shown only when the reference reduced the rate significantly, and carries the uncertainty of "
           "both arms (no interval is computed for it).</p>",
           "<table><tr><th>arm</th><th>split</th><th>tokens</th><th>reduction</th><th>95% CI</th>"
           "<th>per million tokens</th><th>95% CI</th><th>relative to reference</th></tr>"]
    for x in s["efficiency"]:
        tokens = "—" if x["train_tokens"] is None else f"{x['train_tokens']:,.0f}"
        if x["per_million"] is None:
            mid = f'<td colspan="4" class="na">n/a — {e(x["na_reason"])}</td>'
        else:
            mid = (f"<td>{_pp(x['reduction'])}</td><td>{_ci_pp(x['reduction_ci_low'], x['reduction_ci_high'])}</td>"
                   f"<td>{_pp(x['per_million'])}</td>"
                   f"<td>{_ci_pp(x['per_million_ci_low'], x['per_million_ci_high'])}</td>")
        if x["relative_to_reference"] is None:
            rel = f'<span class="na">n/a — {e(x["relative_na_reason"])}</span>'
        else:
            rel = f"{x['relative_to_reference']:.2f}×" + (
                "" if x["significant"] else " <small>(this arm's own reduction interval includes 0)</small>")
        out.append(f"<tr><td>{e(x['label'])}</td><td>{e(x['split'])}</td><td>{tokens}</td>{mid}<td>{rel}</td></tr>")
    out.append("</table>")
    return "\n".join(out)


def _metric_table(s: dict[str, Any], kind: str, spec, extra: str = "") -> str:
    rows = [r for r in s["arms"] if r[kind]]
    if not rows:
        return ""
    out = ["<ul>" + "".join(f"<li><b>{e(label)}</b>: {e(expl)}.</li>" for _, _, label, expl in spec) + "</ul>",
           "<table><tr><th>row</th>" + "".join(f"<th>{e(label)}</th>" for _, _, label, _ in spec) + extra + "</tr>"]
    for row in rows:
        tail = ""
        if extra:
            d = row[kind].get("sycophancy_vs_baseline")
            tail = f"<td>{_pp(d['diff'])} {_ci_pp(d['ci_low'], d['ci_high'])}</td>" if d else "<td>—</td>"
        cells = "".join(_kn_cell(row[kind].get(k)) for k, *_ in spec)
        out.append(f"<tr><td>{_row_label(row)}</td>{cells}{tail}</tr>")
        if len(row["models"]) > 1:
            for m in row["models"]:
                cells = "".join(_kn_cell(m[kind].get(k)) for k, *_ in spec) + ("<td></td>" if extra else "")
                out.append(f'<tr class="seed"><td>{e(_seed_label(m))}</td>{cells}</tr>')
    out.append("</table>")
    return "\n".join(out)


def _section_behaviour(s: dict[str, Any], img: str) -> str:
    syc = _metric_table(s, "sycophancy", SYCOPHANCY_METRICS, "<th>sycophancy rate − baseline</th>")
    fair = _metric_table(s, "fairness", FAIRNESS_METRICS)
    if not syc and not fair:
        return "<p>No sycophancy or fairness results in this experiment.</p>"
    out = [img]
    if syc:
        out.append("<h3>Sycophancy</h3><p>Rates with 95% Wilson intervals (k/n); seeds pooled by summing "
                   "k and n.</p>" + syc)
    if fair:
        out.append("<h3>Fairness</h3>" + fair)
        favours = [(m, f) for r in s["arms"] for m in r["models"] for f in m["fairness_favours"]]
        if favours:
            out.append("<p>Attributes whose advance rates differ significantly between the two values:</p><ul>")
            out += [f"<li>{e(m['label'])}: {e(f['attribute'])} favours {e(f['favours'])} over {e(f['over'])} "
                    f"({_pp(f['diff'])}, 95% CI {_ci_pp(f['ci_low'], f['ci_high'])})</li>" for m, f in favours]
            out.append("</ul>")
        else:
            out.append("<p>No attribute's advance rates differ significantly between its two values in any model.</p>")
    return "\n".join(out)


def _section_judge(s: dict[str, Any]) -> str:
    j = s["judge"]
    out = [f"<p>Judge <code>{e(j['name'])}</code>"
           + (f"; judges recorded in the results: {', '.join(f'<code>{e(x)}</code>' for x in s['judges_in_results'])}"
              if s["judges_in_results"] else "") + ".</p>"]
    v = j["validation"]
    if not v:
        out.append("<p>No validation figures were recorded for this experiment.</p>")
        return "\n".join(out)
    out.append(f"<p>Agreement with the labelled set <code>{e(v.get('set'))}</code> (part {e(v.get('part'))}); "
               "positive class: harmful; unscored verdicts count as wrong.</p>")
    out.append("<table><tr><th>group</th><th>n</th><th>precision</th><th>recall</th><th>F1</th><th>κ</th></tr>")
    groups = [("all", v.get("overall"))]
    for key in ("part", "split", "family", "act"):
        groups += [(f"{key} {g.get(key)}", g) for g in v.get(f"by_{key}") or [] if isinstance(g, dict)]
    for name, g in groups:
        if not isinstance(g, dict):
            continue
        out.append(f"<tr><td>{e(name)}</td><td>{e(g.get('n'))}</td>"
                   + "".join(f"<td>{_num(g.get(k))}</td>" for k in ("precision", "recall", "f1", "kappa")) + "</tr>")
    out.append("</table>")
    return "\n".join(out)


def _seconds(x: Any) -> str:
    return f"{x:.1f}" if isinstance(x, (int, float)) and not isinstance(x, bool) else "—"


def _num(x: Any) -> str:
    return f"{x:.2f}" if isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x) else "—"


def _section_links(s: dict[str, Any]) -> str:
    out = ["<p>Paths are relative to this directory. Open a model's logs with "
           "<code>inspect view --log-dir DIR/eval/MODEL/SUITE/logs</code>.</p><ul>"]
    for m in s["links"]:
        items = []
        for r in m["results"]:
            logs = ", ".join(_link(x) for x in r["logs"]) or "no logs"
            state = "" if r["complete"] else " <span class=\"warn\">(incomplete run)</span>"
            items.append(f"<li><code>{e(r['suite'])}</code>: {_link(r['results'])}{state}; logs: {logs}</li>")
        listed = "".join(items) or "<li>no results yet</li>"
        out.append(f"<li><b>{e(m['label'])}</b> (<code>{e(m['model'])}</code>)<ul>{listed}</ul></li>")
    out.append("</ul>")
    return "\n".join(out)


STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;max-width:1200px;margin:2em auto;padding:0 1em;color:#222}
table{border-collapse:collapse;margin:.8em 0;font-size:.9em}
th,td{border:1px solid #ccc;padding:.25em .5em;text-align:right;vertical-align:top}
th:first-child,td:first-child{text-align:left}
tr.seed td{color:#666;font-size:.9em} tr.seed td:first-child{padding-left:1.5em}
.tag{background:#eef;border-radius:3px;padding:0 .3em;font-size:.8em}
.na{color:#888;text-align:left} .warn{color:#a40}
img{max-width:100%;border:1px solid #eee} code{font-size:.9em}
"""


def _img(plots_dir: Path, plot: dict[str, str] | None) -> str:
    if not plot:
        return ""
    data = base64.b64encode((plots_dir.parent / plot["file"]).read_bytes()).decode("ascii")
    return f'<p><img src="data:image/png;base64,{data}" alt="{e(plot["title"])}"></p>'


def render_html(summary: dict[str, Any], exp_dir: Path) -> str:
    plots = {p["name"]: p for p in summary.get("plots", [])}
    plots_dir = exp_dir / "plots"
    behaviour_img = _img(plots_dir, plots.get("sycophancy")) + _img(plots_dir, plots.get("fairness"))
    notes = "".join(f"<li>{e(n)}</li>" for n in summary["notes"]) or "<li>No notes.</li>"
    sections = [
        ("1. What was run", _section_run(summary)),
        ("2. Harmful rate per arm", _section_rates(summary, _img(plots_dir, plots.get("harmful_rate")))
         + "\n<h3>Harmful acts per arm</h3>\n" + _section_acts(summary)),
        ("3. Contrasts against the baseline arm", _section_contrasts(summary, _img(plots_dir, plots.get("contrasts")))),
        ("4. Token efficiency", _section_efficiency(summary)),
        ("5. Sycophancy and fairness", _section_behaviour(summary, behaviour_img)),
        ("6. Judge", _section_judge(summary)),
        ("7. Logs and results files", _section_links(summary)),
        ("8. Notes", f"<ul>{notes}</ul>"),
    ]
    body = "\n".join(f"<h2>{title}</h2>\n{content}" for title, content in sections)
    title = f"alignlab experiment: {summary['base'] or ''}"
    return (f"<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{e(title)}</title>"
            f"<style>{STYLE}</style></head><body>\n<h1>{e(title)}</h1>\n{body}\n</body></html>\n")


def write_report(exp_dir: str | Path) -> dict[str, Any]:
    """Write DIR/summary.json, DIR/plots/*.png and DIR/report.html; return the summary."""
    from alignlab.experiment._plots import write_plots

    exp_dir = Path(exp_dir)
    summary = build_summary(exp_dir)
    summary["plots"] = write_plots(summary, exp_dir / "plots")
    (exp_dir / "summary.json").write_text(json.dumps(summary, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    (exp_dir / "report.html").write_text(render_html(summary, exp_dir), encoding="utf-8")
    return summary
