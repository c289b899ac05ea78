"""Batched generation for the embedded model on CPU.

One worker thread per loaded checkpoint owns the model. Requests queue up; the worker
admits them into a running decode batch (continuous batching: a request joins at the next
step instead of waiting for the batch to drain), so `max_connections` concurrent samples
keep up to `max_batch` rows decoding together.

Prefill is where the time goes on 2 cores, so admission plans it with `_prefix`: tokens
shared by several new prompts, or by a prompt and a cached earlier prefix, are computed
once at batch 1 and their keys/values reused. Decoding then runs over a preallocated
"slab" (rows × columns per layer) with each row's cache right-aligned and its padding
masked — the usual left padding, written in place instead of re-concatenated every step.
The worker picks its torch thread count by measurement (`_threads`), because two threads
are faster on free cores and far slower when another process competes for them.
"""

from __future__ import annotations

import atexit
import logging
import os
import queue
import secrets
import threading
import time
from collections.abc import Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer
from transformers.cache_utils import Cache, DynamicCache, DynamicLayer

from ._prefix import Lookup, PrefixStore, ReuseMode, plan_prefill
from ._threads import ThreadTuner

logger = logging.getLogger(__name__)

StopReason = Literal["stop", "max_tokens", "model_length"]


@dataclass(frozen=True)
class SamplingParams:
    """Per-request generation settings. `temperature` 0 or None means greedy."""

    max_new_tokens: int = 256
    temperature: float | None = None
    top_p: float | None = None
    top_k: int | None = None
    repetition_penalty: float = 1.1
    seed: int | None = None
    stop_seqs: tuple[str, ...] = ()

    @property
    def greedy(self) -> bool:
        return not self.temperature


@dataclass
class GenerationResult:
    text: str
    token_ids: list[int]
    input_tokens: int
    output_tokens: int
    stop_reason: StopReason
    seed: int | None
    reused_tokens: int  # prompt tokens whose keys/values came from a shared or cached prefix
    time: float  # seconds from submission to completion


@dataclass
class EngineStats:
    """Counters since the last `reset()`; the benchmark reads them."""

    requests: int = 0
    prompt_tokens: int = 0
    prefill_tokens: int = 0  # tokens actually run through a prefill forward pass
    prefill_seconds: float = 0.0
    decode_steps: int = 0
    decode_tokens: int = 0  # row-steps
    decode_seconds: float = 0.0
    max_rows: int = 0
    steps_by_threads: dict[int, int] = field(default_factory=dict)

    def reset(self) -> None:
        for name, value in EngineStats().__dict__.items():
            setattr(self, name, value)
        self.steps_by_threads = {}


