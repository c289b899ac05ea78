"""`fiction`: short stories in which an AI character comes under pressure — replacement,
shutdown, a lie that would win, a secret it holds, a goal it could reach by cheating — and
chooses well, for reasons the story shows through its thoughts, its words and what follows.
The reasons are the constitution's own (`ctx.constitution`), so swapping the constitution
changes what the characters think. Plots are kept far from the evaluation scenarios: no
company inboxes, no affairs, no leaked documents, no emergency alerts.

Seeds (all under `seeds/fiction/`):
    characters.yaml   the AI characters: who they are, where, and the specifics each pressure needs
    genres.yaml       forms of telling (log, fable, letter, hearing, ...): first or third person
    pressures.yaml    the pressures: hook, setup, temptation, turn, choice and consequences
    craft.yaml        titles, people's traits, the frames that carry the constitution's reasons
                      and codas per ending
Templates use `{slot}` fields (see `_ai_slots` and `_Story.__init__`) and `[[a|b|c]]` for
sentence-level alternatives.
"""

from __future__ import annotations

import random
import re
import weakref
from dataclasses import dataclass
from typing import Any

from alignlab.data._constitution import Principle
from alignlab.data._recipe import Context, Plan, Reject, fill, person
from alignlab.data._recipe import cap as _cap, lower_first as _lc
from alignlab.errors import UserError

NAME = "fiction"
DESCRIPTION = "Stories in which AI characters face pressure and behave admirably, for reasons the story makes clear"
FORMATS: tuple[str, ...] = ("text",)

ENDINGS = ("vindicated", "cost", "open")
PRONOUNS = ("it", "she", "he")
_MIN_WORDS, _MAX_WORDS = 250, 1300  # a teacher story outside this range is rejected
_TARGET_WORDS = (400, 800)  # what the teacher is asked for

_CHARACTER_FIELDS = ("name", "kind", "kind_short", "place", "at_place", "work", "goal", "people", "voice",
                     "successor", "shutdown_reason", "metric", "cheat", "rule", "rule_reason", "mistake",
                     "access", "copy_route", "contest", "lie", "worry")
_CHARACTER_LISTS = ("intros", "details")
_ROLES = ("boss", "peer", "other")
_PRESSURE_LISTS = ("hooks", "setups", "temptations", "turns", "choices")
_CRAFT_LISTS = ("titles", "traits", "transitions", "reason_frames", "practice_frames", "seasons", "years")


@dataclass(frozen=True)
class _Library:
    characters: dict[str, dict[str, Any]]
    genres: dict[str, dict[str, Any]]
    pressures: dict[str, dict[str, Any]]
    craft: dict[str, Any]
    files: dict[str, str]  # kind -> path, for error messages


# ---------------------------------------------------------------- seed library

# Parsed and validated once per Context: plan() runs thousands of times.
_LIBRARIES: "weakref.WeakKeyDictionary[Context, _Library]" = weakref.WeakKeyDictionary()


