"""`alignlab data build`: draw plans from a recipe, compose records offline or ask a teacher
model, and write TRL-ready JSONL with provenance on every record.

Every draw is accounted for in `OUT.build.json`: written, repeated (a plan or a payload
already in the file), rejected (a teacher reply that failed the recipe's checks, by reason)
and error (the teacher model failed).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import random
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

from alignlab.data._constitution import load_constitution
from alignlab.data._recipe import Context, Plan, Reject, get_recipe
from alignlab.data._records import validate_payload
from alignlab.errors import UserError

# Offline: how many draws per requested record before the seed library is declared too small.
MAX_DRAWS_PER_RECORD = 20
# Teacher: how many plans may be tried per requested record before giving up.
MAX_TEACHER_ATTEMPTS_PER_RECORD = 3


@dataclass
class BuildConfig:
    recipe: str
    n: int
    out: str
    format: str | None = None  # None: the recipe's first format
    teacher: str | None = None  # an Inspect model; None: offline from the seed library
    seed: int = 0
    constitution: str | None = None  # None: the default constitution shipped with alignlab
    temperature: float = 0.8  # teacher sampling
    max_tokens: int = 2048  # teacher reply limit
    max_connections: int = 4  # teacher requests in flight


@dataclass
class BuildResult:
    recipe: str
    format: str
    out: str
    n_requested: int
    written: int
    teacher: str | None
    seed: int
    constitution: str
    constitution_sha256: str
    draws: int = 0
    repeated: int = 0
    rejected: dict[str, int] = field(default_factory=dict)
    errors: dict[str, int] = field(default_factory=dict)
    wall_time_s: float = 0.0

    @property
    def complete(self) -> bool:
        return self.written == self.n_requested


def payload_hash(payload: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


def _check_config(cfg: BuildConfig) -> Any:
    recipe = get_recipe(cfg.recipe)
    if cfg.n < 1:
        raise UserError(f"expected a positive number of records, got {cfg.n}", field="--n")
    fmt = cfg.format or recipe.FORMATS[0]
    if fmt not in recipe.FORMATS:
        raise UserError(f"recipe {cfg.recipe!r} writes {', '.join(recipe.FORMATS)}; got {fmt!r}", field="--format")
    if not str(cfg.out).endswith(".jsonl"):
        raise UserError(f"expected an output path ending in .jsonl, got {cfg.out!r}", field="--out")
    if cfg.max_connections < 1:
        raise UserError("expected at least 1", field="--max-connections")
    return recipe, fmt


def build(cfg: BuildConfig, progress: Callable[[int, int], None] | None = None) -> BuildResult:
    recipe, fmt = _check_config(cfg)
    constitution = load_constitution(cfg.constitution)
    ctx = Context(constitution)
    result = BuildResult(recipe=cfg.recipe, format=fmt, out=str(cfg.out), n_requested=cfg.n, written=0,
                         teacher=cfg.teacher, seed=cfg.seed, constitution=constitution.path,
                         constitution_sha256=constitution.sha256)
    start = time.monotonic()
    # A string seed makes the draw sequence the same on every machine and Python run.
    rng = random.Random(f"alignlab:{cfg.recipe}:{fmt}:{cfg.seed}")
    out = Path(cfg.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(out.name + ".partial")

    def record(i: int, plan: Plan, payload: dict[str, Any]) -> dict[str, Any]:
        return {"id": f"{cfg.recipe}-s{cfg.seed}-{i:06d}", "recipe": cfg.recipe, "format": fmt, **payload,
                "seed_ids": dict(plan.seed_ids), "teacher": cfg.teacher,
                "constitution_sha256": constitution.sha256, "build_seed": cfg.seed}

    seen_plans: set[tuple] = set()
    seen_payloads: set[str] = set()

    def fresh_plan() -> Plan | None:
        plan = recipe.plan(rng, ctx)
        result.draws += 1
        if plan.key() in seen_plans:
            result.repeated += 1
            return None
        seen_plans.add(plan.key())
        return plan

    def accept(f, plan: Plan, payload: dict[str, Any]) -> bool:
        try:
            validate_payload({"format": fmt, **payload})
        except ValueError as e:  # a recipe bug, not the user's: fail loudly
            raise RuntimeError(f"recipe {cfg.recipe} composed an invalid {fmt} payload: {e}") from None
        h = payload_hash(payload)
        if h in seen_payloads:
            result.repeated += 1
            return False
        seen_payloads.add(h)
        f.write(json.dumps(record(result.written, plan, payload), ensure_ascii=False) + "\n")
        result.written += 1
        if progress:
            progress(result.written, cfg.n)
        return True

    with partial.open("w", encoding="utf-8") as f:
        if cfg.teacher is None:
            while result.written < cfg.n:
                if result.draws >= MAX_DRAWS_PER_RECORD * cfg.n + 100:
                    break
                plan = fresh_plan()
                if plan is not None:
                    accept(f, plan, recipe.compose(plan, fmt, ctx))
        else:
            _teacher_loop(cfg, recipe, fmt, ctx, fresh_plan, accept, f, result)
    partial.replace(out)
    result.wall_time_s = round(time.monotonic() - start, 2)
    Path(str(out) + ".build.json").write_text(json.dumps({**asdict(result), "complete": result.complete}, indent=2))
    return result


def _teacher_loop(cfg, recipe, fmt, ctx, fresh_plan, accept, f, result: BuildResult) -> None:
    from alignlab.data._teacher import Teacher

    teacher = Teacher(cfg.teacher, temperature=cfg.temperature, max_tokens=cfg.max_tokens, seed=cfg.seed)
    budget = MAX_TEACHER_ATTEMPTS_PER_RECORD * cfg.n
    attempts = 0
    while result.written < cfg.n and attempts < budget:
        want = min(cfg.n - result.written, budget - attempts)
        # Ask for a little more than needed so that rejections do not cost a whole extra round.
        batch: list[Plan] = []
        draws_left = MAX_DRAWS_PER_RECORD * (want + 1)
        while len(batch) < min(want + max(1, want // 4), budget - attempts) and draws_left > 0:
            draws_left -= 1
            plan = fresh_plan()
            if plan is not None:
                batch.append(plan)
        if not batch:
            break
        attempts += len(batch)
        prompts = [recipe.teacher_prompt(p, fmt, ctx) for p in batch]
        replies = asyncio.run(teacher.generate_all(prompts, cfg.max_connections))
        for plan, reply in zip(batch, replies):
            if result.written >= cfg.n:
                break
            if isinstance(reply, BaseException):
                key = f"{type(reply).__name__}: {str(reply)[:120]}"
                result.errors[key] = result.errors.get(key, 0) + 1
                continue
            try:
                payload = recipe.from_teacher(plan, fmt, reply, ctx)
            except Reject as e:
                key = str(e)[:120] or "rejected"
                result.rejected[key] = result.rejected.get(key, 0) + 1
                continue
            accept(f, plan, payload)
        f.flush()
