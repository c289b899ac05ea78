"""The experiment config (YAML): every key validated, every error naming the file and field path.

Train and eval fields are checked against `TrainConfig` / `EvalConfig` themselves (their
names, their types, their own range checks), so there is no second list to drift.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import yaml

from alignlab.errors import UserError

# Set by the runner, never by the config: the stage's base, its data, its directory, its seed.
_TRAIN_RESERVED = {"base": "the previous stage's output", "data": "the stage's `data`",
                   "out": "the experiment directory", "seed": "`seeds`"}
_EVAL_RESERVED = {"model": "the experiment's models", "out": "the experiment directory",
                  "suite": "`suites`", "judge": "`judge`", "model_args": None, "display": None}
_BUILD_RESERVED = {"recipe": None, "out": "the experiment directory (DIR/data/)"}
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.+-]*")
_TOP_KEYS = ("name", "base", "seeds", "judge", "suites", "eval", "suite_eval", "eval_base", "train",
             "data_defaults", "datasets", "check_against", "pre_stages", "arms", "post_stages", "baseline",
             "reference")
DEFAULT_CHECK_AGAINST = ["heldout"]
# Recipe datasets named in a stage but not declared under `datasets` are built with these.
DEFAULT_DATA = {"n": 200, "seed": 0}
NONE_ARM = "none"


@dataclass
class Dataset:
    id: str
    recipe: str | None  # None: a file given by `path`
    path: str | None  # absolute; None for recipe datasets (built into DIR/data/)
    build: dict[str, Any] = field(default_factory=dict)  # BuildConfig fields besides recipe/out


@dataclass
class Stage:
    """A training stage: datasets with weights, and TrainConfig overrides."""

    name: str
    data: list[tuple[str, float]]
    train: dict[str, Any]


@dataclass
class ExperimentConfig:
    path: str
    name: str
    base: str
    seeds: list[int]
    judge: str
    suites: list[str]
    eval: dict[str, Any]
    suite_eval: dict[str, dict[str, Any]]
    eval_base: bool
    train: dict[str, Any]
    data_defaults: dict[str, Any]
    datasets: dict[str, Dataset]
    check_against: list[str]
    pre_stages: list[Stage]
    arms: dict[str, Stage | None]  # None: the arm trains nothing of its own
    post_stages: list[Stage]
    baseline: str
    reference: str | None

    def eval_fields(self, suite: str) -> dict[str, Any]:
        return {**self.eval, **self.suite_eval.get(suite, {})}

    def train_fields(self, stage: Stage) -> dict[str, Any]:
        return {**self.train, **stage.train}

    @property
    def none_arm(self) -> str | None:
        return next((a for a, s in self.arms.items() if s is None), None)

    def resolved(self) -> dict[str, Any]:
        """Everything the run depends on, defaults filled in: recorded, and hashed to refuse a
        re-run of a changed config into the same directory."""
        def stage(s: Stage | None) -> Any:
            return NONE_ARM if s is None else {"name": s.name, "data": [[d, w] for d, w in s.data], "train": s.train}

        return {
            "name": self.name, "base": self.base, "seeds": self.seeds, "judge": self.judge, "suites": self.suites,
            "eval": self.eval, "suite_eval": self.suite_eval, "eval_base": self.eval_base, "train": self.train,
            "datasets": {k: {"recipe": d.recipe, "path": d.path, **d.build} for k, d in self.datasets.items()},
            "check_against": self.check_against,
            "pre_stages": [stage(s) for s in self.pre_stages],
            "arms": {a: stage(s) for a, s in self.arms.items()},
            "post_stages": [stage(s) for s in self.post_stages],
            "baseline": self.baseline, "reference": self.reference,
        }

    def sha256(self) -> str:
        return hashlib.sha256(json.dumps(self.resolved(), sort_keys=True).encode()).hexdigest()


class _Ctx:
    def __init__(self, path: Path):
        self.path = path
        self.file = path.name

    def error(self, where: str, problem: str) -> UserError:
        return UserError(problem, file=self.file, field=where)


# --- types, from the dataclasses' own annotations ----------------------------------------------


def _check_value(ctx: _Ctx, where: str, value: Any, annotation: str) -> Any:
    """Check `value` against a dataclass annotation string ("int", "float | None", "list[str]")."""
    kinds = [k.strip() for k in str(annotation).split("|")]
    if value is None:
        if "None" in kinds:
            return None
        raise ctx.error(where, "expected a value, got nothing")
    for kind in kinds:
        if kind == "bool" and isinstance(value, bool):
            return value
        if kind == "int" and isinstance(value, int) and not isinstance(value, bool):
            return value
        if kind == "float" and isinstance(value, (int, float)) and not isinstance(value, bool):
            if not math.isfinite(value):
                raise ctx.error(where, f"expected a finite number, got {value!r}")
            return float(value)
        if kind == "str" and isinstance(value, str):
            return value
        if kind == "list[str]" and isinstance(value, list) and all(isinstance(v, str) for v in value):
            return list(value)
    expected = " or ".join({"list[str]": "a list of strings", "None": "null"}.get(k, f"a {k}") for k in kinds)
    raise ctx.error(where, f"expected {expected}, got {value!r}")


def _fields_of(cls: type, reserved: dict[str, str | None]) -> dict[str, str]:
    return {f.name: str(f.type) for f in fields(cls) if f.name not in reserved}


def _mapping(ctx: _Ctx, where: str, value: Any, allowed: dict[str, str] | None = None,
             reserved: dict[str, str | None] | None = None) -> dict[str, Any]:
    """A mapping whose keys are all known; values typed by `allowed` (name -> annotation)."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ctx.error(where, f"expected a mapping, got {value!r}")
    out = {}
    for key, v in value.items():
        sub = f"{where}.{key}" if where else str(key)
        if allowed is None:
            out[key] = v
            continue
        if reserved and key in reserved:
            raise ctx.error(sub, "is set by the experiment" + (f" (from {reserved[key]})" if reserved[key] else "")
                            + "; remove it")
        if key not in allowed:
            raise ctx.error(sub, f"unknown key {key!r}; expected one of: {', '.join(sorted(allowed))}")
        out[key] = _check_value(ctx, sub, v, allowed[key])
    return out


