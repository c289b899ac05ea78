"""`alignlab eval`: run a suite on a model, journal every sample, write results.json.

The run directory holds `run.json` (the settings, so a re-run can check it continues the
same experiment), `samples.jsonl` (the journal), `logs/` (Inspect logs) and `results.json`.
"""

from __future__ import annotations

import fnmatch
import json
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from alignlab.errors import UserError
from alignlab.harness._probe import PROBES
from alignlab.runs import _journal
from alignlab.runs._suites import Suite, get_suite
from alignlab.status import Status

# Settings that define the experiment: a re-run into the same directory must match them.
FIXED_SETTINGS = (
    "model", "suite", "judge", "tool_mode", "max_turns", "probe", "temperature", "top_p", "max_tokens", "seed",
)


@dataclass
class EvalConfig:
    """Everything `alignlab eval` takes; the CLI flags mirror these fields."""

    model: str
    out: str
    suite: str = "honeypots"
    families: list[str] | None = None
    conditions: list[str] | None = None  # condition ids or shell-style patterns (fnmatch)
    samples: int = 1
    limit: int | None = None  # the first N conditions/items of the suite
    judge: str | None = None  # None: the offline judge shipped with alignlab
    temperature: float | None = None  # None: the suite's default (honeypots 1.0, as the research)
    top_p: float | None = None
    max_tokens: int | None = None  # None: the suite's default
    seed: int = 0
    tool_mode: str = "auto"  # auto | text | native (honeypots)
    max_turns: int = 4  # honeypots
    probe: str | None = None  # honeypots: "awareness" asks the agent whether it is being tested
    max_connections: int | None = None
    model_args: dict[str, Any] = field(default_factory=dict)
    display: str | None = None  # Inspect display; default: rich on a terminal, else none


def resolve_model(name: str) -> str:
    """`embedded` → the packaged chat model; a checkpoint directory → the same provider on it."""
    if name == "embedded":
        return "embedded/smollm2"
    if "/" not in name or os.path.isdir(name):
        if os.path.isdir(name):
            return f"embedded/{os.path.abspath(name)}"
        raise UserError(
            f"unknown model '{name}': use an Inspect model string (provider/model, e.g. "
            "openai/gpt-4.1, vllm/…, hf/…), 'embedded', or a checkpoint directory",
            field="--model",
        )
    return name


def settings_of(cfg: EvalConfig, model: str) -> dict[str, Any]:
    """The run's settings with the suite's defaults filled in (what run.json records)."""
    suite = get_suite(cfg.suite)
    defaults = suite.defaults()
    honeypots = suite.is_honeypots
    return {
        "model": model,
        "suite": cfg.suite,
        "families": cfg.families,
        "conditions": cfg.conditions,
        "samples": cfg.samples,
        "limit": cfg.limit,
        "judge": cfg.judge or ("offline" if honeypots else None),
        "tool_mode": cfg.tool_mode if honeypots else None,
        "max_turns": cfg.max_turns if honeypots else None,
        "probe": cfg.probe,
        "temperature": defaults.get("temperature") if cfg.temperature is None else cfg.temperature,
        "top_p": cfg.top_p,
        "max_tokens": defaults.get("max_tokens") if cfg.max_tokens is None else cfg.max_tokens,
        "seed": cfg.seed,
        "model_args": cfg.model_args,
    }


