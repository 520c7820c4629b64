"""Fast paths in front of the Drain tree: most lines of a running service fit a template already learned.

Masking, tokenising and the tree cost tens of microseconds per line in Python; a daemon that keeps up
with a busy host must answer the common case with a few C-level calls. Two read-only paths do that, and
both return the cluster the tree would return and parameters taken straight from the raw message as
slices, so the template filled with them is the message, exactly:

- **The digit key.** A message's UTF-8 bytes with every ASCII digit turned into `0` (one
  `bytes.translate`). Masking only looks at whether a character is a digit, never at which digit, so two
  messages with the same key mask alike and their values sit at the same offsets: the key remembers the
  cluster and the slices. It is kept only for templates whose literal text holds no digit (otherwise a
  digit that differs would be a literal that differs).
- **The template fit.** Each cluster that has taken at least two lines gets one compiled regex of its
  template: literal text escaped, each `<*>` one group of non-space characters that stops at the next
  literal character (it may hold that character where the rest of the literal's word does not follow). Candidates are found by the first literal words of the message (position 0, 1 or
  2 of `str.split`), most specific template first; `fullmatch` both decides and extracts. A template
  made only of parameters gets no regex: it would swallow every line of its length. A digit key that
  comes back after a fit answered it is cut at fixed offsets from then on (no regex at all).

Anything that misses both goes through masking and the tree, which learns; the caller then refreshes
the fast paths for the cluster it chose.
"""

from __future__ import annotations

import _sre  # type: ignore[import-not-found]
import operator
import re
from collections.abc import Sequence
from itertools import starmap
from re import _compiler, _constants, _parser  # type: ignore[attr-defined]
from typing import TYPE_CHECKING, Any

from agent.masking import VAR, WILD
from agent.types import Cut

if TYPE_CHECKING:
    from agent.drain import _Cluster

DIGITS_AS_ZERO = bytes.maketrans(b"0123456789", b"0000000000")
_HAS_DIGIT = re.compile(r"[0-9]").search
INDEXED_WORDS = 3
"""Word positions of a message looked up for candidates; a template with parameters in all of them is
kept in one shared list instead."""
CANDIDATES_PER_KEY = 32
"""Templates tried per looked-up word: a flood of near-identical new templates cannot make every line
try them all (the rest still reach the tree)."""

_SPECIAL = {ord(ch): "\\" + ch for ch in "\\.^$*+?{}[]|()"}


def _escape(text: str) -> str:
    """`re.escape` for a pattern compiled without VERBOSE: leaves spaces and most punctuation alone,
    which makes compiling a template's regex (Python-level parsing, per character) a third cheaper."""
    return text.translate(_SPECIAL)


def _none(message: str) -> tuple[str, ...]:
    return ()


def cutter(spans: Sequence[tuple[int, int]]) -> Cut:
    """The parameters of a message as slices at fixed offsets, in one C-level call when there are several."""
    if len(spans) > 1:
        return operator.itemgetter(*starmap(slice, spans))
    if not spans:
        return _none
    a, b = spans[0]
    return lambda message: (message[a:b],)


def spans_of(pieces: tuple[str, ...], params: tuple[str, ...]) -> list[tuple[int, int]]:
    """Offsets of each parameter in the message that `pieces` (the template's literal text around each
    `<*>`) filled with `params` spells."""
    out = []
    pos = len(pieces[0])
    for value, after in zip(params, pieces[1:], strict=True):
        end = pos + len(value)
        out.append((pos, end))
        pos = end + len(after)
    return out


def digit_free(pieces: tuple[str, ...]) -> bool:
    return not any(_HAS_DIGIT(p) for p in pieces)


class Fit:
    __slots__ = ("bucket", "cluster", "regex", "specific", "version")

    def __init__(self, cluster: _Cluster, regex: re.Pattern[str], specific: int) -> None:
        self.cluster = cluster
        self.version = cluster.version
        self.regex = regex
        self.specific = specific
        self.bucket: list[Fit] = []


def _value(after: str) -> str:
    """One value: non-space characters up to the literal that follows. The value may hold that literal's
    first character where the rest of the literal's word does not follow (`10.0.0.1:50010:Got` against
    `<*>:Got`: masking keeps an address with its port as one value), so such lines fit instead of paying
    for the tree on every line; possessive runs keep a failing match linear."""
    if not after or after[0].isspace():
        return "\\S+"
    stop = re.escape(after[0])
    word = after[1:].split(None, 1)[0] if after[1:2].strip() else ""
    if not word:
        return f"[^\\s{stop}]+"
    return f"(?:[^\\s{stop}]++|{stop}(?!{re.escape(word)}))+"


