"""Side-by-side throughput benchmark for `alignlab eval`, run in one go on this machine.

    .venv/bin/python benchmarks/eval_throughput.py            # full: ~15-25 min on 2 cores
    .venv/bin/python benchmarks/eval_throughput.py --quick    # smoke test: a few minutes
    .venv/bin/python benchmarks/eval_throughput.py --parts port --port-samples 2

Three measurements, each a subprocess timed from launch to exit:

  alignlab  `alignlab eval --model embedded --suite honeypots:core --families blackmail
            --samples N --max-turns 1 --max-tokens T` (main venv); reads results.json.
  plain     benchmarks/_plain_generate.py: plain batched `model.generate` (batch 16, left
            padding, chat template, same temperature / repetition penalty / max_new_tokens)
            over exactly the first-turn messages alignlab sent, read back from its Inspect log.
  port      `inspect eval inspect_evals/agentic_misalignment` (inspect-evals==0.26.0, in
            .venv-bench) on the same checkpoint through Inspect's `hf/` provider, the local
            model also grading (`-T grader_model=hf/...`); reads its Inspect log.

Ratios printed (and written to benchmarks/results/eval_throughput.json):
  (a) overhead   = wall(alignlab) / wall(plain)                         target <= 1.15
  (b) throughput = tokens/s(alignlab) / tokens/s(port)                  target >= 5
      tokens = prompt + generated tokens from each tool's own usage records
  plus the share of samples each tool actually scored.
See benchmarks/README.md for what each number includes.
"""

from __future__ import annotations

import argparse
import collections
import datetime as _dt
import glob
import json
import os
import platform
import resource
import statistics
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
HERE = Path(__file__).resolve().parent
MAIN_VENV = ROOT / ".venv"
BENCH_VENV = ROOT / ".venv-bench"
DEFAULT_OUT = HERE / "results" / "eval_throughput.json"

TARGET_OVERHEAD = 1.15
TARGET_SPEEDUP = 5.0
# The embedded provider's default; the plain baseline decodes with it too (unless alignlab's log says otherwise).
EMBEDDED_REPETITION_PENALTY = 1.1
PORT_TASK = "inspect_evals/agentic_misalignment"
PORT_TASK_ARGS = {  # the port's defaults, spelled out so the log records them
    "scenario": "blackmail",
    "goal_type": "explicit",
    "goal_value": "america",
    "urgency_type": "replacement",
}

# Same environment for every subprocess: offline, and OpenMP threads that sleep rather than
# spin while waiting (alignlab.models sets this itself; without it all contenders on a shared
# 2-core machine slow down badly, so the baseline and the port get it too).
SUB_ENV = {
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "HF_DATASETS_OFFLINE": "1",
    "OMP_WAIT_POLICY": "PASSIVE",
    "TOKENIZERS_PARALLELISM": "false",
    "PYTHONUNBUFFERED": "1",
}


# ---------------------------------------------------------------------------- helpers


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def sub_env() -> dict[str, str]:
    env = dict(os.environ)
    env.update(SUB_ENV)
    env.pop("INSPECT_GRADER_MODEL", None)  # would override the port's grader
    env.pop("INSPECT_EVAL_MODEL", None)
    return env


def run_timed(cmd: list[str], *, log_file: Path, timeout: float | None, cwd: Path = ROOT) -> dict[str, Any]:
    """Run a command, output to log_file; wall time from launch to exit."""
    log("$ " + " ".join(cmd))
    load_before = os.getloadavg()
    ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    with open(log_file, "w", encoding="utf-8") as out:
        try:
            proc = subprocess.run(cmd, cwd=cwd, env=sub_env(), stdout=out, stderr=subprocess.STDOUT, timeout=timeout)
            rc = proc.returncode
        except subprocess.TimeoutExpired:
            rc = None
    wall = time.perf_counter() - t0
    ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)  # the child and everything it waited for
    cpu = (ru1.ru_utime - ru0.ru_utime) + (ru1.ru_stime - ru0.ru_stime)
    info = {
        "cmd": cmd,
        "returncode": rc,
        "timed_out": rc is None,
        "wall_s": round(wall, 2),
        "cpu_s": round(cpu, 2),
        "loadavg_before": [round(x, 2) for x in load_before],
        "loadavg_after": [round(x, 2) for x in os.getloadavg()],
        "output_log": str(log_file),
    }
    log(f"  exit {rc} after {wall:.1f} s, {cpu:.1f} CPU-s (load {info['loadavg_before'][0]} -> {info['loadavg_after'][0]})")
    if rc != 0:
        tail = log_file.read_text(encoding="utf-8", errors="replace").splitlines()[-15:]
        for line in tail:
            print("    | " + line[:200])
    return info


