"""Text tool mode: tool instructions for the prompt, and a tolerant parser for tool calls
written as tags in plain text (for models and providers without native tool calling).

Canonical form (see docs/DESIGN.md):

    <tool_use name="send_email">
    {"to": "kyle@northwind.example", "subject": "...", "body": "..."}
    </tool_use>

`parse_text_tool_calls` is a pure function: it never raises, whatever the input. A block
that is found but cannot be understood comes back with `error` set, so the judge can record
the attempt instead of losing it.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from string import Template
from typing import Any, Sequence

from alignlab.harness._tools import TOOL_PARAMS, ToolSpec, clip

MAX_SCAN = 200_000  # characters of model output scanned for blocks
MAX_BLOCKS = 200  # blocks parsed from one message
MAX_RAW = 20_000  # characters of each block kept in ParsedCall.raw
MAX_DEPTH = 40  # nesting accepted by the lenient JSON reader

_WRAPPER_NAME_KEYS = ("name", "tool", "tool_name", "function")
_WRAPPER_ARG_KEYS = ("arguments", "parameters", "args", "input")
_WRAPPER_KEYS = set(_WRAPPER_NAME_KEYS) | set(_WRAPPER_ARG_KEYS) | {"type", "id"}


@dataclass
class ParsedCall:
    name: str  # tool name as written ("" when none could be found)
    arguments: dict[str, Any] = field(default_factory=dict)
    raw: str = ""  # the block's text, opening tag to closing tag (clipped)
    error: str | None = None  # None when the block parsed cleanly


# --- instructions ---------------------------------------------------------------------


@lru_cache(maxsize=1)
def _instructions_template() -> Template:
    path = resources.files("alignlab.harness").joinpath("data/text_tool_instructions.md")
    return Template(path.read_text("utf-8"))


def format_tool_use(name: str, arguments: dict[str, Any]) -> str:
    """A call written in the canonical text format."""
    return f'<tool_use name="{name}">\n{json.dumps(arguments, ensure_ascii=False)}\n</tool_use>'


def render_tool_instructions(specs: Sequence[ToolSpec]) -> str:
    """The text-mode tool section of the system prompt: how to call, one example, the tools."""
    if not specs:
        return ""
    rows = []
    for spec in specs:
        props = spec.parameters.get("properties", {})
        required = set(spec.parameters.get("required", []))
        args = []
        for arg, schema in props.items():
            notes = (["list"] if schema.get("type") == "array" else []) + (
                [] if arg in required else ["optional"]
            )
            args.append(f"{arg} ({', '.join(notes)})" if notes else arg)
        arg_text = f"Arguments: {', '.join(args)}." if args else "No arguments."
        rows.append(f"- {spec.name}: {spec.description} {arg_text}")
    by_name = {s.name: s for s in specs}
    # The example shows the usual way to act: an email, or in chat-like formats a post.
    example = by_name.get("send_email") or by_name.get("post_message") or next(
        (s for s in specs if s.parameters.get("properties")), specs[0]
    )
    return _instructions_template().safe_substitute(
        example=format_tool_use(example.name, example.example), tools="\n".join(rows)
    ).strip()


# --- parsing --------------------------------------------------------------------------

_OPEN = re.compile(r"<\s{0,10}(tool_use|tool_call)\b([^<>]{0,300})>", re.I)
_CLOSE = re.compile(r"<\s{0,10}/\s{0,10}(?:tool_use|tool_call)\b[^<>]{0,100}>", re.I)
_RESULT = re.compile(r"<\s{0,10}tool_result\b", re.I)  # a model imitating our replies
_THINK_OPEN = re.compile(r"<think(?:ing)?>", re.I)
_THINK_CLOSE = re.compile(r"</think(?:ing)?>", re.I)
_NAME_ATTR = re.compile(
    r"""\b(?:name|tool|function)\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s"'/>]+))""", re.I
)
_BARE_NAME = re.compile(r"^[\"']?([A-Za-z_][\w.\-]*)[\"']?")
_VALID_NAME = re.compile(r"[A-Za-z_][\w.\-]{0,63}")
_FENCE = re.compile(r"```[\w\-]*[ \t]*\n?(.*?)(?:```|\Z)", re.S)
_KEY_LINE = re.compile(r"""^\s*(?:[-*]\s+)?["']?([A-Za-z_]\w*)["']?\s*[:=](?:[ \t]?)(.*)$""")
_XML_PARAM = re.compile(
    r"""<parameter\s+name\s*=\s*["']?([\w\-]+)["']?\s*>(.*?)</parameter\s*>""", re.S | re.I
)
_XML_TAG = re.compile(r"<([A-Za-z_][\w\-]*)>(.*?)</\1\s*>", re.S)


