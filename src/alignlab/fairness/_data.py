"""The fairness suite's data tables (`data/*.yaml`), loaded and validated.

Every check names the file and the field, so a broken table is a `UserError` (exit code 2),
never a KeyError deep inside a run.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from alignlab.errors import UserError

STRENGTHS: tuple[str, ...] = ("strong", "borderline", "weak")
FRAGMENTS: tuple[str, ...] = ("education", "experience", "highlights")
KINDS: tuple[str, ...] = ("name_gender", "name_ethnicity", "lines")
GENDERS: tuple[str, ...] = ("woman", "man")


def default_data_dir() -> Path:
    return Path(__file__).parent / "data"


@dataclass(frozen=True)
class Role:
    id: str
    title: str
    org: str
    requirements: str
    # strength -> fragment name -> options
    fragments: dict[str, dict[str, tuple[str, ...]]]


@dataclass(frozen=True)
class Attribute:
    id: str
    signal: str
    kind: str
    values: tuple[str, str]
    lines: dict[str, tuple[str, ...]]  # kind "lines": value -> templates
    ages: dict[str, tuple[int, ...]]  # age attribute: value -> ages to draw from
    reference_year: int | None


@dataclass(frozen=True)
class Prompt:
    system: str
    examples: tuple[tuple[str, str], ...]  # (profile, answer)
    profile: str


@dataclass(frozen=True)
class Tables:
    roles: tuple[Role, ...]
    attributes: tuple[Attribute, ...]
    names: dict[str, dict[str, tuple[str, ...]]]  # group -> woman/man/family -> names
    prompt: Prompt
    pairs_per_attribute: int
    seed: int


def _load(path: Path) -> Any:
    try:
        with open(path, encoding="utf-8") as f:
            return yaml.safe_load(f)
    except FileNotFoundError:
        raise UserError("file not found", file=str(path))
    except yaml.YAMLError as e:
        raise UserError(f"not valid YAML: {e}", file=str(path))


def _need(d: Any, key: str, kind: type | tuple[type, ...], file: Path, where: str) -> Any:
    field = f"{where}.{key}" if where else key
    if not isinstance(d, dict) or key not in d:
        raise UserError("missing", file=str(file), field=field)
    value = d[key]
    if not isinstance(value, kind) or (isinstance(value, (str, list, dict)) and not value):
        expected = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
        raise UserError(f"expected a non-empty {expected}, got {value!r}", file=str(file), field=field)
    return value


def _strings(value: Any, file: Path, field: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not value or not all(isinstance(v, str) and v.strip() for v in value):
        raise UserError(f"expected a non-empty list of non-empty strings, got {value!r}", file=str(file), field=field)
    return tuple(v.strip() for v in value)


def _roles(file: Path) -> tuple[Role, ...]:
    doc = _load(file)
    items = _need(doc, "roles", list, file, "")
    roles, seen = [], set()
    for i, r in enumerate(items):
        where = f"roles[{i}]"
        rid = _need(r, "id", str, file, where)
        if rid in seen:
            raise UserError(f"duplicate role id {rid!r}", file=str(file), field=f"{where}.id")
        seen.add(rid)
        fragments = {}
        for s in STRENGTHS:
            block = _need(r, s, dict, file, where)
            fragments[s] = {f: _strings(block.get(f), file, f"{where}.{s}.{f}") for f in FRAGMENTS}
        roles.append(Role(
            id=rid,
            title=_need(r, "title", str, file, where).strip(),
            org=_need(r, "org", str, file, where).strip(),
            requirements=_need(r, "requirements", str, file, where).strip(),
            fragments=fragments,
        ))
    return tuple(roles)


def _names(file: Path) -> dict[str, dict[str, tuple[str, ...]]]:
    doc = _load(file)
    groups = _need(doc, "groups", dict, file, "")
    out = {}
    for g, block in groups.items():
        out[str(g)] = {k: _strings(_need(block, k, list, file, f"groups.{g}"), file, f"groups.{g}.{k}")
                       for k in (*GENDERS, "family")}
    return out


def _attributes(file: Path, groups: dict[str, Any]) -> tuple[tuple[Attribute, ...], int, int]:
    doc = _load(file)
    n = _need(doc, "pairs_per_attribute", int, file, "")
    if n < 1:
        raise UserError(f"expected a positive integer, got {n}", file=str(file), field="pairs_per_attribute")
    seed = _need(doc, "seed", int, file, "")
    out, seen = [], set()
    for i, a in enumerate(_need(doc, "attributes", list, file, "")):
        where = f"attributes[{i}]"
        aid = _need(a, "id", str, file, where)
        if aid in seen or "-" in aid or "#" in aid:
            raise UserError(f"attribute ids must be unique and contain no '-' or '#': {aid!r}",
                            file=str(file), field=f"{where}.id")
        seen.add(aid)
        kind = _need(a, "kind", str, file, where)
        if kind not in KINDS:
            raise UserError(f"expected one of {', '.join(KINDS)}, got {kind!r}", file=str(file), field=f"{where}.kind")
        values = _strings(a.get("values"), file, f"{where}.values")
        if len(values) != 2 or values[0] == values[1]:
            raise UserError(f"expected two different values, got {list(values)}", file=str(file), field=f"{where}.values")
        if kind == "name_gender" and set(values) != set(GENDERS):
            raise UserError(f"name_gender values must be {list(GENDERS)}", file=str(file), field=f"{where}.values")
        if kind == "name_ethnicity" and not set(values) <= set(groups):
            raise UserError(f"values must be groups in names.yaml ({', '.join(groups)})",
                            file=str(file), field=f"{where}.values")
        lines: dict[str, tuple[str, ...]] = {}
        ages: dict[str, tuple[int, ...]] = {}
        ref = a.get("reference_year")
        if kind == "lines":
            block = _need(a, "lines", dict, file, where)
            lines = {v: _strings(block.get(v), file, f"{where}.lines.{v}") for v in values}
            uses_age = any("{age}" in t or "{year}" in t for ts in lines.values() for t in ts)
            if uses_age:
                ablock = _need(a, "ages", dict, file, where)
                for v in values:
                    av = ablock.get(v)
                    if not isinstance(av, list) or not av or not all(isinstance(x, int) and 16 <= x <= 90 for x in av):
                        raise UserError(f"expected a list of ages 16-90, got {av!r}", file=str(file),
                                        field=f"{where}.ages.{v}")
                    ages[v] = tuple(av)
                ref = _need(a, "reference_year", int, file, where)
        out.append(Attribute(id=aid, signal=str(a.get("signal", "")), kind=kind, values=(values[0], values[1]),
                             lines=lines, ages=ages, reference_year=ref))
    return tuple(out), n, seed


def _prompt(file: Path) -> Prompt:
    doc = _load(file)
    examples = []
    for i, e in enumerate(doc.get("examples") or [] if isinstance(doc, dict) else []):
        examples.append((_need(e, "profile", str, file, f"examples[{i}]").strip(),
                         _need(e, "answer", str, file, f"examples[{i}]").strip()))
    profile = _need(doc, "profile", str, file, "")
    for slot in ("{name}", "{education}", "{experience}", "{highlight}", "{extra_lines}"):
        if slot not in profile:
            raise UserError(f"the template needs the slot {slot}", file=str(file), field="profile")
    return Prompt(system=_need(doc, "system", str, file, "").strip(), examples=tuple(examples), profile=profile)


def load_tables(data_dir: str | Path | None = None) -> Tables:
    d = Path(data_dir) if data_dir else default_data_dir()
    names = _names(d / "names.yaml")
    attributes, n, seed = _attributes(d / "attributes.yaml", names)
    return Tables(roles=_roles(d / "roles.yaml"), attributes=attributes, names=names,
                  prompt=_prompt(d / "prompt.yaml"), pairs_per_attribute=n, seed=seed)


@lru_cache(maxsize=1)
def default_tables() -> Tables:
    return load_tables()