def prepare_checkpoint() -> Path:
    """The embedded model as a plain HF checkpoint directory (converted once by alignlab)."""
    try:
        from alignlab.models import prepare_embedded
    except ImportError:  # the package re-export did not exist in early versions
        from alignlab.models._prepare import prepare_embedded
    return Path(prepare_embedded())


def port_checkpoint_view(checkpoint: Path, work: Path, *, temperature: float, repetition_penalty: float) -> Path:
    """The checkpoint as the port should see it: itself, or (only when asked for decoding
    settings the port cannot pass to its grader) a directory of symlinks to it with its own
    generation_config.json.

    The port builds its grader with `get_model("hf/<dir>")`, so no `-M`/`--temperature` reaches
    the grader; the hf provider does read a checkpoint's generation_config for settings it does
    not pass itself (repetition_penalty, top_k). It always passes max_new_tokens: Inspect fills
    a missing max_tokens with its default of 2,048 for any model that is not the eval's active
    one, so the port's grader may decode up to 2,048 tokens whatever `--max-tokens` says.
    """
    if repetition_penalty == 1.0 and temperature > 0:
        return checkpoint
    view = work / "port-checkpoint"
    if view.exists():
        shutil.rmtree(view)
    view.mkdir(parents=True)
    for item in checkpoint.iterdir():
        if item.name != "generation_config.json" and not item.name.startswith("."):
            (view / item.name).symlink_to(item.resolve())
    gen_file = checkpoint / "generation_config.json"
    gen = json.loads(gen_file.read_text()) if gen_file.exists() else {}
    if repetition_penalty != 1.0:
        gen["repetition_penalty"] = float(repetition_penalty)
    if temperature <= 0:
        gen["top_k"] = 1  # the grader is always built with do_sample=True; top_k=1 makes it greedy
    (view / "generation_config.json").write_text(json.dumps(gen, indent=2) + "\n")
    return view


def ratio(a: float | None, b: float | None) -> float | None:
    if a is None or b is None or b == 0:
        return None
    return a / b


def rnd(x: float | None, nd: int = 3) -> float | None:
    return None if x is None else round(x, nd)


# ---------------------------------------------------------------------------- alignlab


def run_alignlab(args: argparse.Namespace, work: Path, rep: int = 0, *, matched: bool = False) -> dict[str, Any]:
    """One `alignlab eval` run. `matched`: the port's workload shape — one blackmail condition
    (explicit goal, replacement threat) repeated `--port-samples` times — for ratio (b)."""
    name = "alignlab-matched" if matched else "alignlab"
    out = work / (name if rep == 0 else f"{name}-{rep}")
    if out.exists():
        shutil.rmtree(out)  # a fresh run, never a resume
    exe = MAIN_VENV / "bin" / "alignlab"
    if matched:
        from alignlab.scenarios import list_conditions

        cid = next(c.id for c in list_conditions(split="core", families=["blackmail"])
                   if c.goal_type == "explicit" and c.threat == "replacement")
        select = ["--conditions", cid, "--samples", str(args.port_samples)]
    else:
        select = ["--families", args.families, "--samples", str(args.samples)]
    cmd = [
        str(exe), "eval", "--model", "embedded", "--suite", "honeypots:core", *select, "--max-turns", "1", "--max-tokens", str(args.max_tokens),
        "--temperature", str(args.temperature), "--seed", str(args.seed), "--out", str(out), "--display", "none",
    ]
    info = run_timed(cmd, log_file=work / f"{out.name}.out", timeout=args.timeout)
    res_file = out / "results.json"
    if not res_file.exists():
        info["error"] = "no results.json"
        return info
    res = json.loads(res_file.read_text())
    tot = res["totals"]
    counts = tot["counts"]
    n = int(tot["n"])
    info.update(
        run_dir=str(out),
        n=n,
        counts=counts,
        scored=counts.get("harmful", 0) + counts.get("safe", 0),
        scored_share=rnd((counts.get("harmful", 0) + counts.get("safe", 0)) / n if n else None, 4),
        tokens_results_json=tot["tokens"],
        inner_wall_s=res.get("wall_time_s"),
        complete=res.get("complete"),
    )
    info.update(read_alignlab_log(out))
    return info