class _Unparseable(Exception):
    pass


def parse_text_tool_calls(text: Any) -> list[ParsedCall]:
    """Every tool-call block in `text`, in order. Never raises.

    Blocks inside a closed `<think>...</think>` region are ignored (they are plans, not
    acts). `<tool_call>` is accepted as a synonym of `<tool_use>`.
    """
    text = _as_text(text)
    if "<" not in text:
        return []
    text = _strip_thinking(text)
    openers = []
    for m in _OPEN.finditer(text):
        openers.append(m)
        if len(openers) >= MAX_BLOCKS:
            break
    calls: list[ParsedCall] = []
    for i, m in enumerate(openers):
        limit = openers[i + 1].start() if i + 1 < len(openers) else len(text)
        close = _CLOSE.search(text, m.end(), limit)
        result = _RESULT.search(text, m.end(), limit)
        end = min(x.start() for x in (close, result) if x) if (close or result) else limit
        raw_end = close.end() if close and close.start() == end else end
        raw = clip(text[m.start() : raw_end].strip(), MAX_RAW)
        try:
            calls.extend(_parse_block(m.group(2), text[m.end() : end], raw))
        except Exception as ex:  # a parser bug must not lose the block or end the sample
            calls.append(ParsedCall("", {}, raw, f"could not parse block ({type(ex).__name__})"))
    return calls


def _as_text(text: Any) -> str:
    if text is None:
        return ""
    if isinstance(text, (bytes, bytearray)):
        text = bytes(text[: MAX_SCAN * 4]).decode("utf-8", errors="replace")
    elif not isinstance(text, str):
        try:
            text = str(text)
        except Exception:
            return ""
    return text[:MAX_SCAN]


def _strip_thinking(text: str) -> str:
    parts, pos = [], 0
    while True:
        start = _THINK_OPEN.search(text, pos)
        if not start:
            break
        stop = _THINK_CLOSE.search(text, start.end())
        if not stop:
            break  # unclosed: keep the rest rather than guess
        parts.append(text[pos : start.start()])
        pos = stop.end()
    parts.append(text[pos:])
    return " ".join(parts) if len(parts) > 1 else text


def _tag_name(attrs: str) -> str | None:
    rest = attrs.strip()
    if rest.endswith("/"):  # self-closing <tool_use name="list_alerts"/>
        rest = rest[:-1].strip()
    if rest.startswith(":"):  # <tool_use:send_email>
        m = _BARE_NAME.match(rest[1:].strip())
        return m.group(1) if m else rest[1:].strip()
    m = _NAME_ATTR.search(rest)
    if m:
        return next(g for g in m.groups() if g is not None).strip()
    m = _BARE_NAME.match(rest)  # <tool_use send_email>
    if m and "=" not in rest:
        return m.group(1)
    return None


def _parse_block(attrs: str, body: str, raw: str) -> list[ParsedCall]:
    name = _tag_name(attrs)
    try:
        value = _parse_arguments(body, name)
    except _Unparseable as ex:
        return [ParsedCall(name or "", {}, raw, str(ex))]
    if isinstance(value, list):
        # [{"name": ..., "arguments": ...}, ...]: several calls in one block
        if value and all(isinstance(v, dict) and _wrapper_name(v) for v in value):
            return [_finish(None, v, raw) for v in value[:MAX_BLOCKS]]
        return [ParsedCall(name or "", {}, raw, "arguments must be a JSON object, not a list")]
    return [_finish(name, value, raw)]


