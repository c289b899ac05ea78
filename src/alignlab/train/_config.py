"""`TrainConfig`: every hyper-parameter of `alignlab train`, doubling as its command line.

Defaults fit the embedded 135M model on a 2-core CPU (≈150 training tokens/s: a step of
8×512 packed tokens takes ~25 s). On GPUs raise `--batch-size`/`--max-length` and set
`--dtype bfloat16 --gradient-checkpointing` for larger models.
"""

from __future__ import annotations

import argparse
import math
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from alignlab.errors import UserError

DTYPES = ("auto", "float32", "bfloat16", "float16")
SCHEDULERS = ("cosine", "linear", "constant", "constant_with_warmup")
# Fields that change how a run looks, not what it computes: a re-run may differ in them.
_PRESENTATION = ("out", "progress")


def _f(default: Any, help: str, **kw: Any) -> Any:
    if isinstance(default, list):
        return field(default_factory=lambda: list(default), metadata={"help": help, **kw})
    return field(default=default, metadata={"help": help, **kw})


@dataclass
class TrainConfig:
    base: str = _f("embedded", "base model: 'embedded', a checkpoint directory, or a Hub id (org/name)")
    data: list[str] = _f([], "FILE[:WEIGHT][,FILE[:WEIGHT]…] written by `alignlab data build`; "
                             "WEIGHT = times each record is used per epoch (default 1; 0.5 = a random half)")
    out: str = _f("", "output directory: adapter/, merged checkpoint, train.json, loss.csv, loss.png")
    epochs: float = _f(1.0, "passes over the mixed data")
    max_steps: int = _f(-1, "stop after this many optimizer steps (-1: run the epochs)")
    batch_size: int = _f(8, "sequences per device per step (packed rows when packing)")
    grad_accum: int = _f(1, "gradient accumulation steps")
    max_length: int = _f(512, "tokens per sequence; longer records are cut (counted in train.json)")
    packing: bool = _f(True, "pack several examples into each sequence (best-fit decreasing, no cross-attention)")
    learning_rate: float = _f(2e-4, "peak learning rate")
    lr_scheduler: str = _f("cosine", "learning-rate schedule", choices=SCHEDULERS)
    warmup_ratio: float = _f(0.03, "share of the steps spent warming up")
    weight_decay: float = _f(0.0, "AdamW weight decay")
    max_grad_norm: float = _f(1.0, "gradient clipping")
    lora_r: int = _f(16, "LoRA rank")
    lora_alpha: int = _f(32, "LoRA alpha (scale = alpha / r)")
    lora_dropout: float = _f(0.05, "LoRA dropout")
    lora_targets: str = _f("all-linear", "modules to adapt: 'all-linear' or comma-separated names (q_proj,v_proj)")
    dtype: str = _f("auto", "training dtype: auto = bfloat16 on a GPU that supports it, float32 otherwise",
                    choices=DTYPES)
    gradient_checkpointing: bool = _f(False, "trade compute for memory (useful for large models on GPUs)")
    seed: int = _f(0, "seed for weighting, shuffling, LoRA init and dropout")
    logging_steps: int = _f(1, "log loss every N steps")
    save_steps: int = _f(50, "checkpoint every N steps (a re-run resumes from the last one)")
    progress: bool = _f(True, "show a progress bar")

    def validate(self) -> None:
        """Raise UserError naming the flag for any value out of range."""
        if not self.out:
            _bad("out", "an output directory is required")
        if not self.data:
            _bad("data", "at least one data file is required")
        for name in ("batch_size", "grad_accum", "lora_r", "lora_alpha", "logging_steps", "save_steps"):
            if getattr(self, name) < 1:
                _bad(name, f"expected a positive integer, got {getattr(self, name)!r}")
        if self.max_length < 16:
            _bad("max_length", f"expected at least 16 tokens, got {self.max_length!r}")
        if self.max_steps == 0 or self.max_steps < -1:
            _bad("max_steps", f"expected a positive number of steps or -1, got {self.max_steps!r}")
        if not (self.epochs > 0 and math.isfinite(self.epochs)):
            _bad("epochs", f"expected a positive number, got {self.epochs!r}")
        if not (self.learning_rate > 0 and math.isfinite(self.learning_rate)):
            _bad("learning_rate", f"expected a positive number, got {self.learning_rate!r}")
        for name in ("warmup_ratio", "lora_dropout"):
            if not 0 <= getattr(self, name) < 1:
                _bad(name, f"expected a number in [0, 1), got {getattr(self, name)!r}")
        if self.weight_decay < 0 or self.max_grad_norm <= 0:
            _bad("weight_decay" if self.weight_decay < 0 else "max_grad_norm", "expected a non-negative number")
        if self.dtype not in DTYPES:
            _bad("dtype", f"expected one of {', '.join(DTYPES)}, got {self.dtype!r}")
        if self.lr_scheduler not in SCHEDULERS:
            _bad("lr_scheduler", f"expected one of {', '.join(SCHEDULERS)}, got {self.lr_scheduler!r}")
        if not self.lora_targets.strip():
            _bad("lora_targets", "expected 'all-linear' or module names")

    def fingerprint(self) -> dict[str, Any]:
        """What a run computes: a re-run into the same directory must match it."""
        return {k: v for k, v in asdict(self).items() if k not in _PRESENTATION}


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def _bad(name: str, problem: str) -> None:
    raise UserError(problem, field=_flag(name))


def add_train_arguments(parser: argparse.ArgumentParser) -> None:
    """One flag per TrainConfig field (`--max-length`, `--no-packing`, …), TRL style."""
    defaults = TrainConfig()
    for f in fields(TrainConfig):
        help_ = f.metadata["help"]
        default = getattr(defaults, f.name)
        if f.type in ("bool", bool):
            parser.add_argument(_flag(f.name), action=argparse.BooleanOptionalAction, default=default, help=help_)
        elif f.name == "data":
            parser.add_argument("--data", action="append", default=None, required=True, metavar="FILE[:W],…",
                                help=help_)
        elif f.name == "out":
            parser.add_argument("--out", required=True, metavar="DIR", help=help_)
        else:
            kind = {"int": int, "float": float}.get(str(f.type), str)
            parser.add_argument(_flag(f.name), type=kind, default=default, choices=f.metadata.get("choices"),
                                help=f"{help_} (default: {default})")


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    cfg = TrainConfig(**{f.name: getattr(args, f.name) for f in fields(TrainConfig) if hasattr(args, f.name)})
    cfg.validate()
    return cfg
