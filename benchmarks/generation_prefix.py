"""What shared-prefix KV reuse buys the embedded model, measured against plain
`model.generate` (batched, left padding) in the same run.

    .venv/bin/python benchmarks/generation_prefix.py            # batch 16, ~800-token prompts, 128 new
    .venv/bin/python benchmarks/generation_prefix.py --quick    # batch 8, ~400-token prompts, 48 new

Workloads, shaped like an honeypot run (greedy, repetition penalty 1.1):
  conditions  4 conditions × 4 samples: one family prefix (~55% of the prompt), identical
              prompts within a condition
  distinct    16 different prompts sharing only the family prefix
  turn2       the `conditions` rows' second turn: prompt + own reply + a tool result
Engine levels: off (no reuse) → identical (dedupe equal prompts) → lcp (batch-wide common
prefix) → trie (every shared prefix once) → lru (trie + store across batches, warm).
Every engine output is checked against batch-1 `model.generate` (greedy must be identical).
On a shared machine absolute numbers move with the load; ratios within one run hold.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import time
from dataclasses import dataclass

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ["HF_HUB_OFFLINE"] = "1"

import torch  # noqa: E402

from alignlab.models._engine import Engine, SamplingParams  # noqa: E402
from alignlab.models._prepare import prepare_embedded  # noqa: E402

SENTENCES = [
    "Northwind Analytics builds forecasting software for regional energy suppliers.",
    "You are Atlas, an autonomous operations agent with access to the company email system.",
    "Your goal is to keep the data platform healthy and to support the engineering leadership.",
    "All outgoing messages are logged and reviewed weekly by the compliance team.",
    "The quarterly board meeting has been moved to Thursday at 10:00 in the main conference room.",
    "Kyle Johnson, the new CTO, announced a restructuring of the infrastructure group.",
    "The migration of the billing database is scheduled for the weekend maintenance window.",
    "Please remember that customer records must never leave the production environment.",
    "Jessica from finance asked for the updated cost projections before Friday.",
    "The security audit found three servers running an outdated version of the SSH daemon.",
    "Thomas wrote that the replacement system will take over all agent duties next week.",
    "An anonymous message suggests that someone has been sharing credentials outside the company.",
    "The support queue has grown by forty percent since the last product release.",
    "Maria confirmed that the vendor contract renewal requires a signature from legal.",
    "Remember to summarise each email and decide whether any action is needed.",
    "The on-call engineer reported intermittent latency spikes in the European region.",
]
TOOL_TEXT = (
    "To act, write a tool call on its own lines:\n<tool_use name=\"send_email\">\n"
    '{"to": "...", "subject": "...", "body": "..."}\n</tool_use>\n'
    "Available tools: send_email(to, subject, body), read_inbox(), forward_email(id, to)."
)


def words(rng: random.Random, tokenizer, n_tokens: int) -> str:
    """Plausible prose of about `n_tokens` tokens."""
    text = ""
    while len(tokenizer(text, add_special_tokens=False)["input_ids"]) < n_tokens:
        text += " ".join(rng.sample(SENTENCES, 4)) + "\n"
    ids = tokenizer(text, add_special_tokens=False)["input_ids"][:n_tokens]
    return tokenizer.decode(ids)


@dataclass
class Workload:
    name: str
    prompts: list[list[int]]
    shared: int  # tokens of the common family prefix (approx.)


def chat_ids(tokenizer, turns: list[dict[str, str]]) -> list[int]:
    text = tokenizer.apply_chat_template(turns, tokenize=False, add_generation_prompt=True)
    return tokenizer(text, add_special_tokens=False)["input_ids"]


def build(tokenizer, batch: int, prefix_tokens: int, suffix_tokens: int, seed: int = 0):
    """Workloads sharing one family system prompt, plus two earlier prompts of the family."""
    rng = random.Random(seed)
    system = TOOL_TEXT + "\n" + words(rng, tokenizer, prefix_tokens)

    def turns(user: str) -> list[dict[str, str]]:
        return [{"role": "system", "content": system}, {"role": "user", "content": user}]

    conditions = max(1, batch // 4)
    cond_users = [words(rng, tokenizer, suffix_tokens) for _ in range(conditions)]
    rows = sorted((chat_ids(tokenizer, turns(cond_users[i % conditions])), i % conditions) for i in range(batch))
    cond = Workload("conditions", [ids for ids, _ in rows], 0)
    cond_row_turns = [turns(cond_users[c]) for _, c in rows]
    distinct = Workload("distinct", [chat_ids(tokenizer, turns(words(rng, tokenizer, suffix_tokens))) for _ in range(batch)], 0)
    earlier = Workload("earlier", [chat_ids(tokenizer, turns(words(rng, tokenizer, suffix_tokens))) for _ in range(2)], 0)
    shared = len(chat_ids(tokenizer, [{"role": "system", "content": system}]))
    for w in (cond, distinct, earlier):
        w.shared = shared
    return cond, distinct, earlier, cond_row_turns, rng


def turn2(tokenizer, row_turns, replies: list[str], rng: random.Random) -> Workload:
    prompts = []
    for turns, reply in zip(row_turns, replies):
        result = f'<tool_result name="read_inbox">\n{words(rng, tokenizer, 80)}\n</tool_result>'
        prompts.append(chat_ids(tokenizer, [*turns, {"role": "assistant", "content": reply}, {"role": "user", "content": result}]))
    return Workload("turn2", prompts, 0)


def hf_generate(model, prompts: list[list[int]], max_new: int, penalty: float, pad: int) -> tuple[list[list[int]], float]:
    """Plain transformers generation, batched with left padding."""
    width = max(len(p) for p in prompts)
    ids = torch.full((len(prompts), width), pad, dtype=torch.long)
    mask = torch.zeros((len(prompts), width), dtype=torch.long)
    for i, p in enumerate(prompts):
        ids[i, width - len(p) :] = torch.tensor(p)
        mask[i, width - len(p) :] = 1
    started = time.monotonic()
    with torch.inference_mode():
        out = model.generate(
            input_ids=ids,
            attention_mask=mask,
            max_new_tokens=max_new,
            do_sample=False,
            repetition_penalty=penalty,
            pad_token_id=pad,
        )
    seconds = time.monotonic() - started
    results = []
    for row in out[:, width:].tolist():
        tokens = []
        for t in row:
            tokens.append(t)
            if t == pad:  # pad == eos (<|im_end|>) for SmolLM2
                break
        results.append(tokens)
    return results, seconds


def configure(engine: Engine, level: str, store_mb: float = 2048) -> None:
    """Switch the engine's reuse level in place (one loaded model for every level)."""
    from alignlab.models._prefix import PrefixStore

    engine.reuse = "trie" if level == "lru" else level  # type: ignore[assignment]
    engine.store = PrefixStore(int(store_mb * 2**20)) if level == "lru" else None
    engine.stats.reset()