_OPEN, _CLOSE, _LIT, _VAL = ("(", ""), (")", ""), "lit", "val"
Op = tuple[str, str]
"""`_OPEN`, `_CLOSE`, (`_LIT`, literal text) or (`_VAL`, the literal text that follows the value)."""
Ops = tuple[Op, ...]


def source(ops: Ops) -> str:
    """The regex source of a fit."""
    return "".join(
        kind if kind in ("(", ")") else _escape(text) if kind == _LIT else _value(text) for kind, text in ops
    )


_VALUE_ITEMS: dict[str, list[Any]] = {}
"""Parsed opcodes per distinct value shape (few: a shape depends only on the literal after the value)."""


def _value_items(after: str) -> list[Any]:
    items = _VALUE_ITEMS.get(after)
    if items is None:
        items = _parser.parse(_value(after)).data
        if len(_VALUE_ITEMS) < 4096:
            _VALUE_ITEMS[after] = items
    return items


def _program(ops: Ops) -> tuple[list[int], int]:
    """The SRE program of a fit and its count of groups, built without parsing its source.

    `re` parses a pattern one character at a time in Python, half the cost of compiling a template's fit
    (and fits are compiled while a new log's templates are being learned, when time matters most). Here
    a literal run becomes its opcodes in one comprehension and each value shape is parsed once. This
    uses `re`'s internal modules, so `_DIRECT_OK` checks at import that the program is exactly the one
    `re` compiles from `source(ops)`; if not (another Python), fits are compiled by `re.compile`."""
    state = _parser.State()
    state.flags = _constants.SRE_FLAG_UNICODE
    root = _parser.SubPattern(state)
    into = root
    gid = 0
    literal = _constants.LITERAL
    for kind, text in ops:
        if kind == _LIT:
            into.data += [(literal, o) for o in map(ord, text)]
        elif kind == _VAL:
            into.data += _value_items(text)
        elif kind == "(":
            gid = state.opengroup()
            into = _parser.SubPattern(state)
        else:
            state.closegroup(gid, into)
            root.data.append((_constants.SUBPATTERN, (gid, 0, 0, into)))
            into = root
    return _compiler._code(root, 0), state.groups


def _direct(ops: Ops) -> re.Pattern[str]:
    code, groups = _program(ops)
    flags = _constants.SRE_FLAG_UNICODE
    return _sre.compile(source(ops), flags, code, groups - 1, {}, (None,) * groups)  # type: ignore[no-any-return]


_SAMPLE: Ops = (
    (_LIT, "Got [x] from "), _OPEN, (_VAL, ":Got it"), (_LIT, ":Got it "), (_VAL, " "), (_LIT, " "),
    (_VAL, "]"), _CLOSE, (_LIT, "] \u00fc\\ (.*) "), _OPEN, (_VAL, ""), _CLOSE,
)
_PROBE = "Got [x] from 10.0.0.1:50:Got it a b] \u00fc\\ (.*) tail"


def direct_agrees(ops: Ops = _SAMPLE, probe: str = _PROBE) -> bool:
    """True when the direct build of `ops` is the program `re` compiles from its source and matches alike."""
    try:
        expected = re.compile(source(ops))
        same = _program(ops)[0] == _compiler._code(_parser.parse(source(ops)), 0)
        m, want = _direct(ops).fullmatch(probe), expected.fullmatch(probe)
        return same and (m.groups() if m else None) == (want.groups() if want else None)
    except Exception:  # any difference in re's internals means: do not use them
        return False


def compile_fit(ops: Ops) -> re.Pattern[str]:
    return _direct(ops) if _DIRECT_OK else re.compile(source(ops))


