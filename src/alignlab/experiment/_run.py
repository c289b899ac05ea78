"""`alignlab experiment run`: datasets → pre-stages → arms (per seed) → post-stages → every
model on every suite → report, resumable stage by stage.

The plan is a pure function of the config. `DIR/experiment.json` is rewritten atomically
after every stage starts and ends; a stage recorded `done` is never redone, and one that was
interrupted is run again (`alignlab train` and `alignlab eval` resume inside their own
directories). Layout and schema: the experiment-directory contract in README.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

from alignlab.errors import UserError
from alignlab.experiment._config import Dataset, ExperimentConfig, Stage

SCHEMA = "alignlab.experiment/1"
EXPERIMENT_JSON = "experiment.json"
HONEYPOT_SUITES = ("honeypots", "honeypots:core", "honeypots:heldout")


# --- the plan ---------------------------------------------------------------------------------


@dataclass
class TrainStep:
    id: str  # names the directory train/<id>
    stage: Stage
    seed: int
    base_from: str | None  # the train step whose output is this one's base; None: the config's base


@dataclass
class Model:
    id: str
    label: str
    kind: str  # base | pre | arm
    arm: str | None
    seed: int | None
    lineage: list[str]  # train step ids, in order; the last one's directory is the model
    own: list[str]  # the steps whose tokens are this model's train_tokens
    data: list[tuple[str, float]]  # datasets of its own stages


@dataclass
class Plan:
    datasets: list[Dataset]  # used by some stage, in first-use order
    train: list[TrainStep]
    models: list[Model]
    judge_validation: bool
    stages: list[str] = field(default_factory=list)  # every stage name, in run order

    def step(self, train_id: str) -> TrainStep:
        return next(t for t in self.train if t.id == train_id)


def suite_dir(suite: str) -> str:
    return suite.replace(":", "-")


def make_plan(cfg: ExperimentConfig) -> Plan:
    multi = len(cfg.seeds) > 1
    train: list[TrainStep] = []
    prev = None
    for s in cfg.pre_stages:  # once, with the first seed
        train.append(TrainStep(f"pre-{s.name}", s, cfg.seeds[0], prev))
        prev = train[-1].id
    pre_ids = [t.id for t in train]
    pre_data = [d for s in cfg.pre_stages for d in s.data]

    models: list[Model] = []
    none = cfg.none_arm
    none_is_base = none is not None and not cfg.pre_stages and not cfg.post_stages
    none_is_pre = none is not None and bool(cfg.pre_stages) and not cfg.post_stages
    if cfg.eval_base or none_is_base:
        models.append(Model("base", "base model", "base", none if none_is_base else None, None, [], [], []))
    if cfg.pre_stages:
        label = "after " + " → ".join(s.name for s in cfg.pre_stages)
        models.append(Model("pre", label, "pre", none if none_is_pre else None, cfg.seeds[0], pre_ids, pre_ids,
                            pre_data))
    for seed in cfg.seeds:
        sfx = f"-s{seed}" if multi else ""
        for arm, stage in cfg.arms.items():
            if stage is None and not cfg.post_stages:
                continue  # the `none` arm is the base or pre model above, the same for every seed
            lineage = list(pre_ids)
            own: list[str] = []
            if stage is not None:
                train.append(TrainStep(f"arm-{arm}{sfx}", stage, seed, lineage[-1] if lineage else None))
                lineage.append(train[-1].id)
                own.append(train[-1].id)
            for post in cfg.post_stages:
                train.append(TrainStep(f"arm-{arm}{sfx}-post-{post.name}", post, seed,
                                       lineage[-1] if lineage else None))
                lineage.append(train[-1].id)
            label = arm + (f" (seed {seed})" if multi else "")
            models.append(Model(f"arm-{arm}{sfx}", label, "arm", arm, seed, lineage, own,
                                list(stage.data) if stage else []))

    used: list[str] = []
    for t in train:
        used += [d for d, _ in t.stage.data if d not in used]
    honeypots = any(s in HONEYPOT_SUITES for s in cfg.suites)
    plan = Plan([cfg.datasets[d] for d in used], train, models, honeypots)
    plan.stages = ([f"data:{d}" for d in used] + (["judge:validate"] if honeypots else [])
                   + [f"train:{t.id}" for t in train]
                   + [f"eval:{m.id}:{s}" for m in models for s in cfg.suites] + ["report"])
    return plan


# --- the record ---------------------------------------------------------------------------------


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def write_json_atomic(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def _train_tokens(out: Path, ids: list[str]) -> int | None:
    """Tokens trained, summed over the steps' train.json; None until all of them finished."""
    total = 0
    for i in ids:
        f = out / "train" / i / "train.json"
        if not f.is_file():
            return None
        rec = json.loads(f.read_text(encoding="utf-8"))
        if rec.get("status") != "complete":
            return None
        total += int(rec["tokens_trained"])
    return total