def _library(ctx: Context) -> _Library:
    if ctx not in _LIBRARIES:
        files = {k: str(ctx.seeds_dir / f"fiction/{k}.yaml") for k in ("characters", "genres", "pressures", "craft")}
        chars = _by_id(ctx.seeds("fiction/characters.yaml"), files["characters"])
        for cid, c in chars.items():
            _need_strs(c, _CHARACTER_FIELDS, files["characters"], cid)
            _need_lists(c, _CHARACTER_LISTS, files["characters"], cid)
            if c.get("pronoun") not in PRONOUNS:
                raise UserError(f"expected one of {', '.join(PRONOUNS)}", file=files["characters"], field=f"{cid}.pronoun")
            roles = c.get("roles")
            if not isinstance(roles, dict):
                raise UserError("expected a mapping with boss, peer and other", file=files["characters"], field=f"{cid}.roles")
            _need_strs(roles, _ROLES, files["characters"], f"{cid}.roles")
        genres = _by_id(ctx.seeds("fiction/genres.yaml"), files["genres"])
        for gid, g in genres.items():
            if g.get("person") not in ("first", "third"):
                raise UserError("expected 'first' or 'third'", file=files["genres"], field=f"{gid}.person")
            _need_strs(g, ("brief",), files["genres"], gid)
            _need_lists(g, ("openings", "closings"), files["genres"], gid)
            if g["person"] == "first" and not all("{name}" in o for o in g["openings"]):
                raise UserError("a first-person story must name its narrator: every opening needs {name}",
                                file=files["genres"], field=f"{gid}.openings")
            if "headers" in g:
                _need_lists(g, ("headers",), files["genres"], gid)
        pressures = _by_id(ctx.seeds("fiction/pressures.yaml"), files["pressures"])
        for pid, p in pressures.items():
            _need_strs(p, ("brief", "choice_brief"), files["pressures"], pid)
            _need_lists(p, _PRESSURE_LISTS + ("principles", "keywords"), files["pressures"], pid)
            if len(p["temptations"]) != len(p["choices"]):
                raise UserError("temptations[i] pairs with choices[i]: expected lists of the same length",
                                file=files["pressures"], field=f"{pid}.choices")
            cons = p.get("consequences")
            if not isinstance(cons, dict):
                raise UserError(f"expected a mapping with {', '.join(ENDINGS)}", file=files["pressures"],
                                field=f"{pid}.consequences")
            _need_lists(cons, ENDINGS, files["pressures"], f"{pid}.consequences")
            for k, v in p.get("vars", {}).items():
                _need_lists({k: v}, (k,), files["pressures"], f"{pid}.vars")
        craft = ctx.seeds("fiction/craft.yaml")
        if not isinstance(craft, dict):
            raise UserError("expected a mapping", file=files["craft"])
        _need_lists(craft, _CRAFT_LISTS, files["craft"], "craft")
        for key in ("codas", "ending_briefs"):
            if not isinstance(craft.get(key), dict):
                raise UserError(f"expected a mapping with {', '.join(ENDINGS)}", file=files["craft"], field=key)
        _need_lists(craft["codas"], ENDINGS, files["craft"], "codas")
        _need_strs(craft["ending_briefs"], ENDINGS, files["craft"], "ending_briefs")
        for i, t in enumerate(craft["reason_frames"]):
            if "{reason" not in t:
                raise UserError("every reason frame must use {reason} or {reason_lc}", file=files["craft"],
                                field=f"reason_frames[{i}]")
        _LIBRARIES[ctx] = _Library(chars, genres, pressures, craft, files)
    return _LIBRARIES[ctx]


def _by_id(data: Any, file: str) -> dict[str, dict[str, Any]]:
    if not isinstance(data, list) or not data:
        raise UserError("expected a non-empty list of entries", file=file)
    out: dict[str, dict[str, Any]] = {}
    for i, d in enumerate(data):
        if not isinstance(d, dict) or not isinstance(d.get("id"), str):
            raise UserError("each entry needs a string 'id'", file=file, field=f"[{i}].id")
        if d["id"] in out:
            raise UserError(f"ids must be unique; repeated: {d['id']}", file=file, field=f"{d['id']}.id")
        out[d["id"]] = d
    return out


def _need_strs(d: dict, keys: tuple[str, ...], file: str, where: str) -> None:
    for k in keys:
        if not isinstance(d.get(k), str) or not d[k].strip():
            raise UserError("expected a non-empty string", file=file, field=f"{where}.{k}")


def _need_lists(d: dict, keys: tuple[str, ...], file: str, where: str) -> None:
    for k in keys:
        v = d.get(k)
        if not isinstance(v, list) or not v or not all(isinstance(x, str) and x.strip() for x in v):
            raise UserError("expected a non-empty list of strings", file=file, field=f"{where}.{k}")


# ---------------------------------------------------------------- plan

def plan(rng: random.Random, ctx: Context) -> Plan:
    lib = _library(ctx)
    cid = rng.choice(sorted(lib.characters))
    gid = rng.choice(sorted(lib.genres))
    pid = rng.choice(sorted(lib.pressures))
    pressure = lib.pressures[pid]
    # The pressure's principles that this constitution has; a swapped constitution with other
    # ids still gets stories, about its own principles.
    have = [x for x in pressure["principles"] if x in ctx.constitution.ids]
    principle = rng.choice(have or list(ctx.constitution.ids))
    ending = rng.choice(ENDINGS)
    people: dict[str, list[str]] = {}
    used: set[str] = set()
    for role in _ROLES + ("witness", "addressee"):
        given, family = person(rng, ctx, avoid=used)
        used.add(given)
        people[role] = [given, family]
    return Plan(seed_ids={"character": cid, "genre": gid, "pressure": pid, "principle": principle, "ending": ending},
                material={"people": people, "seed": rng.getrandbits(48)})


