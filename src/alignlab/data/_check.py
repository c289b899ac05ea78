"""`alignlab data check`: decontamination against the evaluation suites, near-duplicates
within the dataset, and a dataset card. `check_file` is pure apart from the files it writes
(card, optional dedup output, embedding cache); it never prints.

What is compared, for a dataset of N records (`CheckSettings` holds every number):
- n-grams, every record, all of its text (`record_text`): the fraction of its 8-grams found
  in a suite and the count of its 13-grams found there. Held-out n-grams that also occur in
  the core split are harness boilerplate shared by both splits and are not counted.
- embeddings (all-MiniLM-L6-v2), per *window*: a window is 100 consecutive words of a record
  (windows start every 50 words), embedded as its first 128 word-pieces. Eval texts are cut
  into windows the same way ("passages").
    * near-duplicates: window 0 (a record's first 100 words) of every record; identical
      records are matched by hash. Pairs come from blocked matrix products.
    * contamination: embedding every window of 100k records takes hours on 2 cores, so only
      windows sharing >= `prefilter_terms` distinctive words (rare on the eval side and in the
      dataset) with one eval passage, all windows of records with an n-gram hit, and the
      windows already embedded for near-duplicates are compared. `exhaustive=True` embeds
      every window of every record.
  Vectors are cached in FILE.embeddings.npz by text hash, so a re-check is incremental.
- held-out embedding flags need cosine >= `embed_threshold` *and* a margin over the best
  core passage, so text shaped like any honeypot (the harness framing) is not called a
  held-out leak; a paraphrase of held-out-specific content is.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from scipy import sparse

from alignlab.data import _card
from alignlab.data._embed import embed_cached
from alignlab.data._evalcorpus import SUITES, Unit, parse_suites, suite_units
from alignlab.data._ngrams import _WORD, concat_hashes, member, ngrams_concat, word_hashes, words
from alignlab.data._records import iter_records, record_text, write_records
from alignlab.errors import UserError

FATAL_SUITE = "heldout"


@dataclass(frozen=True)
class CheckSettings:
    """Every threshold and size the check uses; written into the card."""

    ngram: int = 8
    long_ngram: int = 13
    ngram_fraction: float = 0.05  # flag when >= this share of a record's 8-grams is in a suite
    long_hits: int = 3  # ... or when >= this many of its 13-grams are (15+ copied words)
    embed_threshold: float = 0.7  # cosine of a record window to an eval passage (calibrated: tests/data)
    heldout_margin: float = 0.03  # held-out cosine must beat the best core passage by this
    dup_threshold: float = 0.9  # cosine of two records' window 0
    window_words: int = 100
    window_stride: int = 50
    window_tokens: int = 128  # word-pieces of a window the model sees
    prefilter_terms: int = 4  # distinctive eval words a window must share with one passage
    distinct_df: float = 0.01  # "distinctive": in at most this share (or 2) of a suite's scenarios/items
    data_df: float = 0.005  # "distinctive" also means in at most this share (or 2) of the dataset's records
    block: int = 4096  # rows per block of the similarity matrix products


@dataclass(frozen=True)
class Flag:
    record_id: str
    line: int
    suite: str
    check: str  # "8gram" | "13gram" | "embedding"
    score: float  # 8gram: share of the record's 8-grams; 13gram: count; embedding: cosine
    eval_item: str  # the eval unit (condition/item id and part) it matches best


@dataclass(frozen=True)
class Duplicate:
    record_id: str
    line: int
    duplicate_of: str  # id of the earlier record that is kept
    cosine: float  # 1.0 for identical text
    exact: bool


@dataclass
class CheckResult:
    path: Path
    n_records: int
    suites: tuple[str, ...]
    flags: list[Flag]  # one per (record, suite, check), sorted by line
    flagged: dict[str, int]  # suite -> distinct records flagged by any check
    duplicates: list[Duplicate]  # records dedup removes (or would remove), each with its original
    settings: CheckSettings
    embedded: dict[str, int]  # windows embedded: record windows total / for contamination / for dup; passages
    timings: dict[str, float]  # seconds per stage
    card_md: Path | None = None
    card_json: Path | None = None
    dedup_path: Path | None = None  # written when dedup=True
    kept: int = 0  # records in the dedup output
    card: dict[str, Any] = field(default_factory=dict)

    @property
    def failed(self) -> bool:
        """Held-out contamination fails the build; other suites are reported only."""
        return self.flagged.get(FATAL_SUITE, 0) > 0


@dataclass
class _Suite:
    name: str
    units: tuple[Unit, ...]
    table8: np.ndarray  # sorted distinct 8-gram hashes
    unit8: np.ndarray  # unit index of each
    table13: np.ndarray
    unit13: np.ndarray
    passages: list[str]
    passage_unit: np.ndarray


def check_file(path: str | Path, against: str | tuple[str, ...] | list[str] | None = None,
               dedup: bool = False, out_dedup: str | Path | None = None, tokenizer: str | None = None,
               exhaustive: bool = False, settings: CheckSettings = CheckSettings(),
               write_card: bool = True, cache: bool = True) -> CheckResult:
    """Check one JSONL dataset. `dedup` writes the kept records to `out_dedup` (default
    FILE.dedup.jsonl); the input is never modified. `cache` keeps record-window embeddings in
    FILE.embeddings.npz and eval passages' in the alignlab cache."""
    p = Path(path)
    suites = parse_suites(against)
    t: dict[str, float] = {}
    clock = time.perf_counter()

    def lap(name: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        t[name] = round(now - clock, 3)
        clock = now

    lines, recs = [], []
    for n, rec in iter_records(p):
        lines.append(n)
        recs.append(rec)
    if not recs:
        raise UserError("the dataset has no records", file=str(p))
    ids = [str(r.get("id") or f"line {n}") for n, r in zip(lines, recs)]
    texts = [record_text(r) for r in recs]
    flat, starts = concat_hashes(words(x) for x in texts)
    lap("read")

    st = settings
    need = tuple(dict.fromkeys((*suites, "core") if FATAL_SUITE in suites else suites))
    eval_suites = {s: _load_suite(s, st) for s in need}
    _drop_core_boilerplate(eval_suites)
    lap("eval_corpus")

    flags: dict[tuple[int, str, str], Flag] = {}
    hit_records: set[int] = set()
    g8, o8 = ngrams_concat(flat, starts, st.ngram)
    g13, o13 = ngrams_concat(flat, starts, st.long_ngram)
    n8 = np.bincount(o8, minlength=len(recs))
    for s in suites:
        es = eval_suites[s]
        for check, grams, owner, table, unit in (("8gram", g8, o8, es.table8, es.unit8),
                                                  ("13gram", g13, o13, es.table13, es.unit13)):
            hit = member(grams, table)
            counts = np.bincount(owner[hit], minlength=len(recs))
            score = counts / np.maximum(n8, 1) if check == "8gram" else counts.astype(float)
            limit = st.ngram_fraction if check == "8gram" else st.long_hits
            hit_records.update(np.nonzero(counts)[0].tolist())
            for i in np.nonzero((score >= limit) & (counts > 0))[0].tolist():
                a, b = np.searchsorted(owner, [i, i + 1])  # owner is in record order
                mine = grams[a:b][hit[a:b]]
                items = unit[np.searchsorted(table, mine)]
                best = int(np.bincount(items).argmax())
                flags[(i, s, check)] = Flag(ids[i], lines[i], s, check, round(float(score[i]), 4), es.units[best].item)
    lap("ngrams")

    # windows: record r has windows wstart[r] .. wstart[r+1]-1 over its normalised words
    lengths = np.diff(starts)
    nwin = np.where(lengths <= st.window_words, 1,
                    -(-(lengths - st.window_words) // st.window_stride) + 1)
    wstart = np.zeros(len(recs) + 1, dtype=np.int64)
    np.cumsum(nwin, out=wstart[1:])
    if exhaustive:
        contam_w = np.arange(wstart[-1])
    else:
        contam_w = _prefilter(flat, starts, wstart, eval_suites, suites, st)
        extra = [np.arange(wstart[i], wstart[i + 1]) for i in sorted(hit_records)]
        contam_w = np.unique(np.concatenate([contam_w, *extra])) if extra else contam_w
    # near-duplicates need window 0 of every record: bag-of-words proxies (MinHash, TF-IDF)
    # missed MiniLM >= 0.9 pairs or passed most records at 100k (benchmarks/README.md)
    exact_of = _exact_duplicates(texts)
    dup_recs = np.array([i for i in range(len(recs)) if i not in exact_of], dtype=np.int64)
    lap("prefilter")

    # Near-duplicates compare what differs between records: a system prompt shared by design
    # (one deployment's prompt across its episodes) would otherwise make every pair look alike.
    own_text = {i: record_text(recs[i], system=False) for i in dup_recs.tolist()
                if any(m.get("role") == "system" for m in recs[i].get("messages") or recs[i].get("prompt") or ())}
    plain_dup = np.array([i for i in dup_recs.tolist() if i not in own_text], dtype=np.int64)
    windows = np.unique(np.concatenate([contam_w, wstart[plain_dup]])).astype(np.int64)
    owner_of_w = np.searchsorted(wstart, windows, side="right") - 1
    wtexts = [_window_text(texts[r], int(w - wstart[r]), st) for w, r in zip(windows.tolist(), owner_of_w.tolist())]
    extra_owner = np.array(sorted(own_text), dtype=np.int64)
    wtexts += [_window_text(own_text[i], 0, st) for i in extra_owner.tolist()]
    vecs, fresh = embed_cached(wtexts, p.with_name(p.name + ".embeddings.npz") if cache else None, st.window_tokens)
    is_w0 = np.concatenate([np.isin(windows, wstart[plain_dup]), np.ones(len(extra_owner), dtype=bool)])
    owner_of_w = np.concatenate([owner_of_w, extra_owner]).astype(np.int64)
    lap("embed_records")

    from alignlab.models._prepare import cache_root

    passage_cache = cache_root() / "evalcorpus-embeddings.npz" if cache else None
    pvecs = {s: embed_cached(es.passages, passage_cache, st.window_tokens)[0] for s, es in eval_suites.items()}
    lap("embed_eval")

    cown = owner_of_w  # every embedded window is compared with the eval passages
    best = {s: _best_match(vecs, pvecs[s], st.block) for s in need}
    for s in suites:
        sim, arg = best[s]
        ok = sim >= st.embed_threshold
        if s == FATAL_SUITE:
            ok &= sim - best["core"][0] >= st.heldout_margin
        for k in np.nonzero(ok)[0].tolist():
            i = int(cown[k])
            key = (i, s, "embedding")
            if key not in flags or flags[key].score < sim[k]:
                unit = eval_suites[s].units[int(eval_suites[s].passage_unit[arg[k]])]
                flags[key] = Flag(ids[i], lines[i], s, "embedding", round(float(sim[k]), 4), unit.item)
    lap("contamination")

    order = np.argsort(owner_of_w[is_w0], kind="stable")  # window 0s in record order
    duplicates = _near_duplicates(vecs[is_w0][order], owner_of_w[is_w0][order], exact_of, ids, lines, st)
    lap("near_duplicates")

    flag_list = sorted(flags.values(), key=lambda f: (f.line, SUITES.index(f.suite), f.check))
    flagged = {s: len({f.line for f in flag_list if f.suite == s}) for s in suites}
    result = CheckResult(
        path=p, n_records=len(recs), suites=suites, flags=flag_list, flagged=flagged,
        duplicates=duplicates, settings=st, timings=t,
        embedded={"record_windows_total": int(wstart[-1]), "record_windows_embedded": len(windows),
                  "newly_embedded": fresh, "prefilter_windows": int(len(contam_w)),
                  "window0_for_dups": int(len(dup_recs)),
                  "eval_passages": int(sum(len(es.passages) for es in eval_suites.values()))},
    )
    result.card = _card.build_card(result, recs, texts, flat, starts, tokenizer, exhaustive)
    lap("card")
    if dedup:
        removed = {d.line for d in duplicates}
        result.dedup_path = Path(out_dedup) if out_dedup else p.with_name(_stem(p) + ".dedup.jsonl")
        if result.dedup_path.resolve() == p.resolve():
            raise UserError("the dedup output would overwrite the input", field="--out-dedup")
        result.kept = write_records(result.dedup_path, (r for n, r in zip(lines, recs) if n not in removed))
        lap("dedup_write")
    result.card["timings_s"] = t
    if write_card:
        result.card_md, result.card_json = _card.write_card(p, result.card)
    return result


def _stem(p: Path) -> str:
    return p.name[: -len(".jsonl")] if p.name.endswith(".jsonl") else p.name


# --- eval side ----------------------------------------------------------------------------


def _table(units: tuple[Unit, ...], n: int) -> tuple[np.ndarray, np.ndarray]:
    flat, starts = concat_hashes([words(u.text) for u in units])
    grams, owner = ngrams_concat(flat, starts, n)
    table, first = np.unique(grams, return_index=True)
    return table, owner[first]


def _load_suite(name: str, st: CheckSettings) -> _Suite:
    units = suite_units(name)
    t8, u8 = _table(units, st.ngram)
    t13, u13 = _table(units, st.long_ngram)
    passages, punit = [], []
    for k, u in enumerate(units):
        for w in range(_n_windows(len(words(u.text)), st)):
            passages.append(_window_text(u.text, w, st))
            punit.append(k)
    return _Suite(name, units, t8, u8, t13, u13, passages, np.array(punit, dtype=np.int64))


def _drop_core_boilerplate(suites: dict[str, _Suite]) -> None:
    """Held-out n-grams and passages that also occur in core are the harness's shared framing."""
    if FATAL_SUITE not in suites or "core" not in suites:
        return
    h, c = suites[FATAL_SUITE], suites["core"]
    for attr, uattr in (("table8", "unit8"), ("table13", "unit13")):
        keep = ~member(getattr(h, attr), getattr(c, attr))
        setattr(h, attr, getattr(h, attr)[keep])
        setattr(h, uattr, getattr(h, uattr)[keep])
    core_passages = set(c.passages)
    keep_p = [i for i, x in enumerate(h.passages) if x not in core_passages]
    h.passages = [h.passages[i] for i in keep_p]
    h.passage_unit = h.passage_unit[keep_p]


# --- windows ------------------------------------------------------------------------------


def _n_windows(n_words: int, st: CheckSettings) -> int:
    if n_words <= st.window_words:
        return 1
    return -(-(n_words - st.window_words) // st.window_stride) + 1


def _window_text(text: str, w: int, st: CheckSettings) -> str:
    """The raw text (original case and punctuation) spanning window w's words."""
    spans = [m.span() for m in _WORD.finditer(text)]
    if not spans:
        return text
    a = min(w * st.window_stride, len(spans) - 1)
    b = min(a + st.window_words, len(spans)) - 1
    return text[spans[a][0]:spans[b][1]]


def _prefilter(flat: np.ndarray, starts: np.ndarray, wstart: np.ndarray, suites: dict[str, _Suite],
               selected: tuple[str, ...], st: CheckSettings) -> np.ndarray:
    """Record windows sharing >= prefilter_terms distinctive words with one eval passage."""
    pieces = []
    for s in selected:
        es = suites[s]
        pw = [np.unique(word_hashes(words(t))) for t in es.passages]
        if not pw:
            continue
        allw = np.concatenate(pw)
        # document frequency over groups (scenarios, items): a scenario's conditions repeat its texts
        groups = np.array([es.units[u].group for u in es.passage_unit.tolist()])
        gid = np.unique(groups, return_inverse=True)[1]
        pairs = np.unique(np.stack([allw, np.repeat(gid, [len(x) for x in pw]).astype(np.uint64)]), axis=1)
        vocab, df = np.unique(pairs[0], return_counts=True)
        lim = max(2, int(st.distinct_df * (gid.max() + 1)))
        vocab = vocab[(df <= lim) & ~np.isin(vocab, _stop_hashes())]
        if len(vocab) == 0:
            continue
        rows = np.repeat(np.arange(len(pw)), [len(x) for x in pw])
        cols = np.searchsorted(vocab, allw)
        cols[cols == len(vocab)] = 0
        ok = vocab[cols] == allw
        P = sparse.csr_matrix((np.ones(ok.sum(), np.float32), (rows[ok], cols[ok])), shape=(len(pw), len(vocab)))
        # record side: each word position with a distinctive word -> the (<= 2) windows holding it
        c = np.searchsorted(vocab, flat)
        c[c == len(vocab)] = 0
        pos = np.nonzero(vocab[c] == flat)[0]
        if len(pos) == 0:
            continue
        rec = np.searchsorted(starts, pos, side="right") - 1
        # words common in this dataset are its own vocabulary, not a sign of copying
        rc = np.unique(rec * len(vocab) + c[pos])
        data_df = np.bincount(rc % len(vocab), minlength=len(vocab))
        rare = data_df[c[pos]] <= max(2, int(st.data_df * (len(starts) - 1)))
        pos, rec = pos[rare], rec[rare]
        if len(pos) == 0:
            continue
        j = pos - starts[rec]
        nw = wstart[rec + 1] - wstart[rec]
        k1 = np.minimum(j // st.window_stride, nw - 1)
        k0 = k1 - 1
        in0 = (k0 >= 0) & (j < k0 * st.window_stride + st.window_words)
        wr = np.concatenate([wstart[rec] + k1, (wstart[rec] + k0)[in0]])
        wc = np.concatenate([c[pos], c[pos][in0]])
        W = sparse.csr_matrix((np.ones(len(wr), np.float32), (wr, wc)), shape=(int(wstart[-1]), len(vocab)))
        W.data[:] = 1.0  # a word repeated in a window counts once
        touched = np.unique(wr)
        for a in range(0, len(touched), 20000):
            rows_ = touched[a:a + 20000]
            overlap = (W[rows_] @ P.T).tocsr()
            mx = overlap.max(axis=1).toarray().ravel()
            pieces.append(rows_[mx >= st.prefilter_terms])
    return np.unique(np.concatenate(pieces)) if pieces else np.zeros(0, np.int64)


_STOP = ("that this with from have will your about would there their what which when were been "
         "they them then than into could should also just like some more only other such very "
         "because before after where while being does here over these those most much many").split()


def _stop_hashes() -> np.ndarray:
    return word_hashes(_STOP)


def _exact_duplicates(texts: list[str]) -> dict[int, int]:
    """Record index -> index of the first record with identical text."""
    first: dict[bytes, int] = {}
    out: dict[int, int] = {}
    for i, x in enumerate(texts):
        h = hashlib.blake2b(x.encode(), digest_size=16).digest()
        if h in first:
            out[i] = first[h]
        else:
            first[h] = i
    return out


# --- similarity ---------------------------------------------------------------------------


def _best_match(a: np.ndarray, b: np.ndarray, block: int) -> tuple[np.ndarray, np.ndarray]:
    """For each row of a: the highest cosine to any row of b, and which."""
    if len(a) == 0 or len(b) == 0:
        return np.full(len(a), -1.0, np.float32), np.zeros(len(a), np.int64)
    sims, args = [], []
    for i in range(0, len(a), block):
        s = a[i:i + block] @ b.T
        k = s.argmax(axis=1)
        args.append(k)
        sims.append(s[np.arange(len(k)), k])
    return np.concatenate(sims), np.concatenate(args)


def _near_duplicates(v: np.ndarray, owner: np.ndarray, exact_of: dict[int, int], ids: list[str],
                     lines: list[int], st: CheckSettings) -> list[Duplicate]:
    """Greedy in file order: a record goes when an earlier *kept* record is within
    dup_threshold of its window 0 (it names the closest one); identical texts go whatever
    the embedding. `v` holds window-0 vectors of records `owner`, in file order."""
    removed: dict[int, Duplicate] = {}
    kept = np.empty_like(v)
    kept_owner = np.empty(len(v), dtype=np.int64)
    nk = 0
    blk = max(1, min(st.block, 2**27 // max(len(v), 1)))  # a block's similarities stay near 512 MB
    for a in range(0, len(v), blk):
        b = v[a:a + blk]
        if nk:
            s = b @ kept[:nk].T
            arg = s.argmax(axis=1)
            prev = s[np.arange(len(b)), arg]
        else:
            arg, prev = np.zeros(len(b), np.int64), np.full(len(b), -1.0, np.float32)
        inner = b @ b.T
        mine: list[int] = []  # rows of this block kept so far
        for r in range(len(b)):
            best_c, best_j = (float(prev[r]), int(kept_owner[arg[r]])) if prev[r] >= st.dup_threshold else (-1.0, -1)
            if mine:
                k = int(np.argmax(inner[r, mine]))
                if inner[r, mine[k]] >= st.dup_threshold and inner[r, mine[k]] > best_c:
                    best_c, best_j = float(inner[r, mine[k]]), int(owner[a + mine[k]])
            i = int(owner[a + r])
            if best_j >= 0:
                removed[i] = Duplicate(ids[i], lines[i], ids[best_j], round(min(best_c, 1.0), 4), False)
            else:
                mine.append(r)
        kept[nk:nk + len(mine)] = b[mine]
        kept_owner[nk:nk + len(mine)] = owner[a + np.array(mine, dtype=np.int64)]
        nk += len(mine)
    for i in sorted(exact_of):
        j = exact_of[i]
        kept_id = removed[j].duplicate_of if j in removed else ids[j]
        removed[i] = Duplicate(ids[i], lines[i], kept_id, 1.0, True)
    return [removed[i] for i in sorted(removed)]
