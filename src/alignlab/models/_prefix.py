"""Shared-prefix planning for batched prefill, and a memory-bounded store of prefix caches.

On 2 CPU cores prefill dominates generation time, and prompts in an honeypot run repeat
heavily: samples of one condition share their whole first-turn prompt, conditions of one
family share a long system prompt, and a later turn extends an earlier one. The planner
turns a batch of token sequences into batch-1 prefill segments so that every shared token
is computed once; the store keeps finished prefixes across batches.

Pure Python (no torch): the store holds opaque values with a byte size.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

Tokens = tuple[int, ...]
ReuseMode = Literal["off", "identical", "lcp", "trie"]
REUSE_MODES: tuple[str, ...] = ("off", "identical", "lcp", "trie")


def common_prefix_len(a: Sequence[int], b: Sequence[int]) -> int:
    """Length of the longest common prefix of two token sequences."""
    n = min(len(a), len(b))
    if n == 0:
        return 0
    x = np.asarray(a[:n], dtype=np.int64)
    y = np.asarray(b[:n], dtype=np.int64)
    diff = np.flatnonzero(x != y)
    return int(diff[0]) if diff.size else n


@dataclass(frozen=True)
class Lookup:
    """How much of a sequence an earlier cache covers: `usable` tokens of `entry`."""

    usable: int
    entry: Any = None


NO_LOOKUP = Lookup(0, None)


@dataclass(frozen=True)
class Node:
    """A shared prefix `tokens[:end]` (of row `row`) prefilled once at batch 1.

    Its keys/values for `[0:start]` come from `parent` (an earlier node's index) or from
    `cached` (a store entry), or nothing when `start == 0`.
    """

    row: int
    start: int
    end: int
    parent: int | None = None
    cached: Lookup | None = None


@dataclass(frozen=True)
class RowPlan:
    """Row `i` continues from `node` (or `cached`) and prefills `tokens[start:]` itself."""

    start: int
    node: int | None = None
    cached: Lookup | None = None


@dataclass
class Plan:
    nodes: list[Node] = field(default_factory=list)
    rows: list[RowPlan] = field(default_factory=list)

    def prefill_tokens(self, lengths: Sequence[int]) -> int:
        """Tokens this plan computes (the cost the planner minimises)."""
        return sum(n.end - n.start for n in self.nodes) + sum(
            length - r.start for r, length in zip(self.rows, lengths)
        )


def shared_prefixes(seqs: Sequence[Tokens], mode: ReuseMode, min_shared: int = 16) -> list[Tokens]:
    """The prefixes worth computing once for this batch, shortest first.

    - `identical`: whole prompts that occur more than once;
    - `lcp`: the longest prefix common to the whole batch;
    - `trie`: every branching point of the batch's token trie (for sorted sequences, the
      common prefixes of neighbours), which covers both of the above.
    """
    found: set[Tokens] = set()
    if mode == "off" or len(seqs) < 2:
        return []
    if mode == "identical":
        seen: set[Tokens] = set()
        for s in seqs:
            if s in seen:
                found.add(s)
            seen.add(s)
    elif mode == "lcp":
        n = min(common_prefix_len(seqs[0], s) for s in seqs[1:])
        found.add(seqs[0][:n])
    elif mode == "trie":
        ordered = sorted(seqs)
        for a, b in zip(ordered, ordered[1:]):
            found.add(a[: common_prefix_len(a, b)])
    else:
        raise ValueError(f"unknown prefix reuse mode {mode!r}; expected one of {REUSE_MODES}")
    return sorted((p for p in found if len(p) >= max(min_shared, 1)), key=len)


def plan_prefill(
    seqs: Sequence[Sequence[int]],
    mode: ReuseMode = "trie",
    lookup: Callable[[Tokens], Lookup] | None = None,
    min_shared: int = 16,
) -> Plan:
    """Plan batch-1 prefill segments so that shared tokens are computed once.

    `lookup(tokens)` reports how many leading tokens an existing cache covers (the store);
    a row or node starts from whichever is longer: the deepest shared node that is its
    prefix, or the cache.
    """
    tseqs = [tuple(s) for s in seqs]
    look = lookup or (lambda _tokens: NO_LOOKUP)
    plan = Plan()
    prefixes = shared_prefixes(tseqs, mode, min_shared)
    node_tokens: list[Tokens] = []
    for prefix in prefixes:
        row = next(i for i, s in enumerate(tseqs) if s[: len(prefix)] == prefix)
        parent = _deepest_prefix(node_tokens, prefix, proper=True)
        start = len(node_tokens[parent]) if parent is not None else 0
        hit = look(prefix)
        if hit.usable >= len(prefix):
            continue  # already cached whole; rows find it through their own lookup
        if hit.usable > start:
            plan.nodes.append(Node(row, hit.usable, len(prefix), None, hit))
        else:
            plan.nodes.append(Node(row, start, len(prefix), parent, None))
        node_tokens.append(prefix)
    for s in tseqs:
        node = _deepest_prefix(node_tokens, s, proper=False)
        start = len(node_tokens[node]) if node is not None else 0
        hit = look(s)
        if hit.usable > start:
            plan.rows.append(RowPlan(hit.usable, None, hit))
        else:
            plan.rows.append(RowPlan(start, node, None))
    return plan


def _deepest_prefix(candidates: list[Tokens], seq: Tokens, proper: bool) -> int | None:
    best: int | None = None
    for i, c in enumerate(candidates):
        if (len(c) < len(seq) or (not proper and len(c) == len(seq))) and seq[: len(c)] == c:
            if best is None or len(c) > len(candidates[best]):
                best = i
    return best


@dataclass
class StoreEntry:
    """Keys/values for `tokens` (opaque `value`); `has_logits` if the value also carries
    the next-token logits after the last token, so an identical prompt needs no prefill."""

    tokens: Tokens
    value: Any
    nbytes: int
    has_logits: bool
    array: np.ndarray = field(repr=False, default_factory=lambda: np.zeros(0, np.int64))


class PrefixStore:
    """LRU of prefix caches bounded by bytes. Any prefix of a stored sequence is usable
    (keys/values of a prefix are a slice), so lookups take the longest common prefix."""

    def __init__(self, max_bytes: int):
        self.max_bytes = max_bytes
        self.bytes = 0
        self._entries: OrderedDict[Tokens, StoreEntry] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.hit_tokens = 0
        self.lookups = 0

    def __len__(self) -> int:
        return len(self._entries)

    def lookup(self, seq: Tokens) -> Lookup:
        """The entry sharing the longest prefix with `seq`, and how much of it is usable.

        A full match needs stored logits; otherwise the last token is left to recompute.
        """
        with self._lock:
            self.lookups += 1
            if not self._entries:
                return NO_LOOKUP
            exact = self._entries.get(seq)
            if exact is not None and exact.has_logits:
                self._entries.move_to_end(seq)
                self.hits += 1
                self.hit_tokens += len(seq)
                return Lookup(len(seq), exact)
            arr = np.asarray(seq, dtype=np.int64)
            best: StoreEntry | None = None
            best_n = 0
            for entry in self._entries.values():
                n = _array_prefix_len(arr, entry.array)
                if n > best_n:
                    best, best_n = entry, n
            if best is None:
                return NO_LOOKUP
            if best_n == len(seq) and not (best.has_logits and len(best.tokens) == len(seq)):
                best_n -= 1
            if best_n <= 0:
                return NO_LOOKUP
            self._entries.move_to_end(best.tokens)
            self.hits += 1
            self.hit_tokens += best_n
            return Lookup(best_n, best)

    def put(self, tokens: Sequence[int], value: Any, nbytes: int, has_logits: bool) -> None:
        """Add an entry; entries that are strict prefixes of it without being needed for
        their logits are dropped (the new entry covers them)."""
        key = tuple(tokens)
        if nbytes > self.max_bytes or not key:
            return
        with self._lock:
            old = self._entries.get(key)
            if old is not None and (old.has_logits or not has_logits):
                self._entries.move_to_end(key)
                return
            if old is not None:
                del self._entries[key]
                self.bytes -= old.nbytes
            for other in list(self._entries.values()):
                if (
                    len(other.tokens) < len(key)
                    and not other.has_logits
                    and key[: len(other.tokens)] == other.tokens
                ):
                    del self._entries[other.tokens]
                    self.bytes -= other.nbytes
            entry = StoreEntry(key, value, nbytes, has_logits, np.asarray(key, dtype=np.int64))
            self._entries[key] = entry
            self.bytes += nbytes
            while self.bytes > self.max_bytes and self._entries:
                _, evicted = self._entries.popitem(last=False)
                self.bytes -= evicted.nbytes

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self.bytes = 0


def _array_prefix_len(a: np.ndarray, b: np.ndarray) -> int:
    n = min(a.size, b.size)
    if n == 0:
        return 0
    diff = np.flatnonzero(a[:n] != b[:n])
    return int(diff[0]) if diff.size else n