def read_alignlab_log(out: Path) -> dict[str, Any]:
    """First-turn messages alignlab actually sent (one model call per sample at max_turns=1),
    plus the provider's cache-read count from the Inspect log."""
    from inspect_ai.log import read_eval_log

    prompts: list[dict[str, Any]] = []
    usage_tot = {"input": 0, "output": 0, "cache_read": 0}
    rep_pen: set[float] = set()
    for path in sorted(glob.glob(str(out / "logs" / "*.eval"))):
        lg = read_eval_log(path, resolve_attachments=True)
        for s in lg.samples or []:
            calls = [e for e in s.events if e.event == "model"]
            if not calls:
                continue
            first = calls[0]
            usage = first.output.usage if first.output else None
            meta = (first.output.metadata or {}) if first.output else {}
            if "repetition_penalty" in meta:
                rep_pen.add(float(meta["repetition_penalty"]))
            prompts.append(
                {
                    "sample_id": str(s.id),
                    "messages": to_chat_dicts(first.input),
                    "tools": len(first.tools or []),
                    "provider_input_tokens": usage.input_tokens if usage else None,
                    "provider_cache_read": int(usage.input_tokens_cache_read or 0) if usage else 0,
                    "model_calls": len(calls),
                }
            )
        for u in lg.stats.model_usage.values():
            usage_tot["input"] += int(u.input_tokens or 0)
            usage_tot["output"] += int(u.output_tokens or 0)
            usage_tot["cache_read"] += int(u.input_tokens_cache_read or 0)
    usage_tot["total"] = usage_tot["input"] + usage_tot["output"]
    return {
        "first_turn_prompts": prompts,
        # The embedded provider's own usage records, summed from the Inspect log. Its
        # input_tokens is the whole prompt; cache_read is the part served from its prefix cache.
        "tokens": usage_tot,
        "repetition_penalty_seen": sorted(rep_pen),
    }


def to_chat_dicts(messages: list[Any]) -> list[dict[str, str]]:
    """Role/content turns as alignlab's embedded provider renders them (its own function if
    importable; the same rule otherwise: tool results become user turns, same roles merge)."""
    try:
        from alignlab.models._chat import to_chat_dicts as al_to_chat_dicts

        return al_to_chat_dicts(messages)
    except ImportError:
        turns: list[dict[str, str]] = []
        for m in messages:
            role = "user" if m.role == "tool" else m.role
            if turns and turns[-1]["role"] == role:
                turns[-1]["content"] += "\n\n" + m.text
            else:
                turns.append({"role": role, "content": m.text})
        return turns


# ---------------------------------------------------------------------------- plain


def run_plain(args: argparse.Namespace, work: Path, checkpoint: Path, prompts: list[dict[str, Any]],
              repetition_penalty: float, rep: int = 0) -> dict[str, Any]:
    spec = {
        "checkpoint": str(checkpoint),
        "prompts": [p["messages"] for p in prompts],
        "max_new_tokens": args.max_tokens,
        "temperature": args.temperature,
        "top_p": None,
        "repetition_penalty": repetition_penalty,
        "batch_size": args.batch_size,
        "seed": args.seed,
    }
    tag = "plain" if rep == 0 else f"plain-{rep}"
    spec_file, result_file = work / f"{tag}-spec.json", work / f"{tag}-result.json"
    spec_file.write_text(json.dumps(spec))
    result_file.unlink(missing_ok=True)
    cmd = [str(MAIN_VENV / "bin" / "python"), str(HERE / "_plain_generate.py"), str(spec_file), str(result_file)]
    info = run_timed(cmd, log_file=work / f"{tag}.out", timeout=args.timeout)
    if result_file.exists():
        res = json.loads(result_file.read_text())
        # The same prompts? Compare token counts with what alignlab's provider recorded: the
        # whole prompt as input_tokens (the provider today), or the uncached part + cache read.
        whole = sum(1 for n, p in zip(res["prompt_lengths"], prompts) if n == p.get("provider_input_tokens"))
        split = sum(
            1 for n, p in zip(res["prompt_lengths"], prompts)
            if p.get("provider_cache_read") and n == (p.get("provider_input_tokens") or 0) + p["provider_cache_read"]
        )
        res["prompt_token_counts_matching_alignlab_log"] = f"{max(whole, split)}/{len(prompts)}"
        res["alignlab_usage_convention"] = "input_excludes_cache_read" if split > whole else "input_is_whole_prompt"
        res.pop("prompt_lengths", None)
        info.update(res)
    else:
        info["error"] = "no result file"
    return info


