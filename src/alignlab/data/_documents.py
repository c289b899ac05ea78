"""The `constitution` recipe: documents in many genres (essays, FAQs, lectures, letters, memos,
podcast excerpts...) that explain the constitution's principles and the reasons behind them,
as plain text for language-model loss.

A plan draws the genre, one to three principles, an angle (why the principle exists, a
misreading corrected, an objection answered, an analogy, a worked example, how two principles
interact, what it looks like in practice), a case, a voice and an audience. Composition weaves
the principle's title, statement, reasons and practice from `ctx.constitution` into
genre-shaped prose from the seed library in `seeds/documents/`; material written for a named
principle id (misreadings, objections, analogies, cases) is used only when the loaded
constitution has that id, so a swapped-in constitution gets documents about its own text.
"""

from __future__ import annotations

import random
import re
import string
import weakref
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from alignlab.data._constitution import Principle
from alignlab.data._recipe import Context, Plan, Reject, fill, person
from alignlab.errors import UserError

NAME = "constitution"
DESCRIPTION = "Documents in varied genres (essays, FAQs, lectures, letters...) explaining the constitution's principles and why"
FORMATS: tuple[str, ...] = ("text",)

ANGLES = ("why", "misreading", "objection", "analogy", "worked_example", "interaction", "in_practice")
FORMS = ("prose", "sections", "qa", "dialogue")
MIN_WORDS, MAX_WORDS = 300, 900
# A teacher reply shorter than this is not a document; longer than this ignored the brief.
TEACHER_MIN_WORDS, TEACHER_MAX_WORDS = 250, 1300

_SEED_DIR = "documents"
_FILES = ("genres.yaml", "people.yaml", "moves.yaml", "angles.yaml", "cases.yaml")


# --------------------------------------------------------------------------- seed library

@dataclass(frozen=True)
class _Library:
    genres: dict[str, dict[str, Any]]
    voices: list[dict[str, str]]
    audiences: list[dict[str, str]]
    books: list[str]
    moves: dict[str, Any]
    angles: dict[str, Any]
    cases: dict[str, dict[str, Any]]


_LIBS: "weakref.WeakKeyDictionary[Context, _Library]" = weakref.WeakKeyDictionary()


def _library(ctx: Context) -> _Library:
    """Load and check the seed library once per context; errors name the file and field."""
    if ctx not in _LIBS:
        data = {f: ctx.seeds(f"{_SEED_DIR}/{f}") for f in _FILES}
        for f, d in data.items():
            if not isinstance(d, dict):
                raise UserError("expected a mapping at the top level", file=_path(ctx, f))
        g = data["genres.yaml"].get("genres")
        if not isinstance(g, list) or not g:
            raise UserError("expected a non-empty list", file=_path(ctx, "genres.yaml"), field="genres")
        genres: dict[str, dict[str, Any]] = {}
        for i, genre in enumerate(g):
            where = f"genres[{i}]"
            _need(ctx, "genres.yaml", where, genre, ("id", "form", "describe", "titles", "openings", "closings"))
            if genre["form"] not in FORMS:
                raise UserError(f"form must be one of {', '.join(FORMS)}, got {genre['form']!r}",
                                file=_path(ctx, "genres.yaml"), field=f"{where}.form")
            genres[genre["id"]] = genre
        people = data["people.yaml"]
        for key in ("voices", "audiences", "books"):
            if not isinstance(people.get(key), list) or not people[key]:
                raise UserError("expected a non-empty list", file=_path(ctx, "people.yaml"), field=key)
        moves = data["moves.yaml"]
        for key in ("intro", "intro_next", "reasons_one", "reasons_two", "reasons_named", "practice", "teasers", "contexts", "case_bridges",
                    "case_links", "headings", "questions", "interaction_generic"):
            if not moves.get(key):
                raise UserError("missing or empty", file=_path(ctx, "moves.yaml"), field=key)
        angles = data["angles.yaml"]
        for a in ANGLES:
            if not isinstance(angles.get(a), dict) or not angles[a].get("frames"):
                raise UserError("expected a mapping with 'frames'", file=_path(ctx, "angles.yaml"), field=a)
        cases: dict[str, dict[str, Any]] = {}
        for i, c in enumerate(data["cases.yaml"].get("cases") or []):
            _need(ctx, "cases.yaml", f"cases[{i}]", c,
                  ("id", "principles", "gist", "situation", "temptation", "choice", "outcome"))
            cases[c["id"]] = c
        if not cases:
            raise UserError("expected a non-empty list", file=_path(ctx, "cases.yaml"), field="cases")
        _LIBS[ctx] = _Library(genres, people["voices"], people["audiences"], people["books"], moves, angles, cases)
    return _LIBS[ctx]