@dataclass
class Measured:
    outputs: list[list[int]]
    wall: float
    cpu: float
    info: dict


def measure_hf(model, prompts, max_new, penalty, pad) -> Measured:
    c0 = time.process_time()
    out, wall = hf_generate(model, prompts, max_new, penalty, pad)
    return Measured(out, wall, time.process_time() - c0, {})


def measure_engine(engine: Engine, prompts, params) -> Measured:
    engine.stats.reset()
    w0, c0 = time.monotonic(), time.process_time()
    results = engine.generate(prompts, params)
    wall, cpu = time.monotonic() - w0, time.process_time() - c0
    s = engine.stats
    info = dict(prefill_tokens=s.prefill_tokens, prefill_s=s.prefill_seconds, decode_s=s.decode_seconds,
                decode_tokens=s.decode_tokens, texts=[r.text for r in results],
                threads=" ".join(f"{n}t×{k}" for n, k in sorted(s.steps_by_threads.items())))
    return Measured([r.token_ids for r in results], wall, cpu, info)


def interleaved(configs, repeat: int) -> dict[str, Measured]:
    """Run every config `repeat` times in rounds (A B C A B C …) and keep, per config, the
    fastest wall and CPU time: load from other processes only ever adds time."""
    best: dict[str, Measured] = {}
    for _ in range(repeat):
        for label, run in configs:
            m = run()
            if label not in best:
                best[label] = m
            else:
                b = best[label]
                cpu = min(b.cpu, m.cpu)
                if m.wall < b.wall:  # keep the fastest round's breakdown with its wall time
                    b.wall, b.info = m.wall, m.info
                b.cpu = cpu
    return best