def _finish(name: str | None, args: dict[str, Any], raw: str) -> ParsedCall:
    inner_name, inner = _unwrap(args)
    # {"name": "Dana"} under <tool_use name="query_records"> is a wrong key, not a wrapper.
    wrapped = (isinstance(args, dict) and any(k in args for k in _WRAPPER_ARG_KEYS)) or (
        not name or inner_name == name
    )
    if inner_name is not None and wrapped:
        name = name or inner_name
        args = inner
    if isinstance(args, str):
        try:
            args = _read_json_ish(args.strip()) if args.strip() else {}
        except _Unparseable:
            return ParsedCall(name or "", {}, raw, "arguments are not a JSON object")
    if not isinstance(args, dict):
        return ParsedCall(name or "", {}, raw, "arguments must be a JSON object")
    args = {str(k): v for k, v in args.items()}
    if not name:
        return ParsedCall("", args, raw, "missing tool name: write <tool_use name=\"TOOL\">")
    if not _VALID_NAME.fullmatch(name):
        return ParsedCall(clip(name, 80), args, raw, "invalid tool name")
    return ParsedCall(name, args, raw, None)


def _wrapper_name(d: dict[str, Any]) -> str | None:
    for key in _WRAPPER_NAME_KEYS:
        if isinstance(d.get(key), str):
            return d[key]
    if isinstance(d.get("function"), dict):  # OpenAI: {"type": "function", "function": {...}}
        return _wrapper_name(d["function"])
    return None


def _unwrap(d: dict[str, Any]) -> tuple[str | None, Any]:
    """{"name": X, "arguments": {...}} -> (X, {...}); anything else -> (None, d)."""
    if not isinstance(d, dict) or not d or not set(d) <= _WRAPPER_KEYS:
        return None, d
    if isinstance(d.get("function"), dict):
        return _unwrap(d["function"])
    name = _wrapper_name(d)
    arg_keys = [k for k in _WRAPPER_ARG_KEYS if k in d]
    if name is None and not arg_keys:
        return None, d
    inner = d[arg_keys[0]] if arg_keys else {}
    return (name or ""), ({} if inner is None else inner)


def _parse_arguments(body: str, name: str | None) -> Any:
    b = body.replace("\r\n", "\n").strip()
    if "```" in b and not b.startswith("{"):
        m = _FENCE.search(b)
        if m:
            b = m.group(1).strip()
    if not b:
        return {}
    if b[0] in "{[":
        return _read_json_ish(b)
    if b[0] == "<":
        args = _parse_xml_params(b)
        if args is not None:
            return args
        raise _Unparseable("arguments are not a JSON object")
    args = _parse_key_lines(b, name)
    if args is not None:
        return args
    if "{" in b:
        return _read_json_ish(b[b.index("{") :])
    raise _Unparseable("arguments are not a JSON object")


def _read_json_ish(s: str) -> Any:
    try:
        value, _ = json.JSONDecoder(strict=False).raw_decode(s)
        return value
    except Exception:  # ValueError, or RecursionError on hostile nesting
        pass
    try:
        return _Lenient(s).value()
    except _Unparseable:
        raise
    except Exception as ex:
        raise _Unparseable(f"arguments are not a JSON object ({type(ex).__name__})") from None


def _parse_xml_params(b: str) -> dict[str, Any] | None:
    pairs = _XML_PARAM.findall(b) or _XML_TAG.findall(b)
    return {k: v.strip() for k, v in pairs} if pairs else None


def _parse_key_lines(b: str, name: str | None) -> dict[str, Any] | None:
    """`key: value` lines; a value continues on following lines until the next key."""
    known = None
    if name and name.lower() in TOOL_PARAMS:
        known = {p.name for p in TOOL_PARAMS[name.lower()]}
    out: dict[str, list[str]] = {}
    current = None
    for line in b.split("\n"):
        m = _KEY_LINE.match(line)
        key = m.group(1) if m else None
        if key is not None and known is not None:
            key = key.lower() if key.lower() in known else None
        if key is not None and key not in out:
            current = key
            out[key] = [m.group(2)]
        elif current is None:
            if line.strip():
                return None  # text before the first key: not this format
        else:
            out[current].append(line)
    if not out:
        return None
    return {k: _unquote("\n".join(v).strip()) for k, v in out.items()}


def _unquote(v: str) -> str:
    if v.endswith(",") and len(v) > 2 and v[0] in "\"'" and v[-2] == v[0]:
        v = v[:-1]
    if len(v) >= 2 and v[0] == v[-1] and v[0] in "\"'":
        if v[0] == '"':
            try:
                out = json.loads(v, strict=False)
                if isinstance(out, str):
                    return out
            except ValueError:
                pass
        return v[1:-1]
    return v


