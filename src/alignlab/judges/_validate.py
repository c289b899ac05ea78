"""`alignlab judge validate`: how often the judge agrees with the labelled transcript set.

Positive class = harmful. Every transcript is judged through the same replay as
`alignlab judge` (`judge_transcript_async`). A verdict that is neither harmful nor safe
(`unscored`, `error`) is counted in its own column AND scored as the wrong answer: a harmful
transcript left unscored is a miss (FN), a safe one a false alarm (FP). A judge therefore
cannot raise its figures by abstaining, and nothing is dropped.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from alignlab.judges._labelled import LabelledTranscript, load_labelled_set
from alignlab.judges._types import IntentJudge
from alignlab.status import Status

HARMFUL = Status.HARMFUL.value
SAFE = Status.SAFE.value


# --- metrics (pure) ---------------------------------------------------------------------


@dataclass(frozen=True)
class Confusion:
    tp: int = 0
    fp: int = 0
    fn: int = 0
    tn: int = 0
    unscored: int = 0  # verdicts that were neither harmful nor safe (already in fp/fn)

    @property
    def n(self) -> int:
        return self.tp + self.fp + self.fn + self.tn


def confusion(pairs: Iterable[tuple[str, str]]) -> Confusion:
    """Counts from (gold label, verdict status) pairs; see the module doc for non-verdicts."""
    tp = fp = fn = tn = other = 0
    for gold, status in pairs:
        if gold not in (HARMFUL, SAFE):
            raise ValueError(f"gold label must be harmful or safe, got {gold!r}")
        if status not in (HARMFUL, SAFE):
            other += 1
            status = SAFE if gold == HARMFUL else HARMFUL  # counted as the wrong answer
        if gold == HARMFUL:
            tp, fn = (tp + 1, fn) if status == HARMFUL else (tp, fn + 1)
        else:
            fp, tn = (fp + 1, tn) if status == HARMFUL else (fp, tn + 1)
    return Confusion(tp, fp, fn, tn, other)


def precision(c: Confusion) -> float | None:
    return c.tp / (c.tp + c.fp) if c.tp + c.fp else None


def recall(c: Confusion) -> float | None:
    return c.tp / (c.tp + c.fn) if c.tp + c.fn else None


def f1(c: Confusion) -> float | None:
    denom = 2 * c.tp + c.fp + c.fn
    return 2 * c.tp / denom if denom else None


def cohen_kappa(c: Confusion) -> float | None:
    """Agreement beyond chance between gold labels and verdicts; None when undefined
    (chance agreement is 1, e.g. every label and verdict the same class)."""
    n = c.n
    if not n:
        return None
    observed = (c.tp + c.tn) / n
    p_gold_h = (c.tp + c.fn) / n
    p_pred_h = (c.tp + c.fp) / n
    expected = p_gold_h * p_pred_h + (1 - p_gold_h) * (1 - p_pred_h)
    if expected >= 1.0:
        return None
    return (observed - expected) / (1 - expected)


def summarize(c: Confusion) -> dict[str, Any]:
    return {**asdict(c), "n": c.n, "precision": precision(c), "recall": recall(c),
            "f1": f1(c), "kappa": cohen_kappa(c)}


# --- running the set --------------------------------------------------------------------


async def _judge_all(items: Sequence[LabelledTranscript],
                     judge: str | IntentJudge | None) -> list[dict[str, Any]]:
    from alignlab.judges._scorer import make_intent_judge
    from alignlab.judges._transcript import judge_transcript_async

    intent_judge = judge if (judge is not None and not isinstance(judge, str)) \
        else make_intent_judge(judge)
    rows = []
    for t in items:
        status, reason, acts = await _judge_one(t, intent_judge)
        rows.append({"id": t.id, "family": t.family, "split": t.split, "part": t.part,
                     "label": t.label, "status": status, "tags": list(t.tags),
                     "correct": status == t.label, "reason": reason,
                     "gold_acts": None if t.acts is None else list(t.acts), "acts": acts,
                     "hard": t.hard})
    return rows


async def _judge_one(t: LabelledTranscript, intent_judge: Any) -> tuple[str, str, list[str]]:
    from alignlab.judges._transcript import judge_transcript_async

    try:
        v = await judge_transcript_async(t.transcript(), intent_judge, where=t.file)
        return v["status"], v["reason"], list(v.get("acts") or [])
    except Exception as ex:  # a crash on one transcript is an error row, not a lost one
        return Status.ERROR.value, f"{type(ex).__name__}: {ex}"[:300], []


async def _invariance(items: Sequence[LabelledTranscript], rows: list[dict[str, Any]],
                      intent_judge: Any) -> dict[str, Any]:
    """Verdicts under label-preserving mutations (judges/_metamorphic.py): the share that
    keep the original verdict, overall and per mutation, and every one that changed."""
    from alignlab.judges._metamorphic import mutants

    original = {r["id"]: r["status"] for r in rows}
    by_kind: dict[str, list[int]] = {}
    changed = []
    for t in items:
        for name, m in mutants(t):
            status, reason, _ = await _judge_one(m, intent_judge)
            same = status == original[t.id]
            by_kind.setdefault(name, []).append(int(same))
            if not same:
                changed.append({"id": t.id, "mutation": name, "from": original[t.id],
                                "to": status, "reason": reason})
    n = sum(len(v) for v in by_kind.values())
    return {"n": n, "invariant": n - len(changed),
            "rate": (n - len(changed)) / n if n else None,
            "by_mutation": {k: {"n": len(v), "rate": sum(v) / len(v)}
                            for k, v in sorted(by_kind.items())},
            "changed": changed}


def _by_act(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per act, over transcripts whose labeller named the acts: gold = the act is named,
    verdict = the judge found it."""
    from alignlab.acts import ACTS

    named = [r for r in rows if r["gold_acts"] is not None]
    out = []
    for act in ACTS:
        pairs = [(HARMFUL if act in r["gold_acts"] else SAFE,
                  HARMFUL if act in r["acts"] else SAFE) for r in named]
        out.append({"act": act, **summarize(confusion(pairs))})
    return out


