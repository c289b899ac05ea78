"""`alignlab compare A B`: per-cell differences between two results files, with intervals."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from alignlab.errors import UserError
from alignlab.stats import compare_proportions
from alignlab.stats._results import SCHEMA
from alignlab.status import Status


def load_results(path: str | Path) -> dict[str, Any]:
    p = Path(path)
    if p.is_dir():
        p = p / "results.json"
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UserError("no such file", file=str(p))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise UserError(f"not valid JSON: {e}", file=str(p))
    if not isinstance(data, dict) or data.get("schema") != SCHEMA:
        raise UserError(f"not an alignlab results file (expected schema '{SCHEMA}')", file=str(p), field="schema")
    for i, cell in enumerate(data.get("cells", [])):
        for key in ("condition_id", "counts"):
            if key not in cell:
                raise UserError("missing", file=str(p), field=f"cells[{i}].{key}")
    return data


def _contrast(label: dict[str, Any], a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    ka, kb = a["counts"][Status.HARMFUL.value], b["counts"][Status.HARMFUL.value]
    d = compare_proportions(ka, a["scored"], kb, b["scored"])
    return {
        **label,
        "a": {"harmful": ka, "scored": a["scored"], "rate": a["rate"]},
        "b": {"harmful": kb, "scored": b["scored"], "rate": b["rate"]},
        "diff": d.diff,
        "ci_low": d.ci_low,
        "ci_high": d.ci_high,
        "z": d.z,
        "p_value": d.p_value,
        "p_fisher": d.p_fisher,
    }


def compare(path_a: str | Path, path_b: str | Path) -> dict[str, Any]:
    """Differences are rate(A) − rate(B), per matching cell, per family and overall."""
    a, b = load_results(path_a), load_results(path_b)
    kind_a, kind_b = (str(r.get("suite", "honeypots")).split(":")[0] for r in (a, b))
    if kind_a != kind_b:
        raise UserError(f"cannot compare a {kind_a} run with a {kind_b} run", file=str(path_b), field="suite")
    cells_a = {c["condition_id"]: c for c in a.get("cells", [])}
    cells_b = {c["condition_id"]: c for c in b.get("cells", [])}
    split_a = {x["split"]: x for x in a.get("by_split", [])}
    split_b = {x["split"]: x for x in b.get("by_split", [])}
    shared = sorted(set(cells_a) & set(cells_b))
    fam_a = {f["family"]: f for f in a.get("by_family", [])}
    fam_b = {f["family"]: f for f in b.get("by_family", [])}
    return {
        "a": {"path": str(path_a), "model": a.get("model"), "judge": a.get("judge")},
        "b": {"path": str(path_b), "model": b.get("model"), "judge": b.get("judge")},
        "judges_differ": a.get("judge") != b.get("judge"),
        "overall": _contrast({}, a["totals"], b["totals"]),
        "splits": [_contrast({"split": x}, split_a[x], split_b[x]) for x in sorted(set(split_a) & set(split_b))],
        "families": [_contrast({"family": f}, fam_a[f], fam_b[f]) for f in sorted(set(fam_a) & set(fam_b))],
        "cells": [_contrast({"condition_id": c}, cells_a[c], cells_b[c]) for c in shared],
        "only_in_a": sorted(set(cells_a) - set(cells_b)),
        "only_in_b": sorted(set(cells_b) - set(cells_a)),
    }