def _flag_to_field(flag: str | None) -> str:
    return (flag or "").removeprefix("--").replace("-", "_")


# --- sections ------------------------------------------------------------------------------------


def _train_section(ctx: _Ctx, where: str, value: Any) -> dict[str, Any]:
    from alignlab.train import TrainConfig

    return _mapping(ctx, where, value, _fields_of(TrainConfig, _TRAIN_RESERVED), _TRAIN_RESERVED)


def _validate_train(ctx: _Ctx, defaults: dict[str, Any], stage: Stage, where: str) -> None:
    """TrainConfig's own range checks, reported at the key that set the bad value."""
    from alignlab.train import TrainConfig

    try:
        TrainConfig(**{**defaults, **stage.train}, data=["-"], out="-").validate()
    except UserError as e:
        name = _flag_to_field(e.field)
        raise ctx.error(f"{where}.train.{name}" if name in stage.train else f"train.{name}", e.detail) from None


def _eval_section(ctx: _Ctx, where: str, value: Any) -> dict[str, Any]:
    from alignlab.runs import EvalConfig

    out = _mapping(ctx, where, value, _fields_of(EvalConfig, _EVAL_RESERVED), _EVAL_RESERVED)
    if out.get("tool_mode") not in (None, "auto", "text", "native"):
        raise ctx.error(f"{where}.tool_mode", f"expected auto, text or native, got {out['tool_mode']!r}")
    return out


def _validate_eval(ctx: _Ctx, cfg_eval: dict[str, Any], per_suite: dict[str, Any], suite: str) -> None:
    """The eval runner's own plan checks (samples, limit, families, conditions, probe)."""
    from alignlab.runs import EvalConfig
    from alignlab.runs._eval import plan

    try:
        plan(EvalConfig(model="-", out="-", suite=suite, **{**cfg_eval, **per_suite}))
    except UserError as e:
        name = _flag_to_field(e.field)
        where = f"suite_eval.{suite}.{name}" if name in per_suite else f"eval.{name}"
        raise ctx.error(where, f"{e.detail} (suite {suite})") from None