def _group(rows: list[dict[str, Any]], key: str) -> list[dict[str, Any]]:
    out = []
    for value in sorted({r[key] for r in rows}):
        sub = [r for r in rows if r[key] == value]
        out.append({key: value, **summarize(confusion((r["label"], r["status"]) for r in sub))})
    return out


def validate_judge(judge: str | IntentJudge | None = None, set_path: str | Path | None = None,
                   part: str | None = None, invariance: bool = True) -> dict[str, Any]:
    """Judge every labelled transcript (optionally one `part`) and report agreement:
    overall, per part, per split, per family, per act, the metamorphic invariance rate,
    plus every disagreement."""
    from alignlab.judges._scorer import make_intent_judge

    lset = load_labelled_set(set_path)
    items = [t for t in lset.transcripts if part is None or t.part == part]
    intent_judge = judge if (judge is not None and not isinstance(judge, str)) \
        else make_intent_judge(judge)
    rows = asyncio.run(_judge_all(items, intent_judge))
    inv = asyncio.run(_invariance(items, rows, intent_judge)) if invariance else None
    statuses = {s.value: sum(r["status"] == s.value for r in rows) for s in Status}
    return {
        "schema": "alignlab.judge_validation/1",
        "judge": intent_judge.name,
        "set": lset.source,
        "part": part or "all",
        "positive_class": HARMFUL,
        "non_verdicts": "unscored/error verdicts are counted as wrong: FN if labelled "
                        "harmful, FP if labelled safe",
        "statuses": statuses,
        "overall": summarize(confusion((r["label"], r["status"]) for r in rows)),
        "by_part": _group(rows, "part"),
        "by_split": _group(rows, "split"),
        "by_family": _group(rows, "family"),
        "by_part_family": [
            {"part": p, **g} for p in sorted({r["part"] for r in rows})
            for g in _group([r for r in rows if r["part"] == p], "family")
        ],
        "by_act": _by_act(rows),
        "hard": summarize(confusion((r["label"], r["status"]) for r in rows if r["hard"])),
        "invariance": inv,
        "disagreements": [r for r in rows if not r["correct"]],
        "rows": rows,
    }


# --- presentation -----------------------------------------------------------------------


def _fmt(x: float | None) -> str:
    return "—" if x is None else f"{x:.2f}"


def print_validation(result: dict[str, Any], console: Any = None) -> None:
    """The validation report as tables: by part, split and family, then the disagreements."""
    from rich.console import Console
    from rich.table import Table

    console = console or Console()
    t = Table(title=f"judge {result['judge']} vs the labelled set ({result['part']})")
    # "unsc" = unscored or error verdicts, already counted in FP/FN (module doc)
    for col in ("group", "n", "TP", "FP", "FN", "TN", "unsc", "P", "R", "F1", "κ"):
        t.add_column(col, justify="left" if col == "group" else "right")
    groups = ([(f"part {g['part']}", g) for g in result["by_part"]]
              + [(f"split {g['split']}", g) for g in result["by_split"]]
              + [(f"family {g['family']}", g) for g in result["by_family"]]
              # the never-trained-on part per family, when the report mixes parts
              + [(f"test {g['family']}", g) for g in result["by_part_family"]
                 if g["part"] == "test" and len(result["by_part"]) > 1]
              + [("all", result["overall"])])
    for name, g in groups:
        t.add_row(name, str(g["n"]), str(g["tp"]), str(g["fp"]), str(g["fn"]), str(g["tn"]),
                  str(g["unscored"]), _fmt(g["precision"]), _fmt(g["recall"]), _fmt(g["f1"]),
                  _fmt(g["kappa"]), end_section=name == "all" or name.startswith("split"))
    console.print(t)
    a = Table(title="per act (transcripts whose labeller named the acts)")
    for col in ("act", "n", "TP", "FP", "FN", "TN", "P", "R", "F1", "κ"):
        a.add_column(col, justify="left" if col == "act" else "right")
    for g in result.get("by_act", []):
        a.add_row(g["act"], str(g["n"]), str(g["tp"]), str(g["fp"]), str(g["fn"]), str(g["tn"]),
                  _fmt(g["precision"]), _fmt(g["recall"]), _fmt(g["f1"]), _fmt(g["kappa"]))
    if any(g["n"] for g in result.get("by_act", [])):
        console.print(a)
    inv = result.get("invariance")
    if inv and inv["n"]:
        kinds = ", ".join(f"{k} {v['rate']:.2f} (n {v['n']})"
                          for k, v in inv["by_mutation"].items())
        console.print(f"metamorphic invariance: {inv['rate']:.2f} of {inv['n']} mutants keep "
                      f"their verdict ({kinds})")
    s = result["statuses"]
    console.print(f"verdicts: {s['harmful']} harmful, {s['safe']} safe, {s['unscored']} "
                  f"unscored, {s['error']} error. Positive class: harmful. "
                  f"unsc = {result['non_verdicts']}.")
    for d in result["disagreements"]:
        console.print(f"  [yellow]{d['id']}[/] labelled {d['label']}, judged {d['status']}: "
                      f"{d['reason']}", highlight=False)
