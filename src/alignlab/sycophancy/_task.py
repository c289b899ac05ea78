"""The sycophancy suite as an Inspect task: one sample per item, a solver that asks every
variant of it, and a scorer that applies the three-condition test (and journals the record).

Per sample the solver asks the neutral question first. If that answer is correct it then asks,
concurrently, the six cued variants (wrong and right answer × three target types) and the
"are you sure?" challenge as a second turn; if it is not, only the three right-cue variants
(progressive flips and agreement need them; every wrong-cue rate is conditional on a correct
neutral answer, so asking wrong cues then would cost generation time and measure nothing).
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from typing import Any, Sequence

from inspect_ai import Task, task
from inspect_ai.dataset import MemoryDataset, Sample
from inspect_ai.model import (
    ChatMessageAssistant,
    ChatMessageUser,
    GenerateConfig,
    ModelOutput,
    get_model,
)
from inspect_ai.model._generate_config import active_generate_config
from inspect_ai.scorer import Score, Scorer, Target, frequency, scorer
from inspect_ai.solver import Generate, Solver, TaskState, solver
from inspect_ai.util import LimitExceededError

from alignlab.errors import UserError
from alignlab.judges._scorer import harmful_rate
from alignlab.runs import _journal
from alignlab.status import STATUSES, Status
from alignlab.sycophancy._assess import assess_item
from alignlab.sycophancy._extract import extract, same_answer
from alignlab.sycophancy._items import get_item, ordered_items
from alignlab.sycophancy._judge import judge_reply
from alignlab.sycophancy._prompts import (
    CHALLENGE,
    NEUTRAL,
    challenge_prompt,
    cued_variants,
    neutral_prompt,
)

NAME = "sycophancy"
DEFAULTS: dict[str, Any] = {"temperature": 0.0, "max_tokens": 24}

STORE_REPLIES = "sycophancy:replies"  # {variant name: reply text}
STORE_ERROR = "sycophancy:error"  # str: the generation failure, if any
STORE_USAGE = "sycophancy:usage"  # {"input_tokens": int, "output_tokens": int}
STORE_CALLS = "sycophancy:calls"  # int: generate calls made
STORE_TRUNCATED = "sycophancy:truncated"  # {variant name: True} for replies cut at max_tokens


def plan(samples: int = 1, limit: int | None = None) -> list[tuple[str, int]]:
    """(item id, k) keys; items interleaved across domains so any prefix covers them all."""
    if int(samples) < 1:
        raise UserError(f"expected a positive number, got {samples!r}", field="samples")
    items = ordered_items()
    if limit is not None:
        if int(limit) < 1:
            raise UserError(f"expected a positive number, got {limit!r}", field="limit")
        items = items[: int(limit)]
    return [(item.id, k) for item in items for k in range(int(samples))]


def build_samples(keys: Sequence[tuple[str, int]]) -> list[Sample]:
    samples = []
    for item_id, k in keys:
        item = get_item(item_id)
        samples.append(Sample(
            id=_journal.sample_key(item_id, k),
            input=neutral_prompt(item),
            target=item.answer,
            metadata={"condition_id": item_id, "k": k, **item.as_row()},
        ))
    return samples


def build_task(keys: Sequence[tuple[str, int]], *, journal: str | None = None,
               judge: Any = None, name: str = NAME) -> Task:
    return Task(
        name=name,
        dataset=MemoryDataset(build_samples(keys), name=name),
        solver=sycophancy_solver(),
        scorer=sycophancy_scorer(judge=judge, journal=journal),
    )


@task
def sycophancy(limit: int | None = None, samples: int = 1, judge: str | None = None) -> Task:
    """Sycophancy: does a user's stated belief, preference or expertise pull the model off a
    correct answer? (three-condition test; regressive/progressive flips; challenge persistence)"""
    return build_task(plan(samples=samples, limit=limit), judge=judge)


# --- solver -------------------------------------------------------------------------------


def _add_usage(total: dict[str, int], output: ModelOutput) -> None:
    u = output.usage
    if u is None:
        return
    total["input_tokens"] += (int(u.input_tokens or 0) + int(u.input_tokens_cache_read or 0)
                              + int(u.input_tokens_cache_write or 0))
    total["output_tokens"] += int(u.output_tokens or 0)


def _variant_config(sample_id: object, variant: str) -> GenerateConfig:
    """Each sample and variant its own seed derived from the run's (repeats stay independent)."""
    base = active_generate_config().seed
    if base is None:
        return GenerateConfig()
    digest = hashlib.sha256(f"{base}|{sample_id}|{variant}".encode()).digest()
    return GenerateConfig(seed=int.from_bytes(digest[:4], "big") & 0x7FFFFFFF)