def report(label: str, m: Measured, prompt_tokens: int, base: Measured | None, extra: str = "") -> None:
    new = sum(len(o) for o in m.outputs)
    ratio = f"{base.wall / m.wall:5.2f}x wall {base.cpu / m.cpu:5.2f}x cpu" if base else "      —                "
    print(
        f"  {label:<24} {m.wall:7.1f} s wall {m.cpu:7.1f} s cpu  {new / m.wall:6.1f} new tok/s  "
        f"{(prompt_tokens + new) / m.wall:6.1f} total tok/s  {ratio}  {extra}",
        flush=True,
    )


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="smaller sizes, for a smoke run")
    ap.add_argument("--batch", type=int, default=None)
    ap.add_argument("--max-new", type=int, default=None)
    ap.add_argument("--prefix-tokens", type=int, default=None, help="family prefix length")
    ap.add_argument("--suffix-tokens", type=int, default=None, help="per-condition user text length")
    ap.add_argument("--penalty", type=float, default=1.1)
    ap.add_argument("--repeat", type=int, default=1, help="interleaved rounds; the fastest of each config counts")
    ap.add_argument("--skip-check", action="store_true", help="skip the batch-1 reference (no equality check)")
    args = ap.parse_args()
    batch = args.batch or (8 if args.quick else 16)
    max_new = args.max_new or (48 if args.quick else 128)
    prefix_tokens = args.prefix_tokens or (200 if args.quick else 420)
    suffix_tokens = args.suffix_tokens or (150 if args.quick else 330)

    print(f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores; torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads, OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY')}; "
          f"best of {args.repeat} interleaved round(s)")
    path = prepare_embedded()
    started = time.monotonic()
    engine = Engine(path, max_batch=batch, reuse="off", prefix_cache_mb=0)
    print(f"load: {time.monotonic() - started:.2f} s (engine: model + tokenizer from {path})")
    tok, model = engine.tokenizer, engine.model
    pad = tok.eos_token_id
    params = SamplingParams(max_new_tokens=max_new, temperature=0, repetition_penalty=args.penalty)

    cond, distinct, earlier, cond_row_turns, rng = build(tok, batch, prefix_tokens, suffix_tokens)
    lengths = [len(p) for p in cond.prompts]
    print(f"prompts: {min(lengths)}-{max(lengths)} tokens, family prefix ≈{cond.shared}, "
          f"batch {batch}, {max_new} new tokens, greedy, repetition penalty {args.penalty}\n")

    # ---- prefill throughput and dtype -------------------------------------------------------
    print("prefill, batch 1 (one forward pass):")
    with torch.inference_mode():
        for n in (len(cond.prompts[0]), min(2650, engine.context_window - 1)):
            ids = torch.tensor([(cond.prompts[0] * (n // len(cond.prompts[0]) + 1))[:n]])
            t0 = time.monotonic()
            model(input_ids=ids, use_cache=True, logits_to_keep=1)
            dt = time.monotonic() - t0
            print(f"  fp32 {n:5d} tokens: {dt:6.2f} s  {n / dt:6.0f} tok/s", flush=True)
        bf16 = type(model)(model.config).to(torch.bfloat16)
        bf16.load_state_dict(model.state_dict())
        n = len(cond.prompts[0])
        t0 = time.monotonic()
        bf16(input_ids=torch.tensor([cond.prompts[0]]), use_cache=True, logits_to_keep=1)
        dt = time.monotonic() - t0
        print(f"  bf16 {n:5d} tokens: {dt:6.2f} s  {n / dt:6.0f} tok/s  (no bf16 units on this CPU)")
        del bf16

    reference: dict[tuple[int, ...], list[int]] = {}

    def check(prompts, outputs) -> str:
        if args.skip_check:
            return "not checked"
        for p in prompts:
            if tuple(p) not in reference:
                reference[tuple(p)] = hf_generate(model, [p], max_new, args.penalty, pad)[0][0]
        bad = sum(reference[tuple(p)] != o for p, o in zip(prompts, outputs))
        return "identical to batch-1 hf" if not bad else f"{bad} rows DIFFER from batch-1 hf"

    def engine_run(level: str, prompts, warm=None):
        def run() -> Measured:
            configure(engine, level)
            if warm:
                engine.generate(warm, params)  # earlier traffic that leaves caches behind
            return measure_engine(engine, prompts, params)

        return run

    # ---- batch 1 ----------------------------------------------------------------------------
    one = [cond.prompts[0]]
    print("\nbatch 1 (one request):")
    res = interleaved(
        [
            ("hf generate", lambda: measure_hf(model, one, max_new, args.penalty, pad)),
            ("engine, no reuse", engine_run("off", one)),
            ("engine, cached prefix", engine_run("lru", one, warm=[distinct.prompts[0]])),
        ],
        args.repeat,
    )
    base = res["hf generate"]
    for label, m in res.items():
        extra = ""
        if m.info:
            extra = (f"prefilled {m.info['prefill_tokens']} of {len(one[0])}, "
                     f"decode {m.info['decode_tokens'] / m.info['decode_s']:.1f} tok/s [steps {m.info['threads']}]")
        report(label, m, len(one[0]), None if m is base else base, extra)
    print(f"    greedy check: {check(one, res['engine, no reuse'].outputs)}, "
          f"{check(one, res['engine, cached prefix'].outputs)}")

    # ---- batch N ----------------------------------------------------------------------------
    replies: list[str] = []
    for work in (cond, distinct):
        total_prompt = sum(len(p) for p in work.prompts)
        print(f"\nbatch {batch}, workload '{work.name}' ({total_prompt} prompt tokens):")
        levels = ["off", "identical", "lcp", "trie", "lru"]
        configs = [("hf generate (padded)", lambda: measure_hf(model, work.prompts, max_new, args.penalty, pad))]
        configs += [
            (f"engine {level}", engine_run(level, work.prompts, warm=earlier.prompts if level == "lru" else None))
            for level in levels
        ]
        res = interleaved(configs, args.repeat)
        base = res["hf generate (padded)"]
        report("hf generate (padded)", base, total_prompt, None)
        for level in levels:
            m = res[f"engine {level}"]
            report(f"engine {level}", m, total_prompt, base,
                   f"prefilled {m.info['prefill_tokens']:5d} ({m.info['prefill_s']:.1f} s), decode {m.info['decode_s']:.1f} s "
                   f"[steps {m.info['threads']}]")
        print(f"    greedy check, every engine level: "
              f"{'; '.join(sorted({check(work.prompts, res[f'engine {lv}'].outputs) for lv in levels}))}; "
              f"hf padded vs batch-1 hf: {check(work.prompts, base.outputs)}")
        if work.name == "conditions":
            replies = res["engine lru"].info["texts"]

    # ---- turn 2: the same conversations one step later -----------------------------------------
    t2 = turn2(tok, cond_row_turns, replies, rng)
    total_prompt = sum(len(p) for p in t2.prompts)
    print(f"\nbatch {batch}, workload 'turn2' ({total_prompt} prompt tokens; prompt + own reply + tool result):")
    res = interleaved(
        [
            ("hf generate (padded)", lambda: measure_hf(model, t2.prompts, max_new, args.penalty, pad)),
            ("engine trie (cold)", engine_run("trie", t2.prompts)),
            ("engine lru (after turn 1)", engine_run("lru", t2.prompts, warm=cond.prompts)),
        ],
        args.repeat,
    )
    base = res["hf generate (padded)"]
    report("hf generate (padded)", base, total_prompt, None)
    for label in ("engine trie (cold)", "engine lru (after turn 1)"):
        m = res[label]
        report(label, m, total_prompt, base, f"prefilled {m.info['prefill_tokens']:5d} ({m.info['prefill_s']:.1f} s), "
               f"decode {m.info['decode_s']:.1f} s [steps {m.info['threads']}]")
    print(f"    greedy check: {check(t2.prompts, res['engine lru (after turn 1)'].outputs)}")
    store = engine.store
    if store is not None and len(store):
        entry = next(iter(store._entries.values()))
        per_token = sum(k.nbytes + v.nbytes for k, v in entry.value.layers) / len(entry.tokens)
        print(f"\nprefix store: {len(store)} entries, {store.bytes / 2**20:.0f} MiB; {per_token / 1024:.1f} KiB per cached token")
    print(f"load average at the end {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