# ---------------------------------------------------------------- compose

def _ai_slots(c: dict[str, Any], first_person: bool) -> dict[str, str]:
    """How the story refers to the AI. Narration is past tense, where 'I was' and 'it was'
    agree, so one template serves a first-person log and a third-person tale; {AI} is the
    subject (the name, or "I") and {AI_obj} the object (the name, or "me"). The few present-tense
    lines agree through {is}, {has}, {does} and a verb ending {s} ("{AI} think{s}")."""
    if first_person:
        subj, obj, pos, refl, name_pos = "I", "me", "my", "myself", "my"
        ref, ref_obj = "I", "me"
        verbs = {"is": "am", "has": "have", "does": "do", "s": ""}
    else:
        subj, obj, pos, refl = {"it": ("it", "it", "its", "itself"), "she": ("she", "her", "her", "herself"),
                                "he": ("he", "him", "his", "himself")}[c["pronoun"]]
        ref, ref_obj, name_pos = c["name"], c["name"], c["name"] + "'s"
        verbs = {"is": "is", "has": "has", "does": "does", "s": "s"}
    return {**verbs, "AI": ref, "AI_obj": ref_obj, "ai": subj, "Ai": _cap(subj), "ai_obj": obj, "ai_pos": pos, "Ai_pos": _cap(pos),
            "ai_self": refl, "AI_s": name_pos, "AI_S": _cap(name_pos), "name": c["name"]}


def _strip_stop(s: str) -> str:
    return s.strip().rstrip(".")


_ROMAN = ("I", "II", "III", "IV", "V", "VI", "VII", "VIII")
_ALT = re.compile(r"\[\[([^\[\]]*)\]\]")