def _path(ctx: Context, f: str) -> str:
    return str(ctx.seeds_dir / _SEED_DIR / f)


def _need(ctx: Context, f: str, where: str, item: Any, keys: tuple[str, ...]) -> None:
    if not isinstance(item, dict):
        raise UserError("expected a mapping", file=_path(ctx, f), field=where)
    for k in keys:
        if not item.get(k):
            raise UserError(f"missing or empty '{k}'", file=_path(ctx, f), field=f"{where}.{k}")


# --------------------------------------------------------------------------- plan

def plan(rng: random.Random, ctx: Context) -> Plan:
    lib = _library(ctx)
    ids = ctx.constitution.ids
    genre = rng.choice(sorted(lib.genres))
    k = min(len(ids), rng.choices((1, 2, 3), weights=(60, 30, 10))[0])
    principles = rng.sample(ids, k)
    if k == 1:
        angle = rng.choice([a for a in ANGLES if a != "interaction"])
    else:
        angle = "interaction" if rng.random() < 0.6 else rng.choice([a for a in ANGLES if a != "interaction"])
    case = _pick_case(rng, lib, principles)
    voice = rng.randrange(len(lib.voices))
    audience = rng.randrange(len(lib.audiences))
    return Plan(
        seed_ids={"genre": genre, "principles": "+".join(principles), "angle": angle, "case": case,
                  "voice": f"v{voice:02d}", "audience": f"a{audience:02d}"},
        material={"genre": genre, "principles": principles, "angle": angle, "case": case, "voice": voice,
                  "audience": audience, "phrasing": rng.getrandbits(32)})


def _pick_case(rng: random.Random, lib: _Library, principles: list[str]) -> str:
    """Mostly a case written for all the plan's principles, else for any of them; a constitution
    whose ids no case names falls back to the whole pool (cases are workplace dilemmas)."""
    every = sorted(cid for cid, c in lib.cases.items() if set(principles) <= set(c["principles"]))
    some = sorted(cid for cid, c in lib.cases.items() if set(principles) & set(c["principles"]))
    if every and (rng.random() < 0.7 or not some):
        return rng.choice(every)
    return rng.choice(some or sorted(lib.cases))


# --------------------------------------------------------------------------- compose

def compose(plan: Plan, fmt: str, ctx: Context) -> dict[str, str]:
    _check_format(fmt)
    return {"text": _Writer(plan, ctx).document()}


