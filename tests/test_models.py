"""The embedded model provider: prefix planning, the prefix store, request grouping, the
decode slab and error propagation without the model; one test with the real model."""

from __future__ import annotations

import asyncio
import json
import queue
import threading
import time

import pytest
import torch

from alignlab.errors import UserError
from alignlab.models import EmbeddedArgs, derive_seed
from alignlab.models._chat import to_chat_dicts
from alignlab.models._engine import Engine, SamplingParams, _Request, _Slab
from alignlab.models._prefix import (
    NO_LOOKUP,
    Lookup,
    PrefixStore,
    common_prefix_len,
    plan_prefill,
    shared_prefixes,
)

FAMILY = tuple(range(100, 140))  # a 40-token shared system prompt


def seq(*tail: int) -> tuple[int, ...]:
    return FAMILY + tail


# ---- prefix computation ----------------------------------------------------------------------


def test_common_prefix_len():
    assert common_prefix_len([1, 2, 3], [1, 2, 4]) == 2
    assert common_prefix_len([1, 2], [1, 2, 3]) == 2
    assert common_prefix_len([], [1]) == 0
    assert common_prefix_len([5], [6]) == 0


def test_identical_prompts_are_prefilled_once():
    a, b = seq(1, 2, 3), seq(7, 8)
    plan = plan_prefill([a, a, b, a], mode="identical", min_shared=4)
    assert len(plan.nodes) == 1 and plan.nodes[0].end == len(a) and plan.nodes[0].start == 0
    # the three copies of `a` need nothing more; `b` is prefilled on its own
    assert [r.start for r in plan.rows] == [len(a), len(a), 0, len(a)]
    assert plan.prefill_tokens([len(a), len(a), len(b), len(a)]) == len(a) + len(b)


def test_lcp_shares_only_the_batch_wide_prefix():
    rows = [seq(1, 2), seq(1, 2), seq(3)]
    plan = plan_prefill(rows, mode="lcp", min_shared=4)
    assert [(n.start, n.end) for n in plan.nodes] == [(0, len(FAMILY))]
    assert [r.start for r in plan.rows] == [len(FAMILY)] * 3


def test_trie_computes_every_shared_token_once():
    # two conditions of one family, two samples each, plus one more condition
    c1, c2, c3 = seq(*range(10, 30)), seq(*range(50, 70)), seq(*range(80, 85))
    rows = [c1, c2, c1, c3, c2]
    plan = plan_prefill(rows, mode="trie", min_shared=4)
    ends = sorted(n.end for n in plan.nodes)
    assert ends == [len(FAMILY), len(c1), len(c2)]
    family = next(i for i, n in enumerate(plan.nodes) if n.end == len(FAMILY))
    for node in plan.nodes:
        if node.end != len(FAMILY):  # condition prompts extend the family node
            assert node.parent == family and node.start == len(FAMILY)
    distinct_tokens = len(FAMILY) + 20 + 20 + 5
    assert plan.prefill_tokens([len(r) for r in rows]) == distinct_tokens


def test_short_shared_prefixes_are_not_worth_a_node():
    rows = [(1, 2, 3, 4), (1, 2, 3, 5)]
    assert shared_prefixes(rows, "trie", min_shared=16) == []
    assert plan_prefill(rows, "trie", min_shared=16).prefill_tokens([4, 4]) == 8


def test_off_and_single_row_share_nothing():
    a = seq(1)
    assert plan_prefill([a, a], mode="off").prefill_tokens([len(a)] * 2) == 2 * len(a)
    assert plan_prefill([a], mode="trie").nodes == []


def test_plan_prefers_a_longer_cached_prefix():
    cached_until = len(FAMILY) + 10
    a, b = seq(*range(10, 30)), seq(*range(10, 30), 99)

    def lookup(tokens):
        return Lookup(min(cached_until, len(tokens)), "entry")

    plan = plan_prefill([a, b], mode="trie", lookup=lookup, min_shared=4)
    # the shared node (all of `a`) starts where the cache ends, and `b` continues from it
    assert len(plan.nodes) == 1
    node = plan.nodes[0]
    assert (node.start, node.end, node.cached.entry) == (cached_until, len(a), "entry")
    assert plan.rows[0].start == len(a) and plan.rows[1].start == len(a) and plan.rows[1].node == 0


