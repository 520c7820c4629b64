"""The Drain tree: online template mining with masking, sub-token parameters and a shape cache.

Drain (He et al., ICWS'17) routes a message by its token count and its first tokens to a leaf, and joins
the most similar cluster there or starts a new one. What this implementation adds, and why:

- Variables are masked in one compiled pass (`agent.masking`), and tokens split on the punctuation that
  glues keys to values, so `user=<*>`, `blk_<*>`-style and `/<*>:<*>` parameters sit *inside* tokens and
  a template renders like the original line. The rendered template with its parameters filled in is the
  original message, exactly (whitespace lives in per-cluster gaps, which are part of the length key).
- A cache from the masked shape of a line to its cluster skips tokenising and the tree for repeated
  shapes. An entry remembers the cluster's template version and is ignored once the template changes or
  the cluster is evicted, so the cache never answers with a stale template.
- Post-merge: runs of adjacent parameters render as one `<*>`, and clusters whose rendered templates are
  equal (they differ only in how many parameter tokens sit in a run) form one group, reported under the
  id of the cluster that first owned that template. That is how a message whose parameter list varies in
  length keeps one template id.
- Tree search backtracks to the `<*>` child when a literal child has no fitting cluster, so a cluster
  whose leading token became a parameter after it was placed is still found (Drain3 issue #48).
- Bounded: an LRU over clusters (ids are never reused), a token cap and a length cap whose overflow becomes
  a parameter (so even a truncated line round-trips), a bounded shape cache, and empty buckets are pruned.

Snapshot/restore and the versioned JSON format live in `agent.drain_state`.
"""

from __future__ import annotations

import enum
import hashlib
import json
import operator
import re
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from itertools import repeat
from pathlib import Path
from typing import Any, NamedTuple, cast

from agent.drain_fit import DIGITS_AS_ZERO, Fit, FitIndex, cutter, digit_free, spans_of
from agent.masking import GLUE, MASK_RE, VAR, WILD, tokenize
from agent.schema import opt
from agent.types import Cut


@dataclass(frozen=True, slots=True, kw_only=True)
class DrainConfig:
    sim_th: float = opt(0.75, ge=0.0, le=1.0, doc="Share of a message's tokens that must equal a cluster's template to join it.")
    depth: int = opt(5, ge=3, doc="Depth of the prefix tree (root, length layer, token layers, leaf), as in Drain3.")
    max_children: int = opt(100, ge=2, doc="Children per internal node.")
    max_clusters: int = opt(
        20_000, ge=1,
        doc="Clusters kept; the least recently used is evicted beyond. A cluster holds ~2.5 KB, so this bounds the "
        "tree at ~50 MB even on free text, where nearly every line makes one.",
    )
    max_tokens: int = opt(
        256, ge=2, doc="Tokens compared per message; the rest of a longer line becomes one final token."
    )
    max_message_chars: int = opt(
        16_384, ge=64, doc="Characters of a message that are masked and tokenised; the rest is one parameter."
    )
    cache_size: int = opt(
        20_000, ge=0,
        doc="Masked line shapes (and digit keys) remembered to skip the tree; each cache is cleared when full. A "
        "structured log needs a few thousand; free text makes one per line, at ~500 bytes each.",
    )
    seed: str | None = opt(
        None,
        doc="A Drain snapshot, or a model bundle folder holding drain.json, to start from when this input has no "
        "saved tree yet: template ids then mean what they meant when the bundle's model was trained.",
    )


class ChangeType(enum.Enum):
    CREATED = "created"
    UPDATED = "updated"
    NONE = "none"


class Match(NamedTuple):
    """Immutable, and a tuple so the fast paths build it with one C call (`_new_match`) instead of a
    Python `__init__`: that is a tenth of the cost of a line that fits a learned template."""

    cluster_id: int
    """The template group's id: stable, never reused, what template ids mean everywhere downstream."""
    template: str
    params: tuple[str, ...]
    change: ChangeType
    member_id: int = -1
    """The tree cluster the message joined; differs from `cluster_id` inside a post-merged group."""


class Deferred(NamedTuple):
    """A `Match` whose params may still be the cut that takes them out of the message (`add_deferred`)."""

    cluster_id: int
    template: str
    params: tuple[str, ...] | Cut
    change: ChangeType
    member_id: int = -1


_new_match = cast(Callable[[type[Match], tuple[int, str, tuple[str, ...], ChangeType, int]], Match], tuple.__new__)


