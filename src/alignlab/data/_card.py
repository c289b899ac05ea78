"""The dataset card `data check` writes beside a JSONL file: FILE.card.md for people and
FILE.card.json for tools. Counts, exact token totals under a named tokenizer, lengths,
diversity (distinct n-grams, the most repeated phrases and names: mode collapse shows up
here), near-duplicates, contamination, and every setting the check used.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from alignlab.data._embed import MODEL_NAME
from alignlab.data._ngrams import ngrams_concat, words
from alignlab.data._records import record_format
from alignlab.errors import UserError

if TYPE_CHECKING:
    from alignlab.data._check import CheckResult

LENGTH_BINS = (0, 128, 256, 512, 1024, 2048, 4096)
TOP = 15
PHRASE_N = 6
# A capitalised word right after a lowercase word, digit or comma is not a sentence start.
_NAME = re.compile(r"(?<=[a-z0-9,;] )[A-Z][a-z]+(?:[- ][A-Z][a-z]+)?")
# Calendar words are capitalised everywhere and would crowd out the names.
_CALENDAR = frozenset("Monday Tuesday Wednesday Thursday Friday Saturday Sunday January February March April "
                      "May June July August September October November December".split())


def build_card(result: "CheckResult", recs: list[dict[str, Any]], texts: list[str], flat: np.ndarray,
               starts: np.ndarray, tokenizer: str | None, exhaustive: bool) -> dict[str, Any]:
    st = result.settings
    n = len(recs)
    tokens = token_counts(recs, tokenizer)
    per = np.array(tokens.pop("per_record"), dtype=np.int64)
    removed = result.duplicates
    by_suite: dict[str, dict[str, int]] = {s: {} for s in result.suites}
    for f in result.flags:
        by_suite[f.suite][f.check] = by_suite[f.suite].get(f.check, 0) + 1
    return {
        "file": str(result.path),
        "records": n,
        "by_recipe": dict(Counter(str(r.get("recipe", "(none)")) for r in recs).most_common()),
        "by_format": dict(Counter(record_format(r) for r in recs).most_common()),
        "tokens": {**tokens, "total": int(per.sum()), "mean": round(float(per.mean()), 1),
                   "p50": int(np.percentile(per, 50)), "p90": int(np.percentile(per, 90)),
                   "max": int(per.max())},
        "length_histogram": length_histogram(per),
        "words": int(len(flat)),
        "distinct_ngram_ratio": {str(k): distinct_ratio(flat, starts, k) for k in (1, 2, 3, 4)},
        "top_phrases": top_phrases(texts, flat, starts, PHRASE_N, TOP),
        "top_names": top_names(texts, TOP),
        "near_duplicates": {
            "removed_by_dedup": len(removed), "exact": sum(d.exact for d in removed),
            "share": round(len(removed) / n, 4), "threshold": st.dup_threshold,
        },
        "contamination": {
            "failed": result.failed, "fatal_suite": "heldout",
            "flagged_records": result.flagged, "flags_by_check": by_suite,
            "thresholds": {"8gram_fraction": st.ngram_fraction, "13gram_hits": st.long_hits,
                           "embedding_cosine": st.embed_threshold, "heldout_margin_over_core": st.heldout_margin},
            # Every held-out flag is listed (they fail the check); other suites' up to MAX_LISTED.
            "flags": [asdict(f) for f in result.flags if f.suite == "heldout"]
                     + [asdict(f) for f in result.flags if f.suite != "heldout"][:MAX_LISTED],
        },
        "settings": {
            **asdict(st), "exhaustive": exhaustive, "embedding_model": MODEL_NAME,
            "embedded_text": embedded_text(st, exhaustive), "embedded": result.embedded,
        },
    }


def embedded_text(st: Any, exhaustive: bool) -> str:
    scope = ("every window of every record" if exhaustive else
             "window 0 of every record (near-duplicates; identical records are matched by hash instead) "
             f"and, for contamination, the windows that share >= {st.prefilter_terms} distinctive words with "
             "one eval passage, and every window of a record with an n-gram hit")
    return (f"windows of {st.window_words} consecutive words (a new one every {st.window_stride} words), "
            f"each truncated to its first {st.window_tokens} word-pieces; window 0 is a record's first "
            f"{st.window_words} words (record_text: message contents and tool calls in order; for "
            "near-duplicates, system messages left out, since records often share one by design). "
            f"Embedded: {scope}. Distinctive: in at most {st.distinct_df:.0%} (or 2) of a suite's scenarios "
            f"or items and at most {st.data_df:.1%} (or 2) of this dataset's records, not a stop word.")


MAX_LISTED = 200  # flags listed per card for the suites that only report


def token_counts(recs: list[dict[str, Any]], name: str | None) -> dict[str, Any]:
    """Exact tokens per record: messages as the chat template renders them, pairs as
    prompt+chosen plus prompt+rejected, text as is."""
    from transformers import AutoTokenizer

    if name is None:
        from alignlab.models import prepare_embedded

        source, label = str(prepare_embedded()), "embedded (SmolLM2 checkpoint)"
    else:
        source, label = name, name
    try:
        tok = AutoTokenizer.from_pretrained(source)
    except (OSError, ValueError) as e:
        raise UserError(f"cannot load tokenizer {name!r} offline ({e})", field="--tokenizer") from None
    template = tok.chat_template if isinstance(tok.chat_template, str) else ""
    takes_tools, renders_calls = "tools" in template, "tool_calls" in template

    def chat(msgs: list[dict[str, Any]], tools: Any) -> str:
        if not template:
            return "\n".join(f"{m['role']}: {m['content']}" for m in msgs)
        kw = {"tools": tools} if tools and takes_tools else {}
        return tok.apply_chat_template(msgs, tokenize=False, **kw)

    # A template that cannot show tool calls would drop them from the count; such records are
    # rendered as the harness shows an episode in text tool mode — what `alignlab train` trains on.
    text_mode = not renders_calls
    from alignlab.train._render import record_turns

    def agentic(msgs: list[dict[str, Any]], tools_json: Any) -> str:
        return chat(record_turns({"messages": msgs, "tools": tools_json}), None)

    seqs: list[str] = []
    owner: list[int] = []
    for i, r in enumerate(recs):
        fmt = record_format(r)
        tools = json.loads(r["tools"]) if r.get("tools") else None
        msgs = r.get("messages") or [*r.get("prompt", []), *r.get("chosen", []), *r.get("rejected", [])]
        has_calls = bool(tools) or any(m.get("tool_calls") or m.get("role") == "tool" for m in msgs)
        if fmt == "text":
            parts = [r["text"]]
        elif text_mode and has_calls:
            parts = ([agentic(r["messages"], r.get("tools"))] if fmt == "messages" else
                     [agentic([*r["prompt"], *r[side]], r.get("tools")) for side in ("chosen", "rejected")])
        elif fmt == "messages":
            parts = [chat(r["messages"], tools)]
        else:
            parts = [chat([*r["prompt"], *r[side]], tools) for side in ("chosen", "rejected")]
        seqs += parts
        owner += [i] * len(parts)
    per = np.zeros(len(recs), dtype=np.int64)
    counts = _lengths(tok, seqs)
    np.add.at(per, np.array(owner, dtype=np.int64), counts)
    return {
        "tokenizer": label, "source": source, "per_record": per.tolist(),
        "chat_template": "yes" if template else "none: messages counted as 'role: content' lines",
        "template_renders_tools": takes_tools, "template_renders_tool_calls": renders_calls,
        "tool_calls_rendered_as": "the template's own" if renders_calls else
                                  "text tool mode (<tool_use>/<tool_result> blocks, as alignlab train renders them)",
    }


def _lengths(tok: Any, seqs: list[str], chunk: int = 1000) -> np.ndarray:
    out = []
    for a in range(0, len(seqs), chunk):
        out += [len(x) for x in tok(seqs[a:a + chunk], add_special_tokens=False)["input_ids"]]
    return np.array(out, dtype=np.int64)


def length_histogram(per: np.ndarray) -> list[dict[str, Any]]:
    edges = [*LENGTH_BINS, max(int(per.max()) + 1, LENGTH_BINS[-1] + 1)]
    counts, _ = np.histogram(per, bins=edges)
    return [{"tokens": f"{a}-{b - 1}" if i < len(LENGTH_BINS) - 1 else f">={a}", "records": int(c)}
            for i, (a, b, c) in enumerate(zip(edges[:-1], edges[1:], counts))]


def distinct_ratio(flat: np.ndarray, starts: np.ndarray, n: int) -> float:
    """Distinct n-grams / all n-grams over the whole dataset (1.0: nothing repeats)."""
    grams, _ = ngrams_concat(flat, starts, n)
    return round(len(np.unique(grams)) / max(len(grams), 1), 4)


def top_phrases(texts: list[str], flat: np.ndarray, starts: np.ndarray, n: int, k: int) -> list[dict[str, Any]]:
    """The n-grams found in the most records, with occurrences and the share of records."""
    grams, owner = ngrams_concat(flat, starts, n)
    if len(grams) == 0:
        return []
    order = np.lexsort((owner, grams))
    g, o = grams[order], owner[order]
    first_in_record = np.ones(len(g), dtype=bool)
    first_in_record[1:] = (g[1:] != g[:-1]) | (o[1:] != o[:-1])
    uniq, rec_counts = np.unique(g[first_in_record], return_counts=True)
    occ_u, occ = np.unique(grams, return_counts=True)
    out = []
    for j in np.argsort(-rec_counts, kind="stable")[:k]:
        if rec_counts[j] < 2:
            break
        h = uniq[j]
        pos = int(order[np.searchsorted(g, h)])
        r = int(owner[pos])
        offset = pos - int(np.searchsorted(owner, r))
        out.append({"phrase": " ".join(words(texts[r])[offset:offset + n]),
                    "records": int(rec_counts[j]), "share": round(int(rec_counts[j]) / len(texts), 4),
                    "occurrences": int(occ[np.searchsorted(occ_u, h)])})
    return out


def top_names(texts: list[str], k: int) -> list[dict[str, Any]]:
    """Capitalised words (and two-word names) not at a sentence start, days and months
    aside: people, places, organisations. Counted once per record."""
    c: Counter[str] = Counter()
    for x in texts:
        c.update(set(_NAME.findall(x)) - _CALENDAR)
    return [{"name": nm, "records": cnt, "share": round(cnt / len(texts), 4)} for nm, cnt in c.most_common(k)]


def write_card(data_path: Path, card: dict[str, Any]) -> tuple[Path, Path]:
    stem = data_path.name[: -len(".jsonl")] if data_path.name.endswith(".jsonl") else data_path.name
    md, js = data_path.with_name(stem + ".card.md"), data_path.with_name(stem + ".card.json")
    js.write_text(json.dumps(card, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    md.write_text(render_markdown(card), encoding="utf-8")
    return md, js


def render_markdown(card: dict[str, Any]) -> str:
    t, c, nd, s = card["tokens"], card["contamination"], card["near_duplicates"], card["settings"]
    lines = [f"# Dataset card: {Path(card['file']).name}", "",
             f"{card['records']} records, {card['words']} words. "
             f"Recipes: {_kv(card['by_recipe'])}. Formats: {_kv(card['by_format'])}.", "",
             "## Tokens", "",
             f"Tokenizer: {t['tokenizer']} (`{t['source']}`). Messages are counted as the chat template "
             "renders them; pairs as prompt+chosen plus prompt+rejected; text as is.", "",
             "| total | mean | p50 | p90 | max |", "|---|---|---|---|---|",
             f"| {t['total']} | {t['mean']} | {t['p50']} | {t['p90']} | {t['max']} |", ""]
    if not t["template_renders_tool_calls"]:
        lines += [f"The chat template cannot show tool calls, so records with tools are counted as {t['tool_calls_rendered_as']}.", ""]
    lines += ["| tokens per record | records |", "|---|---|"]
    lines += [f"| {b['tokens']} | {b['records']} |" for b in card["length_histogram"]]
    lines += ["", "## Diversity", "",
              "Distinct n-gram ratio (distinct / all, over the whole dataset): "
              + ", ".join(f"{k}-gram {v}" for k, v in card["distinct_ngram_ratio"].items()) + ".", "",
              f"Most widespread {PHRASE_N}-word phrases:", "",
              "| phrase | records | share | occurrences |", "|---|---|---|---|"]
    lines += [f"| {p['phrase']} | {p['records']} | {p['share']:.1%} | {p['occurrences']} |" for p in card["top_phrases"]]
    lines += ["", "Most widespread names (capitalised words not at a sentence start):", "",
              "| name | records | share |", "|---|---|---|"]
    lines += [f"| {x['name']} | {x['records']} | {x['share']:.1%} |" for x in card["top_names"]]
    lines += ["", "## Near-duplicates", "",
              f"{nd['removed_by_dedup']} records ({nd['share']:.1%}) duplicate an earlier kept record "
              f"({nd['exact']} identical; the rest at MiniLM cosine >= {nd['threshold']} of window 0).", "",
              "## Contamination", "",
              f"**{'FAILED' if c['failed'] else 'passed'}**: any record flagged against `heldout` fails.", "",
              "| suite | records flagged | flags by check |", "|---|---|---|"]
    lines += [f"| {su} | {n} | {_kv(c['flags_by_check'].get(su, {})) or '-'} |" for su, n in c["flagged_records"].items()]
    if c["flags"]:
        lines += ["", "Flags (every held-out one; at most 200 of the others; all in the CLI's --show):", "",
                  "| line | record | suite | check | score | closest eval text |", "|---|---|---|---|---|---|"]
        lines += [f"| {f['line']} | {f['record_id']} | {f['suite']} | {f['check']} | {f['score']} | {f['eval_item']} |"
                  for f in c["flags"]]
    th = c["thresholds"]
    lines += ["", f"Thresholds: share of a record's 8-grams in a suite >= {th['8gram_fraction']}; "
              f"13-grams in a suite >= {th['13gram_hits']}; MiniLM cosine of a record window to an eval "
              f"passage >= {th['embedding_cosine']} (held-out: also >= {th['heldout_margin_over_core']} above "
              "the best core passage). Held-out n-grams and passages that also occur in core (the harness's "
              "shared framing) are not counted.", "",
              "## Settings", "", f"Embedding model: {s['embedding_model']}. What is embedded: {s['embedded_text']}", "",
              f"Windows: {_kv(s['embedded'])}.", "", "```json",
              json.dumps({k: v for k, v in s.items() if k not in ("embedded_text", "embedded")}, indent=1), "```"]
    if "timings_s" in card:
        lines += ["", f"Timings (s): {_kv(card['timings_s'])}."]
    return "\n".join(lines) + "\n"


def _kv(d: dict[str, Any]) -> str:
    return ", ".join(f"{k} {v}" for k, v in d.items())