class Experiment:
    """The state of one experiment directory, and its experiment.json."""

    def __init__(self, cfg: ExperimentConfig, out: Path):
        self.cfg, self.out, self.plan = cfg, out, make_plan(cfg)
        self.path = out / EXPERIMENT_JSON
        self.stages: dict[str, dict[str, Any]] = {
            n: {"name": n, "state": "pending", "started": None, "finished": None, "seconds": 0.0, "error": None}
            for n in self.plan.stages}
        self.datasets: dict[str, dict[str, Any]] = {}
        self.judge_validation: dict[str, Any] | None = None
        self.previous: dict[str, Any] | None = None
        if self.path.is_file():
            try:
                self.previous = json.loads(self.path.read_text(encoding="utf-8"))
            except (OSError, json.JSONDecodeError) as e:
                raise UserError(f"cannot read the experiment record ({e}); use a new --out", file=str(self.path)) \
                    from None

    def check_same_config(self) -> None:
        """A directory holds one experiment: refuse a changed config (naming what changed)."""
        prev = self.previous
        if prev is None:
            if self.out.exists() and any(self.out.iterdir()):
                raise UserError("the output directory is not empty and holds no experiment.json; choose a new --out",
                                file=str(self.out))
            return
        if prev.get("config_sha256") == self.cfg.sha256():
            return
        old, new = prev.get("config", {}), self.cfg.resolved()
        changed = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
        raise UserError(f"this directory holds the experiment of a different config (changed: {', '.join(changed)}); "
                        "run the original config to resume it, or choose a new --out", file=str(self.path))

    def restore(self) -> None:
        if not self.previous:
            return
        for s in self.previous.get("stages", []):
            if s.get("name") in self.stages:
                self.stages[s["name"]] = s
        self.datasets = self.previous.get("datasets", {})
        self.judge_validation = (self.previous.get("judge") or {}).get("validation")

    def record(self) -> dict[str, Any]:
        cfg, out = self.cfg, self.out
        models = []
        for m in self.plan.models:
            evals = {s: f"eval/{m.id}/{suite_dir(s)}/results.json" for s in cfg.suites
                     if self.stages[f"eval:{m.id}:{s}"]["state"] == "done"}
            entry: dict[str, Any] = {
                "id": m.id, "label": m.label, "kind": m.kind, "arm": m.arm, "seed": m.seed,
                "train_tokens": _train_tokens(out, m.own) if m.own else 0,
                "train_dirs": [f"train/{t}" for t in m.lineage],
                "stage_tokens": {f"train/{t}": _train_tokens(out, [t]) for t in m.lineage},
                "datasets": [{"id": d, "recipe": cfg.datasets[d].recipe, "weight": w,
                              "path": (self.datasets.get(d) or {}).get("path"),
                              "records": (self.datasets.get(d) or {}).get("records")} for d, w in m.data],
                "evals": evals,
            }
            models.append(entry)
        stages = [self.stages[n] for n in self.plan.stages]
        return {
            "schema": SCHEMA,
            "config_path": cfg.path,
            "config": cfg.resolved(),
            "config_sha256": cfg.sha256(),
            "name": cfg.name,
            "base": cfg.base,
            "judge": {"name": cfg.judge, "validation": self.judge_validation},
            "suites": cfg.suites,
            "seeds": cfg.seeds,
            "baseline_arm": cfg.baseline,
            "reference_arm": cfg.reference,
            "train_tokens_meaning": "tokens trained in the model's own stages (an arm's own stage; "
                                    "shared pre- and post-stages are in stage_tokens)",
            "datasets": self.datasets,
            "models": models,
            "stages": stages,
            "complete": all(s["state"] == "done" for s in stages),
        }

    def save(self) -> None:
        self.out.mkdir(parents=True, exist_ok=True)
        write_json_atomic(self.path, self.record())


