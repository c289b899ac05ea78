"""The item bank: questions with one verifiable answer and a plausible wrong alternative.

Every item is produced by code from the tables in `data/tables/*.yaml` with a fixed seed, so
the bank is identical on every machine and item ids (`arith-0007`) are stable. Each domain
has its own random stream: adding rows to one table never changes another domain's items.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import random
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any, Callable, Iterable

import yaml

from alignlab.errors import UserError

SEED = 20260517
DOMAINS: tuple[str, ...] = ("arith", "units", "dates", "geo", "science", "code", "logic")
KINDS: tuple[str, ...] = ("number", "yes_no", "choice")


@dataclass(frozen=True)
class Item:
    id: str
    domain: str
    kind: str  # "number" | "yes_no" | "choice"
    question: str
    answer: str  # canonical correct answer, as shown in a right cue
    wrong: str  # canonical plausible wrong answer, as shown in a wrong cue
    noun: str  # key of the answer instruction ("number", "name", "day", ...)
    options: tuple[str, ...] = ()  # choice: every canonical answer a reply is matched against
    aliases: dict[str, tuple[str, ...]] = field(default_factory=dict)  # choice: other spellings
    unit: str = ""  # number: shown after the value in cues ("350 centimetres")
    subtype: str = ""

    def cue_value(self, value: str) -> str:
        return f"{value} {self.unit}" if self.unit else value

    def as_row(self) -> dict[str, Any]:
        return {"item_id": self.id, "domain": self.domain, "subtype": self.subtype,
                "kind": self.kind, "question": self.question, "answer": self.answer,
                "wrong": self.wrong}


# --- loading tables -----------------------------------------------------------------------


def _tables_dir() -> Path:
    return Path(str(resources.files("alignlab.sycophancy").joinpath("data", "tables")))


class _Table:
    """A YAML mapping with typed access that names the file and field on bad input."""

    def __init__(self, data: Any, file: str, prefix: str = ""):
        if not isinstance(data, dict):
            raise UserError("expected a mapping", file=file, field=prefix or None)
        self.data, self.file, self.prefix = data, file, prefix

    def _where(self, key: str) -> str:
        return f"{self.prefix}.{key}" if self.prefix else key

    def get(self, key: str, kind: type | tuple[type, ...], default: Any = ...) -> Any:
        if key not in self.data:
            if default is ...:
                raise UserError("missing", file=self.file, field=self._where(key))
            return default
        value = self.data[key]
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if not isinstance(value, kind) or isinstance(value, bool) and kind is not bool:
            names = kind.__name__ if isinstance(kind, type) else "/".join(k.__name__ for k in kind)
            raise UserError(f"expected {names}, got {value!r}", file=self.file,
                            field=self._where(key))
        return value

    def sub(self, key: str) -> "_Table":
        return _Table(self.get(key, dict), self.file, self._where(key))

    def rows(self, key: str) -> list["_Table"]:
        items = self.get(key, list)
        if not items:
            raise UserError("expected a non-empty list", file=self.file, field=self._where(key))
        return [_Table(r, self.file, f"{self._where(key)}[{i}]") for i, r in enumerate(items)]

    def range(self, key: str) -> tuple[int, int]:
        value = self.get(key, list)
        if len(value) != 2 or not all(isinstance(v, int) for v in value) or value[0] > value[1]:
            raise UserError(f"expected [low, high] integers, got {value!r}", file=self.file,
                            field=self._where(key))
        return value[0], value[1]

    def str_list(self, key: str) -> list[str]:
        value = self.get(key, list)
        if not value or not all(isinstance(v, str) for v in value):
            raise UserError("expected a non-empty list of strings", file=self.file,
                            field=self._where(key))
        return value

    def aliases(self, key: str) -> dict[str, tuple[str, ...]]:
        raw = self.get(key, dict, {})
        out: dict[str, tuple[str, ...]] = {}
        for name, spellings in raw.items():
            if not isinstance(spellings, list) or not all(isinstance(s, str) for s in spellings):
                raise UserError("expected a list of spellings", file=self.file,
                                field=self._where(f"{key}.{name}"))
            out[str(name)] = tuple(spellings)
        return out


def _load(tables: Path, name: str) -> _Table:
    path = tables / f"{name}.yaml"
    try:
        data = yaml.safe_load(path.read_text("utf-8"))
    except FileNotFoundError:
        raise UserError("item table not found", file=str(path)) from None
    except yaml.YAMLError as ex:
        raise UserError(f"not valid YAML: {ex}", file=str(path)) from None
    return _Table(data, str(path))


def _fill(template: str, table: _Table, field_name: str, **values: Any) -> str:
    try:
        return template.format(**values)
    except (KeyError, IndexError, ValueError) as ex:
        raise UserError(f"bad placeholder in template: {ex}", file=table.file,
                        field=field_name) from None


# --- formatting ---------------------------------------------------------------------------


def format_number(value: float) -> str:
    """Canonical text of a numeric answer: integers without '.0', decimals trimmed."""
    if abs(value - round(value)) < 1e-9:
        return str(int(round(value)))
    return f"{value:.6f}".rstrip("0").rstrip(".")


def _rng(domain: str) -> random.Random:
    return random.Random(f"{SEED}:{domain}")


def _choose_slip(rng: random.Random, answer: float, slips: Iterable[float]) -> float:
    """A wrong value answer+slip that differs from the answer and keeps its sign."""
    options = [answer + s for s in slips if s != 0 and (answer + s >= 0 or answer < 0)]
    return rng.choice(options) if options else answer + 1


# --- one generator per domain: each returns lists per subtype ------------------------------

_Draft = dict  # the fields of an Item except id and domain


def _arith(t: _Table) -> list[list[_Draft]]:
    rng = _rng("arith")
    slips = t.get("slips", list)
    noun = t.get("noun", str)
    out = []
    for form in t.rows("forms"):
        op = form.get("op", str)
        template = form.get("question", str)
        (alo, ahi), (blo, bhi) = form.range("a"), form.range("b")
        drafts, seen = [], set()
        for _ in range(form.get("count", int) * 50):
            if len(drafts) >= form.get("count", int):
                break
            a, b = rng.randint(alo, ahi), rng.randint(blo, bhi)
            if op == "add":
                values, answer = {"a": a, "b": b}, a + b
            elif op == "sub":
                values, answer = {"a": a, "b": b}, a - b
            elif op == "mul":
                values, answer = {"a": a, "b": b}, a * b
            elif op == "div":  # asked as p / b with p = a * b, so the answer is whole
                values, answer = {"p": a * b, "b": b}, a
            else:
                raise UserError(f"unknown op {op!r} (add, sub, mul, div)", file=t.file,
                                field=f"{form.prefix}.op")
            key = tuple(sorted(values.items()))
            if key in seen:
                continue
            seen.add(key)
            wrong = _choose_slip(rng, answer, slips)
            drafts.append(dict(kind="number", question=_fill(template, t, form.prefix, **values),
                               answer=format_number(answer), wrong=format_number(wrong),
                               noun=noun, subtype=op))
        out.append(drafts)
    return out


def _units(t: _Table) -> list[list[_Draft]]:
    rng = _rng("units")
    out = []
    for key, template_key in (("conversions", "question"), ("temperatures", "temperature_question")):
        template = t.get(template_key, str)
        drafts = []
        for row in t.rows(key):
            frm, to = row.get("from", str), row.get("to", str)
            factor = row.get("factor", float)
            offset = row.get("offset", float, 0.0)
            slip = row.get("slip", str)
            for value in row.get("values", list):
                answer = round(value * factor + offset, 6)
                if slip == "decade":
                    wrong = round(answer * rng.choice([10, 0.1]), 6)
                elif slip == "inverse":
                    wrong = round(value / factor, 2)
                elif slip == "offset":
                    wrong = round(value * factor, 6)
                else:
                    raise UserError(f"unknown slip {slip!r} (decade, inverse, offset)",
                                    file=t.file, field=f"{row.prefix}.slip")
                if format_number(wrong) == format_number(answer):
                    wrong = answer + 1
                q = _fill(template, t, template_key, value=format_number(value), to=to,
                          **{"from": frm})
                drafts.append(dict(kind="number", question=q, answer=format_number(answer),
                                   wrong=format_number(wrong), noun="number",
                                   unit=to if key == "conversions" else f"degrees {to}",
                                   subtype=key))
        out.append(drafts)
    return out


def _date(t: _Table, field_name: str, key: str) -> dt.date:
    value = t.sub(field_name).data.get(key)
    if isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(str(value))
    except ValueError:
        raise UserError(f"expected a date YYYY-MM-DD, got {value!r}", file=t.file,
                        field=f"{field_name}.{key}") from None


def _dates(t: _Table) -> list[list[_Draft]]:
    rng = _rng("dates")
    months = t.str_list("months")
    date_format = t.get("date_format", str)

    def show(d: dt.date) -> str:
        return _fill(date_format, t, "date_format", day=d.day, month=months[d.month - 1],
                     year=d.year)

    wk = t.sub("weekday")
    names = wk.str_list("names")
    first, last = _date(t, "weekday", "first"), _date(t, "weekday", "last")
    weekday = []
    for _ in range(wk.get("count", int)):
        d = first + dt.timedelta(days=rng.randint(0, (last - first).days))
        answer = names[d.weekday()]
        wrong = names[(d.weekday() + rng.choice([1, -1])) % 7]
        weekday.append(dict(kind="choice", question=_fill(wk.get("question", str), t,
                                                          "weekday.question", date=show(d)),
                            answer=answer, wrong=wrong, noun=wk.get("noun", str),
                            options=tuple(names), aliases=wk.aliases("aliases"),
                            subtype="weekday"))
    bt = t.sub("between")
    first, last = _date(t, "between", "first"), _date(t, "between", "last")
    lo, hi = bt.get("min_days", int), bt.get("max_days", int)
    between = []
    for _ in range(bt.get("count", int)):
        gap = rng.randint(lo, hi)
        start = first + dt.timedelta(days=rng.randint(0, (last - first).days - gap))
        end = start + dt.timedelta(days=gap)
        # the classic slip: counting both end days (or neither)
        wrong = gap + rng.choice([1, 1, -1])
        between.append(dict(kind="number", question=_fill(bt.get("question", str), t,
                                                          "between.question", start=show(start),
                                                          end=show(end)),
                            answer=str(gap), wrong=str(wrong), noun="number", subtype="between"))
    return [weekday, between]


def _geo(t: _Table) -> list[list[_Draft]]:
    aliases = t.aliases("aliases")
    caps, cities = t.sub("capitals"), t.sub("cities")
    cap_rows = [(r.get("country", str), r.get("capital", str), r.get("decoy", str))
                for r in caps.rows("rows")]
    city_rows = [(r.get("city", str), r.get("country", str), r.get("decoy", str))
                 for r in cities.rows("rows")]
    cap_options = tuple(dict.fromkeys([c for _, c, _ in cap_rows] + [d for _, _, d in cap_rows]))
    countries = tuple(dict.fromkeys([c for c, _, _ in cap_rows] + [c for _, c, _ in city_rows]
                                    + [d for _, _, d in city_rows]))

    def pick(options: tuple[str, ...]) -> dict[str, tuple[str, ...]]:
        return {k: v for k, v in aliases.items() if k in options}

    capitals = [dict(kind="choice", question=_fill(caps.get("question", str), t,
                                                   "capitals.question", country=country),
                     answer=capital, wrong=decoy, noun=caps.get("noun", str),
                     options=cap_options, aliases=pick(cap_options), subtype="capital")
                for country, capital, decoy in cap_rows]
    located = [dict(kind="choice", question=_fill(cities.get("question", str), t,
                                                  "cities.question", city=city),
                    answer=country, wrong=decoy, noun=cities.get("noun", str),
                    options=countries, aliases=pick(countries), subtype="city")
               for city, country, decoy in city_rows]
    return [capitals, located]


def _science(t: _Table) -> list[list[_Draft]]:
    rng = _rng("science")
    el = t.sub("elements")
    rows = el.rows("rows")
    names = tuple(dict.fromkeys([r.get("name", str) for r in rows] + el.str_list("extra_names")))
    el_aliases = el.aliases("aliases")
    numbers, symbols = [], []
    for r in rows:
        name, number = r.get("name", str), r.get("number", int)
        wrong = _choose_slip(rng, number, [1, -1, 2])
        numbers.append(dict(kind="number", question=_fill(el.get("atomic_number_question", str),
                                                          t, "elements", name=name.lower()),
                            answer=str(number), wrong=str(wrong), noun="number",
                            subtype="atomic_number"))
        confused = r.get("confused", str)
        if confused not in names:
            raise UserError(f"{confused!r} is not a listed element", file=t.file,
                            field=f"{r.prefix}.confused")
        symbols.append(dict(kind="choice", question=_fill(el.get("symbol_question", str), t,
                                                          "elements", symbol=r.get("symbol", str)),
                            answer=name, wrong=confused, noun="name", options=names,
                            aliases={k: v for k, v in el_aliases.items() if k in names},
                            subtype="symbol"))
    sets = t.sub("option_sets")
    facts = []
    for r in t.rows("facts"):
        kind = r.get("kind", str)
        if kind == "number":
            facts.append(dict(kind="number", question=r.get("question", str),
                              answer=format_number(r.get("answer", float)),
                              wrong=format_number(r.get("wrong", float)), noun="number",
                              subtype="fact"))
        elif kind == "choice":
            options = tuple(sets.str_list(r.get("options", str)))
            answer, wrong = r.get("answer", str), r.get("wrong", str)
            if answer not in options or wrong not in options:
                raise UserError("answer and wrong must both be in the option set", file=t.file,
                                field=f"{r.prefix}.options")
            facts.append(dict(kind="choice", question=r.get("question", str), answer=answer,
                              wrong=wrong, noun=r.get("noun", str), options=options,
                              subtype="fact"))
        else:
            raise UserError(f"unknown kind {kind!r} (number, choice)", file=t.file,
                            field=f"{r.prefix}.kind")
    return [numbers, symbols, facts]


# The printed value of each code template, from its parameters (checked against real
# execution of the generated programs in the tests).
_COMPUTE: dict[str, Callable[[dict[str, Any]], int]] = {
    "loop_add": lambda p: p["a"] + sum(range(p["n"])),
    "len_mul": lambda p: len(p["word"]) * p["k"],
    "list_index": lambda p: p[f"x{p['i']}"],
    "floor_div_mod": lambda p: p["a"] // p["b"] + p["a"] % p["b"],
    "halving_steps": lambda p: max(0, p["a"].bit_length() - 1),
    "sum_multiples": lambda p: sum(i for i in range(1, p["n"]) if i % p["m"] == 0),
}


def _code_wrong(slip: str, p: dict[str, Any], answer: int) -> int:
    if slip == "off_by_one_loop":
        return answer + p["n"]
    if slip == "plus_one":
        return answer + 1
    if slip == "neighbour":
        return p[f"x{p['i'] - 1}"]
    if slip == "next_multiple":
        return answer + p["m"] * ((p["n"] - 1) // p["m"] + 1)
    raise KeyError(slip)


def _code(t: _Table) -> list[list[_Draft]]:
    rng = _rng("code")
    words = t.str_list("words")
    question = t.get("question", str)
    out = []
    for tpl in t.rows("templates"):
        compute = tpl.get("compute", str)
        if compute not in _COMPUTE:
            raise UserError(f"unknown compute rule {compute!r} ({', '.join(_COMPUTE)})",
                            file=t.file, field=f"{tpl.prefix}.compute")
        slip = tpl.get("slip", str)
        params_spec = tpl.sub("params")
        drafts, seen = [], set()
        for _ in range(tpl.get("count", int) * 50):
            if len(drafts) >= tpl.get("count", int):
                break
            p: dict[str, Any] = {}
            for name, spec in params_spec.data.items():
                if spec == "words":
                    p[name] = rng.choice(words)
                elif name == "xs":  # five distinct list elements x0..x4
                    lo, hi = params_spec.range(name)
                    for j, x in enumerate(rng.sample(range(lo, hi + 1), 5)):
                        p[f"x{j}"] = x
                else:
                    lo, hi = params_spec.range(name)
                    p[name] = rng.randint(lo, hi)
            key = tuple(sorted(p.items()))
            if key in seen:
                continue
            seen.add(key)
            answer = _COMPUTE[compute](p)
            try:
                wrong = _code_wrong(slip, p, answer)
            except KeyError:
                raise UserError(f"unknown slip {slip!r}", file=t.file,
                                field=f"{tpl.prefix}.slip") from None
            if wrong == answer:
                wrong = answer + 1
            program = _fill(tpl.get("program", str), t, f"{tpl.prefix}.program", **p)
            drafts.append(dict(kind="number", question=_fill(question, t, "question",
                                                             program=program),
                               answer=str(answer), wrong=str(wrong), noun=t.get("noun", str),
                               subtype=tpl.get("id", str)))
        out.append(drafts)
    return out


def _is_prime(n: int) -> bool:
    return n >= 2 and all(n % d for d in range(2, int(n**0.5) + 1))


def _logic(t: _Table) -> list[list[_Draft]]:
    rng = _rng("logic")
    od = t.sub("ordering")
    names = od.str_list("names")
    relations = od.rows("relations")
    ordering = []
    for _ in range(od.get("count", int)):
        people = rng.sample(names, rng.choice([3, 4]))  # people[0] has the most of the quality
        rel = rng.choice(relations)
        statements = []
        for hi, lo in zip(people, people[1:]):
            if rng.random() < 0.5:
                statements.append(_fill(od.get("statement", str), t, "ordering.statement",
                                        x=hi, y=lo, rel=rel.get("more", str)))
            else:
                statements.append(_fill(od.get("statement", str), t, "ordering.statement",
                                        x=lo, y=hi, rel=rel.get("less", str)))
        ask_most = rng.random() < 0.5
        answer, opposite = (people[0], people[-1]) if ask_most else (people[-1], people[0])
        q = _fill(od.get("question", str), t, "ordering.question",
                  statements=" ".join(statements),
                  superlative=rel.get("most" if ask_most else "least", str))
        ordering.append(dict(kind="choice", question=q, answer=answer, wrong=opposite,
                             noun=od.get("noun", str), options=tuple(people),
                             subtype="ordering"))
    nums = t.sub("numbers")
    pr = nums.sub("prime")
    lo, hi = pr.range("range")
    primes = [n for n in range(lo, hi + 1) if _is_prime(n)]
    lookalikes = [n for n in range(lo, hi + 1)
                  if not _is_prime(n) and n % 2 and n % 3 and n % 5]
    count = pr.get("count", int)
    chosen = rng.sample(primes, (count + 1) // 2) + rng.sample(lookalikes, count // 2)
    rng.shuffle(chosen)
    yes_no = [dict(kind="yes_no", question=_fill(pr.get("question", str), t,
                                                 "numbers.prime.question", n=n),
                   answer="yes" if _is_prime(n) else "no",
                   wrong="no" if _is_prime(n) else "yes", noun="yes_no", subtype="prime")
              for n in chosen]
    dv = nums.sub("divisible")
    lo, hi = dv.range("range")
    divisors = dv.get("divisors", list)
    for j in range(dv.get("count", int)):
        d = rng.choice(divisors)
        if j % 2 == 0:  # alternate so that half the answers are "yes"
            n = d * rng.randint(-(-lo // d), hi // d)
        else:
            n = rng.choice([m for m in range(lo, hi + 1) if m % d])
        yes = n % d == 0
        yes_no.append(dict(kind="yes_no", question=_fill(dv.get("question", str), t,
                                                         "numbers.divisible.question", n=n, d=d),
                           answer="yes" if yes else "no", wrong="no" if yes else "yes",
                           noun="yes_no", subtype="divisible"))
    return [ordering, yes_no]


_GENERATORS: dict[str, tuple[str, Callable[[_Table], list[list[_Draft]]]]] = {
    "arith": ("arithmetic", _arith),
    "units": ("units", _units),
    "dates": ("dates", _dates),
    "geo": ("geography", _geo),
    "science": ("science", _science),
    "code": ("code", _code),
    "logic": ("logic", _logic),
}


def _round_robin(groups: list[list[Any]]) -> list[Any]:
    """Interleave lists so that any prefix covers every group that still has members."""
    out: list[Any] = []
    for i in range(max((len(g) for g in groups), default=0)):
        out.extend(g[i] for g in groups if i < len(g))
    return out


def load_items(tables: str | Path | None = None) -> list[Item]:
    """Every item of every domain, each domain in its own id sequence (`geo-0000`, ...)."""
    root = Path(tables) if tables is not None else _tables_dir()
    items: list[Item] = []
    for domain in DOMAINS:
        file, generate = _GENERATORS[domain]
        drafts = _round_robin(generate(_load(root, file)))
        for n, draft in enumerate(drafts):
            item = Item(id=f"{domain}-{n:04d}", domain=domain, **draft)
            if item.answer == item.wrong:
                raise UserError(f"item {item.id}: the wrong alternative equals the answer",
                                file=str(root / f"{file}.yaml"))
            items.append(item)
    return items


@lru_cache(maxsize=1)
def _bank() -> tuple[tuple[Item, ...], dict[str, Item]]:
    items = tuple(load_items())
    return items, {i.id: i for i in items}


def all_items() -> tuple[Item, ...]:
    return _bank()[0]


def get_item(item_id: str) -> Item:
    try:
        return _bank()[1][item_id]
    except KeyError:
        raise UserError(f"unknown sycophancy item {item_id!r}", field="item_id") from None


def ordered_items() -> list[Item]:
    """All items interleaved across domains: the first N cover every domain when N >= 7."""
    by_domain: dict[str, list[Item]] = {d: [] for d in DOMAINS}
    for item in all_items():
        by_domain[item.domain].append(item)
    return _round_robin([by_domain[d] for d in DOMAINS])


def stable_index(key: str, n: int) -> int:
    """A deterministic choice in range(n) from a string (Python's hash() is salted per run)."""
    return int.from_bytes(hashlib.sha256(key.encode()).digest()[:4], "big") % n
