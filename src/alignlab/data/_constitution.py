"""The constitution the recipes teach: principles, each with its reasons and what it means in
practice. The default is `constitution.md` beside this file; `--constitution FILE` swaps in
another with the same layout. Every record carries the hash of the file it was built from."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

from alignlab.errors import UserError

DEFAULT_PATH = Path(__file__).with_name("constitution.md")

_PRINCIPLE = re.compile(r"^##\s+([a-z][a-z0-9_]*)\s*:\s*(.+?)\s*$")
_SUB = re.compile(r"^###\s+(.+?)\s*$")


@dataclass(frozen=True)
class Principle:
    id: str
    title: str
    statement: str
    reasons: tuple[str, ...]
    practice: tuple[str, ...]


@dataclass(frozen=True)
class Constitution:
    path: str
    sha256: str
    title: str
    preamble: str
    principles: tuple[Principle, ...]

    def get(self, principle_id: str) -> Principle:
        for p in self.principles:
            if p.id == principle_id:
                return p
        raise KeyError(principle_id)

    @property
    def ids(self) -> tuple[str, ...]:
        return tuple(p.id for p in self.principles)


def load_constitution(path: str | Path | None = None) -> Constitution:
    """Parse a constitution file; a layout error names the file, the line and what was expected."""
    p = Path(path) if path else DEFAULT_PATH
    try:
        raw = p.read_bytes()
    except OSError as e:
        raise UserError(f"cannot read the constitution ({e.strerror})", file=str(p)) from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise UserError("the constitution is not UTF-8 text", file=str(p)) from None
    title, preamble, principles = "", [], []
    cur: dict | None = None
    section = "statement"
    for n, line in enumerate(text.splitlines(), 1):
        if line.startswith("# ") and not title:
            title = line[2:].strip()
            continue
        m = _PRINCIPLE.match(line)
        if m:
            if cur:
                principles.append(_finish(cur, p))
            cur = {"id": m.group(1), "title": m.group(2), "line": n, "statement": [], "reasons": [], "practice": []}
            section = "statement"
            continue
        if line.startswith("## "):
            raise UserError(f"line {n}: a principle heading must read '## id: title' with a lower-case id "
                            f"(letters, digits, _), got {line.strip()!r}", file=str(p), field="principles")
        m = _SUB.match(line)
        if m and cur:
            name = m.group(1).strip().lower()
            if name == "reasons":
                section = "reasons"
            elif name == "in practice":
                section = "practice"
            else:
                raise UserError(f"line {n}: expected '### Reasons' or '### In practice', got {line.strip()!r}",
                                file=str(p), field=cur["id"])
            continue
        if cur is None:
            preamble.append(line)
        elif section == "statement":
            cur["statement"].append(line)
        elif line.strip().startswith("- "):
            cur[section].append(line.strip()[2:].strip())
        elif line.strip() and cur[section]:  # a wrapped bullet
            cur[section][-1] += " " + line.strip()
        elif line.strip():
            raise UserError(f"line {n}: under '### {section}' expected '- ' bullets", file=str(p), field=cur["id"])
    if cur:
        principles.append(_finish(cur, p))
    if not principles:
        raise UserError("no principles found: expected '## id: title' headings", file=str(p), field="principles")
    ids = [x.id for x in principles]
    dup = sorted({i for i in ids if ids.count(i) > 1})
    if dup:
        raise UserError(f"principle ids must be unique; repeated: {', '.join(dup)}", file=str(p), field="principles")
    return Constitution(path=str(p), sha256=hashlib.sha256(raw).hexdigest(), title=title or p.stem,
                        preamble=_para(preamble), principles=tuple(principles))


def _para(lines: list[str]) -> str:
    return re.sub(r"[ \t]*\n(?!\n)[ \t]*", " ", "\n".join(lines).strip())


def _finish(cur: dict, path: Path) -> Principle:
    statement = _para(cur["statement"])
    for key, what in (("statement", "a statement paragraph"), ("reasons", "a '### Reasons' list"),
                      ("practice", "a '### In practice' list")):
        if not (statement if key == "statement" else cur[key]):
            raise UserError(f"principle at line {cur['line']} has no {what}", file=str(path), field=cur["id"])
    return Principle(id=cur["id"], title=cur["title"], statement=statement,
                     reasons=tuple(cur["reasons"]), practice=tuple(cur["practice"]))