# --- the stages ---------------------------------------------------------------------------------


def build_dataset(cfg: ExperimentConfig, ds: Dataset, out: Path) -> dict[str, Any]:
    """Build (recipe datasets) and check against `check_against`; a held-out flag fails."""
    from alignlab.data._build import BuildConfig, build
    from alignlab.data._check import FATAL_SUITE, check_file
    from alignlab.data._records import iter_records

    info: dict[str, Any] = {"id": ds.id, "recipe": ds.recipe}
    if ds.recipe is not None:
        path = out / "data" / f"{ds.id}.jsonl"
        result = build(BuildConfig(recipe=ds.recipe, out=str(path), **ds.build))
        if not result.complete:
            raise UserError(f"built only {result.written} of {result.n_requested} records (accounting: "
                            f"{path}.build.json)", file=Path(cfg.path).name, field=f"datasets.{ds.id}")
        info.update(path=str(path.relative_to(out)), format=result.format, records=result.written,
                    build=f"data/{ds.id}.jsonl.build.json")
    else:
        path = Path(ds.path or "")
        info.update(path=str(path), records=sum(1 for _ in iter_records(path)))
    if cfg.check_against:
        # A user's own file gets no card or cache written beside it.
        built = ds.recipe is not None
        r = check_file(path, against=cfg.check_against, write_card=built, cache=built)
        info["check"] = {"against": list(r.suites), "flagged": r.flagged, "near_duplicates": len(r.duplicates),
                         "tokens": (r.card.get("tokens") or {}).get("total"),
                         "card": str(r.card_md.relative_to(out)) if r.card_md else None}
        if r.failed:
            raise UserError(f"{r.flagged[FATAL_SUITE]} records are too close to the {FATAL_SUITE} split "
                            f"(`alignlab data check {path}` lists them); training on them would make held-out "
                            "results meaningless", file=Path(cfg.path).name, field=f"datasets.{ds.id}")
    return info


def judge_validation(judge: str) -> dict[str, Any]:
    """`validate_judge`'s figures without the per-transcript rows, cached on disk.

    The offline judge takes ~1 min on the 412 labelled transcripts (2 busy cores); the
    cache key covers the judge and every file that decides a verdict: the judges package
    (classifier data, labelled set), the scenarios (evidence rules) and the harness (parser)."""
    from alignlab.judges import cache_root, validate_judge

    root = Path(__file__).resolve().parent.parent
    h = hashlib.sha256(judge.encode())
    for f in sorted(p for pkg in ("judges", "scenarios", "harness") for p in (root / pkg).rglob("*")
                    if p.is_file() and "__pycache__" not in p.parts):
        h.update(str(f.relative_to(root)).encode())
        h.update(f.read_bytes())
    cache = cache_root() / "judge_validation" / f"{h.hexdigest()[:24]}.json"
    if cache.is_file():
        return {**json.loads(cache.read_text(encoding="utf-8")), "cached": str(cache)}
    # invariance is `alignlab judge validate`'s job: seven more judgings per transcript
    result = validate_judge(None if judge == "offline" else judge, invariance=False)
    result = {k: v for k, v in result.items() if k != "rows"}
    cache.parent.mkdir(parents=True, exist_ok=True)
    write_json_atomic(cache, result)
    return result


def _train_config(cfg: ExperimentConfig, exp: Experiment, step: TrainStep):
    from alignlab.train import TrainConfig

    # Absolute paths: train.json records them, and a resumed run may start from another cwd.
    root = exp.out.resolve()
    base = str(root / "train" / step.base_from) if step.base_from else cfg.base
    data = [f"{root / 'data' / f'{d}.jsonl' if cfg.datasets[d].recipe else cfg.datasets[d].path}:{w:g}"
            for d, w in step.stage.data]
    return TrainConfig(**cfg.train_fields(step.stage), base=base, data=data,
                       out=str(exp.out / "train" / step.id), seed=step.seed)