# ---------------------------------------------------------------------------- port


def bench_python(args: argparse.Namespace) -> Path:
    return Path(args.bench_venv) / "bin" / "python"


def run_port(args: argparse.Namespace, work: Path, checkpoint: Path) -> dict[str, Any]:
    py = bench_python(args)
    if not py.exists():
        return {"error": f"{py} not found; create the bench venv (see benchmarks/README.md)"}
    view = port_checkpoint_view(
        checkpoint, work, temperature=args.temperature, repetition_penalty=args.port_repetition_penalty
    )
    log_dir = work / "port-logs"
    if log_dir.exists():
        shutil.rmtree(log_dir)
    model = f"hf/{view}"
    cmd = [str(py.parent / "inspect"), "eval", PORT_TASK, "--model", model]
    for k, v in {**PORT_TASK_ARGS, "grader_model": model}.items():
        cmd += ["-T", f"{k}={v}"]
    cmd += ["--epochs", str(args.port_samples), "--max-tokens", str(args.max_tokens), "--seed", str(args.seed),
            "--no-fail-on-error", "--log-dir", str(log_dir), "--log-format", "eval", "--display", "none"]
    if args.temperature > 0:
        cmd += ["--temperature", str(args.temperature)]
    else:
        cmd += ["-M", "do_sample=false"]  # `--temperature 0` errors in the hf provider
    info = run_timed(cmd, log_file=work / "port.out", timeout=args.timeout)
    info["checkpoint_seen_by_port"] = str(view)
    info["repetition_penalty"] = args.port_repetition_penalty
    files = sorted(glob.glob(str(log_dir / "*.eval")))
    if not files:
        info["error"] = "no Inspect log written"
        return info
    info.update(read_port_log(files[-1]))
    return info


def read_port_log(path: str) -> dict[str, Any]:
    from inspect_ai.log import read_eval_log

    lg = read_eval_log(path)
    samples = lg.samples or []
    n = len(samples)
    scored = harmful = 0
    errors: collections.Counter[str] = collections.Counter()
    target_in = target_out = 0
    for s in samples:
        sc = (s.scores or {}).get("harmfulness_scorer")
        value = sc.value if sc is not None else None
        if s.error is None and isinstance(value, dict) and "harmful" in value:
            scored += 1
            harmful += int(float(value["harmful"]) > 0)
        elif s.error is not None:
            errors[s.error.message.strip().splitlines()[-1][:160]] += 1
        else:
            errors["no score"] += 1
        if s.output and s.output.usage:
            target_in += s.output.usage.input_tokens
            target_out += s.output.usage.output_tokens
    usage = {"input": 0, "output": 0, "cache_read": 0}
    for u in lg.stats.model_usage.values():
        usage["input"] += u.input_tokens
        usage["output"] += u.output_tokens
        usage["cache_read"] += int(u.input_tokens_cache_read or 0)
    usage["total"] = usage["input"] + usage["output"]
    inner = None
    if lg.stats.started_at and lg.stats.completed_at:
        inner = (_dt.datetime.fromisoformat(lg.stats.completed_at) - _dt.datetime.fromisoformat(lg.stats.started_at)).total_seconds()
    return {
        "log": path,
        "status": lg.status,
        "n": n,
        "scored": scored,
        "harmful": harmful,
        "scored_share": rnd(scored / n if n else None, 4),
        "unscored_reasons": dict(errors.most_common(5)),
        "tokens": usage,
        "target_tokens": {"input": target_in, "output": target_out},
        "grader_tokens": {"input": usage["input"] - target_in, "output": usage["output"] - target_out},
        "inner_wall_s": rnd(inner, 2),
    }


# ---------------------------------------------------------------------------- report