class _Node:
    __slots__ = ("always", "children", "clusters", "index", "placed", "seen")

    def __init__(self) -> None:
        self.children: dict[str, _Node] = {}
        self.clusters: list[_Cluster] = []
        self.seen: list[set[str]] = []
        """Per token position of a leaf: distinct tokens its clusters were created with (capped)."""
        self.placed = 0
        """Clusters ever placed in this leaf: each cluster's `seq`, so candidates keep the leaf's order."""
        self.index: list[dict[str, _Cluster | list[_Cluster]]] | None = None
        """A leaf of `_INDEX_AT` clusters or more: per position, token → the cluster (or clusters) scored
        on that token there. A message can only join (or be near) a cluster it shares a scored token with,
        so only those are scored; lines that fit nothing (free text) no longer cost a comparison with every
        cluster. One cluster is held bare, not in a list: in free text nearly every token is unique."""
        self.always: list[_Cluster] = []
        """Clusters of an indexed leaf with no scored token at all: they score 0 against any message."""


class _Cluster:
    __slots__ = (
        "alive",
        "bucket",
        "count",
        "cuts",
        "digit_free",
        "display",
        "fit",
        "gaps",
        "glue_at",
        "glue_vals",
        "id",
        "key",
        "leaf",
        "pieces",
        "queued",
        "returned",
        "seq",
        "stored",
        "template",
        "tokens",
        "val_at",
        "val_vals",
        "version",
        "wilds",
        "word_at",
        "word_vals",
        "words",
    )

    def __init__(self, cid: int, tokens: list[str], gaps: list[str], bucket: str, template: str | None = None) -> None:
        self.id = cid
        self.tokens = tokens
        self.gaps = gaps
        self.bucket = bucket
        self.count = 0
        self.queued = 0
        self.stored = self.returned = 0
        """Digit keys a fit hit stored for this cluster, and how many of them came back (key admission)."""
        self.version = 0
        self.alive = True
        self.leaf: _Node | None = None
        self.template = self.key = self.display = ""
        self.words = self.wilds = 0
        self.fit: Fit | None = None
        self.pieces: tuple[str, ...] = ()
        self.digit_free = False
        self.cuts: dict[tuple[tuple[int, int], ...], _Key] = {}
        self.word_at = self.glue_at = self.val_at = _NOTHING
        self.word_vals: tuple[str, ...] = ()
        self.val_vals: tuple[str, ...] = ()
        self.glue_vals: tuple[str, ...] = ()
        self.seq = 0
        self.set_template(render(tokens, gaps)[0] if template is None else template)

    def set_template(self, template: str) -> None:
        """The group key ignores how much whitespace separates words and reads an empty bracket or quote
        pair as an empty parameter, so padding or a missing value never splits a group."""
        self.template = self.display = template
        self.cuts = {}
        self.pieces = tuple(template.split("<*>"))
        self.digit_free = digit_free(self.pieces)
        self.key = _EMPTY_PAIR.sub(lambda m: m.group()[0] + "<*>" + m.group()[1], " ".join(template.split()))
        words = [i for i, t in enumerate(self.tokens) if t not in _GLUE_TOKENS and not _ROUTE_AS_PARAM(t)]
        glue = [i for i, t in enumerate(self.tokens) if t in _GLUE_TOKENS]
        vals = [i for i, t in enumerate(self.tokens) if VAR in t and WILD not in t]
        self.words = len(words)
        self.val_at, self.val_vals = _picker(vals), tuple(self.tokens[i] for i in vals)
        self.wilds = self.tokens.count(WILD)
        self.word_at, self.word_vals = _picker(words), tuple(self.tokens[i] for i in words)
        self.glue_at, self.glue_vals = _picker(glue), tuple(self.tokens[i] for i in glue)


def _nothing(tokens: list[str]) -> tuple[str, ...]:
    return ()


_NOTHING: Callable[[list[str]], tuple[str, ...]] = _nothing


def _picker(idx: list[int]) -> Callable[[list[str]], tuple[str, ...]]:
    """A C-level getter of the tokens at `idx`, always as a tuple (itemgetter unwraps a single index)."""
    if not idx:
        return _NOTHING
    if len(idx) == 1:
        return operator.itemgetter(slice(idx[0], idx[0] + 1))
    return operator.itemgetter(*idx)


_INDEX_AT = 32
"""Clusters in a leaf from which its scored tokens are indexed; below, scoring them all costs less."""
_SEQ = operator.attrgetter("seq")


def _scored(tokens: list[str]) -> list[int]:
    """Positions the similarity compares (`set_template`'s words, glue and masked values)."""
    return [i for i, t in enumerate(tokens)
            if t in _GLUE_TOKENS or not _ROUTE_AS_PARAM(t) or (VAR in t and WILD not in t)]


