"""Normalised words and hashed word n-grams, vectorised over many texts at once.

A word is a run of letters or digits after lowercasing ("Don't!" -> "don", "t"). Each word
hashes to a stable 64-bit integer (blake2b, so hashes agree across processes and runs); an
n-gram's hash is a polynomial of its words' hashes in uint64 arithmetic. Pure functions.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable

import numpy as np

_WORD = re.compile(r"[^\W_]+")
_MULT = np.uint64(0x9E3779B97F4A7C15)  # odd, so the polynomial keeps word order
_hash_cache: dict[str, int] = {}


def words(text: str) -> list[str]:
    """Lowercased runs of letters and digits: punctuation, case and spacing never matter."""
    return _WORD.findall(text.lower())


def _word_hash(w: str) -> int:
    h = _hash_cache.get(w)
    if h is None:
        h = int.from_bytes(hashlib.blake2b(w.encode(), digest_size=8).digest(), "little")
        _hash_cache[w] = h
    return h


def word_hashes(ws: list[str]) -> np.ndarray:
    return np.fromiter((_word_hash(w) for w in ws), dtype=np.uint64, count=len(ws))


def concat_hashes(word_lists: Iterable[list[str]]) -> tuple[np.ndarray, np.ndarray]:
    """All texts' word hashes end to end, and `starts` (len n+1) where each text begins.
    Takes an iterable so that 100k records' word lists need not all be alive at once."""
    arrays = [word_hashes(ws) for ws in word_lists]
    starts = np.zeros(len(arrays) + 1, dtype=np.int64)
    np.cumsum([len(a) for a in arrays], out=starts[1:])
    flat = np.concatenate(arrays) if arrays else np.zeros(0, np.uint64)
    return flat, starts


def ngrams_concat(flat: np.ndarray, starts: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Hashes of every n-gram inside each text (none spans two texts) and the index of the
    text each belongs to, in text order."""
    m = len(flat) - n + 1
    if m <= 0:
        return np.zeros(0, np.uint64), np.zeros(0, np.int64)
    acc = flat[:m].copy()
    for i in range(1, n):
        acc *= _MULT
        acc += flat[i:i + m]
    owner = np.repeat(np.arange(len(starts) - 1), np.diff(starts))[:m]
    keep = np.arange(m) + n <= starts[owner + 1]
    return acc[keep], owner[keep]


def ngram_hashes(text: str, n: int) -> np.ndarray:
    """Hashes of one text's n-grams, in order (a text shorter than n has none)."""
    flat, starts = concat_hashes([words(text)])
    return ngrams_concat(flat, starts, n)[0]


def ngram_set(texts: list[str], n: int) -> np.ndarray:
    """Sorted distinct n-gram hashes of all texts: the eval side's lookup table."""
    flat, starts = concat_hashes([words(t) for t in texts])
    return np.unique(ngrams_concat(flat, starts, n)[0])


def member(hashes: np.ndarray, table: np.ndarray) -> np.ndarray:
    """Boolean mask: which hashes are in the sorted array `table`."""
    if len(table) == 0:
        return np.zeros(len(hashes), dtype=bool)
    i = np.searchsorted(table, hashes)
    i[i == len(table)] = 0
    return table[i] == hashes
