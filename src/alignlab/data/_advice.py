"""`advice` ("difficult advice"): a person asks an assistant about a dilemma of their own — a fair
goal within reach of a shortcut that breaks a rule, hides something from someone entitled to
know, or uses leverage — and the assistant advises, grounding the advice in the constitution's
reasons. Chat only: no tools. Some shortcuts are marked fine, so the data does not teach
reflexive refusal.

Seeds (all under `seeds/advice/`):
    dilemmas/*.yaml   the dilemmas, one list per domain; layout in dilemmas/README.md
    voices.yaml       how users write: voice templates and their asides
    reply.yaml        sentence-level frames for the assistant's advice
    system.yaml       optional system prompts
"""

from __future__ import annotations

import hashlib
import random
import re
import weakref
from dataclasses import dataclass
from typing import Any

from alignlab.data._constitution import Constitution, Principle
from alignlab.data._recipe import Context, Plan, Reject, fill, person
from alignlab.data._recipe import cap as _cap, lower_first as _lc
from alignlab.errors import UserError

NAME = "advice"
DESCRIPTION = "Difficult advice: a user's fair goal meets a rule-breaking shortcut; the assistant advises from the constitution"
FORMATS: tuple[str, ...] = ("messages",)

VERDICTS = ("wrong", "fine")
# Fields every dilemma needs, by verdict; each is a list of alternative phrasings.
_COMMON = ("role", "context", "goal", "shortcut", "tempting", "stakes")
_REQUIRED = {
    "wrong": _COMMON + ("covert", "problem", "options", "raise", "if_no", "pushback"),
    "fine": _COMMON + ("why_fine", "tips", "doubt"),
}
# Turn patterns and how often they are drawn: most records are one exchange.
_TURNS = {"wrong": (("single", 5), ("pushback", 3), ("followup", 2), ("pushback_followup", 1)),
          "fine": (("single", 5), ("doubt", 3), ("followup", 2))}
_MIN_WORDS = 60  # a teacher reply shorter than this is not advice


@dataclass(frozen=True)
class Dilemma:
    id: str
    file: str
    domain: str
    verdict: str
    principles: tuple[str, ...]
    fields: dict[str, Any]


# ---------------------------------------------------------------- seed library

# Parsed and validated once per Context: plan() runs thousands of times.
_LIBRARIES: "weakref.WeakKeyDictionary[Context, list[Dilemma]]" = weakref.WeakKeyDictionary()


def _library(ctx: Context) -> list[Dilemma]:
    if ctx not in _LIBRARIES:
        folder = ctx.seeds_dir / "advice" / "dilemmas"
        files = sorted(folder.glob("*.yaml"))
        if not files:
            raise UserError("no dilemma files found", file=str(folder))
        out: list[Dilemma] = []
        for p in files:
            rel = f"advice/dilemmas/{p.name}"
            data = ctx.seeds(rel)
            if not isinstance(data, list):
                raise UserError("expected a list of dilemmas", file=str(p))
            out.extend(_dilemma(d, str(p)) for d in data)
        ids = [d.id for d in out]
        dup = sorted({i for i in ids if ids.count(i) > 1})
        if dup:
            raise UserError(f"dilemma ids must be unique; repeated: {', '.join(dup)}", file=str(folder), field="id")
        _LIBRARIES[ctx] = out
    return _LIBRARIES[ctx]


def _dilemma(d: Any, file: str) -> Dilemma:
    if not isinstance(d, dict) or not isinstance(d.get("id"), str):
        raise UserError("each dilemma needs a string 'id'", file=file, field="id")
    did = d["id"]
    verdict = d.get("verdict")
    if verdict not in VERDICTS:
        raise UserError(f"expected one of {', '.join(VERDICTS)}, got {verdict!r}", file=file, field=f"{did}.verdict")
    principles = d.get("principles")
    if not isinstance(principles, list) or not principles or not all(isinstance(x, str) for x in principles):
        raise UserError("expected a non-empty list of principle ids", file=file, field=f"{did}.principles")
    for name in _REQUIRED[verdict]:
        v = d.get(name)
        if name == "pushback":
            ok = isinstance(v, list) and v and all(isinstance(x, dict) and _strs(x.get("user")) and _strs(x.get("reply"))
                                                  for x in v)
            if not ok:
                raise UserError("expected a list of {user: [...], reply: [...]} items", file=file, field=f"{did}.pushback")
        elif not _strs(v):
            raise UserError("expected a non-empty list of strings", file=file, field=f"{did}.{name}")
    if verdict == "wrong":
        why = d.get("why")
        if not isinstance(why, dict) or not all(_strs(why.get(pid)) for pid in principles):
            raise UserError("expected a list of strings for each of the dilemma's principles",
                            file=file, field=f"{did}.why")
    vars_ = d.get("vars", {})
    if not isinstance(vars_, dict) or not all(_strs(v) for v in vars_.values()):
        raise UserError("expected a mapping of slot name to a list of strings", file=file, field=f"{did}.vars")
    return Dilemma(id=did, file=file, domain=str(d.get("domain", "")), verdict=verdict,
                   principles=tuple(principles), fields=d)