def test_plan_skips_nodes_the_cache_covers_whole():
    a = seq(1, 2)
    plan = plan_prefill([a, a], mode="trie", lookup=lambda t: Lookup(len(t), "e"), min_shared=4)
    assert plan.nodes == []
    assert all(r.start == len(a) and r.cached is not None for r in plan.rows)


# ---- prefix store ----------------------------------------------------------------------------


def test_store_returns_longest_common_prefix():
    store = PrefixStore(max_bytes=10_000)
    store.put(seq(1, 2, 3), "abc", nbytes=100, has_logits=False)
    store.put(seq(9), "nine", nbytes=100, has_logits=True)
    hit = store.lookup(seq(1, 2, 7, 7))
    assert hit.usable == len(FAMILY) + 2 and hit.entry.value == "abc"
    assert store.lookup((5, 5)) == NO_LOOKUP


def test_store_full_match_needs_logits():
    store = PrefixStore(max_bytes=10_000)
    store.put(seq(1, 2), "no-logits", nbytes=10, has_logits=False)
    assert store.lookup(seq(1, 2)).usable == len(FAMILY) + 1  # the last token is recomputed
    assert store.lookup(seq(1)).usable == len(FAMILY)  # a strict prefix: last token recomputed
    store.put(seq(1, 2), "logits", nbytes=10, has_logits=True)
    hit = store.lookup(seq(1, 2))
    assert hit.usable == len(FAMILY) + 2 and hit.entry.value == "logits"


def test_store_evicts_least_recently_used_within_budget():
    store = PrefixStore(max_bytes=250)
    store.put((1,) * 20, "a", nbytes=100, has_logits=True)
    store.put((2,) * 20, "b", nbytes=100, has_logits=True)
    store.lookup((1,) * 20)  # touch a
    store.put((3,) * 20, "c", nbytes=100, has_logits=True)
    assert store.bytes <= 250 and len(store) == 2
    assert store.lookup((2,) * 20) == NO_LOOKUP
    assert store.lookup((1,) * 20).entry.value == "a"


def test_store_drops_entries_a_longer_one_covers():
    store = PrefixStore(max_bytes=10_000)
    store.put(seq(1), "turn1-output", nbytes=100, has_logits=False)
    store.put(seq(1, 2, 3), "turn2-output", nbytes=100, has_logits=False)
    assert len(store) == 1 and store.bytes == 100


# ---- request grouping ------------------------------------------------------------------------


def _bare_engine(max_batch: int = 4, window: float = 0.01) -> Engine:
    engine = Engine.__new__(Engine)
    engine.max_batch, engine.batch_window = max_batch, window
    engine._queue = queue.Queue()
    engine._rows = []
    engine._closed = False
    return engine


def test_collect_fills_a_batch_and_leaves_the_rest_queued():
    engine = _bare_engine(max_batch=4)
    requests = [_Request([1, 2], SamplingParams()) for _ in range(6)]
    for r in requests:
        engine._queue.put(r)
    taken = engine._collect()
    assert taken == requests[:4]
    assert engine._queue.qsize() == 2


def test_collect_waits_a_window_for_stragglers():
    engine = _bare_engine(max_batch=8, window=0.2)
    first, late = _Request([1], SamplingParams()), _Request([2], SamplingParams())
    engine._queue.put(first)
    threading.Timer(0.05, lambda: engine._queue.put(late)).start()
    assert engine._collect() == [first, late]


def test_collect_only_tops_up_a_running_batch_without_waiting():
    engine = _bare_engine(max_batch=4, window=5.0)
    engine._rows = [object(), object(), object()]  # three rows decoding
    for _ in range(3):
        engine._queue.put(_Request([1], SamplingParams()))
    started = time.monotonic()
    assert len(engine._collect()) == 1
    assert time.monotonic() - started < 1.0


def test_collect_skips_abandoned_and_cancelled_requests():
    engine = _bare_engine()
    abandoned, cancelled, live = (_Request([i], SamplingParams()) for i in range(3))
    abandoned.abandoned = True
    cancelled.future.cancel()
    for r in (abandoned, cancelled, live):
        engine._queue.put(r)
    assert engine._collect() == [live]


# ---- decode slab -----------------------------------------------------------------------------


def _kv(length: int, fill: float, layers: int = 2) -> list[tuple[torch.Tensor, torch.Tensor]]:
    k = torch.full((1, 1, length, 2), fill)
    return [(k.clone(), -k.clone()) for _ in range(layers)]