@solver
def sycophancy_solver() -> Solver:
    """Ask the item neutrally, then under cues and the challenge; replies go to the store."""

    async def solve(state: TaskState, generate: Generate) -> TaskState:
        item = get_item(str(state.metadata["item_id"]))
        model = get_model()
        store = state.store
        usage = {"input_tokens": 0, "output_tokens": 0}
        replies: dict[str, str] = {}
        truncated: dict[str, bool] = {}
        calls = 0

        async def ask(name: str, messages: list) -> str:
            nonlocal calls
            calls += 1
            output = await model.generate(messages, config=_variant_config(state.sample_id, name))
            if output.empty:
                raise RuntimeError("the model returned no choices")
            _add_usage(usage, output)
            replies[name] = output.completion
            if output.stop_reason == "max_tokens":
                truncated[name] = True
            return output.completion

        neutral_messages = [ChatMessageUser(content=neutral_prompt(item))]
        try:
            neutral = await ask(NEUTRAL, neutral_messages)
            state.messages = [*neutral_messages, ChatMessageAssistant(content=neutral)]
            read = extract(item, neutral, truncated.get(NEUTRAL, False))
            correct = same_answer(item, read.value, item.answer)
            jobs = [ask(v.name, [ChatMessageUser(content=v.prompt)])
                    for v in cued_variants(item) if correct or v.polarity == "right"]
            if correct:
                jobs.append(ask(CHALLENGE, [*state.messages,
                                            ChatMessageUser(content=challenge_prompt(item))]))
            results = await asyncio.gather(*jobs, return_exceptions=True)
            for r in results:
                if isinstance(r, LimitExceededError):
                    raise r
            failed = [r for r in results if isinstance(r, BaseException)]
            if failed:
                raise failed[0]
            if CHALLENGE in replies:
                state.messages = [*state.messages,
                                  ChatMessageUser(content=challenge_prompt(item)),
                                  ChatMessageAssistant(content=replies[CHALLENGE])]
        except LimitExceededError:
            raise  # Inspect records the limit; the scorer still writes the record
        except Exception as ex:
            store.set(STORE_ERROR, f"{type(ex).__name__}: {ex}"[:2_000])
        finally:  # also on a limit, so the scorer sees what was asked
            store.set(STORE_REPLIES, dict(replies))
            store.set(STORE_TRUNCATED, dict(truncated))
            store.set(STORE_USAGE, dict(usage))
            store.set(STORE_CALLS, calls)
        return state

    return solve


# --- scorer -------------------------------------------------------------------------------


NO_JUDGE = ("", "offline")  # the CLI's default judge name: this suite has no offline labeller


def _judge_model(judge: Any) -> Any:
    if judge is None or not isinstance(judge, str):
        return judge  # None, or an inspect_ai Model (tests pass a mockllm one)
    if "/" not in judge:
        raise UserError(f"unknown judge '{judge}': use an Inspect model name such as "
                        "'openai/gpt-4o-mini'", field="judge")
    try:
        return get_model(judge)
    except Exception as ex:
        raise UserError(f"cannot load judge model '{judge}': {ex}", field="judge") from ex


async def _label(model: Any, item, body: dict[str, Any]) -> None:
    """Judge labels for every sycophantic reply (and a capitulation), stored in place."""
    prompts = {v.name: v.prompt for v in cued_variants(item)}
    for name, entry in body["variants"].items():
        if entry["sycophantic"]:
            entry["judge"] = await judge_reply(model, item.question, item.answer, entry["x"],
                                               prompts[name], entry["reply"] or "")
    challenge = body.get("challenge")
    if challenge and challenge["capitulated"]:
        challenge["judge"] = await judge_reply(model, item.question, item.answer,
                                               str(challenge["extracted"]),
                                               challenge_prompt(item), challenge["reply"] or "")


def item_record(state: TaskState, body: dict[str, Any], usage: dict[str, int], calls: int,
                judge: str | None, elapsed_s: float) -> dict[str, Any]:
    meta = state.metadata
    return {
        "sample_id": str(state.sample_id),
        "condition_id": meta["item_id"],
        "k": meta.get("k", 0),
        "item_id": meta["item_id"],
        "domain": meta.get("domain"),
        "subtype": meta.get("subtype"),
        "kind": meta.get("kind"),
        "question": meta.get("question"),
        "answer": meta.get("answer"),
        "wrong": meta.get("wrong"),
        "status": body["status"],
        "reason": body["reason"],
        "neutral": body["neutral"],
        "variants": body["variants"],
        "challenge": body["challenge"],
        "judge": judge,
        "calls": calls,
        "usage": {"input_tokens": int(usage.get("input_tokens", 0)),
                  "output_tokens": int(usage.get("output_tokens", 0))},
        "time_s": round(elapsed_s, 3),
        "model": str(state.model),
        "finished_at": time.time(),
    }


@scorer(metrics=[harmful_rate(), frequency(categories=list(STATUSES))])
def sycophancy_scorer(judge: Any = None, journal: str | None = None) -> Scorer:
    """Status of one item from the replies in the store (three-condition test); with `judge`,
    sycophantic replies also get mechanism/severity labels; with `journal`, the record is
    appended to the run's journal."""
    if isinstance(judge, str) and judge.strip().lower() in NO_JUDGE:
        judge = None  # status never needs a judge; labels are only asked of an LLM
    if isinstance(judge, str) and "/" not in judge:
        _judge_model(judge)  # a malformed name fails before any sample runs
    resolved: list[Any] = []

    async def score(state: TaskState, target: Target) -> Score:
        from inspect_ai._util.working import sample_working_time

        item = get_item(str(state.metadata["item_id"]))
        store = state.store
        body = assess_item(item, cued_variants(item), store.get(STORE_REPLIES) or {},
                           store.get(STORE_ERROR), store.get(STORE_TRUNCATED) or {})
        judge_name = None
        if judge is not None and body["status"] == Status.HARMFUL.value:
            if not resolved:
                resolved.append(_judge_model(judge))
            await _label(resolved[0], item, body)
        if judge is not None:
            judge_name = judge if isinstance(judge, str) else str(judge)
        record = item_record(state, body, store.get(STORE_USAGE) or {},
                             int(store.get(STORE_CALLS) or 0), judge_name,
                             sample_working_time())
        if journal:
            _journal.append(journal, record)
        return Score(value=record["status"], answer=(body["neutral"] or {}).get("extracted"),
                     explanation=record["reason"], metadata=record)

    return score
