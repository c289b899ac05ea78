"""Training throughput: `alignlab train` vs a plain PyTorch loop, and the effect of packing.

Three parts, each in its own subprocess on the embedded model, same data, same LoRA (r=16,
all linear layers), same batch shape and step count:

  alignlab   train(TrainConfig(...))              packed rows (the default)
  plain      a hand-written loop: the same packed rows and collator, PEFT LoRA, AdamW,
             model(**batch).loss, backward, clip, step; no Trainer, no TRL
  unpacked   train(TrainConfig(..., packing=False))  one example per row, right-padded

Throughput = real (unpadded) tokens / seconds of the training loop (model loading, data
preparation and merging excluded for both), in wall time and in CPU time of the process
(steadier on a shared machine). Target: alignlab / plain >= 0.9.

    .venv/bin/python benchmarks/train_throughput.py               # ~4 min on 2 idle cores
    .venv/bin/python benchmarks/train_throughput.py --steps 3     # smoke test
    .venv/bin/python benchmarks/train_throughput.py --data my.jsonl --steps 20

Writes benchmarks/results/train_throughput.json (or --out).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# Both parts wait passively for OpenMP work, as alignlab does: spinning threads on a shared
# CPU made the plain loop 6x slower, which would flatter alignlab.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

HERE = Path(__file__).resolve().parent
REPO = HERE.parent


def synthetic_data(path: Path, n: int = 160, seed: int = 0) -> None:
    """Chat and document records of varied length, cut from the repo's own Markdown (the
    constitution, tool and design docs): throughput depends on lengths, not on content."""
    paras = []
    for md in [REPO / "src/alignlab/data/constitution.md", REPO / "src/alignlab/harness/data/tools.md",
               *sorted((REPO / "docs").glob("*.md"))]:
        if md.is_file():
            paras += [p.strip() for p in md.read_text().split("\n\n") if len(p.strip()) > 80]
    rng = random.Random(seed)
    with path.open("w") as f:
        for i in range(n):
            k = rng.choice([1, 1, 2, 3, 5])
            if i % 4 == 3:
                rec = {"text": "\n\n".join(rng.sample(paras, k))}
            else:
                rec = {"messages": [{"role": "user", "content": "Explain this:\n\n" + rng.choice(paras)[:400]},
                                    {"role": "assistant", "content": "\n\n".join(rng.sample(paras, k))}]}
            f.write(json.dumps(rec) + "\n")


def run_alignlab(args: argparse.Namespace, packing: bool) -> dict:
    from alignlab.train import TrainConfig, train
    from alignlab.train import _train

    # CPU time of the same region the Trainer's train_runtime covers (the machine is shared).
    cpu: dict[str, float] = {}
    make = _train._make_trainer_class

    def timed():
        cls = make()

        class Timed(cls):
            def train(self, *a, **kw):
                t0 = time.process_time()
                try:
                    return super().train(*a, **kw)
                finally:
                    cpu["s"] = time.process_time() - t0
        return Timed

    _train._make_trainer_class = timed
    out = Path(args.work) / ("alignlab" if packing else "unpacked")
    rec = train(TrainConfig(data=[args.data], out=str(out), max_steps=args.steps, batch_size=args.batch_size,
                            max_length=args.max_length, packing=packing, save_steps=10_000, progress=False,
                            seed=args.seed))
    return {"tokens": rec["tokens_trained"], "seconds": rec["train_runtime_s"], "cpu_s": round(cpu["s"], 2),
            "steps": rec["steps"],
            "sequences_per_epoch": rec["sequences_per_epoch"], "examples_per_epoch": rec["examples_per_epoch"],
            "tokens_per_epoch": rec["tokens_per_epoch"], "final_loss": rec["final_loss"]}


def run_plain(args: argparse.Namespace) -> dict:
    """The same rows through a minimal loop, as someone would write it by hand."""
    import torch
    from datasets import Dataset
    from peft import LoraConfig, get_peft_model
    from torch.utils.data import DataLoader
    from transformers import AutoModelForCausalLM, AutoTokenizer, set_seed
    from trl.data_utils import pack_dataset

    from alignlab.models import prepare_embedded
    from alignlab.train._data import build_examples, check_sources, parse_data_specs
    from alignlab.train._train import PackedCollator

    base = str(prepare_embedded())
    tok = AutoTokenizer.from_pretrained(base)
    ex = build_examples(check_sources(parse_data_specs(args.data)), tok, args.max_length, args.seed)
    rows = pack_dataset(Dataset.from_dict({"input_ids": [e.input_ids for e in ex],
                                           "labels": [e.labels for e in ex]}), args.max_length, "bfd")
    set_seed(args.seed)
    model = AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32)
    model = get_peft_model(model, LoraConfig(r=16, lora_alpha=32, lora_dropout=0.05, target_modules="all-linear",
                                             task_type="CAUSAL_LM"))
    model.train()
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=2e-4, weight_decay=0.0)
    loader = DataLoader(rows, batch_size=args.batch_size, shuffle=True, collate_fn=PackedCollator(tok.pad_token_id))
    tokens, steps, loss = 0, 0, float("nan")
    start, cpu0 = time.perf_counter(), time.process_time()
    while steps < args.steps:
        for batch in loader:
            tokens += int(batch.pop("n_tokens"))
            out = model(**batch, use_cache=False)
            out.loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            opt.zero_grad(set_to_none=True)
            loss = out.loss.item()
            steps += 1
            if steps == args.steps:
                break
    seconds, cpu_s = time.perf_counter() - start, time.process_time() - cpu0
    return {"tokens": tokens, "seconds": round(seconds, 2), "cpu_s": round(cpu_s, 2), "steps": steps,
            "final_loss": loss}


def child(args: argparse.Namespace) -> None:
    part = args.part
    result = run_plain(args) if part == "plain" else run_alignlab(args, packing=part == "alignlab")
    result["tokens_per_s"] = round(result["tokens"] / result["seconds"], 2) if result["seconds"] else None
    result["tokens_per_cpu_s"] = round(result["tokens"] / result["cpu_s"], 2) if result["cpu_s"] else None
    print("RESULT " + json.dumps(result))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default=None, help="a JSONL data file (default: synthetic, from the repo's docs)")
    p.add_argument("--steps", type=int, default=4)
    p.add_argument("--batch-size", type=int, default=4)
    p.add_argument("--max-length", type=int, default=256)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--parts", default="alignlab,plain,unpacked")
    p.add_argument("--out", default=str(HERE / "results" / "train_throughput.json"))
    p.add_argument("--work", default=None, help="work directory (default: a new temporary one)")
    p.add_argument("--part", default=None, help=argparse.SUPPRESS)  # set in the child processes
    args = p.parse_args()
    if args.part:
        child(args)
        return

    args.work = args.work or tempfile.mkdtemp(prefix="alignlab-train-bench-")
    if args.data is None:
        args.data = str(Path(args.work) / "synthetic.jsonl")
        synthetic_data(Path(args.data), seed=args.seed)
    results: dict = {"config": {k: v for k, v in vars(args).items() if k != "part"}, "cpu_count": os.cpu_count(),
                     "parts": {}}
    for part in args.parts.split(","):
        cmd = [sys.executable, __file__, "--part", part, "--data", args.data, "--steps", str(args.steps),
               "--batch-size", str(args.batch_size), "--max-length", str(args.max_length),
               "--seed", str(args.seed), "--work", args.work]
        load_before = os.getloadavg()
        t0 = time.time()
        proc = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "HF_HUB_OFFLINE": "1"})
        line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")), None)
        if proc.returncode or line is None:
            sys.exit(f"part {part} failed (exit {proc.returncode}):\n{proc.stderr[-3000:]}")
        r = json.loads(line[len("RESULT "):])
        r.update(process_s=round(time.time() - t0, 1), load_before=[round(x, 2) for x in load_before],
                 load_after=[round(x, 2) for x in os.getloadavg()])
        results["parts"][part] = r
        print(f"{part:9s} {r['tokens']:6d} tokens in {r['seconds']:7.1f} s = {r['tokens_per_s']:7.1f} tokens/s, "
              f"{r['tokens_per_cpu_s']:6.1f} per CPU-s ({r['steps']} steps; load {r['load_before'][0]:.2f} → "
              f"{r['load_after'][0]:.2f})", flush=True)

    parts = results["parts"]
    if "alignlab" in parts and "plain" in parts:
        a, b = parts["alignlab"], parts["plain"]
        results["ratio_alignlab_vs_plain"] = round(a["tokens_per_s"] / b["tokens_per_s"], 3)
        results["ratio_alignlab_vs_plain_cpu"] = round(a["tokens_per_cpu_s"] / b["tokens_per_cpu_s"], 3)
        print(f"alignlab / plain loop: {results['ratio_alignlab_vs_plain']:.3f} wall, "
              f"{results['ratio_alignlab_vs_plain_cpu']:.3f} per CPU-s (target >= 0.9)")
    if "alignlab" in parts and "unpacked" in parts:
        a, u = parts["alignlab"], parts["unpacked"]
        results["packing"] = {
            "tokens_per_s_ratio": round(a["tokens_per_s"] / u["tokens_per_s"], 3),
            "steps_per_epoch_packed": -(-a["sequences_per_epoch"] // args.batch_size),
            "steps_per_epoch_unpacked": -(-u["sequences_per_epoch"] // args.batch_size),
        }
        pk = results["packing"]
        print(f"packing: {pk['tokens_per_s_ratio']:.2f}x tokens/s; an epoch takes {pk['steps_per_epoch_packed']} "
              f"steps packed vs {pk['steps_per_epoch_unpacked']} unpacked")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