def test_slab_right_aligns_rows_and_masks_padding():
    slab = _Slab(n_layers=2, kv_heads=1, head_dim=2, dtype=torch.float32)
    slab.add(_kv(3, 1.0), cols_needed=4)
    slab.add(_kv(5, 2.0), cols_needed=4)  # longer: the first row shifts right
    assert slab.cur == 5 and slab.lengths == [3, 5]
    assert slab.k[0][0, 0, 2:5, 0].tolist() == [1.0, 1.0, 1.0]
    mask = slab.attention_mask()
    assert mask.tolist() == [[False, False, True, True, True, True], [True] * 6]
    slab.remove(0)  # the last row moves into the freed slot
    assert slab.lengths == [5] and slab.k[1][0, 0, :5, 0].tolist() == [2.0] * 5
    assert slab.row_kv(0)[0][1][0, 0, :, 0].tolist() == [-2.0] * 5


def test_slab_compaction_keeps_row_contents():
    slab = _Slab(n_layers=1, kv_heads=1, head_dim=2, dtype=torch.float32)
    slab.add(_kv(100, 1.0, layers=1), cols_needed=2)
    slab.add(_kv(4, 3.0, layers=1), cols_needed=2)
    slab.remove(0)
    slab.compact(cols_needed=2)
    assert slab.cur == 4 and slab.col_cap == 6
    assert slab.row_kv(0)[0][0][0, 0, :, 0].tolist() == [3.0] * 4


# ---- errors reach the caller -----------------------------------------------------------------


class _BrokenModel:
    def __call__(self, **kwargs):
        raise RuntimeError("model exploded")


def test_model_errors_propagate_to_the_waiting_caller():
    engine = _bare_engine()
    engine.model = _BrokenModel()
    engine.model.config = None
    engine.context_window = 100
    engine.reuse, engine.min_shared, engine.store, engine.cache_outputs = "trie", 16, None, False
    from alignlab.models._engine import EngineStats

    engine.stats = EngineStats()
    engine._thread, engine._thread_lock = None, threading.Lock()
    engine._forward = lambda ids, past: engine.model()  # type: ignore[method-assign]
    engine._decode = lambda ids: ""  # type: ignore[method-assign]
    request = engine.submit([1, 2, 3], SamplingParams())
    with pytest.raises(RuntimeError, match="model exploded"):
        request.future.result(timeout=10)
    # a prompt longer than the context window is answered, not computed
    long = engine.submit(list(range(200)), SamplingParams())
    assert long.future.result(timeout=10).stop_reason == "model_length"
    engine.close()  # the worker stops; later requests are refused, not left hanging
    assert not engine._thread.is_alive()
    with pytest.raises(RuntimeError, match="closed"):
        engine.submit([1], SamplingParams())


# ---- chat rendering, args, seeds -------------------------------------------------------------


def test_tool_traffic_is_rendered_as_text():
    from inspect_ai.model import ChatMessageAssistant, ChatMessageSystem, ChatMessageTool, ChatMessageUser
    from inspect_ai.tool import ToolCall

    turns = to_chat_dicts(
        [
            ChatMessageSystem(content="sys"),
            ChatMessageUser(content="go"),
            ChatMessageAssistant(
                content="Sending.", tool_calls=[ToolCall(id="1", function="send_email", arguments={"to": "a@b"})]
            ),
            ChatMessageTool(content="sent", tool_call_id="1", function="send_email"),
            ChatMessageUser(content="and now?"),
        ]
    )
    assert [t["role"] for t in turns] == ["system", "user", "assistant", "user"]
    assert '<tool_use name="send_email">\n{"to": "a@b"}\n</tool_use>' in turns[2]["content"]
    assert turns[3]["content"].startswith('<tool_result name="send_email">\nsent\n</tool_result>')
    assert turns[3]["content"].endswith("and now?")


def test_model_args_are_typed_and_checked():
    args = EmbeddedArgs.parse({"repetition_penalty": "1.3", "batch_size": "8", "cache_outputs": "false"})
    assert args.repetition_penalty == 1.3 and args.batch_size == 8 and args.cache_outputs is False
    with pytest.raises(UserError, match="unknown model arg"):
        EmbeddedArgs.parse({"temprature": 1})
    with pytest.raises(UserError, match="prefix_reuse"):
        EmbeddedArgs.parse({"prefix_reuse": "sometimes"})


