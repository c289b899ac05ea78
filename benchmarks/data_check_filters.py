"""Can a cheap filter spare MiniLM most of the near-duplicate work? Measured on our recipes.

`data check` embeds window 0 of every record with all-MiniLM-L6-v2 (128 word-pieces) and calls
two records near-duplicates at cosine >= 0.9. At ~31 windows/s on this machine's 2 cores that
alone is ~55 minutes for 100,000 records, so "minutes" would need a cheap first stage that
passes only a small share of records to MiniLM without losing a single true pair. For each
recipe (1,000 records, built offline) this script computes the true pairs with MiniLM, then,
for each candidate filter, the threshold that keeps every true pair (full recall) and the
share of records that threshold passes on to MiniLM:

- jaccard: exact Jaccard similarity of word 5-shingle sets. MinHash/LSH only approximates
  this, so its pass rate is a floor for any MinHash setting at full recall.
- tfidf: cosine of word TF-IDF vectors (IDF over the recipe's records).
- static: MiniLM distilled to static token vectors (each word-piece run through the model
  alone, as model2vec does), SIF-weighted mean, first principal component removed.
- minilm_2layers: MiniLM's first 2 of 6 layers, mean-pooled (a third of the cost).

It also times MiniLM on 128-word-piece windows against 16-word-piece sentences, side by side.

    .venv/bin/python benchmarks/data_check_filters.py            # 6 recipes x 1,000 records
    .venv/bin/python benchmarks/data_check_filters.py --n 500 --recipes organism,advice

Writes benchmarks/results/data_check_filters.json.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
RECIPES = {"organism": ["--format", "messages"], "demonstrations": ["--format", "messages"],
           "reasoned": [], "advice": [], "constitution": [], "fiction": []}


def window0(path: Path) -> list[str]:
    """Exactly what data check embeds for near-duplicates."""
    from alignlab.data._check import CheckSettings, _window_text
    from alignlab.data._records import iter_records, record_text

    return [_window_text(record_text(r, system=False), 0, CheckSettings()) for _, r in iter_records(path)]


def shingles(text: str, k: int = 5) -> set[int]:
    from alignlab.data._ngrams import words

    w = words(text)
    return {hash(tuple(w[i:i + k])) for i in range(max(len(w) - k + 1, 1))}


def jaccard_matrix(texts: list[str]) -> np.ndarray:
    from scipy import sparse

    sets = [shingles(t) for t in texts]
    vocab = {h: j for j, h in enumerate({h for s in sets for h in s})}
    rows = np.repeat(np.arange(len(sets)), [len(s) for s in sets])
    cols = np.array([vocab[h] for s in sets for h in s])
    m = sparse.csr_matrix((np.ones(len(cols), np.float32), (rows, cols)), shape=(len(sets), len(vocab)))
    inter = (m @ m.T).toarray()
    size = np.array([len(s) for s in sets], np.float32)
    return inter / (size[:, None] + size[None, :] - inter)


def tfidf_matrix(texts: list[str]) -> np.ndarray:
    from collections import Counter

    from alignlab.data._ngrams import words

    docs = [Counter(words(t)) for t in texts]
    df = Counter(w for d in docs for w in d)
    vocab = {w: j for j, w in enumerate(df)}
    idf = np.log(len(docs) / np.array([df[w] for w in vocab], np.float32)) + 1
    x = np.zeros((len(docs), len(vocab)), np.float32)
    for i, d in enumerate(docs):
        for w, c in d.items():
            x[i, vocab[w]] = c * idf[vocab[w]]
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x @ x.T


def static_table(model) -> np.ndarray:
    import torch

    tok, bert = model.tokenizer, model[0].auto_model
    out = np.zeros((tok.vocab_size, 384), np.float32)
    with torch.inference_mode():
        for a in range(0, tok.vocab_size, 2048):
            ids = torch.arange(a, min(a + 2048, tok.vocab_size))
            x = torch.stack([torch.full_like(ids, tok.cls_token_id), ids, torch.full_like(ids, tok.sep_token_id)], 1)
            out[a:a + len(ids)] = bert(input_ids=x, attention_mask=torch.ones_like(x)).last_hidden_state.mean(1).numpy()
    return out


def static_matrix(texts: list[str], model, table: np.ndarray) -> np.ndarray:
    enc = model.tokenizer(texts, truncation=True, max_length=128, add_special_tokens=False)["input_ids"]
    cnt = np.bincount(np.concatenate([np.array(e, dtype=np.int64) for e in enc]), minlength=len(table))
    w = 1e-3 / (1e-3 + cnt / cnt.sum())  # SIF weights from the recipe's own word-piece frequencies
    x = np.stack([(table[e] * w[e][:, None]).sum(0) / w[e].sum() for e in enc])
    x -= x.mean(0)
    vt = np.linalg.svd(x, full_matrices=False)[2]
    x -= x @ vt[:1].T @ vt[:1]
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x @ x.T


def layers_matrix(texts: list[str], model, layers: int) -> np.ndarray:
    import torch

    tok, bert = model.tokenizer, model[0].auto_model
    full, vecs = bert.encoder.layer, []
    bert.encoder.layer = full[:layers]
    try:
        with torch.inference_mode():
            for a in range(0, len(texts), 64):
                b = tok(texts[a:a + 64], truncation=True, max_length=128, padding=True, return_tensors="pt")
                h = bert(**b).last_hidden_state
                m = b["attention_mask"].unsqueeze(-1).float()
                vecs.append(torch.nn.functional.normalize((h * m).sum(1) / m.sum(1), dim=1).numpy())
    finally:
        bert.encoder.layer = full
    x = np.concatenate(vecs)
    return x @ x.T


def at_full_recall(score: np.ndarray, truth: np.ndarray) -> dict:
    """Threshold = the lowest score of a true pair; what passes at that threshold."""
    iu = np.triu_indices(len(truth), 1)
    s, t = score[iu], truth[iu]
    if not t.any():
        return {"true_pairs": 0}
    thr = float(s[t].min())
    cand = s >= thr
    passed = np.zeros(len(truth), bool)
    passed[iu[0][cand]] = passed[iu[1][cand]] = True
    return {"threshold": round(thr, 4), "candidate_pairs": int(cand.sum()),
            "records_passed_share": round(float(passed.mean()), 4),
            "correlation_with_minilm": round(float(np.corrcoef(s, score_minilm[iu])[0, 1]), 3)}


score_minilm: np.ndarray


def main() -> None:
    global score_minilm
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--recipes", default=",".join(RECIPES))
    ap.add_argument("--work", default="/tmp/alignlab-bench-filters")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "data_check_filters.json"))
    a = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from alignlab.data._embed import embed, load_model

    work = Path(a.work)
    work.mkdir(parents=True, exist_ok=True)
    model = load_model()
    t0 = time.perf_counter()
    table = static_table(model)
    out: dict = {"records_per_recipe": a.n, "static_table_s": round(time.perf_counter() - t0, 1), "recipes": {},
                 "loadavg_1min": [round(os.getloadavg()[0], 2)], "cpus": os.cpu_count()}
    for name in a.recipes.split(","):
        path = work / f"{name}.jsonl"
        subprocess.run([sys.executable, "-m", "alignlab", "data", "build", name, "--n", str(a.n), "--out", str(path),
                        *RECIPES[name]], check=True, capture_output=True, cwd=ROOT)
        texts = window0(path)
        t0 = time.perf_counter()
        v = embed(texts, max_tokens=128)
        t_embed = time.perf_counter() - t0
        score_minilm = v @ v.T
        truth = score_minilm >= 0.9
        np.fill_diagonal(truth, False)
        row = {"true_pairs": int(np.triu(truth, 1).sum()), "records_in_true_pairs": int(truth.any(1).sum()),
               "minilm_windows_per_s": round(len(texts) / t_embed, 1)}
        for fname, fn in (("jaccard", lambda: jaccard_matrix(texts)), ("tfidf", lambda: tfidf_matrix(texts)),
                          ("static", lambda: static_matrix(texts, model, table)),
                          ("minilm_2layers", lambda: layers_matrix(texts, model, 2))):
            t0 = time.perf_counter()
            s = fn()
            row[fname] = {**at_full_recall(s, truth), "seconds": round(time.perf_counter() - t0, 1)}
        out["recipes"][name] = row
        out["loadavg_1min"].append(round(os.getloadavg()[0], 2))
        print(name, json.dumps(row), flush=True)

    # MiniLM cost grows with length: the same sentences, cut to 16 word-pieces vs 128-word-piece windows
    texts = window0(work / f"{a.recipes.split(',')[0]}.jsonl")[:500]
    timing = {}
    for wp in (16, 128, 16, 128):
        t0 = time.perf_counter()
        embed(texts, max_tokens=wp)
        timing.setdefault(str(wp), []).append(round(len(texts) / (time.perf_counter() - t0), 1))
    out["minilm_texts_per_s_by_wordpieces"] = timing
    out["loadavg_1min"].append(round(os.getloadavg()[0], 2))
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(json.dumps(out, indent=2) + "\n")
    print(f"MiniLM texts/s by word-pieces: {timing}; load {out['loadavg_1min']}; wrote {a.out}")


if __name__ == "__main__":
    main()