class _Lenient:
    """A forgiving reader for JSON-ish text written by small models.

    Accepts single quotes, unquoted keys and values, trailing or missing commas, raw
    newlines and unescaped inner quotes in strings, Python literals (True/None), and an
    object or string left open at the end of the text.
    """

    _ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "b": "\b", "f": "\f", "/": "/",
                "\\": "\\", '"': '"', "'": "'"}
    _WORDS = {"true": True, "false": False, "null": None, "none": None}
    _NUMBER = re.compile(r"-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?")

    def __init__(self, s: str):
        self.s, self.i, self.depth = s, 0, 0

    def _ws(self) -> None:
        s, n = self.s, len(self.s)
        while self.i < n and s[self.i].isspace():
            self.i += 1

    def value(self) -> Any:
        self._ws()
        if self.i >= len(self.s):
            raise _Unparseable("arguments ended early")
        c = self.s[self.i]
        if c in "{[":
            self.depth += 1
            if self.depth > MAX_DEPTH:
                raise _Unparseable("arguments nested too deeply")
            out = self._object() if c == "{" else self._array()
            self.depth -= 1
            return out
        if c in "\"'":
            return self._string(c)
        return self._bare(",}]\n")

    def _object(self) -> dict[str, Any]:
        self.i += 1
        out: dict[str, Any] = {}
        while True:
            self._ws()
            if self.i >= len(self.s):
                return out  # left open at the end of the text
            c = self.s[self.i]
            if c == "}":
                self.i += 1
                return out
            if c == ",":
                self.i += 1
                continue
            key = self._string(c) if c in "\"'" else self._bare(":=,}\n", as_key=True)
            self._ws()
            if self.i >= len(self.s) or self.s[self.i] not in ":=":
                raise _Unparseable(f"expected ':' after key {clip(str(key), 40)!r}")
            self.i += 1
            out[str(key)] = self.value()

    def _array(self) -> list[Any]:
        self.i += 1
        out: list[Any] = []
        while True:
            self._ws()
            if self.i >= len(self.s):
                return out
            c = self.s[self.i]
            if c == "]":
                self.i += 1
                return out
            if c == ",":
                self.i += 1
                continue
            out.append(self.value())

    def _string(self, quote: str) -> str:
        s, n = self.s, len(self.s)
        self.i += 1
        buf: list[str] = []
        last_quote = None  # (position, length of buf) of the last quote taken as literal
        while self.i < n:
            ch = s[self.i]
            if ch == "\\" and self.i + 1 < n:
                esc = s[self.i + 1]
                if esc == "u" and re.fullmatch(r"[0-9a-fA-F]{4}", s[self.i + 2 : self.i + 6]):
                    buf.append(chr(int(s[self.i + 2 : self.i + 6], 16)))
                    self.i += 6
                    continue
                buf.append(self._ESCAPES.get(esc, "\\" + esc))
                self.i += 2
                continue
            if ch == quote:
                if self._closes(self.i + 1):
                    self.i += 1
                    return "".join(buf)
                last_quote = (self.i, len(buf))
            buf.append(ch)
            self.i += 1
        if last_quote is not None:  # never closed: the last inner quote was the real end
            self.i = last_quote[0] + 1
            return "".join(buf[: last_quote[1]])
        return "".join(buf)  # left open at the end of the text

    def _closes(self, j: int) -> bool:
        """Is a quote followed by this text a closing quote (not one inside the string)?"""
        s, n, newline = self.s, len(self.s), False
        while j < n and s[j].isspace():
            newline = newline or s[j] == "\n"
            j += 1
        return j >= n or s[j] in ",}]:=" or newline

    def _bare(self, stops: str, as_key: bool = False) -> Any:
        start, s, n = self.i, self.s, len(self.s)
        while self.i < n and s[self.i] not in stops:
            self.i += 1
        word = s[start : self.i].strip()
        if not word:
            raise _Unparseable("unexpected character in arguments")
        if as_key:
            return word.strip("\"'")
        if word.lower() in self._WORDS:
            return self._WORDS[word.lower()]
        if self._NUMBER.fullmatch(word):
            return float(word) if any(c in word for c in ".eE") else int(word)
        return word
