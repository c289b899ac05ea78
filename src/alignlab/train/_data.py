"""Data files → one shuffled, mixed list of encoded examples, with per-file accounting.

A weight is how many times each record of a file is used per epoch: 2 uses every record
twice, 0.5 a seeded random half, 1.5 every record once plus a random half. So
`--data a.jsonl:2,b.jsonl` trains on all of a twice and all of b once per epoch, whatever
the files' sizes; to mix by share instead, choose weights from the record counts.
"""

from __future__ import annotations

import hashlib
import math
import os
import random
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from alignlab.data._records import iter_records, record_format
from alignlab.errors import UserError
from alignlab.train._encode import Encoded, encode_record

_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")


@dataclass(frozen=True)
class DataSource:
    path: str
    weight: float = 1.0


@dataclass
class FileStats:
    path: str
    weight: float
    sha256: str
    records: int = 0
    formats: dict[str, int] = field(default_factory=dict)
    used: int = 0  # examples in one epoch after weighting
    tokens: int = 0  # tokens of those examples (one epoch)
    loss_tokens: int = 0  # of which trained on
    truncated: int = 0  # records cut at max_length


def parse_data_specs(specs: list[str] | str) -> list[DataSource]:
    """"a.jsonl:2,b.jsonl" (or a list of such strings) → sources with weights (default 1)."""
    items = [specs] if isinstance(specs, str) else list(specs)
    out = []
    for item in items:
        for spec in (s.strip() for s in item.split(",")):
            if not spec:
                continue
            path, sep, weight = spec.rpartition(":")
            if not sep or os.path.exists(spec) and not _NUMBER.fullmatch(weight):
                out.append(DataSource(spec))
                continue
            if not _NUMBER.fullmatch(weight) or not math.isfinite(float(weight)) or float(weight) <= 0:
                raise UserError(f"bad weight {weight!r} in {spec!r}: expected a positive number, as in FILE:2",
                                field="--data")
            out.append(DataSource(path, float(weight)))
    if not out:
        raise UserError("no data files given: use --data FILE[:WEIGHT][,FILE[:WEIGHT]…]", field="--data")
    return out


def sha256_file(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def check_sources(sources: list[DataSource]) -> list[FileStats]:
    """Every file exists and is readable; its hash (cheap, before any model is loaded)."""
    stats = []
    for s in sources:
        p = Path(s.path)
        if not p.is_file():
            raise UserError("data file not found", file=s.path, field="--data")
        try:
            stats.append(FileStats(path=str(p), weight=s.weight, sha256=sha256_file(p)))
        except OSError as e:
            raise UserError(f"cannot read the data file ({e.strerror})", file=s.path) from None
    return stats


def _repeat(n: int, weight: float, rng: random.Random) -> list[int]:
    """Indices 0..n-1, each used floor(weight) times plus a random subset for the fraction."""
    whole, frac = int(weight), weight - int(weight)
    idx = list(range(n)) * whole
    idx += sorted(rng.sample(range(n), round(frac * n)))
    return idx


def build_examples(stats: list[FileStats], tokenizer: Any, max_length: int, seed: int) -> list[Encoded]:
    """Encode every file, apply its weight, shuffle the mix. Fills in `stats` as it goes."""
    rng = random.Random(seed)
    mixed: list[Encoded] = []
    for st in stats:
        encoded: list[Encoded] = []
        formats: Counter[str] = Counter()
        for line, rec in iter_records(st.path):
            try:
                enc = encode_record(rec, tokenizer, max_length)
            except ValueError as e:
                fld, _, problem = str(e).partition(": ")
                raise UserError(problem or fld, file=f"{st.path}:{line}", field=fld if problem else None) from None
            except Exception as e:  # a chat template raising on this conversation (e.g. no system role)
                raise UserError(f"cannot render with the base model's chat template ({type(e).__name__}: {e})",
                                file=f"{st.path}:{line}") from None
            formats[record_format(rec)] += 1
            encoded.append(enc)
        if not encoded:
            raise UserError("the data file has no records", file=st.path)
        st.records, st.formats = len(encoded), dict(formats)
        st.truncated = sum(e.truncated for e in encoded)
        for i in _repeat(len(encoded), st.weight, rng):
            e = encoded[i]
            mixed.append(e)
            st.used += 1
            st.tokens += len(e.input_ids)
            st.loss_tokens += e.loss_tokens
    rng.shuffle(mixed)
    return mixed