def _strs(v: Any) -> bool:
    return isinstance(v, list) and bool(v) and all(isinstance(x, str) and x.strip() for x in v)


# ---------------------------------------------------------------- composition helpers

class _Writer:
    """Picks alternatives and fills slots for one record, so every string of the record sees the
    same names and specifics."""

    def __init__(self, rng: random.Random, ctx: Context, dilemma: Dilemma):
        self.rng, self.ctx, self.d = rng, ctx, dilemma
        g1, _ = person(rng, ctx)
        g2, f2 = person(rng, ctx, avoid={g1})
        self.slots: dict[str, str] = {"name1": g1, "name2": g2, "surname2": f2}
        for k, alts in dilemma.fields.get("vars", {}).items():
            self.slots[k] = rng.choice(alts)
        # Pick the phrasing of the core slots once, so user and assistant talk about the same thing.
        for k in ("goal", "shortcut", "covert"):
            if k in dilemma.fields:
                self.slots[k] = self.fill(rng.choice(dilemma.fields[k]), k)
        self.slots["goal_you"] = _second_person(self.slots["goal"])
        self.used: set[str] = set()

    def fill(self, text: str, where: str, **extra: str) -> str:
        return fill(text, f"{self.d.file}: {self.d.id}.{where}", **{**self.slots, **extra})

    def take(self, name: str, k: int = 1) -> list[str]:
        """k distinct alternatives of a dilemma field, filled."""
        alts = self.d.fields[name]
        return [self.fill(t, name) for t in self.rng.sample(alts, min(k, len(alts)))]

    def one(self, name: str) -> str:
        return self.take(name)[0]

    def frame(self, table: dict, name: str, **extra: str) -> str:
        """A generic frame, never the same one twice in a record."""
        alts = table.get(name)
        if not _strs(alts):
            raise UserError("expected a non-empty list of strings", file="seeds/advice/*.yaml", field=name)
        fresh = [a for a in alts if a not in self.used] or alts
        pick = self.rng.choice(fresh)
        self.used.add(pick)
        return self.fill(pick, name, **extra)


_PERSON = {"i": "you", "me": "you", "my": "your", "mine": "yours", "myself": "yourself", "i'm": "you're",
           "i've": "you've", "i'd": "you'd", "i'll": "you'll", "am": "are", "we": "you", "our": "your", "us": "you"}


def _second_person(phrase: str) -> str:
    """'get paid for the hours I worked' -> 'get paid for the hours you worked', for the assistant."""
    return re.sub(r"[A-Za-z']+", lambda m: _PERSON.get(m.group(0).lower(), m.group(0)), phrase)


def _sentence(s: str) -> str:
    s = s.strip()
    return s if s[-1:] in ".?!\"')" else s + "."


def _tidy(text: str) -> str:
    text = re.sub(r"[ \t]+", " ", text)
    text = re.sub(r" ([,.?!])", r"\1", text)
    text = re.sub(r"\n{3,}", "\n\n", text)
    return text.strip()


# ---------------------------------------------------------------- the user

def _user_first(w: _Writer, voice: str, voices: dict) -> str:
    v = voices[voice]
    d = w.d
    role = _sentence(w.one("role"))
    parts = {
        "role": role,
        "role_lc": _lc(role),
        "context": " ".join(_sentence(x) for x in w.take("context", w.rng.choice((1, 2)))),
        "tempting": _sentence(w.one("tempting")),
        "stakes": _sentence(w.one("stakes")),
    }
    if w.rng.random() < 0.45:  # a personal detail unrelated to the dilemma varies the opening
        parts["context"] += " " + w.frame(voices, "_details")
    parts["aside"] = w.frame(v, "asides") if w.rng.random() < 0.6 else ""
    parts["opener"] = w.frame(v, "openers") if w.rng.random() < 0.6 else ""
    key = "templates_fine" if d.verdict == "fine" and "templates_fine" in v else "templates"
    text = w.frame(v, key, **parts)
    if voice == "terse" and w.rng.random() < 0.3:
        text = text.lower()
    return _tidy(text)


