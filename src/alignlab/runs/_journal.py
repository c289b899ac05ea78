"""The sample journal: one JSON line per finished sample, written as each sample is scored.

It is what makes a run resumable after Ctrl-C or kill: a re-run reads it and schedules only
the samples that are missing (or that ended in `error`). A torn last line from a kill is
ignored; a repeated key keeps its last record, so nothing is ever counted twice.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

JOURNAL_NAME = "samples.jsonl"


def sample_key(condition_id: str, k: int) -> str:
    return f"{condition_id}#{k}"


def append(path: str | Path, record: dict[str, Any]) -> None:
    line = json.dumps(record, ensure_ascii=False, default=str) + "\n"
    with open(path, "a", encoding="utf-8") as f:
        f.write(line)
        f.flush()
        os.fsync(f.fileno())


def read(path: str | Path) -> dict[str, dict[str, Any]]:
    """Records by sample key (last one wins); unreadable lines are skipped."""
    records: dict[str, dict[str, Any]] = {}
    p = Path(path)
    if not p.exists():
        return records
    with open(p, encoding="utf-8", errors="replace") as f:
        for line in f:
            line = line.strip()
            if not line:
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError:
                continue  # a line torn by a kill mid-write
            if isinstance(rec, dict) and "sample_id" in rec:
                records[rec["sample_id"]] = rec
    return records