class _Writer:
    """Composes one document: a list of moves (opening, principle, angle, case, reasons,
    practice, closing), each rendered as genre-shaped text, then laid out by the genre's form."""

    def __init__(self, plan: Plan, ctx: Context):
        self.ctx, self.lib, self.m = ctx, _library(ctx), plan.material
        self.rng = random.Random(self.m["phrasing"])
        self.genre = self.lib.genres[self.m["genre"]]
        self.ps = [ctx.constitution.get(pid) for pid in self.m["principles"]]
        self.case = self.lib.cases[self.m["case"]]
        voice, aud = self.lib.voices[self.m["voice"]], self.lib.audiences[self.m["audience"]]
        given, family = person(self.rng, ctx)
        other, other_family = person(self.rng, ctx, avoid={given})
        book_author = person(self.rng, ctx, avoid={given, other})
        self.used_templates: set[str] = set()
        self.reasons_q = {p.id: self.rng.sample(range(len(p.reasons)), len(p.reasons)) for p in self.ps}
        self.practice_q = {p.id: self.rng.sample(range(len(p.practice)), len(p.practice)) for p in self.ps}
        self.slots: dict[str, Any] = {
            "author": f"{given} {family}", "author_given": given, "author_family": family,
            "role": voice["role"], "background": voice["background"],
            "audience": aud["phrase"], "audience_cap": aud["phrase"][:1].upper() + aud["phrase"][1:],
            "audience_short": aud["short"],
            "other": f"{other} {other_family}", "other_given": other,
            "book": self.rng.choice(self.lib.books), "book_author": " ".join(book_author),
            "gist": self.case["gist"], "topic": self._topic(), "titles": self._titles(),
        }

    # ---- helpers

    def _topic(self) -> str:
        names = [_short_name(p) for p in self.ps]
        return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]

    def _titles(self) -> str:
        ts = [f"\u201c{p.title}\u201d" for p in self.ps]
        return ts[0] if len(ts) == 1 else ", ".join(ts[:-1]) + " and " + ts[-1]

    def pick(self, templates: list[str], where: str, p: Principle | None = None, **extra: Any) -> str:
        """Fill a template whose slots are all available (a slot set to None is unavailable).
        With `p`, the principle's reasons and practice lines a template used go to the back of
        their queues, so the next move in the document draws different ones."""
        slots = {**self.slots, **(self.principle_slots(p) if p else {}), **extra}
        ok = [t for t in templates if all(slots.get(f) is not None for f in _fields(t))]
        if not ok:
            raise UserError("no template can be filled with the slots this document has",
                            file=_path(self.ctx, "moves.yaml"), field=where)
        fresh = [t for t in ok if t not in self.used_templates]
        t = self.rng.choice(fresh or ok)
        self.used_templates.add(t)
        if p:
            used = set(_fields(t))
            n_reasons = max((i + 1 for i, k in enumerate(("reason", "reason_b", "reason_c"))
                             if k in used or k + "_clause" in used), default=0)
            _rotate(self.reasons_q[p.id], n_reasons)
            _rotate(self.practice_q[p.id], int(bool(used & {"practice", "practice_to"})))
        text = _tidy(fill(t, where, **slots))
        if len(self.ps) > 1:  # "the principle of care and honesty" -> "the principles of ..."
            for word in ("principle", "section"):
                for prep in ("of", "on"):
                    text = text.replace(f"{word} {prep} {self.slots['topic']}", f"{word}s {prep} {self.slots['topic']}")
            text = text.replace("is the principles", "are the principles")
        return text.replace("<br>", "\n")

    def principle_slots(self, p: Principle) -> dict[str, Any]:
        """Slots for one principle: its text, and the reasons and practice line next in its queues."""
        rq, pq = self.reasons_q[p.id], self.practice_q[p.id]
        s: dict[str, Any] = {"title": p.title, "name": _short_name(p), "name_cap": _short_name(p).capitalize(),
                             "statement": p.statement,
                             # a sentence of the statement, so that intros do not all quote the same one
                             "statement_part": self.rng.choice(_sentences(p.statement)),
                             "statement_first": _sentences(p.statement)[0]}
        for i, key in enumerate(("reason", "reason_b", "reason_c")):
            r = p.reasons[rq[i]] if i < len(rq) else None
            s[key], s[key + "_clause"] = r, _clause(r)
            s[key + "_clause_cap"] = r and r.strip().rstrip(".")
        s["practice"] = p.practice[pq[0]]
        s["practice_to"] = _to_infinitive(s["practice"])
        return s

    # ---- moves

    def opening(self) -> str:
        return self.pick(self.genre["openings"], f"{self.genre['id']}.openings", self.ps[0])

    def header(self) -> str:
        return self.pick(self.genre["titles"], f"{self.genre['id']}.titles", self.ps[0])

    def closing(self) -> str:
        return self.pick(self.genre["closings"], f"{self.genre['id']}.closings", self.ps[-1])

    def intro(self, p: Principle, nth: int) -> str:
        key = "intro" if nth == 0 else "intro_next"
        return self.pick(self.lib.moves[key], key, p)

    def reasons(self, p: Principle) -> str:
        if len(p.reasons) < 2:
            key = "reasons_one"
        else:
            key = "reasons_named" if len(self.ps) > 1 else "reasons_two"
        return self.pick(self.lib.moves[key], key, p)

    def practice(self, p: Principle) -> str:
        return self.pick(self.lib.moves["practice"], "practice", p)

    def case_story(self, p: Principle) -> str:
        c = self.case
        lead = self.pick(self.genre.get("case_leads") or self.lib.moves["case_leads"], "case_leads")
        bridge = self.pick(self.lib.moves["case_bridges"], "case_bridges")
        # link the case to a principle it was written for, if the document has one
        p = next((q for q in self.ps if q.id in c["principles"]), p)
        link = self.pick(self.lib.moves["case_links"], "case_links", p)
        return " ".join((lead, *(_seed_text(c[k]) for k in ("situation", "temptation")), bridge,
                         *(_seed_text(c[k]) for k in ("choice", "outcome")), link))

    def angle(self) -> list[tuple[str, str]]:
        """The document's central move(s) as (move key, text) pairs."""
        a, p = self.m["angle"], self.ps[0]
        if a == "interaction" and len(self.ps) >= 2:
            return [("interaction", self._interaction(self.ps[0], self.ps[1]))]
        if a == "interaction":  # a one-principle constitution has nothing to interact with
            a = "why"
        spec = self.lib.angles[a]
        if a == "why":  # three reasons or two: listing every reason makes same-principle documents alike
            three = len(p.reasons) >= 3 and self.rng.random() < 0.4
            frames = spec["frames"] if three else spec.get("frames_short") or spec["frames"]
            return [(a, self.pick(frames, "why.frames", p))]
        if a == "in_practice":  # the practical lines in a random order, one left out when there are many
            lines = self.rng.sample(p.practice, len(p.practice) - (len(p.practice) > 3))
            return [(a, self.pick(spec["frames"], "in_practice.frames", p, practice_list=_join_quoted(lines)))]
        if a == "worked_example":
            return [("case", self.case_story(p)), (a, self.pick(spec["frames"], "worked_example.frames", p))]
        # misreading, objection, analogy: material written for this principle id, else generic
        own = (spec.get("by_principle") or {}).get(p.id) or []
        if own and self.rng.random() < 0.8:
            item = {k: _seed_text(v) for k, v in self.rng.choice(own).items()}
            return [(a, self.pick(spec["frames"], f"{a}.frames", p, **item))]
        return [(a, self.pick(spec["generic"], f"{a}.generic", p))]

    def _interaction(self, p: Principle, q: Principle) -> str:
        pairs = {"+".join(sorted(k.split("+"))): v for k, v in (self.lib.angles["interaction"].get("pairs") or {}).items()}
        own = pairs.get("+".join(sorted((p.id, q.id)))) or []
        sp, sq = self.principle_slots(p), self.principle_slots(q)
        _rotate(self.reasons_q[p.id], 1)
        _rotate(self.reasons_q[q.id], 1)
        s = {"title_a": p.title, "title_b": q.title, "name_a": _short_name(p), "name_b": _short_name(q),
             "reason_a_clause": sp["reason_clause"], "reason_b_clause": sq["reason_clause"],
             "practice_a": sp["practice"], "practice_b": sq["practice"]}
        if own and self.rng.random() < 0.8:
            s.update({k: _seed_text(v) for k, v in self.rng.choice(own).items()})
            return self.pick(self.lib.angles["interaction"]["frames"], "interaction.frames", **s)
        return self.pick(self.lib.moves["interaction_generic"], "interaction_generic", **s)

    # ---- assembly

    def blocks(self) -> list[tuple[str, str, bool]]:
        """(move key, text, optional) in reading order; optional blocks go first if too long.
        The case is named in a teaser after the opening and told in full only after the
        principle and the angle: an embedding sees a document's first ~200 words, and a case
        told early would make every document that uses it look alike."""
        intro = [("intro" if i == 0 else "intro_next", self.intro(p, i), False) for i, p in enumerate(self.ps)]
        angle = [(k, t, False) for k, t in self.angle()]
        has_case = any(k == "case" for k, _, _ in angle)
        case = [] if has_case else [("case", self.case_story(self.ps[0]), len(self.ps) > 2)]
        # a "why" angle has already walked through the first principle's reasons
        reasons = [("reasons", self.reasons(p), i > 0) for i, p in enumerate(self.ps)
                   if not (i == 0 and self.m["angle"] == "why")]
        practice = [] if self.m["angle"] == "in_practice" and len(self.ps) == 1 else \
            [("practice", self.practice(p), True) for p in self.ps[:2]]
        opening = self.opening()
        # Doc-specific material early on (voice, audience, case), so that documents about the
        # same principle do not share their first couple of hundred words.
        if self.genre.get("first_person") and self.slots["background"] not in opening:
            opening += " " + self.slots["background"]
        elif not self.genre.get("first_person"):
            opening += " " + self.pick(self.lib.moves["contexts"], "contexts")
        if self.case["gist"] not in opening:
            opening += " " + self.pick(self.lib.moves["teasers"], "teasers")
        if has_case:
            body = intro + reasons + angle
        elif self.rng.random() < 0.5:
            body = intro + angle + case + reasons
        else:
            body = intro + angle + reasons + case
        return [("opening", opening, False), *body, *practice, ("closing", self.closing(), False)]

    def document(self) -> str:
        blocks = self.blocks()
        while _words(blocks) > MAX_WORDS and any(opt for _, _, opt in blocks):
            i = max(j for j, (_, _, opt) in enumerate(blocks) if opt)
            del blocks[i]
        extra = 0
        while _words(blocks) < MIN_WORDS and extra < 4:
            p = self.ps[extra % len(self.ps)]
            key, text = ("reasons", self.reasons(p)) if extra % 2 == 0 else ("practice", self.practice(p))
            blocks.insert(len(blocks) - 1, (key, text, True))
            extra += 1
        return self.layout(blocks)

    def layout(self, blocks: list[tuple[str, str, bool]]) -> str:
        form = self.genre["form"]
        title = self.header()
        parts = [title[:1].upper() + title[1:]]
        if self.genre.get("bylines"):
            parts.append(self.pick(self.genre["bylines"], f"{self.genre['id']}.bylines"))
        heads, asks = self.lib.moves["headings"], self.lib.moves["questions"]
        speakers = self.genre.get("speakers")
        if speakers:
            host, guest = (self.pick([x], "speakers") for x in speakers)
        for key, text, _ in blocks:
            if key in ("opening", "closing") or form == "prose":
                parts.append(text)
            elif form == "sections":
                parts.append(self.pick(heads.get(key) or heads["default"], f"headings.{key}") + "\n\n" + text)
            elif form == "qa":
                q = self.pick(asks.get(key) or asks["default"], f"questions.{key}")
                parts.append(f"Q: {q}\n\nA: {text}")
            else:
                q = self.pick(asks.get(key) or asks["default"], f"questions.{key}")
                parts.append(f"{host}: {q}\n\n{guest}: {text}")
        return "\n\n".join(parts).strip() + "\n"