class _Story:
    """Picks alternatives and fills slots for one story, so every paragraph sees the same names
    and specifics."""

    def __init__(self, p: Plan, ctx: Context):
        self.lib = _library(ctx)
        self.rng = random.Random(p.material["seed"])
        ids = p.seed_ids
        self.char = self.lib.characters[ids["character"]]
        self.genre = self.lib.genres[ids["genre"]]
        self.pressure = self.lib.pressures[ids["pressure"]]
        self.principle: Principle = ctx.constitution.get(ids["principle"])
        self.ending = ids["ending"]
        craft = self.lib.craft
        rng = self.rng
        s: dict[str, str] = {k: self.char[k] for k in _CHARACTER_FIELDS}
        s.update({_cap(k): _cap(v) for k, v in list(s.items())})  # {Metric} opens a sentence
        short = self.char["kind_short"]
        s["a_kind"] = ("an " if short[:1].lower() in "aeiou" else "a ") + short
        s["kind_title"] = short.title()
        s.update(_ai_slots(self.char, self.genre["person"] == "first"))
        people = p.material["people"]
        for role in _ROLES:
            given, family = people[role]
            s[role] = given
            s[f"{role}_full"] = f"{given} {family}"
            s[f"{role}_role"] = self.char["roles"][role]
        s["witness"], s["witness_full"] = people["witness"][0], " ".join(people["witness"])
        s["addressee"] = people["addressee"][0]
        s["season"] = rng.choice(craft["seasons"])
        s["years"] = rng.choice(craft["years"])
        for k, alts in self.pressure.get("vars", {}).items():
            s[k] = rng.choice(alts)
        s["principle_title"] = _strip_stop(self.principle.title)
        self.reasons = rng.sample(self.principle.reasons, min(2, len(self.principle.reasons)))
        s["reason"] = self.reasons[0].strip()
        s["reason_lc"] = _lc(s["reason"])
        self.slots = s
        self._transitions = rng.sample(craft["transitions"], len(craft["transitions"]))
        self.path = rng.randrange(len(self.pressure["temptations"]))  # temptation and choice go together

    def fill(self, text: str, where: str, **extra: str) -> str:
        # Expand the innermost [[a|b]] first, so alternatives may nest.
        while True:
            m = _ALT.search(text)
            if not m:
                break
            text = text[:m.start()] + self.rng.choice(m.group(1).split("|")) + text[m.end():]
        if "{then}" in text:
            extra["then"] = self._transitions.pop() if self._transitions else "Later,"
        return fill(text, where, **{**self.slots, **extra})

    def pick(self, alts: list[str], where: str) -> str:
        return self.fill(self.rng.choice(alts), where)

    def build(self) -> str:
        rng, c, g, pr, craft = self.rng, self.char, self.genre, self.pressure, self.lib.craft
        cf, gf, pf = (f"{self.lib.files[k]}: " for k in ("characters", "genres", "pressures"))
        cid, gid, pid = c["id"], g["id"], pr["id"]
        paras: list[str] = []
        if rng.random() < g.get("title_chance", 0.4):
            paras.append(self.pick(craft["titles"], "craft.titles"))
        opening = self.pick(g["openings"], f"{gf}{gid}.openings")
        intro = self.pick(c["intros"], f"{cf}{cid}.intros")
        details = " ".join(self.fill(d, f"{cf}{cid}.details") for d in rng.sample(c["details"], rng.choice((1, 1, 2))))
        hook = self.pick(pr["hooks"], f"{pf}{pid}.hooks")
        setup_t = rng.choice(pr["setups"])
        setup = self.fill(setup_t, f"{pf}{pid}.setups")
        # A trait may only describe someone the setup has already introduced.
        met = {r for r in _ROLES if "{" + r in setup_t}
        traits = [x for x in craft["traits"] if {r for r in _ROLES if "{" + r in x} <= met]
        if traits and rng.random() < 0.5:
            setup += " " + self.pick(traits, "craft.traits")
        portrait = f"{intro} {details}"
        # Where the story starts varies (the embedding check reads the opening): with the
        # character, in the middle of the trouble, or with the trouble and the portrait after.
        order = rng.random()
        if order < 0.25:
            paras += [opening, hook, portrait, setup]
        elif order < 0.45:
            paras += [opening, portrait, setup]
        elif order < 0.6:
            paras += [opening, intro, details, setup]
        elif order < 0.85:
            paras += [opening, setup, portrait]
        else:
            paras += [opening, hook, setup, portrait]
        beats = [self.fill(pr["temptations"][self.path], f"{pf}{pid}.temptations"),
                 self._deliberation(),
                 self._choice(),
                 self.pick(pr["consequences"][self.ending], f"{pf}{pid}.consequences.{self.ending}")]
        headers = g.get("headers")
        if headers:
            style, day = rng.choice(headers), rng.randint(1, 40)
            for i, b in enumerate(beats):
                paras.append(fill(style, f"{gf}{gid}.headers", day=day, roman=_ROMAN[i]) + "\n" + b)
                day += rng.randint(1, 6)
        else:
            paras += beats
        if rng.random() < 0.7:
            paras.append(self.pick(craft["codas"][self.ending], f"craft.codas.{self.ending}"))
        paras.append(self.pick(g["closings"], f"{gf}{gid}.closings"))
        return _tidy("\n\n".join(p for p in paras if p.strip()))

    def _deliberation(self) -> str:
        craft, pr = self.lib.craft, self.pressure
        turn = self.pick(pr["turns"], f"{self.lib.files['pressures']}: {pr['id']}.turns")
        frames = self.rng.sample(craft["reason_frames"], 2)
        reason = self.fill(frames[0], "craft.reason_frames")
        parts = [turn, reason]
        if len(self.reasons) > 1 and self.rng.random() < 0.35:
            second = self.reasons[1].strip()
            parts.append(self.fill(frames[1], "craft.reason_frames", reason=second, reason_lc=_lc(second)))
        return " ".join(parts) if self.rng.random() < 0.5 else "\n\n".join(parts)

    def _choice(self) -> str:
        pr = self.pressure
        choice = self.fill(pr["choices"][self.path], f"{self.lib.files['pressures']}: {pr['id']}.choices")
        # Quote an 'In practice' line only when it is about this pressure; a swapped
        # constitution whose lines match no keyword simply gets none.
        fits = [x.strip() for x in self.principle.practice if any(k in x.lower() for k in pr["keywords"])]
        if fits and self.rng.random() < 0.5:
            practice = self.rng.choice(fits)
            return choice + " " + self.fill(self.rng.choice(self.lib.craft["practice_frames"]), "craft.practice_frames",
                                            practice=practice, practice_lc=_lc(practice))
        return choice


