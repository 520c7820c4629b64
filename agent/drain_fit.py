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
  literal character. Candidates are found by the first literal words of the message (position 0, 1 or
  2 of `str.split`), most specific template first; `fullmatch` both decides and extracts. A template
  made only of parameters gets no regex: it would swallow every line of its length.

Anything that misses both goes through masking and the tree, which learns; the caller then refreshes
the fast paths for the cluster it chose.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Sequence
from itertools import starmap
from typing import TYPE_CHECKING

from agent.masking import VAR, WILD

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

Cut = Callable[[str], tuple[str, ...]]

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


def _value(after: str | None) -> str:
    """One value: non-space characters up to the literal that follows. The value may hold that literal's
    first character where the rest of the literal's word does not follow (`10.0.0.1:50010:Got` against
    `<*>:Got`: masking keeps an address with its port as one value), so such lines fit instead of paying
    for the tree on every line; possessive runs keep a failing match linear."""
    if after is None or after[0].isspace():
        return "\\S+"
    stop = re.escape(after[0])
    word = after[1:].split(None, 1)[0] if after[1:2].strip() else ""
    if not word:
        return f"[^\\s{stop}]+"
    return f"(?:[^\\s{stop}]++|{stop}(?!{re.escape(word)}))+"


def fit_pattern(tokens: list[str], gaps: list[str]) -> tuple[str, list[str | None], int] | None:
    """The regex of a cluster's template, its leading whitespace-separated words (None where a word holds
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
    out: list[str] = []
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
                out.append("(")
                in_group = True
                group_spans_space = False
            out.append(_value(None if nxt is None else nxt[1]))
            word_has_param = True
            continue
        # A literal: whitespace-only between two parameters keeps the group open (render collapses it).
        if in_group and text.isspace() and nxt is not None and nxt[0]:
            out.append(_escape(text))
            group_spans_space = True
            if leading_ok:
                words.append(None)
                leading_ok = False  # the message has more words here than the template shows
            continue
        if in_group:
            out.append(")")
            in_group = False
            if group_spans_space:
                leading_ok = False
        out.append(_escape(text))
        if leading_ok:
            for n, chunk in enumerate(re.split(r"(\s+)", text)):
                if n % 2:
                    if word or word_has_param:
                        words.append(None if word_has_param else word)
                    word, word_has_param = "", False
                else:
                    word += chunk
    if in_group:
        out.append(")")
    if leading_ok and (word or word_has_param):
        words.append(None if word_has_param else word)
    return "".join(out), words[:INDEXED_WORDS], literal_chars


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
        pattern, words, specific = built
        try:
            regex = re.compile(pattern)
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

    def first_word(self, word: str, default: list[Fit]) -> list[Fit]:
        """Candidates for a message's first word (the caller cuts it with one `partition`, which answers
        three lines in four without splitting the message)."""
        return self._by_word[0].get(word, default)

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