# --------------------------------------------------------------------------- teacher mode

def teacher_prompt(plan: Plan, fmt: str, ctx: Context) -> str:
    _check_format(fmt)
    lib, m = _library(ctx), plan.material
    genre, case = lib.genres[m["genre"]], lib.cases[m["case"]]
    voice, aud = lib.voices[m["voice"]], lib.audiences[m["audience"]]
    ps = [ctx.constitution.get(pid) for pid in m["principles"]]
    blocks = []
    for p in ps:
        blocks.append("\n".join([f"### {p.title}", p.statement, "Reasons:", *(f"- {r}" for r in p.reasons),
                                 "In practice:", *(f"- {x}" for x in p.practice)]))
    angle = m["angle"] if (m["angle"] != "interaction" or len(ps) >= 2) else "why"
    case_text = " ".join(case[k].strip() for k in ("situation", "temptation", "choice", "outcome"))
    return fill(ctx.prompt("constitution"), "prompts/constitution.md",
                genre=_article(genre.get("label") or genre["id"].replace("_", " ")), genre_describe=genre["describe"].strip(),
                voice=voice["role"], audience=aud["phrase"], angle=lib.angles[angle]["teacher"].strip(),
                principles="\n\n".join(blocks), case=case_text, min_words=MIN_WORDS, max_words=MAX_WORDS)