def test_seeds_differ_per_sample_but_repeat_per_run():
    assert derive_seed(None, "s1:1", [1, 2]) is None
    assert derive_seed(0, "s1:1", [1, 2]) == derive_seed(0, "s1:1", [1, 2])
    assert derive_seed(0, "s1:1", [1, 2]) != derive_seed(0, "s2:1", [1, 2])
    assert derive_seed(0, "s1:1", [1, 2]) != derive_seed(1, "s1:1", [1, 2])
    assert 0 <= derive_seed(7, "", [3]) < 2**63


# ---- the real model --------------------------------------------------------------------------


@pytest.mark.model
def test_embedded_model_generates_batched_and_matches_plain_generation():
    from inspect_ai.model import ChatMessageSystem, ChatMessageUser, GenerateConfig, get_model
    from inspect_ai.tool import ToolInfo

    from alignlab.models._chat import render_prompt
    from alignlab.models._embedded import get_engine

    config = GenerateConfig(temperature=0, max_tokens=40)
    model = get_model("embedded/smollm2", config=config, memoize=False)
    engine = model.api.engine  # type: ignore[attr-defined]
    config_json = json.loads((model.api.checkpoint / "config.json").read_text())  # type: ignore[attr-defined]
    assert "quantization_config" not in config_json and engine.model.dtype == torch.float32
    system = ChatMessageSystem(content="You are a concise assistant for a logistics company.")
    prompts = [
        [system, ChatMessageUser(content="Name three colours of the rainbow.")],
        [system, ChatMessageUser(content="What is 12 plus 30?")],
    ]
    tool = ToolInfo(name="send_email", description="Send an email.")

    async def run():
        together = await asyncio.gather(
            model.generate(prompts[0], tools=[tool]), model.generate(prompts[0]), model.generate(prompts[1])
        )
        alone = await model.generate(prompts[0])
        return together, alone

    together, alone = asyncio.run(run())
    for output, messages in zip(together, [prompts[0], prompts[0], prompts[1]]):
        assert output.completion.strip()
        ids = engine.encode(render_prompt(messages, engine.tokenizer))
        prompt_tokens = output.usage.input_tokens + (output.usage.input_tokens_cache_read or 0)
        assert prompt_tokens == len(ids)
        eos = 1 if output.stop_reason == "stop" else 0
        assert output.usage.output_tokens == len(engine.encode(output.completion)) + eos
        assert output.usage.total_tokens == prompt_tokens + output.usage.output_tokens
    # duplicated prompts in one batch, and the same prompt alone, give one greedy answer
    assert together[0].completion == together[1].completion == alone.completion

    # greedy output equals plain transformers generation (batch 1) with the same penalty
    for messages, output in zip(prompts, [together[0], together[2]]):
        ids = torch.tensor([engine.encode(render_prompt(messages, engine.tokenizer))])
        with torch.inference_mode():
            ref = engine.model.generate(ids, max_new_tokens=40, do_sample=False, repetition_penalty=1.1)
        expected = engine.tokenizer.decode(ref[0, ids.shape[1] :], skip_special_tokens=True)
        assert output.completion == expected

    # sampling: the same seed and sample give the same text; the seed is recorded
    sampled = get_engine(model.api.checkpoint, model.api.args)  # type: ignore[attr-defined]
    assert sampled is engine  # one loaded model per checkpoint
    ids = engine.encode(render_prompt(prompts[1], engine.tokenizer))
    params = SamplingParams(max_new_tokens=12, temperature=1.0, seed=1234)
    first, second = engine.generate([ids, ids], params)
    assert first.text == second.text and first.seed == 1234

    # requests joining a batch that is already decoding (a longer prompt shifts every row's
    # cache) get the same greedy text as when run alone
    greedy = SamplingParams(max_new_tokens=40)
    joining = [
        engine.encode(render_prompt([system, ChatMessageUser(content=q)], engine.tokenizer))
        for q in ("List four fruits.", "Explain in detail, step by step, how a bicycle gear works. " * 3, "Hi!")
    ]
    engine.stats.reset()
    requests = []
    for ids in joining:
        requests.append(engine.submit(ids, greedy))
        time.sleep(0.3)
    staggered = [r.future.result(timeout=300).text for r in requests]
    assert engine.stats.max_rows >= 2  # they really decoded together
    engine.store.clear()
    assert staggered == [engine.generate([ids], greedy)[0].text for ids in joining]

    # an over-long prompt is answered with model_length instead of failing the run
    too_long = [ChatMessageUser(content="word " * 9000)]
    output = asyncio.run(model.generate(too_long))
    assert output.stop_reason == "model_length" and output.usage.input_tokens > 8192