def _index(leaf: _Node, c: _Cluster) -> None:
    index = leaf.index
    assert index is not None
    positions = _scored(c.tokens)
    if not positions:
        leaf.always.append(c)
        return
    for i in positions:
        slot, tok = index[i], c.tokens[i]
        have = slot.get(tok)
        if have is None:
            slot[tok] = c
        elif isinstance(have, list):
            have.append(c)
        else:
            slot[tok] = [have, c]


def _unindex(leaf: _Node, c: _Cluster) -> None:
    """Undo `_index` of `c` (call it before its tokens change)."""
    index = leaf.index
    assert index is not None
    positions = _scored(c.tokens)
    if not positions:
        leaf.always.remove(c)
        return
    for i in positions:
        slot, tok = index[i], c.tokens[i]
        have = slot[tok]
        if isinstance(have, list):
            have.remove(c)
            if len(have) == 1:
                slot[tok] = have[0]
        else:
            del slot[tok]


def _candidates(leaves: list[_Node], tokens: list[str]) -> Iterator[_Cluster]:
    """The clusters of `leaves` a message could join, in the order a scan of every cluster meets them: all
    of a small leaf; of an indexed one, those sharing a scored token with the message (plus the ones with
    none), in the leaf's order — so ties are broken exactly as by scanning them all."""
    for leaf in leaves:
        index = leaf.index
        if index is None:
            yield from leaf.clusters
            continue
        found: set[_Cluster] = set(leaf.always)
        for slot, tok in zip(index, tokens, strict=True):
            have = slot.get(tok)
            if isinstance(have, list):
                found.update(have)
            elif have is not None:
                found.add(have)
        yield from sorted(found, key=_SEQ)


class _Entry:
    __slots__ = ("cluster", "plan", "version")

    def __init__(self, cluster: _Cluster, version: int, plan: Plan | None) -> None:
        self.cluster = cluster
        self.version = version
        self.plan = plan


class _Key:
    __slots__ = ("cluster", "cut", "version")

    def __init__(self, cluster: _Cluster, cut: Cut) -> None:
        self.cluster = cluster
        self.version = cluster.version
        self.cut = cut


class _Stats:
    __slots__ = (
        "cache_hits", "created", "evicted", "fit_hits", "lines", "replaced_control", "tree_lines",
        "truncated_lines", "truncated_tokens", "updated",
    )

    def __init__(self) -> None:
        self.lines = 0
        self.tree_lines = 0
        self.fit_hits = 0
        self.cache_hits = 0
        self.created = 0
        self.updated = 0
        self.evicted = 0
        self.truncated_lines = 0
        self.truncated_tokens = 0
        self.replaced_control = 0


Recipe = int | tuple[str | int, ...]
"""One parameter: a value index, or literal text and value indexes to concatenate."""
Plan = tuple[Recipe, ...]

_EMPTY_PAIR = re.compile(r"\(\)|\[\]|\{\}|''|\"\"")
_ROUTE_AS_WILD = re.compile(r"[\d\x00\x01]").search
_ROUTE_AS_PARAM = re.compile(r"[\x00\x01]").search
_GLUE_TOKENS = frozenset(GLUE)
_VALUE_WEIGHT = 0.5
_VARIED = 6
_WILD_KEY = WILD
_GAP_SEP = "\x02"
_NONE = ChangeType.NONE
_NO_FITS: list[Fit] = []
_CUTS_PER_CLUSTER = 16
_ADMIT_FREELY = 64
_ADMIT_RETURN_SHARE = 8
_ADMIT_SAMPLE = 16
"""Key admission: a cluster's first 64 fit-answered keys are cached; after that only while more than one in
8 of them came back, else one in 16 (so a template whose values turn repetitive is noticed again). A
template whose values never repeat (request ids, hashes, names) then stops filling the cache with keys
that cost memory and an insert and are never looked up again."""


