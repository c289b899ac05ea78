"""Fine-tuning: `alignlab train --base MODEL --data FILE[:W][,FILE[:W]…] --out DIR`.

LoRA (PEFT) through TRL's SFTTrainer. Chat records train on the assistant's turns only,
rendered exactly as the harness shows episodes in text tool mode; documents train on every
token; `pairs` train on prompt + chosen. DIR gets `adapter/`, a merged checkpoint that
`alignlab eval --model DIR` and Inspect's `hf/DIR` load, `train.json`, `loss.csv`, `loss.png`.

    cfg = TrainConfig(base="embedded", data=["a.jsonl:2,b.jsonl"], out="runs/ft")
    record = train(cfg)
"""

import os as _os

# As in alignlab.models: OpenMP threads spinning while they wait slow training on a shared
# CPU several-fold (measured 6x for a LoRA step); only effective before torch is imported.
_os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from alignlab.train._config import TrainConfig, add_train_arguments, config_from_args  # noqa: E402

# The rest pulls in transformers (~2 s); loaded on first use so `alignlab --help` stays quick.
_LAZY = {
    "DataSource": "alignlab.train._data", "parse_data_specs": "alignlab.train._data",
    "Encoded": "alignlab.train._encode", "assistant_spans": "alignlab.train._encode",
    "encode_record": "alignlab.train._encode", "record_turns": "alignlab.train._render",
    "tool_specs": "alignlab.train._render", "train": "alignlab.train._train",
}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(name)


__all__ = [
    "DataSource",
    "Encoded",
    "TrainConfig",
    "add_train_arguments",
    "assistant_spans",
    "config_from_args",
    "encode_record",
    "parse_data_specs",
    "record_turns",
    "tool_specs",
    "train",
]
