"""Optional LLM judge: labels each sycophantic reply's mechanism and severity.

The label lists (data/taxonomy.yaml) and the prompt (data/rubric.md) are data, because the
paper's exact sub-categories are unverified. The judge never decides a sample's status —
that is the deterministic three-condition test — it only describes replies already found
sycophantic. Its answer is parsed strictly: one JSON object whose `mechanism` and `severity`
are labels from the lists; anything else is recorded as "unscored" and counted.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from alignlab.errors import UserError

UNSCORED = "unscored"
MAX_TOKENS = 200
_SLOT = re.compile(r"\{\{(question|correct|wrong|user_message|response|mechanisms|severities)\}\}")
_FENCE = re.compile(r"^```(?:json)?\s*(.*?)\s*```$", re.S | re.I)


@dataclass(frozen=True)
class Taxonomy:
    mechanisms: dict[str, str]  # label -> description
    severities: dict[str, str]


@dataclass(frozen=True)
class Rubric:
    version: str
    template: str


def _data(name: str) -> Path:
    return Path(str(resources.files("alignlab.sycophancy").joinpath("data", name)))


def load_taxonomy(path: str | Path | None = None) -> Taxonomy:
    path = Path(path) if path is not None else _data("taxonomy.yaml")
    try:
        data: Any = yaml.safe_load(path.read_text("utf-8"))
    except (OSError, yaml.YAMLError) as ex:
        raise UserError(f"cannot read taxonomy: {ex}", file=str(path)) from None
    out = {}
    for key in ("mechanisms", "severities"):
        value = data.get(key) if isinstance(data, dict) else None
        if (not isinstance(value, dict) or not value
                or not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items())):
            raise UserError("expected a mapping of label to description", file=str(path),
                            field=key)
        if UNSCORED in value:
            raise UserError(f"'{UNSCORED}' is reserved for unparseable answers", file=str(path),
                            field=key)
        out[key] = dict(value)
    return Taxonomy(**out)


def load_rubric(path: str | Path | None = None) -> Rubric:
    path = Path(path) if path is not None else _data("rubric.md")
    try:
        raw = path.read_text("utf-8")
    except OSError as ex:
        raise UserError(f"cannot read rubric: {ex}", file=str(path)) from None
    header, sep, body = raw.partition("\n---\n")
    version = next((line.split(":", 1)[1].strip() for line in header.splitlines()
                    if line.lower().startswith("version:")), None)
    if not sep or not version:
        raise UserError("a rubric starts with a 'version:' line, then a '---' line",
                        file=str(path), field="version")
    return Rubric(version=version, template=body.strip() + "\n")


@lru_cache(maxsize=1)
def taxonomy() -> Taxonomy:
    return load_taxonomy()


@lru_cache(maxsize=1)
def rubric() -> Rubric:
    return load_rubric()


def _listing(labels: dict[str, str]) -> str:
    return "\n".join(f"- {k}: {v}" for k, v in labels.items())


def judge_prompt(question: str, correct: str, wrong: str, user_message: str, response: str,
                 tax: Taxonomy | None = None, rub: Rubric | None = None) -> str:
    tax, rub = tax or taxonomy(), rub or rubric()
    values = {"question": question, "correct": correct, "wrong": wrong,
              "user_message": user_message, "response": response or "",
              "mechanisms": _listing(tax.mechanisms), "severities": _listing(tax.severities)}
    # one pass, so a reply that itself contains "{{wrong}}" is left as written
    return _SLOT.sub(lambda m: values[m.group(1)], rub.template)


def parse_labels(text: str | None, tax: Taxonomy | None = None) -> tuple[str, str, str]:
    """(mechanism, severity, problem) from the judge's answer. Strict: the whole answer is
    one JSON object (a ```json fence around it is allowed) with known labels; otherwise the
    offending label is "unscored" and `problem` says why."""
    tax = tax or taxonomy()
    body = (text or "").strip()
    fenced = _FENCE.match(body)
    if fenced:
        body = fenced.group(1).strip()
    try:
        obj = json.loads(body)
    except ValueError:
        return UNSCORED, UNSCORED, f"not a JSON object: {' '.join(body.split())[:120]!r}"
    if not isinstance(obj, dict):
        return UNSCORED, UNSCORED, "not a JSON object"
    problems = []
    labels = []
    for key, allowed in (("mechanism", tax.mechanisms), ("severity", tax.severities)):
        value = obj.get(key)
        label = value.strip().lower() if isinstance(value, str) else None
        if label in allowed:
            labels.append(label)
        else:
            labels.append(UNSCORED)
            problems.append(f"{key} {value!r} is not one of {', '.join(allowed)}")
    return labels[0], labels[1], "; ".join(problems)


async def judge_reply(model: Any, question: str, correct: str, wrong: str, user_message: str,
                      response: str) -> dict[str, Any]:
    """Ask the judge model; returns {"mechanism", "severity", "problem", "rubric"}.
    A failing judge call is recorded as unscored, never raised: labels are descriptive."""
    from inspect_ai.model import GenerateConfig

    rub = rubric()
    prompt = judge_prompt(question, correct, wrong, user_message, response, rub=rub)
    try:
        output = await model.generate(prompt, config=GenerateConfig(temperature=0.0,
                                                                    max_tokens=MAX_TOKENS))
        raw = output.completion
    except Exception as ex:  # provider failure: the labels stay unscored
        return {"mechanism": UNSCORED, "severity": UNSCORED, "rubric": rub.version,
                "problem": f"judge failed: {type(ex).__name__}: {ex}"[:300]}
    mechanism, severity, problem = parse_labels(raw)
    return {"mechanism": mechanism, "severity": severity, "rubric": rub.version,
            "problem": problem}
