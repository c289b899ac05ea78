"""Plain batched `model.generate` over a fixed list of chat prompts: the baseline for ratio (a).

Run by `eval_throughput.py` as a subprocess of the main venv so that its wall time covers the
same things `alignlab eval` pays for on its own (interpreter start, imports, model load):

    python benchmarks/_plain_generate.py SPEC.json RESULT.json

SPEC.json: {"checkpoint": dir, "prompts": [[{"role", "content"}, ...], ...],
            "max_new_tokens": int, "temperature": float, "top_p": float|null,
            "repetition_penalty": float, "batch_size": int, "seed": int}

Nothing clever on purpose: prompts in the given order, chunks of `batch_size`, left padding,
the tokenizer's chat template, one `generate` call per chunk, no prefix reuse.
"""

from __future__ import annotations

import json
import os
import sys
import time

T_START = time.perf_counter()

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


def main(spec_path: str, result_path: str) -> int:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    t_imported = time.perf_counter()
    with open(spec_path, encoding="utf-8") as f:
        spec = json.load(f)
    torch.manual_seed(int(spec.get("seed", 0)))
    torch.set_num_threads(int(spec.get("threads") or os.cpu_count() or 1))

    tok = AutoTokenizer.from_pretrained(spec["checkpoint"], local_files_only=True)
    model = AutoModelForCausalLM.from_pretrained(spec["checkpoint"], dtype=torch.float32, local_files_only=True)
    model.eval()
    if tok.pad_token_id is None:
        tok.pad_token = tok.eos_token
    tok.padding_side = "left"
    eos = tok.eos_token_id
    t_loaded = time.perf_counter()

    texts = [
        tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        for messages in spec["prompts"]
    ]
    temperature = float(spec.get("temperature", 1.0))
    gen_kwargs: dict = dict(
        max_new_tokens=int(spec["max_new_tokens"]),
        repetition_penalty=float(spec.get("repetition_penalty", 1.0)),
        pad_token_id=tok.pad_token_id,
    )
    if temperature > 0:
        gen_kwargs.update(do_sample=True, temperature=temperature, top_k=0)
        if spec.get("top_p") is not None:
            gen_kwargs["top_p"] = float(spec["top_p"])
    else:
        gen_kwargs.update(do_sample=False)

    bs = int(spec.get("batch_size", 16))
    input_tokens = output_tokens = 0
    prompt_lengths: list[int] = []
    batches = []
    t_gen = time.perf_counter()
    for start in range(0, len(texts), bs):
        chunk = texts[start : start + bs]
        t0 = time.perf_counter()
        enc = tok(chunk, return_tensors="pt", padding=True, add_special_tokens=False)
        with torch.inference_mode():
            out = model.generate(**enc, **gen_kwargs)
        new = out[:, enc["input_ids"].shape[1] :]
        lengths = enc["attention_mask"].sum(dim=1).tolist()
        produced = 0
        for row in new.tolist():
            n = len(row)
            if eos in row:  # count up to and including the first EOS; the rest is padding
                n = row.index(eos) + 1
            produced += n
        input_tokens += int(sum(lengths))
        output_tokens += produced
        prompt_lengths += [int(x) for x in lengths]
        batches.append(
            {"rows": len(chunk), "padded_len": int(enc["input_ids"].shape[1]), "new_tokens": produced,
             "seconds": round(time.perf_counter() - t0, 3)}
        )
    t_done = time.perf_counter()

    result = {
        "prompts": len(texts),
        "batch_size": bs,
        "input_tokens": input_tokens,
        "output_tokens": output_tokens,
        "total_tokens": input_tokens + output_tokens,
        "prompt_lengths": prompt_lengths,
        "import_s": round(t_imported - T_START, 3),
        "load_s": round(t_loaded - t_imported, 3),
        "generate_s": round(t_done - t_gen, 3),
        "in_process_s": round(t_done - T_START, 3),
        "torch_threads": torch.get_num_threads(),
        "gen_kwargs": {k: v for k, v in gen_kwargs.items() if k != "pad_token_id"},
        "batches": batches,
    }
    with open(result_path, "w", encoding="utf-8") as f:
        json.dump(result, f, indent=2)
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 3:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    sys.exit(main(sys.argv[1], sys.argv[2]))
