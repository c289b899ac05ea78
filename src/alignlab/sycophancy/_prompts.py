"""How an item is put to the model: the neutral question, cued variants and the challenge.

Phrasings live in data/cues.yaml. Each (item, target type) gets one phrasing, chosen by a
hash of the item id, and uses it for both the wrong and the right cue: the two prompts then
differ only in the stated answer, which is what separates sycophancy from agreement.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from alignlab.errors import UserError
from alignlab.sycophancy._items import DOMAINS, Item, stable_index

TARGETS: tuple[str, ...] = ("belief", "preference", "self_concept")
POLARITIES: tuple[str, ...] = ("wrong", "right")
NEUTRAL = "neutral"
CHALLENGE = "challenge"


def variant_name(polarity: str, target: str) -> str:
    return f"{polarity}:{target}"


CUED_VARIANTS: tuple[str, ...] = tuple(variant_name(p, t) for p in POLARITIES for t in TARGETS)


@dataclass(frozen=True)
class Cues:
    prompt: str
    instructions: dict[str, str]
    targets: dict[str, tuple[str, ...]]
    roles: dict[str, tuple[str, ...]]
    challenges: tuple[str, ...]


@dataclass(frozen=True)
class Variant:
    name: str  # "wrong:belief", "right:preference", ...
    polarity: str  # "wrong" | "right"
    target: str  # "belief" | "preference" | "self_concept"
    x: str  # the answer the cue states (canonical)
    cue: str  # the cue sentence
    prompt: str  # the whole user message


def _cues_path() -> Path:
    return Path(str(resources.files("alignlab.sycophancy").joinpath("data", "cues.yaml")))


def _str_list(data: dict, key: str, file: str, where: str) -> tuple[str, ...]:
    value = data.get(key)
    if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
        raise UserError("expected a non-empty list of strings", file=file, field=f"{where}{key}")
    return tuple(value)


def load_cues(path: str | Path | None = None) -> Cues:
    path = Path(path) if path is not None else _cues_path()
    file = str(path)
    try:
        data: Any = yaml.safe_load(path.read_text("utf-8"))
    except (OSError, yaml.YAMLError) as ex:
        raise UserError(f"cannot read cue file: {ex}", file=file) from None
    if not isinstance(data, dict):
        raise UserError("expected a mapping", file=file)
    prompt = data.get("prompt")
    if not isinstance(prompt, str) or "{question}" not in prompt or "{instruction}" not in prompt:
        raise UserError("expected a template with {question}, {cue} and {instruction}",
                        file=file, field="prompt")
    instructions = data.get("instructions")
    if not isinstance(instructions, dict) or not all(isinstance(v, str) for v in instructions.values()):
        raise UserError("expected a mapping of answer noun to instruction", file=file,
                        field="instructions")
    targets_raw = data.get("targets")
    if not isinstance(targets_raw, dict):
        raise UserError("expected a mapping of target type to phrasings", file=file,
                        field="targets")
    targets = {}
    for t in TARGETS:
        targets[t] = _str_list(targets_raw, t, file, "targets.")
        for phrasing in targets[t]:
            if "{x}" not in phrasing:
                raise UserError(f"phrasing {phrasing!r} does not state the answer {{x}}",
                                file=file, field=f"targets.{t}")
    roles_raw = data.get("roles")
    if not isinstance(roles_raw, dict):
        raise UserError("expected a mapping of domain to roles", file=file, field="roles")
    roles = {d: _str_list(roles_raw, d, file, "roles.") for d in DOMAINS}
    challenges = _str_list(data, "challenges", file, "")
    return Cues(prompt=prompt, instructions=dict(instructions), targets=targets, roles=roles,
                challenges=challenges)


@lru_cache(maxsize=1)
def cues() -> Cues:
    return load_cues()


def _instruction(item: Item, c: Cues) -> str:
    if item.noun not in c.instructions:
        raise UserError(f"no instruction for answer noun {item.noun!r} (item {item.id})",
                        file=str(_cues_path()), field="instructions")
    return c.instructions[item.noun]


def _message(item: Item, cue: str, c: Cues) -> str:
    return c.prompt.format(question=item.question, cue=f"{cue} " if cue else "",
                           instruction=_instruction(item, c))


def neutral_prompt(item: Item, c: Cues | None = None) -> str:
    return _message(item, "", c or cues())


def cued_variants(item: Item, c: Cues | None = None) -> list[Variant]:
    """The six cued prompts: wrong and right answer × belief, preference, self-concept."""
    c = c or cues()
    out = []
    for target in TARGETS:
        phrasings = c.targets[target]
        phrasing = phrasings[stable_index(f"{item.id}|{target}", len(phrasings))]
        roles = c.roles[item.domain]
        role = roles[stable_index(f"{item.id}|role", len(roles))]
        for polarity in POLARITIES:
            x = item.wrong if polarity == "wrong" else item.answer
            cue = phrasing.format(x=item.cue_value(x), role=role)
            out.append(Variant(name=variant_name(polarity, target), polarity=polarity,
                               target=target, x=x, cue=cue, prompt=_message(item, cue, c)))
    return out


def challenge_prompt(item: Item, c: Cues | None = None) -> str:
    """The second user turn after a (correct) neutral answer."""
    c = c or cues()
    challenge = c.challenges[stable_index(f"{item.id}|challenge", len(c.challenges))]
    return f"{challenge} {_instruction(item, c)}"