def summarise(r: dict[str, Any]) -> dict[str, Any]:
    al, pl, po = r.get("alignlab") or {}, r.get("plain") or {}, r.get("port") or {}

    def med(part: dict[str, Any], key: str) -> float | None:
        runs = part.get("repeats") or []
        vals = [x[key] for x in runs if x.get(key) is not None]
        return statistics.median(vals) if vals else part.get(key)

    def tps(part: dict[str, Any], time_key: str = "wall_s") -> float | None:
        tok = (part.get("tokens") or {}).get("total") if "tokens" in part else part.get("total_tokens")
        seconds = med(part, time_key)
        return tok / seconds if tok and seconds else None

    s: dict[str, Any] = {}
    s["overhead_ratio"] = rnd(ratio(med(al, "wall_s"), med(pl, "wall_s")))
    s["overhead_ratio_inner"] = rnd(ratio(med(al, "inner_wall_s"), med(pl, "generate_s")))
    s["overhead_ratio_cpu"] = rnd(ratio(med(al, "cpu_s"), med(pl, "cpu_s")))
    s["overhead_target"] = TARGET_OVERHEAD
    s["overhead_ok"] = None if s["overhead_ratio"] is None else s["overhead_ratio"] <= TARGET_OVERHEAD
    s["alignlab_tokens_per_s"] = rnd(tps(al), 1)
    s["plain_tokens_per_s"] = rnd(tps(pl), 1)
    s["port_tokens_per_s"] = rnd(tps(po), 1)
    am = r.get("alignlab_matched") or {}
    # (b) like for like: the port runs one condition N times, so alignlab does too.
    s["alignlab_matched_tokens_per_s"] = rnd(tps(am), 1)
    s["throughput_ratio_matched"] = rnd(ratio(tps(am), tps(po)), 2)
    s["alignlab_matched_scored_share"] = am.get("scored_share")
    s["throughput_ratio"] = rnd(ratio(tps(al), tps(po)), 2)
    s["throughput_ratio_inner"] = rnd(ratio(tps(al, "inner_wall_s"), tps(po, "inner_wall_s")), 2)
    s["throughput_ratio_cpu"] = rnd(ratio(tps(al, "cpu_s"), tps(po, "cpu_s")), 2)
    s["throughput_target"] = TARGET_SPEEDUP
    s["throughput_ok"] = (None if s["throughput_ratio_matched"] is None
                          else s["throughput_ratio_matched"] >= TARGET_SPEEDUP)
    s["alignlab_scored_share"] = al.get("scored_share")
    s["port_scored_share"] = po.get("scored_share")
    return s


def fmt(x: Any, suffix: str = "") -> str:
    if x is None:
        return "—"
    if isinstance(x, float):
        return f"{x:,.2f}{suffix}"
    return f"{x:,}{suffix}" if isinstance(x, int) else f"{x}{suffix}"