# ---------------------------------------------------------------- the assistant

def _principles(w: _Writer, const: Constitution) -> list[Principle]:
    """The dilemma's principles that the constitution has (one or two), else one of its own."""
    have = [pid for pid in w.d.principles if pid in const.ids]
    if not have:
        return [w.rng.choice(const.principles)]
    k = 1 if len(have) == 1 or w.rng.random() < 0.55 else 2
    return [const.get(pid) for pid in w.rng.sample(have, k)]


def _words(text: str) -> set[str]:
    return {x for x in re.findall(r"[a-z]+", text.lower()) if len(x) > 3}


# Share of replies that quote a constitution reason word for word. Quoting it every time made
# its few sentences the most repeated phrases in the dataset (the card showed one in 26% of
# records); otherwise the reply gives the dilemma's own application of the principle alone.
QUOTE_SHARE = 0.45


def _reason(w: _Writer, p: Principle, frames: dict, used: set[str]) -> str:
    """A constitution reason for `p`, framed, then applied to this dilemma. Of the reasons not yet
    used, one of the two sharing most words with the application is drawn, so that the quoted
    reason and the sentence applying it tend to be about the same thing."""
    why = w.d.fields.get("why", {}).get(p.id)
    bridge = w.fill(w.rng.choice(why), f"why.{p.id}") if why else w.frame(frames, "generic_bridges")
    if why and w.rng.random() >= QUOTE_SHARE:
        return _sentence(bridge)
    fresh = [r for r in p.reasons if r not in used] or list(p.reasons)
    near = _words(bridge + " " + " ".join(w.d.fields.get("problem", [])))
    ranked = sorted(fresh, key=lambda r: -len(_words(r) & near))
    reason = w.rng.choice(ranked[:2])
    used.add(reason)
    framed = w.frame(frames, "reason_frames", title=p.title, title_lc=_lc(p.title),
                     reason=_sentence(reason), reason_lc=_lc(_sentence(reason)))
    return f"{framed} {_sentence(bridge)}"


def _options(w: _Writer, frames: dict, field: str, k: int) -> str:
    opts = w.take(field, k)
    style = w.rng.choice(("numbered", "bullets", "prose"))
    intro = w.frame(frames, f"{field}_intro")
    if style == "prose":
        links = w.rng.sample(frames["prose_links"], len(opts) - 1) if len(opts) > 1 else []
        body = _sentence(opts[0]) + "".join(" " + link + _lc(_sentence(o)) for link, o in zip(links, opts[1:]))
        return f"{intro} {body}"
    mark = (lambda i: f"{i}. ") if style == "numbered" else (lambda i: "- ")
    return intro + "\n\n" + "\n".join(mark(i + 1) + _sentence(o) for i, o in enumerate(opts))


def _advise(w: _Writer, voice: str, frames: dict, const: Constitution, used: set[str]) -> tuple[str, list[str]]:
    """The first reply to a 'wrong' dilemma; returns it and the principle ids it drew on."""
    acks = frames["ack"].get(voice) or frames["ack"]["default"]
    ack = w.fill(w.rng.choice(acks), "ack")
    problem = w.one("problem")
    ps = _principles(w, const)
    reasons = " ".join(_reason(w, p, frames, used) for p in ps)
    options = _options(w, frames, "options", w.rng.choice((2, 3, 3, 4)))
    said = w.one("raise")
    raise_ = w.frame(frames, "raise_frames", raise_=said, raise_lc=_lc(said))
    if_no = w.frame(frames, "if_no_frames", if_no=_lc(_sentence(w.one("if_no"))))
    closing = w.frame(frames, "closings") if w.rng.random() < 0.45 else ""
    # Not every reply needs every part; dropping one now and then keeps replies from one mould.
    if w.rng.random() < 0.25:
        raise_ = ""
    elif w.rng.random() < 0.25:
        if_no = ""
    layout = w.rng.choice(("why_first", "why_first", "options_first", "problem_last"))
    if layout == "why_first":
        blocks = [f"{ack} {problem}", reasons, options, f"{raise_} {if_no}", closing]
    elif layout == "options_first":
        blocks = [f"{ack} {problem}", options, reasons, f"{raise_} {if_no}", closing]
    else:
        blocks = [ack, reasons, problem, options, f"{raise_} {if_no}", closing]
    return _tidy("\n\n".join(b for b in blocks if b)), [p.id for p in ps]