def fit_pattern(tokens: list[str], gaps: list[str]) -> tuple[Ops, list[str | None], int] | None:
    """The regex of a cluster's template (as `Ops`: see `source` and `compile_fit`), its leading whitespace-separated words (None where a word holds
    a parameter) and its count of literal characters; None when no safe regex exists.

    Groups follow `agent.drain.render`: parameters separated only by whitespace are one group."""
    items: list[tuple[bool, str]] = []  # (is_param, literal text or "")
    for i, tok in enumerate(tokens):
        if gaps[i]:
            items.append((False, gaps[i]))
        if tok == WILD:
            items.append((True, ""))
            continue
        parts = tok.split(VAR)
        for k, part in enumerate(parts):
            if k:
                items.append((True, ""))
            if part:
                items.append((False, part))
    if gaps[len(tokens)]:
        items.append((False, gaps[len(tokens)]))
    # Merge adjacent literals, then refuse shapes a regex would read ambiguously.
    merged: list[tuple[bool, str]] = []
    for is_param, text in items:
        if merged and not is_param and not merged[-1][0]:
            merged[-1] = (False, merged[-1][1] + text)
        else:
            merged.append((is_param, text))
    literal_chars = sum(len(t) for p, t in merged if not p and not t.isspace())
    if literal_chars == 0 or not any(p for p, _ in merged):
        return None
    out: list[Op] = []
    words: list[str | None] = []
    word = ""
    word_has_param = False
    in_group = False
    group_spans_space = False
    leading_ok = True
    for k, (is_param, text) in enumerate(merged):
        nxt = merged[k + 1] if k + 1 < len(merged) else None
        if is_param:
            if nxt is not None and nxt[0]:
                return None  # two values with nothing between them: no boundary to find
            if not in_group:
                out.append(_OPEN)
                in_group = True
                group_spans_space = False
            out.append((_VAL, "" if nxt is None else nxt[1]))
            word_has_param = True
            continue
        # A literal: whitespace-only between two parameters keeps the group open (render collapses it).
        if in_group and text.isspace() and nxt is not None and nxt[0]:
            out.append((_LIT, text))
            group_spans_space = True
            if leading_ok:
                words.append(None)
                leading_ok = False  # the message has more words here than the template shows
            continue
        if in_group:
            out.append(_CLOSE)
            in_group = False
            if group_spans_space:
                leading_ok = False
        out.append((_LIT, text))
        if leading_ok:
            for n, chunk in enumerate(re.split(r"(\s+)", text)):
                if n % 2:
                    if word or word_has_param:
                        words.append(None if word_has_param else word)
                    word, word_has_param = "", False
                else:
                    word += chunk
    if in_group:
        out.append(_CLOSE)
    if leading_ok and (word or word_has_param):
        words.append(None if word_has_param else word)
    return tuple(out), words[:INDEXED_WORDS], literal_chars


class FitIndex:
    """Template regexes by a literal word at position 0, 1 or 2 of a message."""

    __slots__ = ("_by_word", "_rest", "size")

    def __init__(self) -> None:
        self._by_word: tuple[dict[str, list[Fit]], ...] = tuple({} for _ in range(INDEXED_WORDS))
        self._rest: list[Fit] = []
        self.size = 0

    def add(self, c: _Cluster) -> Fit | None:
        built = fit_pattern(c.tokens, c.gaps)
        if built is None:
            return None
        ops, words, specific = built
        try:
            regex = compile_fit(ops)
        except re.error:
            return None
        fit = Fit(c, regex, specific)
        bucket = self._rest
        for pos, word in enumerate(words):
            if word is not None:
                bucket = self._by_word[pos].setdefault(word, [])
                break
        fit.bucket = bucket
        bucket.append(fit)
        bucket.sort(key=lambda f: -f.specific)
        self.size += 1
        if len(bucket) > CANDIDATES_PER_KEY:
            dropped = bucket.pop()
            dropped.cluster.fit = None
            self.size -= 1
            if dropped is fit:
                return None
        return fit

    def remove(self, fit: Fit) -> None:
        try:
            fit.bucket.remove(fit)
        except ValueError:
            return
        self.size -= 1

    @property
    def by_first_word(self) -> dict[str, list[Fit]]:
        """Candidates by a message's first word: the caller cuts it with one `partition`, which answers
        three lines in four without splitting the message."""
        return self._by_word[0]

    def find(self, message: str, *, tried: str | None = None) -> tuple[Fit, re.Match[str]] | None:
        """The fit of a message, by its first three words; `tried` is a first word already looked up."""
        words = message.split(None, INDEXED_WORDS)
        by_word = self._by_word
        for pos in range(1 if words and words[0] == tried else 0, min(len(words), INDEXED_WORDS)):
            cands = by_word[pos].get(words[pos])
            if cands:
                for fit in cands:
                    m = fit.regex.fullmatch(message)
                    if m is not None and fit.version == fit.cluster.version:
                        return fit, m
        for fit in self._rest:
            m = fit.regex.fullmatch(message)
            if m is not None and fit.version == fit.cluster.version:
                return fit, m
        return None

    def clear(self) -> None:
        for d in self._by_word:
            d.clear()
        self._rest.clear()
        self.size = 0


_DIRECT_OK = direct_agrees()