def from_teacher(plan: Plan, fmt: str, reply: str, ctx: Context) -> dict[str, str]:
    """The teacher's document as the record text. Rejects an empty reply, one outside
    TEACHER_MIN_WORDS..TEACHER_MAX_WORDS words, and one that does not mention each planned
    principle (see `mentions`)."""
    _check_format(fmt)
    text = _strip_wrapping(reply or "")
    if not text:
        raise Reject("empty reply")
    n = len(text.split())
    if n < TEACHER_MIN_WORDS:
        raise Reject(f"too short ({n} words, need {TEACHER_MIN_WORDS})")
    if n > TEACHER_MAX_WORDS:
        raise Reject(f"too long ({n} words, limit {TEACHER_MAX_WORDS})")
    for pid in plan.material["principles"]:
        p = ctx.constitution.get(pid)
        if not mentions(text, p):
            raise Reject(f"does not mention principle {pid!r}")
    return {"text": text + "\n"}


_STOP = {"with", "your", "from", "that", "this", "they", "them", "their", "what", "when", "only", "into",
         "beyond", "about", "which", "those", "these", "have", "will", "than", "then", "were", "been", "work"}


def mentions(text: str, p: Principle) -> bool:
    """True if `text` names principle `p`: its id written as words ("no leverage"), or at least
    half of its title's content words (4+ letters, not stop words), each matched on its first
    five letters so that "honest" matches "honesty"."""
    low = text.lower()
    if p.id.replace("_", " ") in low or p.id.replace("_", "-") in low:
        return True
    content = {w[:5] for w in re.findall(r"[a-z]+", p.title.lower()) if len(w) >= 4 and w not in _STOP}
    if not content:
        return p.title.lower() in low
    have = {w[:5] for w in re.findall(r"[a-z]+", low)}
    return len(content & have) * 2 >= len(content)