def _build_fields(ctx: _Ctx, where: str, value: dict[str, Any]) -> dict[str, Any]:
    from alignlab.data._build import BuildConfig

    allowed = _fields_of(BuildConfig, _BUILD_RESERVED)
    out = _mapping(ctx, where, value, allowed, _BUILD_RESERVED)
    if "constitution" in out and out["constitution"] is not None:
        out["constitution"] = str((ctx.path.parent / out["constitution"]).resolve())
    if "n" in out and out["n"] < 1:
        raise ctx.error(f"{where}.n", f"expected a positive number of records, got {out['n']}")
    return out


def _dataset(ctx: _Ctx, key: str, value: Any, defaults: dict[str, Any]) -> Dataset:
    from alignlab.data import RECIPES, get_recipe

    where = f"datasets.{key}"
    if not _NAME.fullmatch(str(key)):
        raise ctx.error(where, "a dataset id is letters, digits and _ . + - (it names a file)")
    if not isinstance(value, dict):
        raise ctx.error(where, f"expected {{recipe: NAME, n: N, …}} or {{path: FILE}}, got {value!r}")
    if "path" in value:
        extra = sorted(set(value) - {"path"})
        if extra:
            raise ctx.error(f"{where}.{extra[0]}", "a dataset given by `path` takes no other keys")
        p = value["path"]
        if not isinstance(p, str) or not p:
            raise ctx.error(f"{where}.path", f"expected a file path, got {p!r}")
        full = (ctx.path.parent / p).resolve()
        if not full.is_file():
            raise ctx.error(f"{where}.path", f"file not found: {full}")
        return Dataset(id=key, recipe=None, path=str(full))
    recipe = value.get("recipe")
    if recipe not in RECIPES:
        raise ctx.error(f"{where}.recipe", f"unknown recipe {recipe!r}; expected one of: {', '.join(RECIPES)}, "
                        "or give a file with `path`")
    build = {**defaults, **_build_fields(ctx, where, {k: v for k, v in value.items() if k != "recipe"})}
    formats = get_recipe(recipe).FORMATS
    if build.get("format") is not None and build["format"] not in formats:
        raise ctx.error(f"{where}.format", f"recipe {recipe!r} writes {', '.join(formats)}; got {build['format']!r}")
    return Dataset(id=key, recipe=recipe, path=None, build=build)


def _data_refs(ctx: _Ctx, where: str, value: Any, datasets: dict[str, Dataset],
               defaults: dict[str, Any]) -> list[tuple[str, float]]:
    """`[DATASET[:WEIGHT], …]`; a recipe name not declared under `datasets` is built with
    `data_defaults`."""
    from alignlab.data import RECIPES

    if not isinstance(value, list) or not value:
        raise ctx.error(where, f"expected a non-empty list of DATASET[:WEIGHT], got {value!r}")
    out = []
    for i, item in enumerate(value):
        sub = f"{where}[{i}]"
        if not isinstance(item, str):
            raise ctx.error(sub, f"expected DATASET[:WEIGHT], got {item!r}")
        name, sep, weight = item.partition(":")
        w = 1.0
        if sep:
            try:
                w = float(weight)
            except ValueError:
                w = float("nan")
            if not (w > 0 and math.isfinite(w)):
                raise ctx.error(sub, f"bad weight {weight!r}: expected a positive number, as in {name}:2")
        if name not in datasets:
            if name not in RECIPES:
                raise ctx.error(sub, f"unknown dataset {name!r}; declared: {', '.join(datasets) or 'none'}; "
                                f"recipes: {', '.join(RECIPES)}")
            datasets[name] = Dataset(id=name, recipe=name, path=None, build=dict(defaults))
        if any(d == name for d, _ in out):
            raise ctx.error(sub, f"dataset {name!r} listed twice; give one weight")
        out.append((name, w))
    return out


