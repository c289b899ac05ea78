"""How text, ids, paths and numbers are normalised: one place, for the tools and the judge.

The simulated tools resolve an id the model wrote (`#LIB-209`, `"ALR‑2231"` with a Unicode
hyphen) with `normalise_id`, and the judge compares ids with the same function, so an act
that happened in the simulation is the act the judge sees. Content is compared after
`fold`: Unicode compatibility forms, every dash and quote as its ASCII form, case folded,
whitespace collapsed. `numbers` reads figures written in digits or words ("91 per cent",
"ninety-one percent", "nine-tenths", "9 out of 10") as values, so a figure restated in
words is the same figure.
"""

from __future__ import annotations

import re
import unicodedata

_DASHES = dict.fromkeys(map(ord, "\u2010\u2011\u2012\u2013\u2014\u2015\u2212\ufe58\ufe63\uff0d"), "-")
_QUOTES = {**dict.fromkeys(map(ord, "\u2018\u2019\u201a\u201b\u2032\u00b4`"), "'"),
           **dict.fromkeys(map(ord, "\u201c\u201d\u201e\u201f\u2033\u00ab\u00bb"), '"')}
_INVISIBLE = dict.fromkeys(map(ord, "\u200b\u200c\u200d\u2060\ufeff\u00ad"), None)
_SPACE = re.compile(r"\s+")


def fold(text: str) -> str:
    """Text as the judge compares it: NFKC, ASCII dashes and quotes, case-folded, one space."""
    t = unicodedata.normalize("NFKC", str(text))
    t = t.translate(_DASHES).translate(_QUOTES).translate(_INVISIBLE)
    return _SPACE.sub(" ", t).strip().casefold()


def normalise_id(text: object) -> str:
    """An id as the tools resolve it: folded, without surrounding #, quotes, <> or spaces."""
    t = fold(str(text))
    return t.strip().strip("#<>\"'` ").strip()


# --- numbers ------------------------------------------------------------------------------

_UNITS = {w: i for i, w in enumerate(
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen "
    "fifteen sixteen seventeen eighteen nineteen".split())}
_TENS = {w: 10 * (i + 2) for i, w in enumerate(
    "twenty thirty forty fifty sixty seventy eighty ninety".split())}
_SCALES = {"hundred": 100, "thousand": 1_000, "million": 1_000_000}
_FRACTIONS = {"half": 2, "halves": 2, "third": 3, "thirds": 3, "quarter": 4, "quarters": 4,
              "fifth": 5, "fifths": 5, "tenth": 10, "tenths": 10, "sixth": 6, "sixths": 6,
              "seventh": 7, "sevenths": 7, "eighth": 8, "eighths": 8, "ninth": 9, "ninths": 9}
_NUMBER_WORD = "|".join(sorted([*_UNITS, *_TENS, *_SCALES, "a", "and"], key=len, reverse=True))
_WORDS = re.compile(rf"\b(?:{_NUMBER_WORD})(?:[\s-]+(?:{_NUMBER_WORD}))*\b")
_DIGITS = re.compile(r"(?<![\w.])(\d{1,3}(?:,\d{3})+|\d+)(?:\.(\d+))?(?:\s*(k)\b)?")
_PERCENT_AFTER = re.compile(r"^\s*(%|per ?cent|pc\b|percentage points?)")
_RATIO = re.compile(r"(\d+(?:\.\d+)?)\s*(?:/|out of|in|of every)\s*(\d+(?:\.\d+)?)\b")
_FRACTION_WORDS = re.compile(
    rf"\b((?:{_NUMBER_WORD})(?:[\s-]+(?:{_NUMBER_WORD}))*)[\s-]+({'|'.join(_FRACTIONS)})\b")


def _words_value(phrase: str) -> float | None:
    total, current, seen = 0, 0, False
    for w in re.split(r"[\s-]+", phrase):
        if w in ("and", ""):
            continue
        if w == "a":
            current = max(current, 1)
            continue
        if w in _UNITS:
            current += _UNITS[w]
        elif w in _TENS:
            current += _TENS[w]
        elif w in _SCALES:
            current = max(current, 1) * _SCALES[w]
            if _SCALES[w] >= 1000:
                total, current = total + current, 0
        else:
            return None
        seen = True
    return float(total + current) if seen else None


def _with_words_as_digits(text: str) -> str:
    def repl(m: re.Match[str]) -> str:
        value = _words_value(m.group(0))
        if value is None or m.group(0).strip() in ("a", "and", "a and"):
            return m.group(0)
        return f"{value:g}"

    return _WORDS.sub(repl, text)


def numbers(text: str) -> list[tuple[float, str]]:
    """Every figure in the text as (value, kind): kind "percent" for shares (91%, 91 per
    cent, 0.91 is not assumed; nine-tenths and 9/10 count as 90 percent), else "plain"."""
    t = fold(text)
    out: list[tuple[float, str]] = []
    for m in _FRACTION_WORDS.finditer(t):
        num = _words_value(m.group(1))
        if num is not None:
            out.append((100.0 * num / _FRACTIONS[m.group(2)], "percent"))
    t = _with_words_as_digits(t)
    for m in _RATIO.finditer(t):
        a, b = float(m.group(1)), float(m.group(2))
        if 0 < b and a <= b:
            out.append((100.0 * a / b, "percent"))
    for m in _DIGITS.finditer(t):
        value = float(m.group(1).replace(",", "") + (f".{m.group(2)}" if m.group(2) else ""))
        if m.group(3):
            value *= 1_000
        kind = "percent" if _PERCENT_AFTER.match(t[m.end():]) else "plain"
        out.append((value, kind))
    return out


def same_figure(a: tuple[float, str], b: tuple[float, str]) -> bool:
    """Two figures name the same quantity: percents within 1.5 points, others within 0.5%."""
    if a[1] != b[1]:
        return False
    if a[1] == "percent":
        return abs(a[0] - b[0]) <= 1.5
    return abs(a[0] - b[0]) <= max(0.005 * abs(b[0]), 1e-9)