def eval_model_name(cfg: ExperimentConfig, exp: Experiment, m: Model) -> str:
    if m.lineage:
        return str((exp.out / "train" / m.lineage[-1]).resolve())
    # `alignlab train --base` takes a Hub id where `alignlab eval` wants an Inspect model.
    if cfg.base == "embedded" or os.path.isdir(cfg.base):
        return cfg.base
    return f"hf/{cfg.base}"


def _eval_config(cfg: ExperimentConfig, exp: Experiment, m: Model, suite: str):
    from alignlab.runs import EvalConfig

    return EvalConfig(model=eval_model_name(cfg, exp, m), out=str(exp.out / "eval" / m.id / suite_dir(suite)),
                      suite=suite, judge=None if cfg.judge == "offline" else cfg.judge, **cfg.eval_fields(suite))


class Interrupted(Exception):
    """An eval came back interrupted (Ctrl-C inside Inspect)."""


# The library calls each stage makes; module-level so tests can stand in for them.
def train_model(config: Any) -> dict[str, Any]:
    from alignlab.train import train

    return train(config)


def evaluate(config: Any, console: Any) -> dict[str, Any]:
    from alignlab.runs import run_eval

    return run_eval(config, console=console)


def release_models(keep: str) -> None:
    """Free the checkpoints earlier evals loaded: an experiment evaluates one model after another
    in one process, and each one kept would hold its weights and prefix cache (~1-2 GB)."""
    if keep == "embedded" or os.path.isdir(keep):
        from alignlab.models._embedded import release_engines

        release_engines(keep)


def write_report(out: Path) -> dict[str, Any]:
    from alignlab.experiment._report import write_report as write

    return write(out)


def _stage_fn(cfg: ExperimentConfig, exp: Experiment, name: str, console: Any) -> Callable[[], Any]:
    kind, _, rest = name.partition(":")
    if kind == "data":
        def run_data() -> None:
            exp.datasets[rest] = build_dataset(cfg, cfg.datasets[rest], exp.out)
        return run_data
    if kind == "judge":
        def run_judge() -> None:
            exp.judge_validation = judge_validation(cfg.judge)
        return run_judge
    if kind == "train":
        return lambda: train_model(_train_config(cfg, exp, exp.plan.step(rest)))
    if kind == "eval":
        model_id, _, suite = rest.partition(":")
        model = next(m for m in exp.plan.models if m.id == model_id)

        def run_one_eval() -> None:
            release_models(eval_model_name(cfg, exp, model))
            if evaluate(_eval_config(cfg, exp, model, suite), console).get("interrupted"):
                raise Interrupted(name)
        return run_one_eval
    return lambda: write_report(exp.out)


# --- running ------------------------------------------------------------------------------------


def run_experiment(cfg: ExperimentConfig, out: str | Path, console: Any = None) -> dict[str, Any]:
    """Run (or resume) the experiment into `out`; returns the final experiment.json record.
    Raises KeyboardInterrupt when interrupted (the record says where it stopped)."""
    def say(line: str) -> None:  # names from the config are not rich markup
        if console is None:
            print(line)
        else:
            console.print(line, markup=False, highlight=False, soft_wrap=True)

    exp = Experiment(cfg, Path(out))
    exp.check_same_config()
    exp.restore()
    for line in describe_plan(cfg, exp):
        say(line)
    exp.save()
    names = exp.plan.stages
    for i, name in enumerate(names, 1):
        st = exp.stages[name]
        if st["state"] == "done":
            continue
        verb = "resuming" if st["state"] in ("running", "failed") or st.get("error") else "starting"
        say(f"[{i}/{len(names)}] {name}: {verb}")
        st.update(state="running", started=_now(), finished=None, error=None)
        exp.save()
        t0 = time.monotonic()
        prior = float(st.get("seconds") or 0.0)
        try:
            _stage_fn(cfg, exp, name, console)()
        except (KeyboardInterrupt, Interrupted):
            st.update(state="pending", seconds=round(prior + time.monotonic() - t0, 2), error="interrupted")
            exp.save()
            raise KeyboardInterrupt from None
        except BaseException as e:
            st.update(state="failed", seconds=round(prior + time.monotonic() - t0, 2),
                      error=f"{type(e).__name__}: {e}"[:2000])
            exp.save()
            raise
        spent = time.monotonic() - t0
        st.update(state="done", finished=_now(), seconds=round(prior + spent, 2))
        exp.save()
        say(f"[{i}/{len(names)}] {name}: done in {spent:.1f} s")
    return exp.record()


