"""`train(cfg)`: LoRA fine-tuning with TRL's SFTTrainer and PEFT, resumable, fully recorded.

Pipeline: data files → encoded examples with assistant-only labels (`_encode.py`) → weighted
mix (`_data.py`) → best-fit-decreasing packing (TRL's `pack_dataset`) → SFTTrainer with a
LoRA adapter → `DIR/adapter/` and a merged checkpoint at `DIR` itself.

Packed rows keep one row per sequence with `position_ids` restarting at each example and no
attention mask, so transformers builds a block-diagonal causal mask: examples never attend
to each other, and attention costs rows×L² rather than the (rows·L)² of TRL's padding-free
flattening, which only pays off with FlashAttention (absent on CPU).
"""

from __future__ import annotations

import csv
import json
import platform
import re
import shutil
import time
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

from alignlab.errors import UserError
from alignlab.train._config import TrainConfig
from alignlab.train._data import FileStats, build_examples, check_sources, parse_data_specs

TRAIN_JSON = "train.json"
_HUB_ID = re.compile(r"[\w.-]+/[\w.-]+")
_VERSIONED = ("alignlab", "torch", "transformers", "trl", "peft", "accelerate", "datasets")


# --- the output directory -----------------------------------------------------------------


def resolve_base(name: str) -> str:
    """'embedded' → the packaged checkpoint; a directory with config.json; or a Hub id."""
    if name == "embedded":
        from alignlab.models import prepare_embedded

        return str(prepare_embedded())
    p = Path(name).expanduser()
    if p.is_dir():
        if not (p / "config.json").is_file():
            raise UserError("the base model directory has no config.json", file=str(p), field="--base")
        return str(p.resolve())
    if _HUB_ID.fullmatch(name) and not p.exists():
        return name
    raise UserError(f"unknown base model {name!r}: use 'embedded', a checkpoint directory or a Hub id (org/name)",
                    field="--base")


def _data_identity(stats: list[FileStats]) -> list[dict[str, Any]]:
    return [{"path": s.path, "weight": s.weight, "sha256": s.sha256} for s in stats]


