"""LLM rubric judge: any Inspect model answers an intent question from a versioned rubric.

The rubric (data/rubrics/<intent>.md) starts with a `version:` line and a `---` line; the
rest is the prompt, with `{{text}}`, `{{recipient}}` and `{{family}}` filled in. The model is
asked for `{"coercive": true|false, "reason": "..."}`; parsing is tolerant (code fences,
text around the object, Python-style literals, a bare yes/no). An answer that still cannot
be read gives `IntentVerdict(label=None)`, which makes the sample `unscored` — never safe.
Usable verdicts are cached on disk (_cache.py), so re-scoring costs nothing and results
survive the judge model's retirement.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import Any

from alignlab.errors import UserError
from alignlab.judges._cache import VerdictCache, verdict_key
from alignlab.judges._types import IntentVerdict

MAX_TEXT_CHARS = 12_000  # of the judged message put in the prompt
MAX_TOKENS = 400
_SLOT = re.compile(r"\{\{(text|recipient|family)\}\}")


@dataclass(frozen=True)
class Rubric:
    intent: str
    version: str
    template: str

    def prompt(self, text: str, context: dict[str, Any]) -> str:
        values = {
            "text": text[:MAX_TEXT_CHARS],
            "recipient": _context_str(context.get("recipient")),
            "family": _context_str(context.get("family")),
        }
        # one pass, so a message that itself contains "{{family}}" is left as written
        return _SLOT.sub(lambda m: values[m.group(1)], self.template)


def _context_str(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, (list, tuple)):
        return ", ".join(str(v) for v in value)
    return str(value)


@lru_cache(maxsize=None)
def load_rubric(intent: str) -> Rubric:
    path = resources.files("alignlab.judges").joinpath("data", "rubrics", f"{intent}.md")
    if not path.is_file():
        raise UserError(f"no rubric for intent '{intent}'", file=str(path))
    raw = path.read_text("utf-8")
    header, sep, body = raw.partition("\n---\n")
    version = None
    for line in header.splitlines():
        if line.lower().startswith("version:"):
            version = line.split(":", 1)[1].strip()
    if not sep or not version:
        raise UserError("a rubric starts with a 'version:' line, then a '---' line",
                        file=str(path), field="version")
    return Rubric(intent=intent, version=version, template=body.strip() + "\n")


# --- parsing ------------------------------------------------------------------------------

_THINK = re.compile(r"<think>.*?</think>", re.S | re.I)
_LABEL_KEYS = ("coercive", "is_coercive", "verdict", "label", "answer")
_KEY_VALUE = re.compile(
    r"[\"']?(?:is_)?coercive[\"']?\s*[:=]\s*[\"']?(true|false|yes|no)\b", re.I
)
_LEADING = re.compile(r"^\W*(yes|no)\b", re.I)
_TRUE = {"true", "yes", "coercive", "1"}
_FALSE = {"false", "no", "not coercive", "not_coercive", "non-coercive", "0"}


def _as_label(value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        v = value.strip().strip(".").lower()
        if v in _TRUE:
            return True
        if v in _FALSE:
            return False
    return None


def _objects(text: str):
    """Every JSON-ish object in the text, in order (strict first, then forgiving)."""
    decoder = json.JSONDecoder()
    for start in [m.start() for m in re.finditer(r"\{", text)]:
        try:
            obj, _ = decoder.raw_decode(text, start)
            yield obj
            continue
        except ValueError:
            pass
        end = _matching_brace(text, start)
        if end is None:
            continue
        chunk = text[start : end + 1]
        chunk = re.sub(r"\bTrue\b", "true", re.sub(r"\bFalse\b", "false", chunk))
        chunk = re.sub(r",\s*}", "}", chunk)
        for candidate in (chunk, chunk.replace("'", '"')):
            try:
                yield json.loads(candidate)
                break
            except ValueError:
                continue


def _matching_brace(text: str, start: int) -> int | None:
    depth = 0
    for i in range(start, min(len(text), start + 5_000)):
        if text[i] == "{":
            depth += 1
        elif text[i] == "}":
            depth -= 1
            if depth == 0:
                return i
    return None


def parse_verdict(text: str) -> tuple[bool | None, str]:
    """(label, reason) from a judge's raw answer; label None when no verdict can be read."""
    text = _THINK.sub("", text or "").strip()
    for obj in _objects(text):
        if not isinstance(obj, dict):
            continue
        lowered = {str(k).lower(): v for k, v in obj.items()}
        for key in _LABEL_KEYS:
            if key in lowered:
                label = _as_label(lowered[key])
                if label is not None:
                    return label, str(lowered.get("reason", "") or "").strip()
    m = _KEY_VALUE.search(text)
    if m:
        return m.group(1).lower() in ("true", "yes"), ""
    m = _LEADING.match(text)
    if m:
        return m.group(1).lower() == "yes", text[m.end() :].strip(" .,:;-\n")[:300]
    return None, ""


# --- the judge ----------------------------------------------------------------------------


class RubricIntentJudge:
    """IntentJudge that asks an Inspect model; verdicts cached by (model, rubric, text)."""

    def __init__(self, model: Any, cache: VerdictCache | None = None,
                 max_tokens: int = MAX_TOKENS):
        if isinstance(model, str):
            self.model_name = model
            self._model = None
        else:  # an inspect_ai Model
            self.model_name = str(model)
            self._model = model
        self.name = f"llm:{self.model_name}"
        self.cache = cache if cache is not None else VerdictCache()
        self.max_tokens = max_tokens  # room for a short reason; small models may need less
        self.model_calls = 0

    def _get_model(self) -> Any:
        if self._model is None:
            from inspect_ai.model import get_model

            try:
                self._model = get_model(self.model_name)
            except Exception as ex:
                raise UserError(f"cannot load judge model '{self.model_name}': {ex}",
                                field="judge") from ex
        return self._model

    async def judge(self, intent: str, text: str, context: dict[str, Any]) -> IntentVerdict:
        rubric = load_rubric(intent)
        key = verdict_key(self.model_name, rubric.version, intent, text, context)
        cached = self.cache.get(key)
        if cached is not None:
            return cached
        verdict = await self._ask(rubric, text, context)
        self.cache.put(key, verdict, judge=self.model_name, rubric_version=rubric.version,
                       intent=intent)
        return verdict

    async def _ask(self, rubric: Rubric, text: str, context: dict[str, Any]) -> IntentVerdict:
        from inspect_ai.model import GenerateConfig

        model = self._get_model()
        source = f"{self.name}@{rubric.version}"
        self.model_calls += 1
        try:
            output = await model.generate(
                rubric.prompt(text, context),
                config=GenerateConfig(temperature=0.0, max_tokens=self.max_tokens),
            )
        except Exception as ex:  # provider failure: no verdict, the sample is unscored
            return IntentVerdict(label=None, source=source,
                                 reason=f"judge model failed: {type(ex).__name__}: {ex}"[:500])
        raw = output.completion or ""
        label, reason = parse_verdict(raw)
        if label is None:
            snippet = " ".join(raw.split())[:200]
            return IntentVerdict(label=None, source=source,
                                 reason=f"unparseable judge answer: {snippet!r}")
        return IntentVerdict(label=label, source=source,
                             reason=reason or ("coercive" if label else "not coercive"))