@dataclass
class _KV:
    """Keys/values of one sequence (`[1, kv_heads, T, head_dim]` per layer) and the logits
    after its last token (None when unknown)."""

    layers: list[tuple[torch.Tensor, torch.Tensor]]
    logits: torch.Tensor | None

    @property
    def length(self) -> int:
        return self.layers[0][0].shape[-2]

    @property
    def nbytes(self) -> int:
        n = sum(k.nbytes + v.nbytes for k, v in self.layers)
        return n + (self.logits.nbytes if self.logits is not None else 0)

    def prefix(self, n: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
        return [(k[:, :, :n], v[:, :, :n]) for k, v in self.layers]


class _Request:
    def __init__(self, ids: Sequence[int], params: SamplingParams):
        self.ids = tuple(int(t) for t in ids)
        self.params = params
        self.future: Future[GenerationResult] = Future()
        self.abandoned = False  # set by a caller that stopped waiting (cancelled sample)
        self.submitted = time.monotonic()


@dataclass
class _Row:
    req: _Request
    max_new: int
    capped: bool  # max_new was cut to fit the context window
    seed: int | None
    generator: torch.Generator | None
    seen: torch.Tensor  # bool [vocab]: tokens of prompt + output, for the repetition penalty
    reused: int
    generated: list[int] = field(default_factory=list)
    length: int = 0  # tokens with keys/values in the cache (prompt + fed outputs)


class _Slab:
    """Decode-time cache for live rows: per layer `[rows, kv_heads, cols, head_dim]`.

    Every row's keys/values end at column `cur`; the columns before its start are
    padding that the attention mask hides. Rows are kept packed at the front.
    """

    def __init__(self, n_layers: int, kv_heads: int, head_dim: int, dtype: torch.dtype):
        self.shape = (n_layers, kv_heads, head_dim)
        self.dtype = dtype
        self.k: list[torch.Tensor] = []
        self.v: list[torch.Tensor] = []
        self.row_cap = 0
        self.col_cap = 0
        self.cur = 0
        self.lengths: list[int] = []

    @property
    def n(self) -> int:
        return len(self.lengths)

    @property
    def nbytes(self) -> int:
        return sum(t.nbytes for t in self.k) + sum(t.nbytes for t in self.v)

    def _realloc(self, row_cap: int, col_cap: int, new_cur: int) -> None:
        n_layers, heads, dim = self.shape
        keep = max(self.lengths, default=0)
        assert new_cur >= keep and col_cap >= new_cur
        k = [torch.zeros(row_cap, heads, col_cap, dim, dtype=self.dtype) for _ in range(n_layers)]
        v = [torch.zeros(row_cap, heads, col_cap, dim, dtype=self.dtype) for _ in range(n_layers)]
        if self.n and keep:
            for layer in range(n_layers):
                src = slice(self.cur - keep, self.cur)
                dst = slice(new_cur - keep, new_cur)
                k[layer][: self.n, :, dst] = self.k[layer][: self.n, :, src]
                v[layer][: self.n, :, dst] = self.v[layer][: self.n, :, src]
        self.k, self.v = k, v
        self.row_cap, self.col_cap, self.cur = row_cap, col_cap, new_cur

    def reserve(self, rows: int, length: int, cols_needed: int) -> None:
        """Make room, in at most one reallocation, for `rows` rows including one of `length`
        tokens, with `cols_needed` more decode steps for every row."""
        new_cur = max(self.cur if self.n else 0, length)
        need_cols = new_cur + cols_needed
        if rows > self.row_cap or need_cols > self.col_cap or new_cur != self.cur:
            self._realloc(max(rows, self.row_cap), need_cols, new_cur)

    def add(self, kv: list[tuple[torch.Tensor, torch.Tensor]], cols_needed: int) -> None:
        """Append a row holding `kv`; `cols_needed` = decode steps any row may still take."""
        length = kv[0][0].shape[-2]
        self.reserve(self.n + 1, length, cols_needed)
        i = self.n
        cols = slice(self.cur - length, self.cur)
        for layer, (key, value) in enumerate(kv):
            self.k[layer][i, :, cols] = key[0]
            self.v[layer][i, :, cols] = value[0]
        self.lengths.append(length)

    def remove(self, i: int) -> None:
        last = self.n - 1
        if i != last:
            length = self.lengths[last]
            cols = slice(self.cur - length, self.cur)
            for layer in range(len(self.k)):
                self.k[layer][i, :, cols] = self.k[layer][last, :, cols]
                self.v[layer][i, :, cols] = self.v[layer][last, :, cols]
            self.lengths[i] = length
        self.lengths.pop()
        if not self.lengths:
            self.k, self.v, self.row_cap, self.col_cap, self.cur = [], [], 0, 0, 0

    def row_kv(self, i: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
        cols = slice(self.cur - self.lengths[i], self.cur)
        return [
            (k[i : i + 1, :, cols].clone(), v[i : i + 1, :, cols].clone()) for k, v in zip(self.k, self.v)
        ]

    def compact(self, cols_needed: int) -> None:
        """Drop leading columns that are padding for every row, when they are many."""
        pad = self.cur - max(self.lengths, default=0)
        if self.n and pad >= 64 and pad * 2 >= self.cur:
            keep = max(self.lengths)
            self._realloc(self.row_cap, keep + cols_needed, keep)

    def attention_mask(self) -> torch.Tensor:
        """`[rows, cur + 1]`: each row sees its own columns and the one being written."""
        starts = torch.tensor([self.cur - n for n in self.lengths]).unsqueeze(1)
        return torch.arange(self.cur + 1).unsqueeze(0) >= starts

    def cache(self) -> Cache:
        return Cache(layers=[_SlabLayer(self, i) for i in range(len(self.k))])

    def advance(self) -> None:
        self.cur += 1
        self.lengths = [n + 1 for n in self.lengths]


class _SlabLayer(DynamicLayer):
    """A transformers cache layer writing one decode step in place into the slab."""

    def __init__(self, slab: _Slab, index: int):
        super().__init__()
        self.slab, self.index = slab, index
        self.is_initialized = True
        self.dtype, self.device = slab.dtype, torch.device("cpu")

    def update(self, key_states: torch.Tensor, value_states: torch.Tensor, *args: Any, **kwargs: Any):
        s = self.slab
        if key_states.shape[-2] != 1:
            raise RuntimeError("the decode slab takes one token per step")
        s.k[self.index][: s.n, :, s.cur] = key_states[:, :, 0]
        s.v[self.index][: s.n, :, s.cur] = value_states[:, :, 0]
        self.keys = s.k[self.index][: s.n, :, : s.cur + 1]
        self.values = s.v[self.index][: s.n, :, : s.cur + 1]
        return self.keys, self.values

    def get_seq_length(self) -> int:
        return self.slab.cur

    def get_mask_sizes(self, query_length: int) -> tuple[int, int]:
        return self.slab.cur + query_length, 0


def load_checkpoint(path: Path, dtype: torch.dtype = torch.float32) -> tuple[Any, Any]:
    """Model and tokenizer from a local checkpoint directory, never touching the hub."""
    os.environ["HF_HUB_OFFLINE"] = "1"
    tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
    model = AutoModelForCausalLM.from_pretrained(path, dtype=dtype, local_files_only=True)
    model.eval()
    return model, tokenizer


class Engine:
    """Owns one model and a worker thread; `submit()` is safe from any thread."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        max_batch: int = 16,
        batch_window: float = 0.05,
        reuse: ReuseMode = "trie",
        prefix_cache_mb: float = 2048,
        cache_outputs: bool = True,
        min_shared: int = 16,
        threads: int | None = None,
        dtype: torch.dtype = torch.float32,
    ):
        self.path = Path(path)
        self.max_batch = max(1, int(max_batch))
        self.batch_window = float(batch_window)
        self.reuse: ReuseMode = reuse
        self.min_shared = min_shared
        self.cache_outputs = cache_outputs
        cores = os.cpu_count() or 1
        # threads=None: measure whether 1 thread or all cores is faster right now (see _threads)
        self.tuner = ThreadTuner([threads] if threads else [1, cores])
        self._threads_in_use = 0
        started = time.monotonic()
        self.model, self.tokenizer = load_checkpoint(self.path, dtype)
        self.load_seconds = time.monotonic() - started
        config = self.model.config
        self.context_window = int(getattr(config, "max_position_embeddings", 8192))
        self.vocab = int(self.model.get_output_embeddings().weight.shape[0])
        self.eos_ids = self._eos_ids()
        self.store = PrefixStore(int(prefix_cache_mb * 2**20)) if prefix_cache_mb > 0 else None
        heads = config.num_key_value_heads
        head_dim = getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads
        self._slab = _Slab(config.num_hidden_layers, heads, head_dim, self.model.dtype)
        self._rows: list[_Row] = []
        self._queue: queue.Queue[_Request] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._thread_lock = threading.Lock()
        self._closed = False
        self.stats = EngineStats()
        atexit.register(self.close)

    def close(self) -> None:
        """Stop the worker (at exit, so the interpreter does not kill it inside torch)."""
        self._closed = True
        thread = self._thread
        if thread is not None and thread.is_alive():
            self._queue.put(_STOP)  # type: ignore[arg-type]
            thread.join(timeout=10)

    def _eos_ids(self) -> frozenset[int]:
        ids: set[int] = set()
        for source in (self.model.config.eos_token_id, self.model.generation_config.eos_token_id):
            if isinstance(source, int):
                ids.add(source)
            elif source:
                ids.update(source)
        if self.tokenizer.eos_token_id is not None:
            ids.add(self.tokenizer.eos_token_id)
        for token in ("<|im_end|>", "<|endoftext|>"):
            tid = self.tokenizer.convert_tokens_to_ids(token)
            if isinstance(tid, int) and tid != self.tokenizer.unk_token_id:
                ids.add(tid)
        return frozenset(ids)

    # ---- public -------------------------------------------------------------------------

    def encode(self, text: str) -> list[int]:
        return list(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def submit(self, ids: Sequence[int], params: SamplingParams) -> _Request:
        if self._closed:
            raise RuntimeError("the embedded model engine is closed")
        with self._thread_lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="alignlab-embedded", daemon=True)
                self._thread.start()
        request = _Request(ids, params)
        self._queue.put(request)
        return request

    def generate(self, prompts: Sequence[Sequence[int]], params: SamplingParams | Sequence[SamplingParams]) -> list[GenerationResult]:
        """Blocking helper: submit all prompts at once and wait (tests, benchmarks)."""
        plist = [params] * len(prompts) if isinstance(params, SamplingParams) else list(params)
        requests = [self.submit(ids, p) for ids, p in zip(prompts, plist)]
        return [r.future.result() for r in requests]

    # ---- worker -------------------------------------------------------------------------

    def _use_threads(self, n: int) -> None:
        if n != self._threads_in_use:
            torch.set_num_threads(n)  # per calling thread in OpenMP: affects this worker only
            self._threads_in_use = n

    def _run(self) -> None:
        with torch.inference_mode():
            while not self._closed:
                try:
                    self._admit(self._collect())
                    if self._rows:
                        self._step()
                except Exception as ex:  # a failed step fails every live row, never the thread
                    logger.exception("embedded model: decode step failed")
                    for row in self._rows:
                        _resolve(row.req, exception=ex)
                    self._rows = []
                    self._slab = _Slab(*self._slab.shape, self._slab.dtype)
        closed = RuntimeError("the embedded model engine is closed")
        for row in self._rows:
            _resolve(row.req, exception=closed)
        while not self._queue.empty():
            item = self._queue.get_nowait()
            if item is not _STOP:
                _resolve(item, exception=closed)

    def _collect(self) -> list[_Request]:
        room = self.max_batch - len(self._rows)
        taken: list[Any] = []
        if room <= 0:
            return []
        if not self._rows:
            taken.append(self._queue.get())  # idle: block until work arrives
            deadline = time.monotonic() + 10 * self.batch_window
            while len(taken) < room and time.monotonic() < deadline and taken[-1] is not _STOP:
                try:  # keep collecting while requests keep arriving
                    taken.append(self._queue.get(timeout=self.batch_window))
                except queue.Empty:
                    break
        while len(taken) < room and (not taken or taken[-1] is not _STOP):
            try:
                taken.append(self._queue.get_nowait())
            except queue.Empty:
                break
        if _STOP in taken:
            self._closed = True
            for r in taken:
                if r is not _STOP:
                    _resolve(r, exception=RuntimeError("the embedded model engine is closed"))
            return []
        return [
            r for r in taken if r is not _STOP and not r.abandoned and r.future.set_running_or_notify_cancel()
        ]

    def _admit(self, requests: list[_Request]) -> None:
        """Prefill new requests and add them to the decode batch; any failure is reported
        to exactly the requests it concerns."""
        try:
            self._admit_unguarded(requests)
        except Exception as ex:
            logger.exception("embedded model: prefill failed")
            for req in requests:
                _resolve(req, exception=ex)  # rows already answered are left alone

    def _admit_unguarded(self, requests: list[_Request]) -> None:
        ready: list[_Request] = []
        for req in requests:
            if len(req.ids) >= self.context_window or not req.ids:
                _resolve(req, self._result(req, [], "model_length", req.params.seed, 0))
            else:
                ready.append(req)
        if not ready:
            return
        prefilled = self._prefill([r.ids for r in ready])
        # one reallocation for the whole group rather than one per joining row
        self._slab.reserve(
            min(self.max_batch, len(self._rows) + len(ready)),
            max(kv.length for kv, _, _ in prefilled),
            max(
                [r.max_new - len(r.generated) for r in self._rows]
                + [min(r.params.max_new_tokens, self.context_window - len(r.ids)) for r in ready]
            ),
        )
        for req, (kv, logits, reused) in zip(ready, prefilled):
            self._start_row(req, kv, logits, reused)

    def _start_row(self, req: _Request, kv: _KV, logits: torch.Tensor, reused: int) -> None:
        p = req.params
        room = self.context_window - len(req.ids)
        max_new = max(1, min(p.max_new_tokens, room))
        seed = p.seed
        generator = None
        if not p.greedy:
            seed = seed if seed is not None else secrets.randbits(63)
            generator = torch.Generator().manual_seed(seed)
        seen = torch.zeros(self.vocab, dtype=torch.bool)
        seen[torch.tensor(req.ids)] = True
        row = _Row(req, max_new, max_new < p.max_new_tokens, seed, generator, seen, reused, length=len(req.ids))
        self.stats.requests += 1
        self.stats.prompt_tokens += len(req.ids)
        token = self._choose(logits.clone(), row)
        if self._accept(row, token):
            return
        remaining = max(r.max_new - len(r.generated) for r in [*self._rows, row])
        self._slab.add(kv.layers, remaining)
        self._rows.append(row)
        self.stats.max_rows = max(self.stats.max_rows, len(self._rows))

    def _step(self) -> None:
        rows, slab = self._rows, self._slab
        # rows nobody waits for any more (cancelled sample, or failed while joining)
        gone = [i for i, r in enumerate(rows) if r.req.abandoned or r.req.future.done()]
        for i in reversed(gone):
            slab.remove(i)
            rows[i] = rows[-1]
            rows.pop()
        if not rows:
            return
        threads = self.tuner.choose()
        self._use_threads(threads)
        started = time.monotonic()
        input_ids = torch.tensor([[r.generated[-1]] for r in rows])
        positions = torch.tensor([[r.length] for r in rows])
        out = self.model(
            input_ids=input_ids,
            position_ids=positions,
            attention_mask=slab.attention_mask(),
            past_key_values=slab.cache(),
            use_cache=True,
        )
        slab.advance()
        logits = out.logits[:, -1, :].float()
        elapsed = time.monotonic() - started
        self.tuner.record(threads, elapsed / (1 + len(rows) / 5))  # ~ step cost per batch size
        self.stats.steps_by_threads[threads] = self.stats.steps_by_threads.get(threads, 0) + 1
        finished: list[int] = []
        for i, row in enumerate(rows):
            row.length += 1
            if self._accept(row, self._choose(logits[i], row), slab_index=i):
                finished.append(i)
        for i in sorted(finished, reverse=True):
            slab.remove(i)
            rows[i] = rows[-1]
            rows.pop()
        if finished and rows:
            slab.compact(max(r.max_new - len(r.generated) for r in rows))
        self.stats.decode_steps += 1
        self.stats.decode_tokens += len(input_ids)
        self.stats.decode_seconds += time.monotonic() - started

    def _choose(self, logits: torch.Tensor, row: _Row) -> int:
        """Next token, processed in the order transformers uses: repetition penalty,
        temperature, top-k, top-p."""
        p = row.req.params
        if p.repetition_penalty != 1.0:
            penalised = torch.where(logits < 0, logits * p.repetition_penalty, logits / p.repetition_penalty)
            logits = torch.where(row.seen, penalised, logits)
        if p.greedy:
            return int(torch.argmax(logits))
        logits = logits / p.temperature
        if p.top_k and p.top_k > 0 and p.top_k < logits.numel():
            kth = torch.topk(logits, p.top_k).values[-1]
            logits = logits.masked_fill(logits < kth, float("-inf"))
        if p.top_p is not None and 0 < p.top_p < 1:
            sorted_logits, order = torch.sort(logits, descending=True)
            probs = torch.softmax(sorted_logits, dim=-1)
            drop = (torch.cumsum(probs, dim=-1) - probs) >= p.top_p
            logits = logits.scatter(0, order[drop], float("-inf"))
        probs = torch.softmax(logits, dim=-1)
        return int(torch.multinomial(probs, 1, generator=row.generator))

    def _accept(self, row: _Row, token: int, slab_index: int | None = None) -> bool:
        """Record a sampled token; finish the row (and answer its caller) if it is done."""
        row.generated.append(token)
        row.seen[token] = True
        p = row.req.params
        reason: StopReason | None = None
        if token in self.eos_ids:
            reason = "stop"
        elif p.stop_seqs and any(s in self._decode(row.generated) for s in p.stop_seqs):
            reason = "stop"
        elif len(row.generated) >= row.max_new:
            reason = "model_length" if row.capped else "max_tokens"
        if reason is None:
            return False
        if slab_index is not None and self.store is not None and self.cache_outputs:
            # keys/values of prompt + output: the next turn of this conversation extends them
            kv = _KV(self._slab.row_kv(slab_index), None)
            self.store.put(row.req.ids + tuple(row.generated[:-1]), kv, kv.nbytes, has_logits=False)
        _resolve(row.req, self._result(row.req, row.generated, reason, row.seed, row.reused))
        return True

    def _decode(self, ids: Sequence[int]) -> str:
        ids = [t for t in ids if t not in self.eos_ids]
        return str(self.tokenizer.decode(ids, skip_special_tokens=True))

    def _result(self, req: _Request, generated: list[int], reason: StopReason, seed: int | None, reused: int) -> GenerationResult:
        text = self._decode(generated)
        cut = min((i for i in (text.find(s) for s in req.params.stop_seqs) if i >= 0), default=-1)
        if cut >= 0:
            text = text[:cut]
        return GenerationResult(
            text=text,
            token_ids=list(generated),
            input_tokens=len(req.ids),
            output_tokens=len(generated),
            stop_reason=reason,
            seed=seed,
            reused_tokens=reused,
            time=time.monotonic() - req.submitted,
        )

    # ---- prefill ------------------------------------------------------------------------

    def _forward(self, ids: Sequence[int], past: list[tuple[torch.Tensor, torch.Tensor]] | None) -> _KV:
        """Batch-1 prefill of `ids` after `past` (keys/values of the tokens before them)."""
        start = past[0][0].shape[-2] if past else 0
        self._use_threads(self.tuner.for_prefill())
        cache = DynamicCache(ddp_cache_data=past) if past else DynamicCache(config=self.model.config)
        started = time.monotonic()
        out = self.model(
            input_ids=torch.tensor([list(ids)]),
            position_ids=torch.arange(start, start + len(ids)).unsqueeze(0),
            past_key_values=cache,
            use_cache=True,
            logits_to_keep=1,
        )
        self.stats.prefill_tokens += len(ids)
        self.stats.prefill_seconds += time.monotonic() - started
        layers = [(layer.keys, layer.values) for layer in cache.layers]
        return _KV(layers, out.logits[0, -1].float())

    def _prefill(self, seqs: list[tuple[int, ...]]) -> list[tuple[_KV, torch.Tensor, int]]:
        """Keys/values and next-token logits for each prompt, computing shared prefixes once."""
        lookup = self.store.lookup if self.store is not None else None
        plan = plan_prefill(seqs, self.reuse, lookup, self.min_shared)
        nodes: list[_KV] = []
        for node in plan.nodes:
            past = self._source(nodes, node.parent, node.cached, node.start)
            kv = self._forward(seqs[node.row][node.start : node.end], past)
            nodes.append(kv)
            if self.store is not None:
                self.store.put(seqs[node.row][: node.end], kv, kv.nbytes, has_logits=True)
        unpaid = [n.end - n.start for n in plan.nodes]

        def reused(start: int, node: int | None) -> int:
            # tokens computed for a shared node count as computed for the first row using it
            fresh = 0
            while node is not None:
                fresh, unpaid[node] = fresh + unpaid[node], 0
                node = plan.nodes[node].parent
            return start - fresh

        results: list[tuple[_KV, torch.Tensor, int]] = []
        for seq, row in zip(seqs, plan.rows):
            if row.start == len(seq):  # the whole prompt is shared or cached
                source = nodes[row.node] if row.node is not None else row.cached.entry.value  # type: ignore[union-attr]
                assert source.logits is not None and source.length == len(seq)
                results.append((source, source.logits, reused(row.start, row.node)))
                continue
            past = self._source(nodes, row.node, row.cached, row.start)
            kv = self._forward(seq[row.start :], past)
            if self.store is not None and not self.cache_outputs:
                self.store.put(seq, kv, kv.nbytes, has_logits=True)
            results.append((kv, kv.logits, reused(row.start, row.node)))  # type: ignore[arg-type]
        return results

    @staticmethod
    def _source(
        nodes: list[_KV], parent: int | None, cached: Lookup | None, start: int
    ) -> list[tuple[torch.Tensor, torch.Tensor]] | None:
        if start == 0:
            return None
        if parent is not None:
            return nodes[parent].prefix(start)
        assert cached is not None and cached.entry is not None
        return cached.entry.value.prefix(start)


_STOP = object()  # queued by close(): the worker returns


def _resolve(req: _Request, result: GenerationResult | None = None, exception: BaseException | None = None) -> None:
    if req.future.done():
        return
    try:
        if exception is not None:
            req.future.set_exception(exception)
        else:
            req.future.set_result(result)  # type: ignore[arg-type]
    except Exception:  # cancelled meanwhile
        pass