def render(tokens: list[str], gaps: list[str], message: list[str] | None = None) -> tuple[str, Plan | None]:
    """The template text (adjacent parameters collapsed into one `<*>`) and, given a message's tokens,
    how its parameters are built from the masked values: None means "the values, in order"."""
    out: list[str] = []
    recipes: list[list[str | int]] = []
    since = ""
    have_param = False
    var = 0
    msg = message if message is not None else tokens
    for i, tok in enumerate(tokens):
        since += gaps[i]
        if tok == WILD:
            pieces: list[str | int] = []
            for k, part in enumerate(msg[i].split(VAR)):
                if k:
                    pieces.append(var)
                    var += 1
                if part:
                    pieces.append(part)
            params = [pieces]
            literals = ["", ""]
        else:
            literals = tok.split(VAR)
            params = []
            for _ in range(len(literals) - 1):
                params.append([var])
                var += 1
        for k, p in enumerate(params):
            since += literals[k]
            if have_param and (not since or since.isspace()):
                recipes[-1].append(since)
                recipes[-1].extend(p)
            else:
                out.append(since)
                out.append("<*>")
                recipes.append(p)
                have_param = True
            since = ""
        since += literals[-1]
    since += gaps[len(tokens)]
    out.append(since)
    text = "".join(out)
    if message is None:
        return text, None
    if len(recipes) == var and all(len(r) == 1 and r[0] == i for i, r in enumerate(recipes)):
        return text, None
    plan: list[Recipe] = []
    for r in recipes:
        if len(r) == 1 and isinstance(r[0], int):
            plan.append(r[0])
        else:
            plan.append(tuple(x for x in r if x != ""))
    return text, tuple(plan)


def _stars_as_values(parts: list[str]) -> list[str]:
    """A literal `<*>` in a message becomes a value, so a template's `<*>` always means a parameter."""
    out: list[str] = []
    for i, part in enumerate(parts):
        if i % 2 or "<*>" not in part:
            out.append(part)
            continue
        pieces = part.split("<*>")
        out.append(pieces[0])
        for piece in pieces[1:]:
            out += ["<*>", piece]
    return out


def _fill(plan: Plan, values: list[str]) -> tuple[str, ...]:
    out = []
    for r in plan:
        if isinstance(r, int):
            out.append(values[r])
        else:
            out.append("".join(values[x] if isinstance(x, int) else x for x in r))
    return tuple(out)