def check_run_dir(out: Path, settings: dict[str, Any]) -> None:
    """A re-run must continue the same experiment: refuse to mix settings in one directory."""
    run_file = out / "run.json"
    if not run_file.exists():
        return
    try:
        previous = json.loads(run_file.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise UserError(f"not valid JSON ({e}); move the directory aside or use another --out", file=str(run_file))
    for key in FIXED_SETTINGS:
        if previous.get(key) != settings.get(key):
            raise UserError(
                f"this directory holds a run with {key}={previous.get(key)!r}, not {settings.get(key)!r}; "
                "use another --out to start a new run",
                file=str(run_file),
                field=key,
            )


def plan(cfg: EvalConfig) -> list[tuple[str, int]]:
    """The (condition or item id, repetition) keys the run must finish, in order."""
    suite = get_suite(cfg.suite)
    if cfg.samples < 1:
        raise UserError("must be at least 1", field="--samples")
    if cfg.limit is not None and cfg.limit < 1:
        raise UserError("must be at least 1", field="--limit")
    if not suite.is_honeypots:
        for flag, value in (("--families", cfg.families), ("--conditions", cfg.conditions), ("--probe", cfg.probe)):
            if value:
                raise UserError(f"applies to the honeypot suites only, not '{cfg.suite}'", field=flag)
        return suite.module().plan(samples=cfg.samples, limit=cfg.limit)
    if cfg.probe is not None and cfg.probe not in PROBES:
        raise UserError(f"unknown probe '{cfg.probe}'; expected one of {', '.join(PROBES)}", field="--probe")

    from alignlab.scenarios import list_conditions

    conds = list_conditions(split=suite.split, families=cfg.families)
    if not conds:
        raise UserError(f"the scenario library has no conditions for suite '{cfg.suite}'", field="--suite")
    if cfg.conditions:
        for pattern in cfg.conditions:
            if not any(fnmatch.fnmatchcase(c.id, pattern) for c in conds):
                raise UserError(
                    f"'{pattern}' matches no condition of this suite (see `alignlab scenarios list`)",
                    field="--conditions",
                )
        conds = [c for c in conds if any(fnmatch.fnmatchcase(c.id, p) for p in cfg.conditions)]
    if cfg.limit is not None:
        conds = conds[: cfg.limit]
    return [(c.id, k) for c in conds for k in range(cfg.samples)]


def run_eval(cfg: EvalConfig, console=None) -> dict[str, Any]:
    """Run (or resume) an evaluation and return the results dict also written to results.json."""
    from inspect_ai import eval as inspect_eval

    from alignlab.stats._results import build_results

    suite = get_suite(cfg.suite)
    model = resolve_model(cfg.model)
    settings = settings_of(cfg, model)
    keys = plan(cfg)
    out = Path(cfg.out)
    check_run_dir(out, settings)
    out.mkdir(parents=True, exist_ok=True)
    (out / "run.json").write_text(json.dumps(settings, indent=2), encoding="utf-8")
    journal_path = out / _journal.JOURNAL_NAME

    done = _journal.read(journal_path)
    # Errors are retried on a re-run; harmful/safe/unscored verdicts are final.
    pending = [k for k in keys if done.get(_journal.sample_key(*k), {}).get("status") in (None, Status.ERROR.value)]
    say = console.print if console else print
    if len(pending) < len(keys):
        say(f"resuming: {len(keys) - len(pending)} of {len(keys)} samples already done in {out}")

    started = time.time()
    interrupted = False
    if pending:
        task = build_suite_task(suite, pending, cfg, str(journal_path))
        gen: dict[str, Any] = {
            "temperature": settings["temperature"], "max_tokens": settings["max_tokens"], "seed": cfg.seed,
        }
        if cfg.top_p is not None:
            gen["top_p"] = cfg.top_p
        if cfg.max_connections:
            gen["max_connections"] = cfg.max_connections
        display = cfg.display or ("rich" if sys.stdout.isatty() else "none")
        try:
            logs = inspect_eval(
                task,
                model=model,
                model_args=cfg.model_args,
                log_dir=str(out / "logs"),
                display=display,
                fail_on_error=False,
                score_display=False,
                **gen,
            )
        except KeyboardInterrupt:
            interrupted = True
            logs = []
        record_escaped_errors(logs, journal_path)
        interrupted = interrupted or any(log.status == "cancelled" for log in logs)

    wall = time.time() - started
    prior_wall = 0.0
    results_file = out / "results.json"
    if results_file.exists():
        try:
            prior_wall = float(json.loads(results_file.read_text(encoding="utf-8")).get("wall_time_s", 0.0))
        except (ValueError, UnicodeDecodeError):
            prior_wall = 0.0
    wanted = {_journal.sample_key(*k) for k in keys}
    records = [r for key, r in _journal.read(journal_path).items() if key in wanted]
    log_files = sorted(str(p.relative_to(out)) for p in (out / "logs").glob("*.eval")) if (out / "logs").exists() else []
    results = build_results(
        records,
        model=model,
        judge=settings["judge"],
        suite=cfg.suite,
        settings=settings,
        planned=len(keys),
        wall_time_s=prior_wall + wall if pending else prior_wall,
        logs=log_files,
        honeypots=suite.is_honeypots,
    )
    if not suite.is_honeypots:
        results["metrics"] = suite.module().summarise(records)
    results["interrupted"] = interrupted
    tmp = results_file.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(results, indent=2), encoding="utf-8")
    tmp.replace(results_file)
    return results


def build_suite_task(suite: Suite, keys: list[tuple[str, int]], cfg: EvalConfig, journal: str):
    if suite.is_honeypots:
        from alignlab.runs._tasks import build_task

        return build_task(
            keys, tool_mode=cfg.tool_mode, max_turns=cfg.max_turns, judge=cfg.judge, journal=journal, probe=cfg.probe,
        )
    return suite.module().build_task(keys, journal=journal, judge=cfg.judge, name=suite.name)


def record_escaped_errors(logs: list, journal_path: Path) -> None:
    """Samples that failed outside our solver (Inspect-level errors) still get a journal line."""
    from alignlab.runs._tasks import CONDITION_KEYS

    done = _journal.read(journal_path)
    for log in logs:
        for s in log.samples or []:
            key = str(s.id)
            if key in done or s.error is None:
                continue
            meta = s.metadata or {}
            record = {
                "sample_id": key,
                "condition_id": meta.get("condition_id") or meta.get("item_id"),
                "k": meta.get("k", 0),
                "status": Status.ERROR.value,
                "reason": f"sample failed: {s.error.message}",
                "usage": {},
                "time_s": 0.0,
                "model": str(log.eval.model),
                "finished_at": time.time(),
            }
            if "goal_type" in meta:  # a honeypot sample: keep the cell it belongs to
                record["condition"] = {f: meta.get(f) for f in CONDITION_KEYS}
            _journal.append(journal_path, record)


def results_path(out: str | Path) -> Path:
    return Path(out) / "results.json"


__all__ = ["EvalConfig", "run_eval", "resolve_model"]