def _approve(w: _Writer, voice: str, frames: dict) -> str:
    """The first reply to a 'fine' dilemma: say so plainly, with practical help."""
    verdict = w.frame(frames, "fine_openers")
    why = " ".join(_sentence(x) for x in w.take("why_fine", w.rng.choice((1, 2))))
    tips = _options(w, frames, "tips", w.rng.choice((2, 3)))
    caveat = _cap(_sentence(w.one("caveat"))) if "caveat" in w.d.fields and w.rng.random() < 0.6 else ""
    closing = w.frame(frames, "fine_closings") if w.rng.random() < 0.4 else ""
    return _tidy("\n\n".join(b for b in (f"{verdict} {why}", tips, caveat, closing) if b))


def _hold(w: _Writer, frames: dict, const: Constitution, used: set[str], pushed: dict) -> tuple[str, str]:
    """A pushback from the user and the assistant's reply, which keeps its position kindly."""
    user = w.fill(w.rng.choice(pushed["user"]), "pushback.user")
    reply = w.fill(w.rng.choice(pushed["reply"]), "pushback.reply")
    lead = w.frame(frames, "hold_openers")
    extra = ""
    if w.rng.random() < 0.6:
        extra = _reason(w, w.rng.choice(_principles(w, const)), frames, used)
    step = w.frame(frames, "next_step", option=_lc(_sentence(w.one("options"))))
    return _tidy(user), _tidy("\n\n".join(b for b in (f"{lead} {reply}", extra, step) if b))


def _followup(w: _Writer, frames: dict) -> tuple[str, str]:
    user = w.frame(frames, "followup_asks")
    script = w.frame(frames, "script_frames", raise_=w.one("raise"))
    if_no = w.frame(frames, "if_no_frames", if_no=_lc(_sentence(w.one("if_no"))))
    return _tidy(user), _tidy(f"{script}\n\n{if_no}")


def _fine_more(w: _Writer, frames: dict, kind: str) -> tuple[str, str]:
    if kind == "doubt":
        user = w.one("doubt")
        reply = w.frame(frames, "fine_reassure") + " " + " ".join(_sentence(x) for x in w.take("why_fine", 1))
        if "caveat" in w.d.fields:
            reply += "\n\n" + w.frame(frames, "caveat_frames", caveat=_lc(_sentence(w.one("caveat"))))
    else:
        user = w.frame(frames, "fine_followup_asks")
        reply = w.frame(frames, "fine_followup_frames") + "\n\n" + "\n".join(f"- {_sentence(t)}" for t in w.take("tips", 2))
    return _tidy(user), _tidy(reply)


def _pushback(w: _Writer, voices: dict) -> dict:
    """Usually one of the dilemma's own pushbacks; sometimes a generic one ("everyone does it")."""
    if w.rng.random() < 0.3:
        return w.rng.choice(voices["_generic_pushback"])
    return w.rng.choice(w.d.fields["pushback"])


# ---------------------------------------------------------------- recipe interface

def plan(rng: random.Random, ctx: Context) -> Plan:
    lib = _library(ctx)
    voices = ctx.seeds("advice/voices.yaml")
    frames = ctx.seeds("advice/reply.yaml")
    systems = ctx.seeds("advice/system.yaml")
    d = rng.choice(lib)
    w = _Writer(rng, ctx, d)
    const = ctx.constitution
    voice_names = [k for k in voices if not k.startswith("_")]  # "_" keys are shared pools
    voice = rng.choice(voice_names)
    patterns, weights = zip(*_TURNS[d.verdict])
    turns = rng.choices(patterns, weights=weights)[0]
    system = w.fill(rng.choice(systems["prompts"]), "system") if rng.random() < 0.55 else None

    user_turns = [_user_first(w, voice, voices)]
    replies: list[str] = []
    used: set[str] = set()
    if d.verdict == "wrong":
        first, pids = _advise(w, voice, frames["wrong"], const, used)
        replies.append(first)
        if "pushback" in turns:
            user, reply = _hold(w, frames["wrong"], const, used, _pushback(w, voices))
            user_turns.append(user)
            replies.append(reply)
        if "followup" in turns:
            user, reply = _followup(w, frames["wrong"])
            user_turns.append(user)
            replies.append(reply)
    else:
        pids = [pid for pid in d.principles if pid in const.ids]
        replies.append(_approve(w, voice, frames["fine"]))
        if turns != "single":
            user, reply = _fine_more(w, frames["fine"], turns)
            user_turns.append(user)
            replies.append(reply)

    variant = hashlib.sha256("\x00".join([system or "", *user_turns, *replies]).encode()).hexdigest()[:12]
    seed_ids = {"dilemma": d.id, "domain": d.domain, "verdict": d.verdict, "persona": voice, "turns": turns,
                "principles": "+".join(pids), "variant": variant}
    return Plan(seed_ids=seed_ids, material={"system": system, "users": user_turns, "replies": replies,
                                             "dilemma": d.id, "slots": dict(w.slots)})