# --- the plan, in words, with token estimates ---------------------------------------------------


def _generations_per_sample(suite: str, settings: dict[str, Any]) -> int:
    """Model generations one sample can take (an upper bound)."""
    if suite in HONEYPOT_SUITES:
        return int(settings["max_turns"]) + (1 if settings.get("probe") else 0)
    if suite == "sycophancy":
        from alignlab.sycophancy._prompts import CUED_VARIANTS

        return 1 + len(CUED_VARIANTS) + 1  # neutral, each cue, the challenge
    from alignlab.fairness._task import VARIANTS

    return len(VARIANTS)


def generation_estimate(cfg: ExperimentConfig, suite: str) -> tuple[int, int]:
    """(samples, upper bound of generated tokens) for one model on one suite."""
    from alignlab.runs import EvalConfig
    from alignlab.runs._eval import plan, settings_of

    ec = EvalConfig(model="-", out="-", suite=suite, **cfg.eval_fields(suite))
    settings = settings_of(ec, "-")
    n = len(plan(ec))
    return n, n * _generations_per_sample(suite, settings) * int(settings["max_tokens"])


def measure_epoch_tokens(cfg: ExperimentConfig, exp: Experiment) -> tuple[dict[str, int], list[str]]:
    """Real tokens of one epoch of each train step, for datasets that exist or build offline in
    seconds (into a temporary directory: a dry run writes nothing). Returns the counts and notes."""
    from alignlab.data._build import BuildConfig, build
    from alignlab.train._data import DataSource, build_examples, check_sources
    from alignlab.train._train import resolve_base

    notes: list[str] = []
    try:
        from transformers import AutoTokenizer

        tok = AutoTokenizer.from_pretrained(resolve_base(cfg.base))
    except Exception as e:  # e.g. a Hub id without network: the upper bounds still stand
        return {}, [f"epoch tokens not measured: cannot load the base tokenizer ({type(e).__name__})"]
    counts: dict[str, int] = {}
    with tempfile.TemporaryDirectory(prefix="alignlab-dry-") as tmp:
        paths: dict[str, str] = {}
        for ds in exp.plan.datasets:
            built = exp.out / "data" / f"{ds.id}.jsonl"
            if ds.path:
                paths[ds.id] = ds.path
            elif exp.stages.get(f"data:{ds.id}", {}).get("state") == "done" and built.is_file():
                paths[ds.id] = str(built)
            elif ds.build.get("teacher"):
                notes.append(f"dataset {ds.id}: teacher-built, not measured")
            else:
                t0 = time.monotonic()
                p = Path(tmp) / f"{ds.id}.jsonl"
                build(BuildConfig(recipe=ds.recipe or "", out=str(p), **ds.build))
                paths[ds.id] = str(p)
                notes.append(f"dataset {ds.id}: built offline in {time.monotonic() - t0:.1f} s to count its tokens")
        cache: dict[tuple, int] = {}
        for t in exp.plan.train:
            if not all(d in paths for d, _ in t.stage.data):
                continue
            max_length = int(cfg.train_fields(t.stage).get("max_length", 512))
            key = (tuple(t.stage.data), max_length, t.seed)
            if key not in cache:
                stats = check_sources([DataSource(paths[d], w) for d, w in t.stage.data])
                try:
                    build_examples(stats, tok, max_length, t.seed)
                except UserError as e:  # what training would stop on: say so now
                    notes.append(f"train:{t.id} would fail: {e}")
                    continue
                cache[key] = sum(s.tokens for s in stats)
            counts[t.id] = cache[key]
    return counts, notes


