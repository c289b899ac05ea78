"""On-disk verdict cache: re-scoring is free, and verdicts outlive the judge model.

One sqlite file, `$ALIGNLAB_CACHE/verdicts/verdicts.sqlite`, keyed by the sha256 of
(judge model, rubric version, intent, text, context). Only usable verdicts are stored: a
judge failure (label None) is retried next time rather than frozen as `unscored`.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

from alignlab.judges._types import IntentVerdict

DEFAULT_CACHE_ROOT = "~/.cache/alignlab"


def cache_root() -> Path:
    """`$ALIGNLAB_CACHE`, default `~/.cache/alignlab` (read on every call, so tests can move it)."""
    return Path(os.environ.get("ALIGNLAB_CACHE") or DEFAULT_CACHE_ROOT).expanduser()


def verdict_key(judge: str, rubric_version: str, intent: str, text: str,
                context: dict[str, Any]) -> str:
    payload = json.dumps(
        [judge, rubric_version, intent, text, context],
        sort_keys=True, ensure_ascii=False, default=str,
    )
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


class VerdictCache:
    """A small sqlite store of IntentVerdicts. Safe across threads and processes."""

    def __init__(self, path: Path | str | None = None):
        self.path = Path(path) if path else cache_root() / "verdicts" / "verdicts.sqlite"
        self._lock = threading.Lock()
        self._ready = False

    def _connect(self) -> sqlite3.Connection:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(self.path, timeout=30)
        if not self._ready:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute(
                "CREATE TABLE IF NOT EXISTS verdicts ("
                " key TEXT PRIMARY KEY, judge TEXT, rubric_version TEXT, intent TEXT,"
                " label INTEGER NOT NULL, reason TEXT, source TEXT, confidence REAL,"
                " created REAL)"
            )
            self._ready = True
        return conn

    def get(self, key: str) -> IntentVerdict | None:
        with self._lock:
            conn = self._connect()
            try:
                row = conn.execute(
                    "SELECT label, reason, source, confidence FROM verdicts WHERE key = ?",
                    (key,),
                ).fetchone()
            finally:
                conn.close()
        if row is None:
            return None
        label, reason, source, confidence = row
        return IntentVerdict(label=bool(label), reason=reason or "", source=source or "",
                             confidence=confidence, cached=True)

    def put(self, key: str, verdict: IntentVerdict, *, judge: str, rubric_version: str,
            intent: str) -> None:
        if verdict.label is None:
            return
        with self._lock:
            conn = self._connect()
            try:
                with conn:
                    conn.execute(
                        "INSERT OR REPLACE INTO verdicts VALUES (?,?,?,?,?,?,?,?,?)",
                        (key, judge, rubric_version, intent, int(verdict.label),
                         verdict.reason, verdict.source, verdict.confidence, time.time()),
                    )
            finally:
                conn.close()

    def __len__(self) -> int:
        with self._lock:
            conn = self._connect()
            try:
                return int(conn.execute("SELECT COUNT(*) FROM verdicts").fetchone()[0])
            finally:
                conn.close()