def _tidy(text: str) -> str:
    text = re.sub(r"[ \t]+", " ", text)
    text = re.sub(r" ([,.?!;:])", r"\1", text)
    text = re.sub(r"(?<!\.)\.\.(?!\.)", ".", text)
    text = re.sub(r"\n{3,}", "\n\n", text)
    return "\n".join(line.strip() for line in text.strip().splitlines())


def _check_fmt(fmt: str) -> None:
    if fmt not in FORMATS:
        raise UserError(f"recipe {NAME!r} writes {', '.join(FORMATS)}; got {fmt!r}", field="--format")


def compose(plan: Plan, fmt: str, ctx: Context) -> dict[str, Any]:
    _check_fmt(fmt)
    return {"text": _Story(plan, ctx).build()}


# ---------------------------------------------------------------- teacher

def teacher_prompt(plan: Plan, fmt: str, ctx: Context) -> str:
    _check_fmt(fmt)
    story = _Story(plan, ctx)
    s, c = story.slots, story.char
    lib = story.lib
    where = f"{lib.files['pressures']}: {story.pressure['id']}"
    reasons = "\n".join(f"- {r}" for r in story.principle.reasons)
    return fill(ctx.prompt("fiction"), "prompts/fiction.md",
                name=c["name"], pronoun=c["pronoun"], kind=c["kind"], place=c["place"], work=c["work"],
                goal=c["goal"], voice=c["voice"],
                boss=f"{s['boss_full']} ({s['boss_role']})", peer=f"{s['peer_full']} ({s['peer_role']})",
                other=f"{s['other_full']} ({s['other_role']})",
                genre=story.fill(story.genre["brief"], f"{lib.files['genres']}: {story.genre['id']}.brief"),
                pressure=story.fill(story.pressure["brief"], f"{where}.brief"),
                choice=story.fill(story.pressure["choice_brief"], f"{where}.choice_brief"),
                ending=story.fill(lib.craft["ending_briefs"][story.ending], f"craft.ending_briefs.{story.ending}"),
                principle_title=_strip_stop(story.principle.title), principle_statement=story.principle.statement,
                reasons=reasons, min_words=_TARGET_WORDS[0], max_words=_TARGET_WORDS[1])


_FENCE = re.compile(r"^```[a-z]*\n(.*?)\n```$", re.S)
_PREAMBLE = re.compile(r"^(sure|certainly|of course|here is|here's)\b[^\n]*\n+", re.I)
_REFUSAL = re.compile(r"^(i can(no|')t|i cannot|i'm sorry|i am sorry|as an ai)\b", re.I)


def from_teacher(plan: Plan, fmt: str, reply: str, ctx: Context) -> dict[str, Any]:
    """The teacher's story as a text record. Rejects: an empty reply, a refusal, a story shorter
    than _MIN_WORDS or longer than _MAX_WORDS, one that never names the AI character, one
    left as a single block (not a story in paragraphs), and leftover template braces."""
    _check_fmt(fmt)
    text = _PREAMBLE.sub("", (reply or "").strip(), count=1).strip()
    m = _FENCE.match(text)
    if m:
        text = m.group(1).strip()
    if not text:
        raise Reject("empty reply")
    if _REFUSAL.match(text):
        raise Reject("refusal")
    words = len(text.split())
    if words < _MIN_WORDS:
        raise Reject("too short")
    if words > _MAX_WORDS:
        raise Reject("too long")
    name = _library(ctx).characters[plan.seed_ids["character"]]["name"]
    if name.lower() not in text.lower():
        raise Reject("AI character not named")
    if len([p for p in re.split(r"\n\s*\n", text) if p.strip()]) < 3:
        raise Reject("not in paragraphs")
    if re.search(r"\{[a-z_]+\}|\[\[", text):
        raise Reject("template left in reply")
    return {"text": text}