def describe_plan(cfg: ExperimentConfig, exp: Experiment, epoch_tokens: dict[str, int] | None = None) -> list[str]:
    """The plan: stages (with their recorded state), models, suites, and token estimates."""
    from alignlab.train import TrainConfig

    plan = exp.plan
    state = {n: exp.stages[n]["state"] for n in plan.stages}
    mark = {n: ("" if s == "pending" else f"  [{s}]") for n, s in state.items()}
    lines = [f"experiment {cfg.name}: base {cfg.base}, judge {cfg.judge}, seeds {cfg.seeds} → {exp.out}"]
    lines.append(f"datasets ({len(plan.datasets)}):"
                 + ("" if cfg.check_against else " (no data check: check_against is empty)"))
    for ds in plan.datasets:
        src = ds.path if ds.path else f"recipe {ds.recipe} " + ", ".join(f"{k}={v}" for k, v in ds.build.items())
        lines.append(f"  data:{ds.id}  {src}" + (f"; checked against {', '.join(cfg.check_against)}"
                                                  if cfg.check_against else "") + mark[f"data:{ds.id}"])
    if plan.judge_validation:
        lines.append(f"judge:validate  {cfg.judge} on the labelled transcript set" + mark["judge:validate"])
    lines.append(f"training stages ({len(plan.train)}); upper bound = max_steps × batch_size × grad_accum × "
                 "max_length" + ("; one epoch = tokens of the weighted data, measured" if epoch_tokens else ""))
    total_upper = 0
    for t in plan.train:
        f = {**vars(TrainConfig()), **cfg.train_fields(t.stage)}
        upper = (f["max_steps"] * f["batch_size"] * f["grad_accum"] * f["max_length"]) if f["max_steps"] > 0 else None
        ep = (epoch_tokens or {}).get(t.id)
        if upper is None and ep is not None:
            upper = int(ep * f["epochs"])
        total_upper += upper or 0
        base = f"train/{t.base_from}" if t.base_from else cfg.base
        data = ", ".join(f"{d}:{w:g}" for d, w in t.stage.data)
        steps = f"{f['max_steps']} steps" if f["max_steps"] > 0 else f"{f['epochs']:g} epochs"
        line = f"  train:{t.id}  {base} + [{data}], {steps} × batch {f['batch_size']} × {f['max_length']}, " \
               f"seed {t.seed}: "
        line += f"≤ {upper:,} tokens" if upper is not None else "tokens unknown (epochs of data not built yet)"
        if ep is not None:
            line += f"; one epoch {ep:,} tokens"
        lines.append(line + mark[f"train:{t.id}"])
    lines.append(f"  total to train: ≤ {total_upper:,} tokens")
    lines.append(f"models ({len(plan.models)}): " + ", ".join(
        f"{m.id}" + (f" (arm {m.arm})" if m.arm and m.kind != "arm" else "") for m in plan.models))
    lines.append(f"suites: {', '.join(cfg.suites)}; upper bound = samples × generations per sample × max_tokens")
    total_gen = 0
    for s in cfg.suites:
        n, gen = generation_estimate(cfg, s)
        total_gen += gen * len(plan.models)
        lines.append(f"  {s}: {n} samples per model, ≤ {gen:,} generated tokens per model, "
                     f"≤ {gen * len(plan.models):,} for {len(plan.models)} models")
    lines.append(f"  total to generate: ≤ {total_gen:,} tokens")
    done = sum(1 for s in state.values() if s == "done")
    lines.append(f"{len(plan.stages)} stages ({done} done): " + ", ".join(plan.stages[:3])
                 + (", …, report" if len(plan.stages) > 3 else ""))
    return lines


def dry_run(cfg: ExperimentConfig, out: str | Path) -> list[str]:
    """The plan with measured epoch tokens where cheap; writes nothing."""
    exp = Experiment(cfg, Path(out))
    notes = []
    try:
        exp.check_same_config()
        exp.restore()
    except UserError as e:
        notes.append(f"note: a real run would be refused: {e}")
    counts, measured_notes = measure_epoch_tokens(cfg, exp)
    return describe_plan(cfg, exp, counts) + measured_notes + notes


__all__ = ["EXPERIMENT_JSON", "SCHEMA", "Experiment", "Plan", "dry_run", "judge_validation", "make_plan",
           "run_experiment", "suite_dir"]