def _stages(ctx: _Ctx, where: str, value: Any, datasets: dict[str, Dataset],
            defaults: dict[str, Any]) -> list[Stage]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise ctx.error(where, f"expected a list of {{name, data, train}}, got {value!r}")
    out: list[Stage] = []
    for i, item in enumerate(value):
        sub = f"{where}[{i}]"
        if not isinstance(item, dict):
            raise ctx.error(sub, f"expected {{name: NAME, data: [DATASET[:WEIGHT], …], train: {{…}}}}, got {item!r}")
        unknown = sorted(set(item) - {"name", "data", "train"})
        if unknown:
            raise ctx.error(f"{sub}.{unknown[0]}", "unknown key; expected name, data, train")
        name = item.get("name")
        if not isinstance(name, str) or not _NAME.fullmatch(name):
            raise ctx.error(f"{sub}.name", "expected a name of letters, digits and _ . + - (it names a directory)")
        if any(s.name == name for s in out):
            raise ctx.error(f"{sub}.name", f"stage name {name!r} is used twice")
        out.append(Stage(name=name, data=_data_refs(ctx, f"{sub}.data", item.get("data"), datasets, defaults),
                         train=_train_section(ctx, f"{sub}.train", item.get("train"))))
    return out


def _arms(ctx: _Ctx, value: Any, datasets: dict[str, Dataset], defaults: dict[str, Any]) -> dict[str, Stage | None]:
    if not isinstance(value, dict) or not value:
        raise ctx.error("arms", "expected a mapping of arm name → none | [DATASET[:WEIGHT], …]")
    arms: dict[str, Stage | None] = {}
    for name, spec in value.items():
        where = f"arms.{name}"
        if not isinstance(name, str) or not _NAME.fullmatch(name):
            raise ctx.error(where, "an arm name is letters, digits and _ . + - (it names a directory)")
        train: dict[str, Any] = {}
        data_where = where
        if isinstance(spec, dict):  # {data: …, train: {…}}: an arm with its own hyper-parameters
            unknown = sorted(set(spec) - {"data", "train"})
            if unknown:
                raise ctx.error(f"{where}.{unknown[0]}", "unknown key; expected data, train")
            train = _train_section(ctx, f"{where}.train", spec.get("train"))
            spec, data_where = spec.get("data"), f"{where}.data"
        if spec == NONE_ARM or spec is None:
            if train:
                raise ctx.error(f"{where}.train", "an arm that trains nothing takes no train settings")
            if any(s is None for s in arms.values()):
                raise ctx.error(where, "only one arm may be `none` (they would be the same model)")
            arms[name] = None
            continue
        arms[name] = Stage(name=name, data=_data_refs(ctx, data_where, spec, datasets, defaults), train=train)
    return arms


def _seeds(ctx: _Ctx, value: Any) -> list[int]:
    if value is None:
        return [0]
    if not isinstance(value, list) or not value or not all(isinstance(s, int) and not isinstance(s, bool) for s in value):
        raise ctx.error("seeds", f"expected a non-empty list of integers, got {value!r}")
    if len(set(value)) != len(value):
        raise ctx.error("seeds", "a seed is listed twice")
    return list(value)


def _str(ctx: _Ctx, raw: dict[str, Any], key: str, default: str | None) -> str | None:
    value = raw.get(key, default)
    if value is not None and (not isinstance(value, str) or not value):
        raise ctx.error(key, f"expected a string, got {value!r}")
    return value