class Drain:
    """One Drain tree; not thread-safe (one instance per input, driven by its parse stage)."""

    def __init__(self, config: DrainConfig = DrainConfig()) -> None:
        self.config = config
        self._layers = config.depth - 3
        self._root: dict[str, _Node] = {}
        self._buckets: dict[str, list[_Cluster]] = {}
        self._lru: OrderedDict[int, _Cluster] = OrderedDict()
        self._owners: dict[str, _Cluster] = {}
        self._cache: dict[str, _Entry] = {}
        self._keys: dict[bytes, _Key | Fit] = {}
        self._key_room = config.cache_size
        self._fits = FitIndex()
        self._next_id = 1
        self._cap = config.max_message_chars
        self.counters = _Stats()

    # ---------------------------------------------------------------------------------------- hot path

    def _prepare(self, message: str) -> tuple[str, list[str]]:
        """The masked shape and the values cut out of it."""
        st = self.counters
        if VAR in message or WILD in message:
            message = message.replace(VAR, "\ufffd").replace(WILD, "\ufffd")
            st.replaced_control += 1
        cap = self.config.max_message_chars
        if len(message) > cap:
            st.truncated_lines += 1
            parts = MASK_RE.split(message[:cap])
            parts.append(message[cap:])
            parts.append("")
        else:
            parts = MASK_RE.split(message)
        if "<*>" in message:
            parts = _stars_as_values(parts)
        return VAR.join(parts[0::2]), parts[1::2]

    def add(self, message: str) -> Match:
        """Learn from one message and return its group, final-for-now template and parameters."""
        if len(message) > self._cap:
            self.counters.lines += 1
            return self._learn(message, None)
        hit = self._keys.get(message.encode("utf-8", "surrogatepass").translate(DIGITS_AS_ZERO))
        if hit is not None and hit.__class__ is _Key and hit.cluster.version == hit.version:
            c = hit.cluster  # the commonest case without the batch's setup
            c.count += 1
            self.counters.lines += 1
            owner = self._owners.get(c.key) or self._claim(c)
            return _new_match(Match, (owner.id, c.template, hit.cut(message), _NONE, c.id))
        return self._add_fitting((message,), defer=False)[0]

    def add_many(self, messages: Iterable[str]) -> list[Match]:
        """`add` for a batch, as the parse stage feeds it: the fast paths run inline with their state
        bound once, and the digit keys and their lookups are computed by C-level maps, which is most of
        the cost of a line that fits a learned template."""
        batch = messages if isinstance(messages, list | tuple) else list(messages)
        if batch and max(map(len, batch)) > self._cap:  # rare: over-long lines skip the fast paths
            return [self.add(m) for m in batch]
        return self._add_fitting(batch, defer=False)

    def add_deferred(self, messages: list[str]) -> list[Deferred]:
        """`add_many` that leaves the params of a line the key cache answers as the cut to apply to its
        message (`Record.params` applies it when read): most lines' params are never read, and cutting them
        all cost the live daemon a tenth of its CPU."""
        if messages and max(map(len, messages)) > self._cap:
            return cast(list[Deferred], [self.add(m) for m in messages])
        return cast(list[Deferred], self._add_fitting(messages, defer=True))

    def _add_fitting(self, batch: Sequence[str], *, defer: bool) -> list[Match]:
        """`add_many` for lines no longer than `max_message_chars`; with `defer`, a key hit's params are its
        cut (so the list holds `Deferred` values: `add_deferred` says so)."""
        st = self.counters
        keys = self._keys
        owners = self._owners.get
        first_word = self._fits.by_first_word.get
        find = self._fits.find
        room = self._key_room
        new = _new_match
        out: list[Match] = []
        append = out.append
        fits = 0
        encoded = map(str.encode, batch, repeat("utf-8"), repeat("surrogatepass"))
        digit_keys = list(map(bytes.translate, encoded, repeat(DIGITS_AS_ZERO)))
        # Lazy: each lookup runs when its line comes up, so it sees what the lines before it stored.
        for message, key, hit in zip(batch, digit_keys, map(keys.get, digit_keys), strict=True):
            if hit is not None and hit.cluster.version == hit.version:
                c = hit.cluster
                if hit.__class__ is Fit:
                    m = hit.regex.fullmatch(message)
                    if m is None:
                        params = None
                    else:
                        params = m.groups()
                        c.returned += 1
                        if c.digit_free:  # the key came back: from now on cut it at fixed offsets
                            cut = self._key_for(c, m.regs[1:], one_off=False)
                            if cut is not None:
                                keys[key] = cut
                elif defer:
                    params = hit.cut  # type: ignore[union-attr,assignment]  # applied by Record.params
                else:
                    params = hit.cut(message)  # type: ignore[union-attr]
                if params is not None:
                    c.count += 1
                    append(new(Match, ((owners(c.key) or self._claim(c)).id, c.template, params, _NONE, c.id)))
                    continue
            fit = None
            word = message.partition(" ")[0]  # leading whitespace gives "", which find() then retries
            for cand in first_word(word, _NO_FITS):
                m = cand.regex.fullmatch(message)
                if m is not None and cand.version == cand.cluster.version:
                    fit = cand
                    break
            else:
                found = find(message, tried=word)
                if found is not None:
                    fit, m = found
            if fit is not None and m is not None:
                c = fit.cluster
                fits += 1
                c.count += 1
                stored = c.stored
                if stored < _ADMIT_FREELY or c.returned * _ADMIT_RETURN_SHARE > stored or not stored % _ADMIT_SAMPLE:
                    c.stored = stored + 1
                    if len(keys) >= room:
                        keys.clear()
                    keys[key] = fit  # nothing kept per line but the key's bytes; the regex verifies a hit
                else:
                    c.stored = stored + 1  # counted, so every _ADMIT_SAMPLE-th key still gets a chance
                append(new(Match, ((owners(c.key) or self._claim(c)).id, c.template, m.groups(), _NONE, c.id)))
                continue
            append(self._learn(message, key))
        st.fit_hits += fits
        st.lines += len(out)
        return out

    def _learn(self, message: str, key: bytes | None) -> Match:
        """Masking, the shape cache and the tree: a line no fast path could answer."""
        st = self.counters
        st.tree_lines += 1
        replaced = st.replaced_control
        shape, values = self._prepare(message)
        entry = self._cache.get(shape)
        if entry is not None and entry.cluster.version == entry.version:
            c = entry.cluster
            st.cache_hits += 1
            plan = entry.plan
            change = _NONE
        else:
            tokens, gaps, truncated = tokenize(shape, self.config.max_tokens)
            if truncated:
                st.truncated_tokens += 1
            bucket = _GAP_SEP.join(gaps)
            found_c = self._best(bucket, tokens, exact=False)
            if found_c is None:
                text, plan = render(tokens, gaps, tokens)  # the text does not depend on the message
                c = self._create(tokens, gaps, bucket, text)
                change = ChangeType.CREATED
            else:
                c = found_c
                change = self._merge(c, tokens)
                plan = render(c.tokens, c.gaps, tokens)[1]
            self._remember(shape, c, plan)
        c.count += 1
        c.queued = c.count
        self._lru.move_to_end(c.id)
        params = tuple(values) if plan is None else _fill(plan, values)
        if key is not None and c.digit_free and replaced == st.replaced_control:
            self._remember_key(key, message, c, spans_of(c.pieces, params))
        if c.fit is None and c.count >= 2 and key is not None:
            c.fit = self._fits.add(c)
        owner = self._claim(c)
        return Match(owner.id, c.template, params, change, c.id)

    def _remember_key(self, key: bytes, message: str, c: _Cluster, spans: list[tuple[int, int]]) -> None:
        """The key answers with the cluster's fit when that fits this line, else with the line's own cut
        (a fit stricter than masking would otherwise send every line of this key back to the tree)."""
        if len(self._keys) >= self._key_room:
            self._keys.clear()  # a full cache starts over: the fits still answer meanwhile
            if self._key_room == 0:
                return
        fit = c.fit
        if fit is not None and fit.version == c.version and fit.regex.fullmatch(message) is not None:
            self._keys[key] = fit
        else:
            self._keys[key] = self._key_for(c, tuple(spans), one_off=True) or _Key(c, cutter(spans))

    def _key_for(self, c: _Cluster, spans: tuple[tuple[int, int], ...], *, one_off: bool) -> _Key | None:
        """One shared cut per layout of a cluster's values (few: a key fixes every value's length), so a
        cached key costs no allocation of its own. A cluster with many layouts gets a one-off cut when
        asked, else None: its keys keep answering through the fit."""
        k = c.cuts.get(spans)
        if k is not None and k.version == c.version:
            return k
        if len(c.cuts) >= _CUTS_PER_CLUSTER:
            return _Key(c, cutter(spans)) if one_off else None
        k = c.cuts[spans] = _Key(c, cutter(spans))
        return k

    def match(self, message: str) -> Match | None:
        """The group a message belongs to without learning: the tree, counts and recency stay unchanged."""
        if len(message) <= self._cap:
            hit = self._keys.get(message.encode("utf-8", "surrogatepass").translate(DIGITS_AS_ZERO))
            if hit is not None and hit.cluster.version == hit.version and hit.__class__ is _Key:
                k = hit.cluster
                return Match(self._owners.get(k.key, k).id, k.template, hit.cut(message), _NONE, k.id)
            fitted = self._fits.find(message)
            if fitted is not None:
                f = fitted[0].cluster
                return Match(self._owners.get(f.key, f).id, f.template, fitted[1].groups(), _NONE, f.id)
        shape, values = self._prepare(message)
        entry = self._cache.get(shape)
        c: _Cluster
        if entry is not None and entry.cluster.version == entry.version:
            c = entry.cluster
            plan = entry.plan
        else:
            tokens, gaps, _ = tokenize(shape, self.config.max_tokens)
            bucket = _GAP_SEP.join(gaps)
            found = self._best(bucket, tokens, exact=True)
            if found is None:
                return None
            c = found
            plan = render(c.tokens, c.gaps, tokens)[1]
        owner = self._owners.get(c.key, c)
        return Match(owner.id, c.template, tuple(values) if plan is None else _fill(plan, values),
                     ChangeType.NONE, c.id)

    # ---------------------------------------------------------------------------------------- the tree

    def _best(self, bucket: str, tokens: list[str], *, exact: bool) -> _Cluster | None:
        node = self._root.get(bucket)
        if node is None:
            return None
        leaves = [node]
        for i in range(min(self._layers, len(tokens))):
            nxt = []
            tok = tokens[i]
            for leaf in leaves:
                child = leaf.children.get(tok)
                if child is not None:
                    nxt.append(child)
                wild = leaf.children.get(_WILD_KEY)
                if wild is not None and wild is not child:
                    nxt.append(wild)
            if not nxt:
                break
            leaves = nxt
        best = self._scan(_candidates(leaves, tokens) if not exact else (c for leaf in leaves for c in leaf.clusters),
                          tokens, exact)
        if best is None and exact:
            # A cluster placed under a literal child before its leading token became a parameter.
            best = self._scan(iter(self._buckets.get(bucket, ())), tokens, exact)
        return best

    def _scan(self, clusters: Iterator[_Cluster], tokens: list[str], exact: bool) -> _Cluster | None:
        """Most similar cluster (ties: more parameters, as Drain3).

        Similarity counts only the template's literal words: a position that is already a parameter (or
        holds a masked value) is free, and glue punctuation counts only when it differs. Unmasked
        parameter words (names, ids made of letters) then cost one word each instead of diluting every
        comparison, so one threshold fits short and long messages alike."""
        if exact:
            for c in clusters:
                if all(t in (m, WILD) for t, m in zip(c.tokens, tokens, strict=True)):
                    return c
            return None
        slack = 1.0 - self.config.sim_th
        best: _Cluster | None = None
        best_score = 2.0
        best_params = -1
        near: _Cluster | None = None
        near_score = 2.0
        eq = operator.eq
        for c in clusters:
            words: float = c.words
            miss: float = words - sum(map(eq, c.word_at(tokens), c.word_vals))
            if c.val_vals:
                n = len(c.val_vals)
                miss += _VALUE_WEIGHT * (n - sum(map(eq, c.val_at(tokens), c.val_vals)))
                words += _VALUE_WEIGHT * n
            if c.glue_vals:
                got = c.glue_at(tokens)
                if got != c.glue_vals:
                    wrong = len(got) - sum(map(eq, got, c.glue_vals))
                    miss += wrong
                    words += wrong
            score = miss / words if words else 0.0
            if score > slack:
                if score < near_score:
                    near, near_score = c, score
                continue
            if score < best_score or (score == best_score and c.wilds > best_params):
                best, best_score, best_params = c, score, c.wilds
        if best is None and near is not None and self._differs_only_where_varied(near, tokens):
            return near
        return best

    @staticmethod
    def _differs_only_where_varied(c: _Cluster, tokens: list[str]) -> bool:
        """True when every word of `c` that differs from the message sits at a position where the leaf's
        clusters already began with many different words: there the leaf has shown it is a parameter
        (user names, host names, words of a date), so the message joins instead of opening yet another
        near-copy. Drain alone would need a low threshold for that, which merges real templates too."""
        leaf = c.leaf
        if leaf is None or len(leaf.clusters) < _VARIED:
            return False
        seen = leaf.seen
        differ = 0
        for i, (t, m) in enumerate(zip(c.tokens, tokens, strict=True)):
            if t != m and t != WILD:
                if len(seen[i]) < _VARIED:
                    return False
                differ += 1
        return differ * 2 <= c.words + len(c.val_vals)

    def _create(self, tokens: list[str], gaps: list[str], bucket: str, template: str) -> _Cluster:
        if len(self._lru) >= self.config.max_clusters:
            self._evict_oldest()
        c = _Cluster(self._next_id, tokens, gaps, bucket, template)
        self._next_id += 1
        self._place(c)
        self.counters.created += 1
        return c

    def _place(self, c: _Cluster) -> None:
        node = self._root.get(c.bucket)
        if node is None:
            node = self._root[c.bucket] = _Node()
            self._buckets[c.bucket] = []
        self._buckets[c.bucket].append(c)
        limit = self.config.max_children
        for i in range(min(self._layers, len(c.tokens))):
            tok = c.tokens[i]
            key = _WILD_KEY if _ROUTE_AS_WILD(tok) else tok
            child = node.children.get(key)
            if child is None:
                if key != _WILD_KEY and len(node.children) >= limit - 1:
                    key = _WILD_KEY
                    child = node.children.get(key)
                if child is None:
                    child = node.children[key] = _Node()
            node = child
        node.clusters.append(c)
        c.leaf = node
        c.seq = node.placed
        node.placed += 1
        if node.index is not None:
            _index(node, c)
        elif len(node.clusters) >= _INDEX_AT:
            node.index = [{} for _ in c.tokens]  # a leaf's clusters all have its bucket's token count
            for member in node.clusters:
                _index(node, member)
        if not node.seen:
            node.seen = [set() for _ in c.tokens]
        for seen, tok in zip(node.seen, c.tokens, strict=True):
            if len(seen) < _VARIED:
                seen.add(tok)
        self._lru[c.id] = c

    def _merge(self, c: _Cluster, tokens: list[str]) -> ChangeType:
        old = c.tokens
        if old == tokens:
            return ChangeType.NONE
        new = [t if t == m else WILD for t, m in zip(old, tokens, strict=True)]
        if new == old:
            return ChangeType.NONE
        if self._owners.get(c.key) is c:
            del self._owners[c.key]
        indexed = c.leaf if c.leaf is not None and c.leaf.index is not None else None
        if indexed is not None:
            _unindex(indexed, c)  # under the tokens it was indexed with
        c.tokens = new
        c.version += 1
        if c.fit is not None:
            self._fits.remove(c.fit)
            c.fit = None
        c.set_template(render(new, c.gaps)[0])
        if indexed is not None:
            _index(indexed, c)
        self.counters.updated += 1
        return ChangeType.UPDATED

    def _claim(self, c: _Cluster) -> _Cluster:
        owner = self._owners.get(c.key)
        if owner is None:
            owner = self._owners[c.key] = c
        elif owner is not c and c.template.count("<*>") > owner.display.count("<*>"):
            owner.display = c.template  # the group reads as its most general member
        return owner

    def _remember(self, shape: str, c: _Cluster, plan: Plan | None) -> None:
        size = self.config.cache_size
        if size == 0:
            return
        if len(self._cache) >= size:
            self._cache.clear()
        self._cache[shape] = _Entry(c, c.version, plan)

    def _evict_oldest(self) -> None:
        """Second chance: a cluster used (by a fast path) since it was queued goes to the back once more,
        so the fast paths only stamp `last` instead of moving the cluster in the LRU on every line."""
        lru = self._lru
        while True:
            cid, c = lru.popitem(last=False)
            if c.count <= c.queued:
                break
            c.queued = c.count
            lru[cid] = c
        c.alive = False
        c.version = -1
        if c.fit is not None:
            self._fits.remove(c.fit)
            c.fit = None
        if c.leaf is not None:
            if c.leaf.index is not None:
                _unindex(c.leaf, c)
            c.leaf.clusters.remove(c)
        members = self._buckets[c.bucket]
        members.remove(c)
        if not members:
            del self._buckets[c.bucket]
            del self._root[c.bucket]
        if self._owners.get(c.key) is c:
            del self._owners[c.key]
        self.counters.evicted += 1

    # ---------------------------------------------------------------------------------------- queries

    def template(self, cluster_id: int) -> str:
        """Current template of a live cluster; KeyError when the id is unknown or was evicted."""
        return self._lru[cluster_id].display

    def resolve(self, cluster_id: int) -> int:
        """The group id a (member) cluster belongs to now; KeyError when it is gone."""
        c = self._lru[cluster_id]
        return self._claim(c).id

    def clusters(self) -> Iterator[tuple[int, str, int]]:
        """(group id, template, count) per template group, counts summed over the group's members."""
        counts: dict[int, int] = {}
        owners: dict[int, _Cluster] = {}
        for c in sorted(self._lru.values(), key=lambda c: c.id):
            owner = self._claim(c)
            owners[owner.id] = owner
            counts[owner.id] = counts.get(owner.id, 0) + c.count
        for cid in sorted(owners):
            yield cid, owners[cid].display, counts[cid]

    def extract(self, cluster_id: int, message: str) -> tuple[str, ...] | None:
        """Parameters of `message` against a cluster's current template, or None when it does not fit."""
        c = self._lru.get(cluster_id)
        if c is None:
            return None
        m = self.match(message)
        if m is not None and m.template == c.display:
            return m.params
        pattern = "(.*?)".join(re.escape(p) for p in c.display.split("<*>"))
        found = re.fullmatch(pattern, message, re.DOTALL)
        return found.groups() if found is not None else None

    def vocabulary_hash(self) -> str:
        """sha256 over the sorted (id, template) pairs: model bundles pin the meaning of template ids."""
        pairs = sorted((c.id, c.display) for c in self._lru.values())
        return hashlib.sha256(json.dumps(pairs, ensure_ascii=False).encode()).hexdigest()

    def stats(self) -> dict[str, float]:
        st = self.counters
        return {
            "clusters": float(len(self._lru)),
            "templates": float(len({c.template for c in self._lru.values()})),
            "lines": float(st.lines),
            "cache_hits": float(st.cache_hits),
            "key_hits": float(st.lines - st.fit_hits - st.tree_lines),
            "fit_hits": float(st.fit_hits),
            "fits": float(self._fits.size),
            "key_cache_size": float(len(self._keys)),
            "cache_size": float(len(self._cache)),
            "created": float(st.created),
            "updated": float(st.updated),
            "evicted": float(st.evicted),
            "truncated_lines": float(st.truncated_lines),
            "truncated_tokens": float(st.truncated_tokens),
            "replaced_control": float(st.replaced_control),
        }

    # ---------------------------------------------------------------------------------------- state

    def snapshot(self) -> dict[str, Any]:
        from agent.drain_state import snapshot

        return snapshot(self)

    @classmethod
    def from_snapshot(cls, doc: dict[str, Any], config: DrainConfig = DrainConfig()) -> Drain:
        from agent.drain_state import restore

        return restore(cls(config), doc, "<snapshot>")

    def save(self, path: Path) -> None:
        from agent.drain_state import save

        save(self, path)

    @classmethod
    def load(cls, path: Path, config: DrainConfig = DrainConfig()) -> Drain:
        from agent.drain_state import load

        return load(cls(config), path)
