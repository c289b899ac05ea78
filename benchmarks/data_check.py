"""Benchmark `alignlab data check` at scale: build N records with the offline recipes
(`alignlab data build`, split evenly over the recipes that build), then measure in parts:

1. real: the full check (real MiniLM, cold embedding cache) on a random subset of `--real`
   records, which gives MiniLM's windows/s; the first `--exhaustive` of them are also checked
   with every window embedded, which measures what the contamination prefilter misses;
2. scale: the full check on all N records with the embedder replaced by an instant stand-in,
   so every other stage (n-grams, prefilter, eval corpus, the 100k x 100k near-duplicate
   products, tokenizer counts, card, dedup write) is timed at full size;
3. total = scale-run time + (windows the N-record check embeds) / (windows/s measured in 1).

    .venv/bin/python benchmarks/data_check.py                  # 100,000 records, 1,000 real
    .venv/bin/python benchmarks/data_check.py --n 20000 --real 500

Writes benchmarks/results/data_check.json with the load average (the machine is shared).
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


def fake_embed(texts: list[str], cache, max_tokens=None):
    """Instant unit vectors (seeded by position): stands in for MiniLM in the scale part."""
    import numpy as np

    v = np.random.default_rng(len(texts)).standard_normal((len(texts), 384)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True), len(texts)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--real", type=int, default=1000, help="records checked with the real embedder")
    ap.add_argument("--exhaustive", type=int, default=200, help="of those, checked with every window embedded")
    ap.add_argument("--work", default="/tmp/alignlab-bench-data-check")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "data_check.json"))
    a = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from alignlab.data import _check
    from alignlab.data._check import check_file
    from alignlab.data._records import iter_records, write_records

    work = Path(a.work)
    work.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    path, counts = build(a.n, work)
    t_build = time.perf_counter() - t0
    loads = [os.getloadavg()[0]]

    # 1. real embedder on a subset, default and exhaustive
    recs = [r for _, r in iter_records(path)]
    spath = work / "real.jsonl"
    write_records(spath, random.Random(1).sample(recs, min(a.real, len(recs))))
    for old in work.glob("real.jsonl.embeddings.npz"):
        old.unlink()
    t0 = time.perf_counter()
    real = check_file(spath)
    t_real = time.perf_counter() - t0
    rate = real.embedded["newly_embedded"] / max(real.timings["embed_records"], 1e-9)
    t0 = time.perf_counter()
    check_file(spath)
    t_again = time.perf_counter() - t0
    loads.append(os.getloadavg()[0])
    xpath = work / "exhaustive.jsonl"
    write_records(xpath, [r for _, r in iter_records(spath)][:a.exhaustive])
    part = check_file(xpath, write_card=False)
    full = check_file(xpath, exhaustive=True, write_card=False)
    loads.append(os.getloadavg()[0])
    emb = lambda r: {(f.record_id, f.suite) for f in r.flags if f.check == "embedding"}  # noqa: E731

    # 2. every other stage at full size
    real_embed = _check.embed_cached
    _check.embed_cached = fake_embed
    try:
        t0 = time.perf_counter()
        scale = check_file(path, dedup=True, cache=False)
        t_scale = time.perf_counter() - t0
    finally:
        _check.embed_cached = real_embed
    loads.append(os.getloadavg()[0])
    embed_s = scale.embedded["record_windows_embedded"] / rate
    total = t_scale - scale.timings["embed_records"] + embed_s

    out = {
        "records": scale.n_records, "recipes": counts, "build_s": round(t_build, 1),
        "real": {"records": real.n_records, "check_s": round(t_real, 1), "stages_s": real.timings,
                 "embedded": real.embedded, "windows_per_s": round(rate, 1), "recheck_cached_s": round(t_again, 1),
                 "flagged": real.flagged, "near_duplicates": len(real.duplicates),
                 "exhaustive_sample": full.n_records,
                 "embedding_flags_default": len(emb(part)), "embedding_flags_exhaustive": len(emb(full)),
                 "embedding_flags_missed_by_prefilter": sorted(emb(full) - emb(part)),
                 "exhaustive_windows": full.embedded["record_windows_embedded"], "exhaustive_stages_s": full.timings},
        "scale": {"check_s_without_embedding": round(t_scale - scale.timings["embed_records"], 1),
                  "stages_s": scale.timings, "embedded": scale.embedded},
        "estimated_total_s": round(total, 1), "estimated_records_per_s": round(scale.n_records / total, 1),
        "estimated_embed_s": round(embed_s, 1),
        "loadavg_1min": [round(x, 2) for x in loads], "cpus": os.cpu_count(),
    }
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(json.dumps(out, indent=2) + "\n")
    print(f"{scale.n_records} records ({', '.join(f'{k} {v}' for k, v in counts.items())}); built in {t_build:.0f} s")
    print(f"real MiniLM, {real.n_records} records: {t_real:.1f} s, {rate:.1f} windows/s; cached re-check {t_again:.1f} s; "
          f"on {full.n_records} of them embedding flags default {len(emb(part))}, exhaustive {len(emb(full))}, "
          f"missed {sorted(emb(full) - emb(part))}")
    print(f"all {scale.n_records} records, embedder stubbed: {t_scale - scale.timings['embed_records']:.1f} s")
    for k, v in scale.timings.items():
        print(f"  {k:16s} {v:8.1f} s")
    print(f"windows to embed: {scale.embedded['record_windows_embedded']} of {scale.embedded['record_windows_total']} "
          f"-> {embed_s:.0f} s at {rate:.1f}/s; estimated total {total:.0f} s ({scale.n_records / total:.0f} records/s)")
    print(f"load average (1 min) during the run: {', '.join(f'{x:.1f}' for x in loads)} on {os.cpu_count()} CPUs; wrote {a.out}")


if __name__ == "__main__":
    main()