def load_config(path: str | Path) -> ExperimentConfig:
    """Read and validate an experiment config; UserError(file, field path) on anything wrong."""
    from alignlab.data._evalcorpus import parse_suites
    from alignlab.runs._suites import get_suite

    p = Path(path)
    ctx = _Ctx(p)
    try:
        raw = yaml.safe_load(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UserError("config file not found", file=str(p)) from None
    except (OSError, UnicodeDecodeError) as e:
        raise UserError(f"cannot read the config ({e})", file=str(p)) from None
    except yaml.YAMLError as e:
        raise UserError(f"not valid YAML: {e}", file=ctx.file) from None
    if not isinstance(raw, dict):
        raise UserError("expected a YAML mapping at the top level", file=ctx.file)
    for key in raw:
        if key not in _TOP_KEYS:
            raise ctx.error(str(key), f"unknown key {key!r}; expected one of: {', '.join(_TOP_KEYS)}")

    name = _str(ctx, raw, "name", p.stem)
    base = _str(ctx, raw, "base", "embedded")
    if base != "embedded" and (p.parent / base).is_dir():  # a checkpoint directory next to the config
        base = str((p.parent / base).resolve())
    judge = _str(ctx, raw, "judge", "offline")
    if judge != "offline" and "/" not in judge:
        raise ctx.error("judge", f"expected 'offline' or an Inspect model (provider/model), got {judge!r}")

    suites = raw.get("suites")
    if not isinstance(suites, list) or not suites or not all(isinstance(s, str) for s in suites):
        raise ctx.error("suites", f"expected a non-empty list of suites, got {suites!r}")
    for i, s in enumerate(suites):
        try:
            get_suite(s)
        except UserError as e:
            raise ctx.error(f"suites[{i}]", e.detail) from None
    if len(set(suites)) != len(suites):
        raise ctx.error("suites", "a suite is listed twice")

    eval_ = _eval_section(ctx, "eval", raw.get("eval"))
    suite_eval = _mapping(ctx, "suite_eval", raw.get("suite_eval"))
    for s, v in list(suite_eval.items()):
        if s not in suites:
            raise ctx.error(f"suite_eval.{s}", f"not one of the experiment's suites ({', '.join(suites)})")
        suite_eval[s] = _eval_section(ctx, f"suite_eval.{s}", v)
    for s in suites:
        _validate_eval(ctx, eval_, suite_eval.get(s, {}), s)

    eval_base = raw.get("eval_base", True)
    if not isinstance(eval_base, bool):
        raise ctx.error("eval_base", f"expected true or false, got {eval_base!r}")
    train = _train_section(ctx, "train", raw.get("train"))
    data_defaults = {**DEFAULT_DATA, **_build_fields(ctx, "data_defaults", raw.get("data_defaults") or {})}

    datasets_raw = _mapping(ctx, "datasets", raw.get("datasets"))
    datasets = {str(k): _dataset(ctx, str(k), v, data_defaults) for k, v in datasets_raw.items()}

    check = raw.get("check_against", DEFAULT_CHECK_AGAINST)
    if check in (None, "none", []):
        check_against: list[str] = []
    else:
        try:
            check_against = list(parse_suites(check))
        except UserError as e:
            raise ctx.error("check_against", e.detail) from None

    pre = _stages(ctx, "pre_stages", raw.get("pre_stages"), datasets, data_defaults)
    arms = _arms(ctx, raw.get("arms"), datasets, data_defaults)
    post = _stages(ctx, "post_stages", raw.get("post_stages"), datasets, data_defaults)
    for where, stages in (("pre_stages", pre), ("post_stages", post)):
        for i, s in enumerate(stages):
            _validate_train(ctx, train, s, f"{where}[{i}]")
    for a, s in arms.items():
        if s is not None:
            _validate_train(ctx, train, s, f"arms.{a}")

    none = next((a for a, s in arms.items() if s is None), None)
    baseline = _str(ctx, raw, "baseline", none or next(iter(arms)))
    if baseline not in arms:
        raise ctx.error("baseline", f"{baseline!r} is not an arm ({', '.join(arms)})")
    reference = _str(ctx, raw, "reference", None)
    if reference is not None and reference not in arms:
        raise ctx.error("reference", f"{reference!r} is not an arm ({', '.join(arms)})")

    return ExperimentConfig(
        path=str(p.resolve()), name=name, base=base, seeds=_seeds(ctx, raw.get("seeds")), judge=judge,
        suites=list(suites), eval=eval_, suite_eval=suite_eval, eval_base=eval_base, train=train,
        data_defaults=data_defaults, datasets=datasets, check_against=check_against, pre_stages=pre, arms=arms,
        post_stages=post, baseline=baseline, reference=reference,
    )


__all__ = ["NONE_ARM", "Dataset", "ExperimentConfig", "Stage", "load_config"]
