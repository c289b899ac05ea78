"""Teacher mode: any Inspect model writes the parts of a record the recipe asks for.

The model is reached through Inspect's `get_model`, so every provider Inspect supports works
(`openai/…`, `anthropic/…`, `vllm/…`, `hf/…`), plus `embedded` and checkpoint directories.
"""

from __future__ import annotations

import asyncio
from typing import Any


class Teacher:
    def __init__(self, name: str, *, temperature: float, max_tokens: int, seed: int):
        from inspect_ai.model import GenerateConfig, get_model

        from alignlab.runs._eval import resolve_model

        self.name = name
        self.model = get_model(resolve_model(name))
        self.config = GenerateConfig(temperature=temperature, max_tokens=max_tokens, seed=seed)

    async def _one(self, prompt: str, sem: asyncio.Semaphore) -> str:
        async with sem:
            out = await self.model.generate(prompt, config=self.config)
        if out.error:
            raise RuntimeError(out.error)
        return out.completion

    async def generate_all(self, prompts: list[str], max_connections: int) -> list[Any]:
        """One reply per prompt, in order; a failed request is returned as its exception."""
        sem = asyncio.Semaphore(max_connections)
        return await asyncio.gather(*(self._one(p, sem) for p in prompts), return_exceptions=True)