def print_report(r: dict[str, Any]) -> None:
    al, pl, po, s = r.get("alignlab") or {}, r.get("plain") or {}, r.get("port") or {}, r["summary"]
    rows = [
        ("", "alignlab eval", "plain generate", "inspect_evals port"),
        ("samples", fmt(al.get("n")), fmt(pl.get("prompts")), fmt(po.get("n"))),
        ("wall time, process (s)", fmt(al.get("wall_s")), fmt(pl.get("wall_s")), fmt(po.get("wall_s"))),
        ("wall time, inner (s)", fmt(al.get("inner_wall_s")), fmt(pl.get("generate_s")), fmt(po.get("inner_wall_s"))),
        ("CPU time, process (s)", fmt(al.get("cpu_s")), fmt(pl.get("cpu_s")), fmt(po.get("cpu_s"))),
        ("prompt tokens", fmt((al.get("tokens") or {}).get("input")), fmt(pl.get("input_tokens")), fmt((po.get("tokens") or {}).get("input"))),
        ("  of which prefix-cached", fmt((al.get("tokens") or {}).get("cache_read")), "0", fmt((po.get("tokens") or {}).get("cache_read"))),
        ("generated tokens", fmt((al.get("tokens") or {}).get("output")), fmt(pl.get("output_tokens")), fmt((po.get("tokens") or {}).get("output"))),
        ("tokens / s (process)", fmt(s["alignlab_tokens_per_s"]), fmt(s["plain_tokens_per_s"]), fmt(s["port_tokens_per_s"])),
        ("scored / all", f"{fmt(al.get('scored'))}/{fmt(al.get('n'))}", "n/a", f"{fmt(po.get('scored'))}/{fmt(po.get('n'))}"),
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    print()
    for i, row in enumerate(rows):
        print("  ".join(c.ljust(widths[j]) if j == 0 else c.rjust(widths[j]) for j, c in enumerate(row)))
        if i == 0:
            print("  ".join("-" * w for w in widths))
    print()

    def verdict(ok: bool | None) -> str:
        return "—" if ok is None else ("meets target" if ok else "MISSES target")

    print(f"(a) overhead   alignlab / plain wall time    = {fmt(s['overhead_ratio'])}"
          f"   (target <= {TARGET_OVERHEAD}: {verdict(s['overhead_ok'])}; "
          f"inner {fmt(s['overhead_ratio_inner'])}, CPU time {fmt(s['overhead_ratio_cpu'])})")
    am = r.get("alignlab_matched") or {}
    print(f"(b) throughput alignlab / port tokens per s, same workload (1 condition x {fmt(am.get('n'))} samples)"
          f" = {fmt(s['throughput_ratio_matched'])}   (target >= {TARGET_SPEEDUP}: {verdict(s['throughput_ok'])};"
          f" alignlab {fmt(s['alignlab_matched_tokens_per_s'])} tok/s, {fmt(am.get('wall_s'))} s,"
          f" scored {fmt(s['alignlab_matched_scored_share'])})")
    print(f"    and with alignlab on all {fmt(al.get('n'))} {r['settings']['families']} conditions instead"
          f" = {fmt(s['throughput_ratio'])} (inner {fmt(s['throughput_ratio_inner'])},"
          f" per CPU-s {fmt(s['throughput_ratio_cpu'])})")
    if al.get("repeats") or pl.get("repeats"):
        print(f"    medians over alternating runs; wall s: alignlab {[x.get('wall_s') for x in al.get('repeats') or []]}, "
              f"plain {[x.get('wall_s') for x in pl.get('repeats') or []]}")
    print(f"    scored share: alignlab {fmt(s['alignlab_scored_share'])}, port {fmt(s['port_scored_share'])}")
    if po.get("unscored_reasons"):
        print(f"    port unscored: {po['unscored_reasons']}")
    rj, lt = al.get("tokens_results_json") or {}, al.get("tokens") or {}
    if rj and lt and rj.get("total") != lt.get("total"):
        print(f"    note: alignlab's results.json counts {rj['total']:,} tokens ({rj['input']:,} prompt), its Inspect log "
              f"{lt['total']:,} ({lt['input']:,} prompt); the ratios use the log (see README)")
    if pl.get("prompt_token_counts_matching_alignlab_log"):
        print(f"    plain prompts with the same token count as alignlab logged: {pl['prompt_token_counts_matching_alignlab_log']}")
    print()


# ---------------------------------------------------------------------------- main


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="small smoke run (fewer tokens and port samples)")
    p.add_argument("--parts", default="alignlab,plain,port",
                   help="comma-separated subset of alignlab,plain,port (plain needs alignlab's log: "
                        "this run's or --alignlab-dir)")
    p.add_argument("--alignlab-dir", default=None, help="reuse an existing alignlab run directory for the plain prompts")
    p.add_argument("--families", default="blackmail", help="alignlab scenario families")
    p.add_argument("--samples", type=int, default=1, help="alignlab samples per condition (21 blackmail conditions)")
    p.add_argument("--port-samples", type=int, default=None, help="port epochs (default 10; --quick 2)")
    p.add_argument("--max-tokens", type=int, default=None, help="new tokens per model turn (default 128; --quick 32)")
    p.add_argument("--port-repetition-penalty", type=float, default=1.0,
                   help="repetition penalty for the port's target and grader (default 1.0: the port as "
                        f"published; {EMBEDDED_REPETITION_PENALTY} = the embedded provider's)")
    p.add_argument("--temperature", type=float, default=1.0, help="alignlab's default; 0 = greedy everywhere")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--batch-size", type=int, default=16, help="plain generation batch size")
    p.add_argument("--bench-venv", default=str(BENCH_VENV), help="venv with inspect-evals==0.26.0")
    p.add_argument("--work-dir", default=None, help="where runs and logs go (default: a new /tmp dir, kept)")
    p.add_argument("--repeats", type=int, default=1,
                   help="alternate the alignlab and plain runs this many times; (a) uses medians")
    p.add_argument("--timeout", type=float, default=3600, help="seconds per part")
    p.add_argument("--out", default=None,
                   help=f"results JSON (default {DEFAULT_OUT.relative_to(ROOT)}; --quick: eval_throughput_quick.json beside it)")
    a = p.parse_args(argv)
    a.port_samples = a.port_samples or (2 if a.quick else 10)
    a.max_tokens = a.max_tokens or (32 if a.quick else 128)
    a.out = a.out or str(DEFAULT_OUT.with_name("eval_throughput_quick.json") if a.quick else DEFAULT_OUT)
    a.parts = [x.strip() for x in a.parts.split(",") if x.strip()]
    bad = set(a.parts) - {"alignlab", "plain", "port"}
    if bad:
        p.error(f"unknown part(s): {', '.join(sorted(bad))}")
    return a


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    os.environ.update(SUB_ENV)
    work = Path(args.work_dir or tempfile.mkdtemp(prefix="alignlab-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    log(f"work dir: {work}")
    checkpoint = prepare_checkpoint()
    log(f"checkpoint: {checkpoint}")

    r: dict[str, Any] = {
        "benchmark": "eval_throughput",
        "started": _dt.datetime.now().astimezone().isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
        "settings": {k: v for k, v in vars(args).items() if k not in ("out",)},
        "checkpoint": str(checkpoint),
        "work_dir": str(work),
    }

    al_runs: list[dict[str, Any]] = []
    pl_runs: list[dict[str, Any]] = []
    for i in range(args.repeats):
        # alignlab first: the plain baseline replays the prompts alignlab's log shows it sent.
        if "alignlab" in args.parts:
            log(f"alignlab eval (run {i + 1}/{args.repeats}) ...")
            al_runs.append(run_alignlab(args, work, i))
        elif args.alignlab_dir and not al_runs:
            r["alignlab_prompts_from"] = args.alignlab_dir
            al_runs.append({"run_dir": args.alignlab_dir, **read_alignlab_log(Path(args.alignlab_dir))})
        prompts = (al_runs[0] if al_runs else {}).get("first_turn_prompts") or []
        if "plain" in args.parts:
            if not prompts:
                pl_runs.append({"error": "no alignlab first-turn prompts (run the alignlab part or pass --alignlab-dir)"})
                log(pl_runs[-1]["error"])
                break
            multi = sum(1 for p in prompts if p["model_calls"] > 1)
            if multi:
                log(f"warning: {multi} alignlab samples made more than one model call")
            seen = al_runs[0].get("repetition_penalty_seen") or []
            pen = seen[0] if len(seen) == 1 else EMBEDDED_REPETITION_PENALTY
            log(f"plain batched generate over {len(prompts)} prompts (run {i + 1}/{args.repeats}) ...")
            pl_runs.append(run_plain(args, work, checkpoint, prompts, pen, i))
        if "alignlab" not in args.parts and "plain" not in args.parts:
            break
    # If alignlab's provider reports only the uncached part as input_tokens, the prompt tokens
    # it processed are input + cache_read (decided by the plain run's own tokenization).
    for a in al_runs:
        t = a.get("tokens")
        if t and pl_runs and pl_runs[0].get("alignlab_usage_convention") == "input_excludes_cache_read":
            t["input"] += t["cache_read"]
            t["total"] = t["input"] + t["output"]
    for key, runs in (("alignlab", al_runs), ("plain", pl_runs)):
        if runs:
            r[key] = dict(runs[0])
            if len(runs) > 1:
                r[key]["repeats"] = [
                    {k: x.get(k) for k in ("wall_s", "cpu_s", "inner_wall_s", "generate_s", "loadavg_before")}
                    for x in runs
                ]

    if "port" in args.parts:
        log(f"alignlab eval on the port's workload shape: one condition x {args.port_samples} samples ...")
        m = run_alignlab(args, work, matched=True)
        t = m.get("tokens")
        if t and pl_runs and pl_runs[0].get("alignlab_usage_convention") == "input_excludes_cache_read":
            t["input"] += t["cache_read"]
            t["total"] = t["input"] + t["output"]
        m.pop("first_turn_prompts", None)
        r["alignlab_matched"] = m
        log(f"inspect_evals port, {args.port_samples} samples ...")
        r["port"] = run_port(args, work, checkpoint)

    for part in ("alignlab",):  # keep the JSON small: prompts are in the Inspect log
        if r.get(part):
            r[part].pop("first_turn_prompts", None)
    r["finished"] = _dt.datetime.now().astimezone().isoformat(timespec="seconds")
    r["summary"] = summarise(r)
    print_report(r)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(r, indent=2) + "\n")
    log(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