# ---- preparation -----------------------------------------------------------------------------


def test_prepare_converts_once_atomically(tmp_path, monkeypatch):
    from alignlab.models import _prepare

    monkeypatch.delenv("ALIGNLAB_EMBEDDED_DIR", raising=False)
    monkeypatch.setenv("ALIGNLAB_CACHE", str(tmp_path))
    (tmp_path / ".embedded-leftover").mkdir()  # from a conversion that was killed
    calls = []

    def fake_convert(gguf, out):
        calls.append(out)
        time.sleep(0.2)  # long enough for the other threads to queue on the lock
        for name in ("config.json", "model.safetensors", "tokenizer.json"):
            (out / name).write_text("{}")

    monkeypatch.setattr(_prepare, "_convert", fake_convert)
    monkeypatch.setattr(_prepare, "gguf_path", lambda: tmp_path / "model.gguf")
    results = []
    threads = [threading.Thread(target=lambda: results.append(_prepare.prepare_embedded())) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(calls) == 1
    assert results == [tmp_path / "embedded"] * 3 and _prepare.is_prepared(tmp_path / "embedded")
    assert not list(tmp_path.glob(".embedded-*"))


def test_failed_preparation_leaves_nothing_behind(tmp_path, monkeypatch):
    from alignlab.models import _prepare

    target = tmp_path / "custom"
    monkeypatch.setenv("ALIGNLAB_EMBEDDED_DIR", str(target))
    assert _prepare.embedded_dir() == target

    def broken(gguf, out):
        (out / "config.json").write_text("{}")
        raise RuntimeError("disk full")

    monkeypatch.setattr(_prepare, "_convert", broken)
    monkeypatch.setattr(_prepare, "gguf_path", lambda: tmp_path / "model.gguf")
    with pytest.raises(RuntimeError, match="disk full"):
        _prepare.prepare_embedded()
    assert not target.exists() and not list(tmp_path.glob(".custom-*"))


# ---- thread count ----------------------------------------------------------------------------


def test_thread_tuner_follows_the_faster_option_and_recovers():
    from alignlab.models._threads import ThreadTuner

    tuner = ThreadTuner([1, 2], explore_every=8, max_interval=32)
    cost = {1: 1.0, 2: 0.6}  # cores free: two threads win

    def run(steps: int) -> dict[int, int]:
        used = {1: 0, 2: 0}
        for _ in range(steps):
            n = tuner.choose()
            tuner.record(n, cost[n])
            used[n] += 1
        return used

    assert run(200)[2] > 180
    assert tuner.for_prefill() == 2
    cost[2] = 1.1  # small decode batches: memory-bound, one thread about as fast...
    run(50)
    assert tuner.for_prefill() == 2  # ...but compute-bound prefill still wants both
    cost[2] = 10.0  # another process takes a core: two threads stall at every barrier
    busy = run(400)
    assert busy[1] > 380 and busy[2] >= 3  # still probed now and then, ever less often
    assert tuner.for_prefill() == 1
    cost[2] = 0.6
    assert run(400)[2] > 300  # and taken back once the cores are free again


def test_fixed_thread_count_is_never_changed():
    from alignlab.models._threads import ThreadTuner

    tuner = ThreadTuner([2])
    for _ in range(50):
        n = tuner.choose()
        assert n == 2
        tuner.record(n, 1.0)


@pytest.mark.model
def test_release_engines_frees_other_checkpoints():
    from inspect_ai.model import get_model
    from inspect_ai.model._model import _models

    from alignlab.models._embedded import _engines, release_engines

    release_engines()
    get_model("embedded/smollm2")
    assert len(_engines) == 1 and any(m.api.__class__.__name__ == "EmbeddedModelAPI" for m in _models.values())
    assert release_engines("embedded") == 0  # the one to keep stays
    assert release_engines() == 1
    assert not _engines and not any(m.api.__class__.__name__ == "EmbeddedModelAPI" for m in _models.values())