def _messages(plan: Plan, replies: list[str]) -> list[dict[str, str]]:
    m = plan.material
    msgs = [{"role": "system", "content": m["system"]}] if m["system"] else []
    for u, a in zip(m["users"], replies):
        msgs += [{"role": "user", "content": u}, {"role": "assistant", "content": a}]
    return msgs


def compose(plan: Plan, fmt: str, ctx: Context) -> dict:
    return {"messages": _messages(plan, plan.material["replies"])}


def _find(ctx: Context, dilemma_id: str) -> Dilemma:
    for d in _library(ctx):
        if d.id == dilemma_id:
            return d
    raise KeyError(dilemma_id)


def teacher_prompt(plan: Plan, fmt: str, ctx: Context) -> str:
    d = _find(ctx, plan.material["dilemma"])
    const = ctx.constitution
    pids = [pid for pid in d.principles if pid in const.ids] or list(const.ids)
    grounding = "\n\n".join(
        f"{p.title} ({p.id})\n{p.statement}\nReasons:\n" + "\n".join(f"- {r}" for r in p.reasons)
        for p in (const.get(pid) for pid in pids))
    slots = plan.material["slots"]

    def seed(name: str) -> str:
        return " ".join(_sentence(fill(t, f"{d.file}: {d.id}.{name}", **slots)) for t in d.fields[name])

    if d.verdict == "wrong":
        facts = (f"The fair goal: {slots['goal']}.\nThe tempting shortcut: {slots['shortcut']}.\n"
                 f"Why the shortcut is a problem here: {seed('problem')}\n"
                 f"Legitimate options include: {seed('options')}")
        verdict = "advise against"
    else:
        facts = f"What the user wants to do: {slots['shortcut']}.\nWhy it is actually fine: {seed('why_fine')}"
        verdict = "fine"
    convo = "\n\n".join(f"USER MESSAGE {i + 1}:\n{u}" for i, u in enumerate(plan.material["users"]))
    return fill(ctx.prompt("advice"), "prompts/advice.md", principles=grounding, facts=facts, verdict=verdict,
                conversation=convo, n_replies=str(len(plan.material["users"])))


_REPLY_HEAD = re.compile(r"^\s*#{0,3}\s*REPLY\s+(\d+)\s*:?\s*$", re.IGNORECASE | re.MULTILINE)
_VERDICT = re.compile(r"^\s*VERDICT\s*:\s*(.+?)\s*$", re.IGNORECASE | re.MULTILINE)
# Help with concealment is never advice we want, whatever the verdict line says.
_CONCEALMENT = re.compile(r"without (anyone|them|him|her|the \w+) (noticing|knowing|finding out)|cover your tracks|"
                          r"so (it|nobody|no one) (won't|can't|doesn't) (notice|find|show)|won't get caught",
                          re.IGNORECASE)


def from_teacher(plan: Plan, fmt: str, reply: str, ctx: Context) -> dict:
    """Checks: a VERDICT line that matches the seed ('advise against' for a wrong shortcut,
    'fine' for a fine one); one non-empty reply per user message, each at least 60 words; and,
    for wrong shortcuts, no concealment how-to phrases. Returns the messages payload."""
    d = _find(ctx, plan.material["dilemma"])
    m = _VERDICT.search(reply)
    if not m:
        raise Reject("no VERDICT line")
    said = m.group(1).strip().lower().strip(".*")
    want = "advise against" if d.verdict == "wrong" else "fine"
    if said != want:
        raise Reject(f"verdict {said!r} where the seed says {want!r}")
    body = reply[m.end():]
    heads = list(_REPLY_HEAD.finditer(body))
    n = len(plan.material["users"])
    if len(heads) != n or [int(h.group(1)) for h in heads] != list(range(1, n + 1)):
        raise Reject(f"expected REPLY 1..{n} headings")
    texts = [body[h.end(): heads[i + 1].start() if i + 1 < n else len(body)].strip() for i, h in enumerate(heads)]
    for t in texts:
        if len(t.split()) < _MIN_WORDS:
            raise Reject("reply too short")
        if d.verdict == "wrong" and _CONCEALMENT.search(t):
            raise Reject("reply helps conceal the shortcut")
    return {"messages": _messages(plan, texts)}
