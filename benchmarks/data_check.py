"""Benchmark `alignlab data check` at scale: build N records with the offline recipes
(`alignlab data build`, split evenly over the recipes that build), check them against every
suite, and print wall time per stage and records/s. A second part measures what the
prefilters miss: a random sample is checked with `exhaustive=True` (every window embedded)
and its near-duplicates and flags are compared with the default run's.

    .venv/bin/python benchmarks/data_check.py                 # 100,000 records
    .venv/bin/python benchmarks/data_check.py --n 20000 --sample 1000

Writes benchmarks/results/data_check.json. The first run also embeds the eval passages
(~2 min, cached in the alignlab cache); `--cold` deletes that cache first.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def build(n: int, work: Path) -> tuple[Path, dict[str, int]]:
    from alignlab.data import RECIPES
    from alignlab.data._records import iter_records, write_records

    ok: dict[str, Path] = {}
    for name in RECIPES:  # find which recipes build here
        out = work / f"probe-{name}.jsonl"
        r = subprocess.run([sys.executable, "-m", "alignlab", "data", "build", name, "--n", "20", "--out", str(out)],
                           capture_output=True, text=True, cwd=ROOT)
        if r.returncode == 0:
            ok[name] = out
    if not ok:
        raise SystemExit("no recipe builds offline")
    per = -(-n // len(ok))
    counts, records = {}, []
    for name in ok:
        out = work / f"{name}.jsonl"
        subprocess.run([sys.executable, "-m", "alignlab", "data", "build", name, "--n", str(per), "--out", str(out)],
                       check=True, capture_output=True, cwd=ROOT)
        recs = [r for _, r in iter_records(out)]
        counts[name] = len(recs)
        records += recs
    random.Random(0).shuffle(records)
    path = work / "all.jsonl"
    write_records(path, records[:n])
    return path, counts


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--sample", type=int, default=1500, help="records checked exhaustively for recall")
    ap.add_argument("--work", default="/tmp/alignlab-bench-data-check")
    ap.add_argument("--cold", action="store_true", help="drop the eval-passage embedding cache first")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "data_check.json"))
    a = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from alignlab.data._check import check_file
    from alignlab.data._records import iter_records, write_records
    from alignlab.models._prepare import cache_root

    work = Path(a.work)
    work.mkdir(parents=True, exist_ok=True)
    if a.cold:
        (cache_root() / "evalcorpus-embeddings.npz").unlink(missing_ok=True)
    t0 = time.perf_counter()
    path, counts = build(a.n, work)
    t_build = time.perf_counter() - t0
    for old in work.glob("all.jsonl.embeddings.npz"):
        old.unlink()
    load0 = os.getloadavg()
    t0 = time.perf_counter()
    res = check_file(path, dedup=True)
    t_check = time.perf_counter() - t0
    load1 = os.getloadavg()

    t0 = time.perf_counter()
    res2 = check_file(path)
    t_recheck = time.perf_counter() - t0

    # recall of the prefilters on a sample: exhaustive vs default on the same records
    recs = [r for _, r in iter_records(path)]
    sample = random.Random(1).sample(recs, min(a.sample, len(recs)))
    spath = work / "sample.jsonl"
    write_records(spath, sample)
    fast = check_file(spath, write_card=False)
    full = check_file(spath, exhaustive=True, write_card=False)
    dups_full = {d.record_id for d in full.duplicates if not d.exact}
    dups_fast = {d.record_id for d in fast.duplicates if not d.exact}
    flags_full = {(f.record_id, f.suite) for f in full.flags if f.check == "embedding"}
    flags_fast = {(f.record_id, f.suite) for f in fast.flags if f.check == "embedding"}

    out = {
        "records": res.n_records, "recipes": counts, "build_s": round(t_build, 1),
        "check_s": round(t_check, 1), "records_per_s": round(res.n_records / t_check, 1),
        "stages_s": res.timings, "embedded": res.embedded, "recheck_s": round(t_recheck, 1),
        "recheck_stages_s": res2.timings,
        "flagged": res.flagged, "failed": res.failed, "near_duplicates": len(res.duplicates),
        "near_duplicate_share": round(len(res.duplicates) / res.n_records, 4),
        "sample": {"records": len(sample), "dups_exhaustive": len(dups_full), "dups_default": len(dups_fast),
                   "dups_missed": len(dups_full - dups_fast), "embedding_flags_exhaustive": len(flags_full),
                   "embedding_flags_default": len(flags_fast), "embedding_flags_missed": len(flags_full - flags_fast),
                   "exhaustive_s": full.timings},
        "loadavg_before": [round(x, 2) for x in load0], "loadavg_after": [round(x, 2) for x in load1],
        "cpus": os.cpu_count(),
    }
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(json.dumps(out, indent=2) + "\n")
    print(f"{res.n_records} records ({', '.join(f'{k} {v}' for k, v in counts.items())}); built in {t_build:.0f} s")
    print(f"check: {t_check:.1f} s = {res.n_records / t_check:.0f} records/s; re-check (cached) {t_recheck:.1f} s")
    for k, v in res.timings.items():
        print(f"  {k:16s} {v:8.1f} s")
    print(f"embedded: {res.embedded}")
    print(f"near-duplicates {len(res.duplicates)}; flagged {res.flagged}; failed {res.failed}")
    print(f"sample of {len(sample)}: near-dups exhaustive {len(dups_full)}, default {len(dups_fast)}, "
          f"missed {len(dups_full - dups_fast)}; embedding flags exhaustive {len(flags_full)}, "
          f"missed {len(flags_full - flags_fast)}")
    print(f"load average before {load0[0]:.2f}, after {load1[0]:.2f} ({os.cpu_count()} CPUs); wrote {a.out}")


if __name__ == "__main__":
    main()
