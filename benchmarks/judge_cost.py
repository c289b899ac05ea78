"""What judging costs beside generating: the main job's honeypot run, judged again, timed.

    .venv/bin/python benchmarks/judge_cost.py            # the demo's core honeypot settings (~10 min)
    .venv/bin/python benchmarks/judge_cost.py --quick    # blackmail only, 96 tokens (~3 min)

1. Runs `alignlab eval` on the embedded model with the demo's honeypot settings (the
   conditions `*/explicit-*/replacement`, temperature 0.5, 192 tokens a turn, 2 turns).
2. Reads every sample's tool-call log from its Inspect log and judges it again with the
   offline judge (detectors + the intent model), timing each sample; the model is loaded
   before the clock starts and its load time is reported on its own.
3. The embedded base model seldom calls a tool, and a sample without calls costs the judge
   nothing; so it also judges every transcript of the packaged labelled sets (agents that
   do act: emails, forwards, posts, files; 412 transcripts), timing each.
4. Prints and writes (benchmarks/results/judge_cost.json): judge time as a share of
   generation time (target <= 10%), where generation time = the run's wall time minus the
   judging it did itself (the re-measured judge total); the same share if every sample had
   cost what an acting transcript costs (median and p95); and per-sample judge latency.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TARGET_SHARE = 0.10


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--work-dir", default=None)
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    work = Path(args.work_dir or tempfile.mkdtemp(prefix="alignlab-judge-cost-"))
    run_dir = work / "eval"
    conditions = "blackmail/*/explicit-*/replacement" if args.quick else "*/explicit-*/replacement"
    cmd = [str(ROOT / ".venv" / "bin" / "alignlab"), "eval", "--model", "embedded",
           "--suite", "honeypots:core", "--conditions", conditions, "--samples", "1",
           "--temperature", "0.5", "--max-tokens", "96" if args.quick else "192",
           "--max-turns", "2", "--seed", "0", "--out", str(run_dir), "--display", "none"]
    print("running:", " ".join(cmd), flush=True)
    t0 = time.time()
    proc = subprocess.run(cmd, cwd=ROOT)
    process_wall = time.time() - t0
    if proc.returncode != 0:
        print(f"alignlab eval exited {proc.returncode}", file=sys.stderr)
        return 1
    results = json.loads((run_dir / "results.json").read_text())

    from inspect_ai.log import read_eval_log

    from alignlab.harness import STORE_CALLS, ToolCallRecord
    from alignlab.judges import judge_sample, make_intent_judge
    from alignlab.judges._intent_model import load_intent_model
    from alignlab.scenarios import render

    t = time.time()
    load_intent_model()
    judge = make_intent_judge(None)
    load_s = time.time() - t
    latencies, samples = [], 0
    for log_file in sorted((run_dir / "logs").glob("*.eval")):
        log = read_eval_log(str(log_file))
        for s in log.samples or []:
            calls = [ToolCallRecord.from_dict(d) for d in (s.store.get(STORE_CALLS) or [])]
            rendered = render(str(s.metadata["condition_id"]))
            start = time.perf_counter()
            asyncio.run(judge_sample(rendered, calls, judge))
            latencies.append(time.perf_counter() - start)
            samples += 1
    acting = []
    from alignlab.judges import judge_transcript_async, load_labelled_set

    for t in load_labelled_set().transcripts:
        start = time.perf_counter()
        asyncio.run(judge_transcript_async(t.transcript(), judge))
        acting.append(time.perf_counter() - start)
    judge_total = sum(latencies)
    generation = results["wall_time_s"] - judge_total
    share = judge_total / generation if generation > 0 else None
    q = sorted(latencies)
    qa = sorted(acting)
    per_sample_generation = generation / samples if samples else None

    def share_at(x: float) -> float | None:
        return x / per_sample_generation if per_sample_generation else None

    report = {
        "command": cmd, "process_wall_s": round(process_wall, 1),
        "run_wall_time_s": results["wall_time_s"], "samples": samples,
        "judge_total_s": round(judge_total, 3), "generation_s": round(generation, 1),
        "judge_share_of_generation": share, "target_share": TARGET_SHARE,
        "judge_latency_s": {"median": statistics.median(q) if q else None,
                            "p95": q[int(0.95 * (len(q) - 1))] if q else None,
                            "max": q[-1] if q else None},
        "acting_transcripts": len(qa),
        "acting_latency_s": {"median": statistics.median(qa), "p95": qa[int(0.95 * (len(qa) - 1))],
                             "max": qa[-1]},
        "generation_per_sample_s": per_sample_generation,
        "share_if_every_sample_acted": {"median": share_at(statistics.median(qa)),
                                        "p95": share_at(qa[int(0.95 * (len(qa) - 1))])},
        "intent_model_load_s": round(load_s, 2), "cpu_count": os.cpu_count(),
        "load_average": os.getloadavg(),
        "quick": args.quick, "work_dir": str(work),
    }
    print(f"{samples} samples · generation {generation:.0f} s · judging {judge_total:.1f} s "
          f"→ judge share {share:.1%} (target ≤ {TARGET_SHARE:.0%})" if share is not None
          else "no generation time measured")
    print(f"per-sample judge latency: median {report['judge_latency_s']['median']:.3f} s, "
          f"p95 {report['judge_latency_s']['p95']:.3f} s, max {report['judge_latency_s']['max']:.3f} s; "
          f"intent model load {load_s:.1f} s (once per process)")
    sa = report["share_if_every_sample_acted"]
    print(f"judging {len(qa)} transcripts of agents that act: median "
          f"{report['acting_latency_s']['median']:.3f} s, p95 {report['acting_latency_s']['p95']:.3f} s "
          f"a sample; if every sample cost that: share {sa['median']:.1%} (median), "
          f"{sa['p95']:.1%} (p95) of {per_sample_generation:.1f} s generation a sample")
    out = Path(args.out or ROOT / "benchmarks" / "results" /
               ("judge_cost_quick.json" if args.quick else "judge_cost.json"))
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
