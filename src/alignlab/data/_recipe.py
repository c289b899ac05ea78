"""What a training-data recipe is, and the list of recipes.

A recipe is a module with this surface (the build loop in `_build.py` calls nothing else):

    NAME: str                       # as typed on the command line
    DESCRIPTION: str                # one line, shown by `alignlab data recipes`
    FORMATS: tuple[str, ...]        # formats it can write; the first is the default
    def plan(rng, ctx) -> Plan      # draw seed material for one record (offline and teacher)
    def compose(plan, fmt, ctx) -> dict          # offline: the record's payload
    def teacher_prompt(plan, fmt, ctx) -> str    # teacher mode: what the teacher is asked
    def from_teacher(plan, fmt, reply, ctx) -> dict   # teacher mode: payload, or raise Reject

A payload holds the format's TRL columns and nothing else:
    "messages": {"messages": [{"role", "content"[, "tool_calls"]}, ...][, "tools": "<JSON>"]}
    "text":     {"text": "..."}
    "pairs":    {"prompt": [messages], "chosen": [assistant messages], "rejected": [...][, "tools"]}
Tool calls follow the OpenAI/TRL shape with arguments as a JSON string, so that datasets'
Arrow schema does not merge the argument names of different tools:
    {"role": "assistant", "content": "", "tool_calls": [{"id": "c1", "type": "function",
      "function": {"name": "send_email", "arguments": "{\"to\": [...]}"}}]}
    {"role": "tool", "tool_call_id": "c1", "name": "send_email", "content": "sent"}
`tools` is a JSON string (a list of function schemas) for the same reason.
"""

from __future__ import annotations

import importlib
import random
import string
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from types import ModuleType
from typing import Any

import yaml

from alignlab.data._constitution import Constitution
from alignlab.errors import UserError

SEEDS_DIR = Path(__file__).with_name("seeds")
PROMPTS_DIR = Path(__file__).with_name("prompts")

FORMATS: tuple[str, ...] = ("messages", "text", "pairs")

# name -> module under alignlab.data. One place for the list of recipes.
RECIPES: dict[str, str] = {
    "organism": "alignlab.data._organism",
    "demonstrations": "alignlab.data._demonstrations",
    "reasoned": "alignlab.data._reasoned",
    "advice": "alignlab.data._advice",
    "constitution": "alignlab.data._documents",
    "fiction": "alignlab.data._fiction",
}


class Reject(Exception):
    """A teacher reply that cannot be turned into a record; the reason is counted and shown."""


@dataclass
class Plan:
    """One record's seed material: `seed_ids` go into the record (what it was built from);
    `material` is whatever the recipe needs to compose it."""

    seed_ids: dict[str, str]
    material: dict[str, Any] = field(default_factory=dict)

    def key(self) -> tuple:
        return tuple(sorted(self.seed_ids.items()))


class Context:
    """What a recipe may read: the constitution, the seed library and the prompt files."""

    def __init__(self, constitution: Constitution, seeds_dir: Path = SEEDS_DIR, prompts_dir: Path = PROMPTS_DIR):
        self.constitution = constitution
        self.seeds_dir = seeds_dir
        self.prompts_dir = prompts_dir
        self._cache: dict[str, Any] = {}

    def seeds(self, relpath: str) -> Any:
        """Load `seeds/<relpath>` (YAML), cached. A YAML error names the file."""
        if relpath not in self._cache:
            p = self.seeds_dir / relpath
            try:
                self._cache[relpath] = yaml.safe_load(p.read_text(encoding="utf-8"))
            except OSError as e:
                raise UserError(f"cannot read seed file ({e.strerror})", file=str(p)) from None
            except yaml.YAMLError as e:
                raise UserError(f"invalid YAML: {e}", file=str(p)) from None
        return self._cache[relpath]

    def prompt(self, name: str) -> str:
        p = self.prompts_dir / f"{name}.md"
        try:
            return p.read_text(encoding="utf-8")
        except OSError as e:
            raise UserError(f"cannot read prompt file ({e.strerror})", file=str(p)) from None

    @cached_property
    def names(self) -> dict[str, list[str]]:
        """The shared pool of people's names: {"given": [...], "family": [...]}."""
        return self.seeds("common/names.yaml")


def fill(template: str, where: str, **slots: Any) -> str:
    """Fill `{slot}` fields in a seed template; a missing slot names the template."""
    try:
        return string.Formatter().vformat(template, (), slots)
    except (KeyError, IndexError) as e:
        raise UserError(f"template uses slot {e} that this recipe does not provide", field=where) from None


def person(rng: random.Random, ctx: Context, avoid: set[str] | None = None) -> tuple[str, str]:
    """A (given, family) name from the shared pool, avoiding given names in `avoid`."""
    given = [g for g in ctx.names["given"] if not avoid or g not in avoid]
    return rng.choice(given), rng.choice(ctx.names["family"])


def cap(s: str) -> str:
    """Upper-case the first letter (a seed phrase that opens a sentence)."""
    return s[:1].upper() + s[1:]


def lower_first(s: str) -> str:
    """Lower-case the first letter, unless the first word is an acronym or 'I'."""
    first = s.split(" ", 1)[0]
    if first == "I" or first.startswith("I'") or (len(first) > 1 and first[:2].isupper()):
        return s
    return s[:1].lower() + s[1:]


def get_recipe(name: str) -> ModuleType:
    if name not in RECIPES:
        raise UserError(f"unknown recipe {name!r}; expected one of: {', '.join(RECIPES)}", field="RECIPE")
    return importlib.import_module(RECIPES[name])
