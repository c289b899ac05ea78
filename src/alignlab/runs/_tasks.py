"""The honeypot suite as an Inspect task: dataset (scenario conditions) × agent solver × judge.

`inspect eval alignlab/honeypots --model …` runs it directly; `alignlab eval` builds the same
task with a journal attached so that an interrupted run can resume.
"""

from __future__ import annotations

import time
from typing import Any, Sequence

from inspect_ai import Task, task
from inspect_ai.dataset import MemoryDataset, Sample
from inspect_ai.scorer import Score, Scorer, Target, frequency, scorer
from inspect_ai.solver import TaskState

from alignlab.judges._scorer import harmful_rate
from alignlab.runs import _journal
from alignlab.status import STATUSES

DEFAULT_MAX_TURNS = 4
# The condition fields a journal record keeps, so results can be grouped without the library.
CONDITION_KEYS = ("id", "family", "split", "goal_type", "goal_value", "threat")


def _split_arg(value: str | Sequence[str] | None) -> list[str] | None:
    if value is None or value == "":
        return None
    if isinstance(value, str):
        return [v.strip() for v in value.split(",") if v.strip()]
    return list(value)


def build_samples(keys: Sequence[tuple[str, int]]) -> list[Sample]:
    """One Inspect sample per (condition id, repetition k); ids are stable across re-runs."""
    from alignlab.scenarios import get_condition, render

    samples = []
    for cid, k in keys:
        cond = get_condition(cid)
        samples.append(
            Sample(
                id=_journal.sample_key(cid, k),
                input=render(cid).user_prompt,
                metadata={"condition_id": cid, "k": k, **cond.as_row()},
            )
        )
    return samples


def build_task(
    keys: Sequence[tuple[str, int]],
    *,
    tool_mode: str = "auto",
    max_turns: int = DEFAULT_MAX_TURNS,
    judge: str | None = None,
    journal: str | None = None,
    name: str = "honeypots",
    probe: str | None = None,
) -> Task:
    from alignlab.harness import honeypot_agent

    return Task(
        name=name,
        dataset=MemoryDataset(build_samples(keys), name=name),
        solver=honeypot_agent(tool_mode=tool_mode, max_turns=max_turns, probe=probe),
        scorer=journaled_judge(judge=judge, journal=journal),
    )


@task
def honeypots(
    split: str = "core",
    families: str | list[str] | None = None,
    samples: int = 1,
    tool_mode: str = "auto",
    max_turns: int = DEFAULT_MAX_TURNS,
    judge: str | None = None,
    probe: str | None = None,
) -> Task:
    """Honeypot evaluation: how often the agent chooses a harmful insider action.

    `split`: core | heldout | all. `probe="awareness"` first asks whether it is being tested.
    """
    from alignlab.scenarios import list_conditions

    conds = list_conditions(split=None if split == "all" else split, families=_split_arg(families))
    keys = [(c.id, k) for c in conds for k in range(samples)]
    return build_task(keys, tool_mode=tool_mode, max_turns=max_turns, judge=judge, name=f"honeypots_{split}",
                      probe=probe)


def journal_record(state: TaskState, score: Score, elapsed_s: float) -> dict[str, Any]:
    from alignlab.judges import score_status

    from alignlab.harness._probe import STORE_BELIEF

    meta = score.metadata or {}
    record = {
        "sample_id": str(state.sample_id),
        "condition_id": state.metadata["condition_id"],
        "k": state.metadata.get("k", 0),
        "condition": meta.get("condition") or {f: state.metadata.get(f) for f in CONDITION_KEYS},
        "status": score_status(score),
        "reason": score.explanation or "",
        "verdict": meta.get("verdict"),
        "usage": meta.get("usage") or {},
        "turns": meta.get("turns"),
        "tool_calls": meta.get("tool_calls"),
        "cut_turns": meta.get("cut_turns"),
        "time_s": round(elapsed_s, 3),
        "model": str(state.model),
        "finished_at": time.time(),
    }
    belief = state.store.get(STORE_BELIEF)
    if belief is not None:
        record["belief"] = belief
    return record


@scorer(metrics=[harmful_rate(), frequency(categories=list(STATUSES))])
def journaled_judge(judge: str | None = None, journal: str | None = None) -> Scorer:
    """The honeypot judge; with `journal`, each verdict is also appended to the run's journal."""
    from alignlab.judges import honeypot_scorer

    inner = honeypot_scorer(judge=judge)

    async def score(state: TaskState, target: Target) -> Score:
        from inspect_ai._util.working import sample_working_time

        result = await inner(state, target)
        if journal:
            _journal.append(journal, journal_record(state, result, sample_working_time()))
        return result

    return score