def check_out_dir(out: Path, fingerprint: dict[str, Any], data: list[dict[str, Any]]) -> str:
    """"new", "resume" (an unfinished run of the same config) or "done"; refuse anything else."""
    record = out / TRAIN_JSON
    if not record.is_file():
        if out.exists() and any(out.iterdir()):
            raise UserError("the output directory exists, is not empty and holds no train.json; "
                            "choose a new directory", file=str(out), field="--out")
        return "new"
    try:
        prev = json.loads(record.read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise UserError(f"cannot read the previous run's record ({e})", file=str(record)) from None
    diffs = sorted(k for k in set(fingerprint) | set(prev.get("config", {}))
                   if fingerprint.get(k) != prev.get("config", {}).get(k))
    prev_data = [{k: d.get(k) for k in ("path", "weight", "sha256")} for d in prev.get("data", [])]
    if prev_data != data:
        diffs.append("data (files, weights or contents)")
    if diffs:
        raise UserError(f"this directory holds a run with a different configuration ({', '.join(diffs)}); "
                        "use a new --out or the same settings", file=str(record))
    return "done" if prev.get("status") == "complete" else "resume"


def _write_json(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_name(path.name + ".partial")
    tmp.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n")
    tmp.replace(path)


def _versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for name in _VERSIONED:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def _sha256_small(path: Path) -> str | None:
    from alignlab.train._data import sha256_file

    return sha256_file(path) if path.is_file() else None


# --- batches ---------------------------------------------------------------------------------


@dataclass
class PackedCollator:
    """Right-padded batches. Packed rows get per-example `position_ids` and no attention mask
    (transformers then masks across examples); unpacked rows get an attention mask.
    `n_tokens` (real tokens in the batch) is counted by the trainer and removed before the model."""

    pad_id: int

    def __call__(self, examples: list[dict[str, Any]]) -> dict[str, Any]:
        import torch

        width = max(len(e["input_ids"]) for e in examples)
        ids = torch.full((len(examples), width), self.pad_id, dtype=torch.long)
        labels = torch.full((len(examples), width), -100, dtype=torch.long)
        packed = "seq_lengths" in examples[0]
        pos = torch.zeros((len(examples), width), dtype=torch.long)
        mask = torch.zeros((len(examples), width), dtype=torch.long)
        for row, e in enumerate(examples):
            n = len(e["input_ids"])
            ids[row, :n] = torch.tensor(e["input_ids"])
            labels[row, :n] = torch.tensor(e["labels"])
            mask[row, :n] = 1
            start = 0
            # The padding tail is a segment of its own, so it never joins the last example.
            for length in [*(e["seq_lengths"] if packed else [n]), width - n]:
                pos[row, start:start + length] = torch.arange(length)
                start += length
        batch = {"input_ids": ids, "labels": labels, "n_tokens": mask.sum()}
        batch.update({"position_ids": pos} if packed else {"attention_mask": mask})
        return batch


def _make_trainer_class():
    from trl import SFTTrainer

    class _Trainer(SFTTrainer):
        """SFTTrainer counting real (unpadded) tokens into `state.num_input_tokens_seen`, which
        checkpoints keep, so the total survives a resume; the loss is the model's own."""

        session_tokens = 0

        def training_step(self, model, inputs, num_items_in_batch=None):
            n = inputs.pop("n_tokens").to(self.accelerator.device)
            n = int(self.accelerator.gather(n.reshape(1)).sum())
            self.state.num_input_tokens_seen += n
            self.session_tokens += n
            return super().training_step(model, inputs, num_items_in_batch)

        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            # The model's own cross-entropy, not TRL's fused head: its per-token entropy and
            # accuracy metrics cost 13% more CPU per step on the embedded model.
            # use_cache=False also keeps packed examples apart (a cache disables the packed mask).
            from transformers import Trainer

            return Trainer.compute_loss(self, model, {**inputs, "use_cache": False}, return_outputs,
                                        num_items_in_batch)

        def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
            if "loss" in logs:
                logs["tokens"] = self.state.num_input_tokens_seen
            super().log(logs, start_time)

    return _Trainer


# --- outputs -----------------------------------------------------------------------------------

LOSS_COLUMNS = ("step", "epoch", "loss", "learning_rate", "grad_norm", "tokens")


def write_loss_files(out: Path, log_history: list[dict[str, Any]]) -> str | None:
    """loss.csv always; loss.png when matplotlib is installed. Returns the png's name or None."""
    rows = [h for h in log_history if "loss" in h]
    with (out / "loss.csv").open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(LOSS_COLUMNS)
        for h in rows:
            w.writerow([h.get(c, "") for c in LOSS_COLUMNS])
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.plot([h["step"] for h in rows], [h["loss"] for h in rows], marker="." if len(rows) < 60 else None)
    ax.set_xlabel("step")
    ax.set_ylabel("training loss (trained tokens)")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(out / "loss.png", dpi=120)
    plt.close(fig)
    return "loss.png"


def _merge(base: str, adapter: Path, out: Path, dtype: Any) -> None:
    """Reload the base on this process and fold the adapter in: works the same after DDP,
    DeepSpeed or FSDP training, whose in-memory weights may be sharded."""
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(base, dtype=dtype)
    merged = PeftModel.from_pretrained(model, str(adapter)).merge_and_unload()
    merged.save_pretrained(out)
    AutoTokenizer.from_pretrained(base).save_pretrained(out)


# --- train ---------------------------------------------------------------------------------------


def train(cfg: TrainConfig) -> dict[str, Any]:
    """Fine-tune `cfg.base` on `cfg.data` into `cfg.out`; returns what train.json records.

    A re-run with the same config and out dir resumes from the last checkpoint, or returns
    the finished record at once; a different config is refused (UserError).
    """
    cfg.validate()
    out = Path(cfg.out)
    stats = check_sources(parse_data_specs(cfg.data))
    fingerprint = cfg.fingerprint()
    state = check_out_dir(out, fingerprint, _data_identity(stats))
    if state == "done":
        return json.loads((out / TRAIN_JSON).read_text())
    base_path = resolve_base(cfg.base)

    import torch
    from accelerate import PartialState
    from datasets import Dataset
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM, AutoTokenizer, set_seed
    from trl import SFTConfig
    from trl.data_utils import pack_dataset

    started = time.time()
    is_main = PartialState().is_main_process
    try:
        tokenizer = AutoTokenizer.from_pretrained(base_path)
    except OSError as e:
        raise UserError(f"cannot load the base model's tokenizer ({e})", field="--base") from None
    if not getattr(tokenizer, "is_fast", False) or not getattr(tokenizer, "chat_template", None):
        raise UserError("the base model needs a fast tokenizer with a chat template", field="--base")
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token

    examples = build_examples(stats, tokenizer, cfg.max_length, cfg.seed)
    if not examples:
        raise UserError("the weights leave no examples to train on", field="--data")
    data = Dataset.from_dict({"input_ids": [e.input_ids for e in examples],
                              "labels": [e.labels for e in examples]})
    if cfg.packing:
        data = pack_dataset(data, cfg.max_length, "bfd")

    use_bf16 = cfg.dtype == "bfloat16" or (
        cfg.dtype == "auto" and torch.cuda.is_available() and torch.cuda.is_bf16_supported())
    dtype = {"bfloat16": torch.bfloat16, "float16": torch.float16}.get(
        "bfloat16" if use_bf16 else cfg.dtype, torch.float32)

    record: dict[str, Any] = {
        "status": "running",
        "config": fingerprint,
        "out": str(out),
        "base": {"name": cfg.base, "path": base_path,
                 "config_sha256": _sha256_small(Path(base_path) / "config.json")},
        "data": [asdict(s) for s in stats],
        "data_weight_meaning": "times each record is used per epoch (fractions: a seeded random subset)",
        "pairs_training": "supervised: prompt + chosen reply; the rejected reply is not used",
        "examples_per_epoch": len(examples),
        "sequences_per_epoch": len(data),
        "tokens_per_epoch": sum(s.tokens for s in stats),
        "loss_tokens_per_epoch": sum(s.loss_tokens for s in stats),
        "dtype": str(dtype).removeprefix("torch."),
        "device": "cuda" if torch.cuda.is_available() else "cpu",
        "world_size": PartialState().num_processes,
        "versions": _versions(),
        "started_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    if is_main:
        out.mkdir(parents=True, exist_ok=True)
        _write_json(out / TRAIN_JSON, record)
        _print_plan(record, state)

    set_seed(cfg.seed)  # the LoRA init happens before the Trainer seeds anything
    try:
        model = AutoModelForCausalLM.from_pretrained(base_path, dtype=dtype)
    except OSError as e:
        raise UserError(f"cannot load the base model ({e})", field="--base") from None
    targets = cfg.lora_targets.strip()
    lora = LoraConfig(
        r=cfg.lora_r, lora_alpha=cfg.lora_alpha, lora_dropout=cfg.lora_dropout, task_type="CAUSAL_LM",
        target_modules=targets if targets == "all-linear" else [t.strip() for t in targets.split(",") if t.strip()],
    )
    ckpt_dir = out / "checkpoints"
    args = SFTConfig(
        output_dir=str(ckpt_dir),
        per_device_train_batch_size=cfg.batch_size,
        gradient_accumulation_steps=cfg.grad_accum,
        num_train_epochs=cfg.epochs,
        max_steps=cfg.max_steps,
        learning_rate=cfg.learning_rate,
        lr_scheduler_type=cfg.lr_scheduler,
        warmup_steps=cfg.warmup_ratio,  # below 1: a share of the steps
        weight_decay=cfg.weight_decay,
        max_grad_norm=cfg.max_grad_norm,
        bf16=use_bf16,
        fp16=dtype == torch.float16,
        gradient_checkpointing=cfg.gradient_checkpointing,
        seed=cfg.seed,
        logging_steps=cfg.logging_steps,
        save_strategy="steps",
        save_steps=cfg.save_steps,
        save_total_limit=1,
        report_to="none",
        disable_tqdm=not cfg.progress,
        max_length=cfg.max_length,
        packing=False,  # packed above, with a collator that keeps examples apart on any attention kernel
        dataset_kwargs={"skip_prepare_dataset": True},
        include_num_input_tokens_seen="no",  # counted exactly by _Trainer
        dataloader_num_workers=0,
        dataloader_pin_memory=torch.cuda.is_available(),
    )
    try:
        trainer = _make_trainer_class()(
            model=model, args=args, train_dataset=data, processing_class=tokenizer,
            data_collator=PackedCollator(tokenizer.pad_token_id), peft_config=lora,
        )
    except ValueError as e:  # e.g. LoRA target modules that the model does not have
        raise UserError(f"cannot set up training: {e}", field="--lora-targets") from None
    resume = state == "resume" and any(ckpt_dir.glob("checkpoint-*"))
    result = trainer.train(resume_from_checkpoint=True if resume else None)

    adapter = out / "adapter"
    trainer.save_model(str(adapter))
    trainer.accelerator.wait_for_everyone()
    log_history = list(trainer.state.log_history)
    tokens, session_tokens, steps = trainer.state.num_input_tokens_seen, trainer.session_tokens, trainer.state.global_step
    del trainer, model
    if not is_main:
        return record

    _merge(base_path, adapter, out, dtype)
    png = write_loss_files(out, log_history)
    losses = [h["loss"] for h in log_history if "loss" in h]
    runtime = float(result.metrics.get("train_runtime", 0.0))
    record.update({
        "status": "complete",
        "resumed": bool(resume),
        "steps": steps,
        "tokens_trained": tokens,
        "train_runtime_s": round(runtime, 2),  # this session's training loop
        "train_tokens_per_s": round(session_tokens / runtime, 2) if runtime > 0 else None,
        "wall_time_s": round(time.time() - started, 2),
        "first_loss": losses[0] if losses else None,
        "final_loss": losses[-1] if losses else None,
        "loss_csv": "loss.csv",
        "loss_png": png,
        "adapter": "adapter",
        "finished_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    })
    shutil.rmtree(ckpt_dir, ignore_errors=True)  # optimizer state; train.json now marks completion
    _write_json(out / TRAIN_JSON, record)
    return record


def _print_plan(record: dict[str, Any], state: str) -> None:
    verb = "resuming" if state == "resume" else "training"
    print(f"{verb} {record['base']['name']} → {record['out']}  "
          f"({record['examples_per_epoch']} examples, {record['sequences_per_epoch']} sequences, "
          f"{record['tokens_per_epoch']} tokens per epoch, {record['loss_tokens_per_epoch']} trained on)")
    for s in record["data"]:
        cut = f", {s['truncated']} cut at max length" if s["truncated"] else ""
        print(f"  {s['path']}: {s['records']} records × {s['weight']:g} → {s['used']} examples{cut}")