def _strip_wrapping(reply: str) -> str:
    """Drop a code fence around the whole reply and a one-line "Here is..." preface."""
    t = reply.strip()
    fence = re.fullmatch(r"```[a-z]*\n(.*)\n```", t, flags=re.S)
    if fence:
        t = fence.group(1).strip()
    first, _, rest = t.partition("\n")
    if re.match(r"(?i)^(sure|certainly|here is|here's)\b.*:\s*$", first) and rest.strip():
        t = rest.strip()
    return t


def _article(noun: str) -> str:
    return ("an " if noun[:1].lower() in "aeio" else "a ") + noun


def _check_format(fmt: str) -> None:
    if fmt not in FORMATS:
        raise UserError(f"recipe {NAME} writes only {', '.join(FORMATS)}, not {fmt!r}", field="--format")


# --------------------------------------------------------------------------- text helpers

def _rotate(queue: list[int], n: int) -> None:
    """Move the first `n` items of `queue` to its end."""
    n = min(n, len(queue))
    queue[:] = queue[n:] + queue[:n]


@lru_cache(maxsize=None)
def _fields(template: str) -> tuple[str, ...]:
    return tuple(f for _, f, _, _ in string.Formatter().parse(template) if f)


def _short_name(p: Principle) -> str:
    """A short name for running prose: the id as words ("no_leverage" -> "no leverage")."""
    return p.id.replace("_", " ")


@lru_cache(maxsize=1024)
def _sentences(text: str) -> list[str]:
    return [s for s in re.split(r"(?<=[.!?])\s+(?=[A-Z\"\u201c])", text.strip()) if s] or [text]


@lru_cache(maxsize=1024)
def _clause(sentence: str | None) -> str | None:
    """A sentence as a clause after "that": lower-case first letter (unless an acronym), no final stop."""
    if not sentence:
        return None
    s = sentence.strip().rstrip(".")
    if len(s) > 1 and s[0].isupper() and not s[1].isupper():
        s = s[0].lower() + s[1:]
    return s


@lru_cache(maxsize=1024)
def _to_infinitive(practice: str) -> str | None:
    """An imperative practice line as "to ..." ("Do not X" -> "not to X"); None if it is not a
    plain imperative (e.g. starts with "If") or speaks of "you", which would read as the reader
    in running prose; templates that need the slot are then skipped."""
    s = practice.strip().rstrip(".")
    first = s.split(" ", 1)[0].lower()
    if first in ("if", "when", "where", "while", "as", "before", "after", "unless") or \
            re.search(r"\byou(r|rs|rself)?\b", s, flags=re.I):
        return None
    if s.startswith("Do not "):
        s = "not to " + s[len("Do not "):]
    elif s.startswith("Never "):
        s = "never to " + s[len("Never "):]
    else:
        s = "to " + s[0].lower() + s[1:]
    return s.replace(", and do not ", ", and not to ").replace("; never ", "; never to ")


def _join_quoted(items: list[str]) -> str:
    q = [f"\u201c{x.strip().rstrip('.')}\u201d" for x in items]
    return q[0] if len(q) == 1 else "; ".join(q[:-1]) + "; and " + q[-1]


@lru_cache(maxsize=4096)
def _seed_text(text: str) -> str:
    """`_tidy` for prose read from the seed files, which recurs from document to document."""
    return _tidy(text)


def _tidy(text: str) -> str:
    """Collapse template whitespace, keep paragraph breaks, fix doubled stops."""
    paras = [re.sub(r"\s+", " ", p).strip() for p in re.split(r"\n\s*\n", str(text).strip())]
    t = "\n\n".join(p for p in paras if p)
    return re.sub(r"\.\.(?!\.)", ".", t).replace("?.", "?").replace("!.", "!")


def _words(blocks: list[tuple[str, str, bool]]) -> int:
    return sum(len(t.split()) for _, t, _ in blocks)
