"""One template slot's learned distribution for the params detector: numeric (log-scale histogram) or
categorical (shares), decided from its first values; id-like slots are skipped.

Numbers are learned on a log scale in fixed bins of 0.05 decades (≈12%), so a latency distribution that
spans 1ms..10s costs ~80 sparse bins and quantiles need no stored samples; units (`12ms`, `0.25s`, `3.5MB`,
`78%`) are normalised first so `900ms` and `0.9s` land in one bin. A slot is categorical when its first
values take few distinct short values (an HTTP status, a method, a region), numeric when they carry a unit
or take many numeric values, and skipped when they look like identifiers: many distinct non-numeric tokens
(UUIDs, IPs, paths), a name that says id/offset/port, or values that only ever grow (a counter).
"""

from __future__ import annotations

import math
import re
from itertools import repeat
from operator import itemgetter
from statistics import NormalDist

import numpy as np
import numpy.typing as npt

_NUM_RE = re.compile(r"^(-?\d+(?:\.\d+)?)\s*([a-zA-Zµ%]*)$")
_UNITS: dict[str, tuple[str, float]] = {
    "ns": ("duration", 1e-9), "us": ("duration", 1e-6), "µs": ("duration", 1e-6), "ms": ("duration", 1e-3),
    "s": ("duration", 1.0), "sec": ("duration", 1.0), "min": ("duration", 60.0), "h": ("duration", 3600.0),
    "b": ("size", 1.0), "kb": ("size", 1e3), "kib": ("size", 1024.0), "mb": ("size", 1e6),
    "mib": ("size", 1024.0**2), "gb": ("size", 1e9), "gib": ("size", 1024.0**3), "%": ("percent", 1.0),
    "": ("", 1.0),
}
_ID_NAME_RE = re.compile(r"(^|_|-|\b)(id|ids|uuid|guid|offset|port|pid|tid|seq|sequence|nonce|hash|token|key)$",
                         re.IGNORECASE)
_NAME_RE = re.compile(r"([A-Za-z_][\w.-]*)\s*[=:]\s*[^\s=:]*$")
_WORD_RE = re.compile(r"([A-Za-z_][\w-]*)\W*$")
BIN = 0.05
OTHER = "<other>"
_NORMAL = NormalDist()


def parse_number(text: str) -> tuple[float, str] | None:
    """`12ms` → (0.012, 'duration'); `503` → (503.0, ''); None when it is not a number with a known unit,
    or when it overflows to infinity (`1e999`, four hundred nines): no bin holds it, and binning it raised."""
    if text[-1:].isdigit():  # most values: skip the regex, and the exception float() raises on `12ms`
        try:
            value = float(text)
        except ValueError:
            pass
        else:
            return (value, "") if math.isfinite(value) else None
    m = _NUM_RE.match(text)
    if m is None:
        return None
    unit = _UNITS.get(m.group(2).lower())
    if unit is None:
        return None
    value = float(m.group(1)) * unit[1]
    return (value, unit[0]) if math.isfinite(value) else None


def slot_name(template: str, index: int) -> str:
    """A readable name for the index-th `<*>` of a template: the key glued to it (`status=<*>` → status),
    else the word before it."""
    parts = template.split("<*>")
    prefix = parts[index] if index < len(parts) else ""
    m = _NAME_RE.search(prefix)
    if m:
        return m.group(1)
    m = _WORD_RE.search(prefix)
    return m.group(1) if m else f"#{index}"


def to_bin(value: float, unit: str) -> int:
    x = math.log10(max(value, 1e-6)) if unit == "duration" else math.log10(max(value, 0.0) + 1.0)
    return round(x / BIN)


def from_bin(b: int, unit: str) -> float:
    x = 10 ** (b * BIN)
    return x if unit == "duration" else x - 1.0


def show(value: float, unit: str) -> str:
    if unit == "duration":
        return f"{value * 1000:.0f}ms" if value < 1 else f"{value:.2f}s"
    if unit == "size":
        for name, mult in (("GB", 1e9), ("MB", 1e6), ("KB", 1e3)):
            if value >= mult:
                return f"{value / mult:.1f}{name}"
        return f"{value:.0f}B"
    if unit == "percent":
        return f"{value:.0f}%"
    return f"{value:.3g}"


def quantile(hist: dict[int, float], q: float) -> int:
    total = sum(hist.values())
    target = q * total
    acc = 0.0
    for b in sorted(hist):
        acc += hist[b]
        if acc >= target:
            return b
    return max(hist)


def binomial_z(k: float, n: float, p: float) -> float:
    """How surprising k or more of n is at share p, as the z of a standard normal tail equally unlikely.

    Exact, not the normal approximation (k - np)/√(np(1-p)): at small p that one is far too sure — 2 503s
    among 25 requests where 503 is 0.1% scores z = 12.5, yet happens once in 3,400 such buckets, which a
    host with a few busy templates has every few days (the soak's normal days paged on it). The upper tail
    is summed in log space from k while the terms still matter (they shrink geometrically above np)."""
    if k <= n * p:
        return 0.0
    if p <= 0.0:
        return math.inf
    lp, lq = math.log(p), math.log1p(-p)
    base = math.lgamma(n + 1.0)
    first = base - math.lgamma(k + 1.0) - math.lgamma(n - k + 1.0) + k * lp + (n - k) * lq
    total, j = 1.0, k  # the tail as a multiple of its first term
    while j + 1.0 <= n:
        term = base - math.lgamma(j + 2.0) - math.lgamma(n - j) + (j + 1.0) * lp + (n - j - 1.0) * lq - first
        if term < -40.0:
            break
        total += math.exp(term)
        j += 1.0
    log_tail = first + math.log(total)
    if log_tail > -700.0:
        tail = math.exp(log_tail)
        return -_NORMAL.inv_cdf(tail) if tail < 0.5 else 0.0
    # Beyond a float: log P(Z >= z) ≈ -z²/2 - ln z - ln √(2π), solved by fixed-point iteration.
    z = math.sqrt(-2.0 * log_tail)
    for _ in range(4):
        z = math.sqrt(max(-2.0 * (log_tail + math.log(z) + 0.5 * math.log(2.0 * math.pi)), 1.0))
    return z


def spread(hist: dict[int, float], median: int) -> float:
    """Robust standard deviation (1.4826 * MAD) in bins."""
    dev: dict[int, float] = {}
    for b, w in hist.items():
        d = abs(b - median)
        dev[d] = dev.get(d, 0.0) + w
    return 1.4826 * quantile(dev, 0.5)


_BIN_CACHE: dict[str, dict[str, str]] = {}
"""Per unit: raw value → its bin as text ("" when not a number); values repeat across slots and buckets."""
_BIN_CACHE_MAX = 8192
"""Cleared when it grows past this: an entry costs ~190 bytes with its key, and a slot of sizes or
latencies sees tens of thousands of distinct values (65,536 entries held ~12 MB per unit); the values
that repeat are cached again within a fold or two."""
_BIN_TEXT: dict[int, str] = {}
"""Bin number → its text, shared by every cached value in that bin (a few hundred bins exist)."""

FOLD_AT = 2048
"""Distinct raw values a slot holds in its open bucket before they are folded into bins or categories."""

_VECTOR_AT = 256
"""Distinct values from which a numeric fold parses and bins them in C-level passes (`_vector_bins`). Below
it the per-value loop and its cache are cheaper: a slot with few distinct values (a latency in ms) hits the
cache; one with many (a size in bytes, an amount) misses it and was ~5% of a replay's CPU, folded one by one."""
_UNIT_CHARS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZµ%"
_LAST = itemgetter(slice(-1, None))


def _plain_decimals(nums: list[str]) -> bool:
    r"""Whether every string is `\d+(\.\d+)?` — what `_NUM_RE` reads as the number before a unit — in C-level
    passes (str.isdecimal is exactly the regex's \d: Unicode decimal digits)."""
    if not nums or not min(map(len, nums)):
        return False
    joined = "".join(nums)
    if joined.isdecimal():
        return True
    if not joined.replace(".", "").isdecimal():
        return False
    return (max(map(str.count, nums, repeat("."))) <= 1 and not any(map(str.startswith, nums, repeat(".")))
            and not any(map(str.endswith, nums, repeat("."))))


def _vector_bins(values: list[str], unit: str) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.bool_]] | None:
    """The bins `parse_number` and `to_bin` give `values` (and which of them are numbers at all), or None when
    some value needs the per-value path. Two shapes are read exactly as `parse_number` reads them: values
    that all end in a digit (it calls float() on those, and so does this; a ValueError sends the fold back),
    and values that all carry one unit suffix after a plain decimal (`12ms`)."""
    if "".join(map(_LAST, values)).isdecimal():
        try:
            nums = np.fromiter(map(float, values), np.float64, len(values))
        except ValueError:
            return None
    else:
        first = values[0]
        suffix = first[len(first.rstrip(_UNIT_CHARS)):]
        scale = _UNITS.get(suffix.lower())
        if scale is None or not all(map(str.endswith, values, repeat(suffix))):
            return None
        stripped = list(map(str.removesuffix, values, repeat(suffix)))
        if not _plain_decimals(stripped):
            return None
        nums = np.fromiter(map(float, stripped), np.float64, len(values)) * scale[1]
    ok = np.isfinite(nums)  # `1e999` overflows: parse_number skips it
    nums[~ok] = 1.0
    x = np.log10(np.maximum(nums, 1e-6)) if unit == "duration" else np.log10(np.maximum(nums, 0.0) + 1.0)
    return np.rint(x / BIN).astype(np.int64), ok


class Slot:
    """Learning state of one (template, slot); `kind` is pending until `classify` decides.

    Per record a classified slot only counts its raw value (`counts`, plus the first line of each value in
    `firsts`): values repeat (a status code, a latency in ms), so parsing, binning and the category cap run
    once per distinct value in `fold`, when the bucket closes or when `FOLD_AT` distinct values wait.
    `cur`, `cur_n` and `sample_raw` are the folded view (bin or category → count, first line)."""

    __slots__ = ("base", "base_n", "counts", "cur", "cur_n", "falls", "firsts", "kind", "last", "name", "rises",
                 "sample", "sample_raw", "unit")

    def __init__(self, name: str) -> None:
        self.kind = "pending"
        self.name = name
        self.unit = ""
        self.sample: list[str] = []
        self.rises = 0
        self.falls = 0
        self.last: float | None = None
        self.base: dict[str, float] = {}
        """Decayed weights: numeric bin (as str, for JSON) or category → weight."""
        self.base_n = 0.0
        self.counts: dict[str, int] = {}
        self.firsts: dict[str, str] = {}
        self.cur: dict[str, int] = {}
        self.cur_n = 0
        self.sample_raw: dict[str, str] = {}

    def add(self, value: str, raw: str, classify_after: int, max_categories: int) -> None:
        """One value; the detector inlines the classified case of this in its loop."""
        kind = self.kind
        if kind == "skip":
            return
        if kind == "pending":
            self.sample.append(value)
            num = parse_number(value)
            if num is not None:
                if self.last is not None:
                    if num[0] > self.last:
                        self.rises += 1
                    elif num[0] < self.last:
                        self.falls += 1
                self.last = num[0]
            if len(self.sample) >= classify_after:
                self.classify(max_categories)
                for v in self.sample:
                    self.add(v, raw, classify_after, max_categories)
                self.sample = []
            return
        n = self.counts.get(value)
        if n is None:
            self.counts[value] = 1
            self.firsts[value] = raw
            if len(self.counts) >= FOLD_AT:
                self.fold(max_categories)
        else:
            self.counts[value] = n + 1

    def fold(self, max_categories: int) -> None:
        """Move the raw-value counts into bins (numeric) or capped categories, in first-seen order, so the
        result is what counting each value on arrival would give."""
        counts, firsts = self.counts, self.firsts
        if not counts:
            return
        cur, sample_raw, base = self.cur, self.sample_raw, self.base
        total = 0
        if self.kind == "numeric":
            unit = self.unit
            if len(counts) >= _VECTOR_AT and self._fold_vector(unit):
                return
            bins = _BIN_CACHE.setdefault(unit, {})
            if len(bins) > _BIN_CACHE_MAX:
                bins.clear()
            for value, n in counts.items():
                key = bins.get(value)
                if key is None:
                    num = parse_number(value)
                    if num is None:
                        key = bins[value] = ""
                    else:
                        b = to_bin(num[0], unit)
                        text = _BIN_TEXT.get(b)
                        if text is None:
                            text = _BIN_TEXT[b] = str(b)
                        key = bins[value] = text
                if not key:
                    continue
                cur[key] = cur.get(key, 0) + n
                total += n
                if key not in sample_raw:
                    sample_raw[key] = firsts[value]
        elif self.kind == "categorical":
            for value, n in counts.items():
                key = value
                if value not in base and value not in cur:
                    known = len(base) + sum(1 for k in cur if k not in base)
                    if known >= max_categories:
                        key = OTHER
                cur[key] = cur.get(key, 0) + n
                total += n
                if key not in sample_raw:
                    sample_raw[key] = firsts[value]
        self.cur_n += total
        counts.clear()  # in place: the detector's slot plans hold these dicts
        firsts.clear()

    def _fold_vector(self, unit: str) -> bool:
        """`fold` of a numeric slot with many distinct values, parsed and binned in C-level passes; False
        (nothing done) when a value needs the per-value path. Bins enter `cur` in the order of their first
        value, so both paths leave the same counts and first lines."""
        counts, firsts = self.counts, self.firsts
        values = list(counts)
        found = _vector_bins(values, unit)
        if found is None:
            return False
        bins, ok = found
        at = np.flatnonzero(ok)
        if len(at):
            uniq, first, inverse = np.unique(bins[at], return_index=True, return_inverse=True)
            weights = np.fromiter(counts.values(), np.float64, len(values))[at]
            sums = np.bincount(inverse, weights=weights)
            order = np.argsort(first, kind="stable")
            cur, sample_raw = self.cur, self.sample_raw
            total = 0
            for b, n, i in zip(uniq[order].tolist(), sums[order].tolist(), at[first[order]].tolist(), strict=True):
                key = _BIN_TEXT.get(b)
                if key is None:
                    key = _BIN_TEXT[b] = str(b)
                n = int(n)
                cur[key] = cur.get(key, 0) + n
                total += n
                if key not in sample_raw:
                    sample_raw[key] = firsts[values[i]]
            self.cur_n += total
        counts.clear()
        firsts.clear()
        return True

    def classify(self, max_categories: int) -> None:
        values = self.sample
        distinct = set(values)
        parsed = [parse_number(v) for v in values]
        numeric = [p for p in parsed if p is not None]
        if len(numeric) >= 0.9 * len(values):
            units = {u for _, u in numeric}
            unit = next(iter(units)) if len(units) == 1 else ""
            counter = self.rises + self.falls > 0 and self.rises / (self.rises + self.falls) > 0.9
            if _ID_NAME_RE.search(self.name) or counter:
                self.kind = "skip"
            elif not unit and len(distinct) <= min(max_categories, 12) and all(
                v.lstrip("-").isdigit() and len(v) <= 4 for v in values
            ):
                self.kind = "categorical"
            else:
                self.kind, self.unit = "numeric", unit
                if unit == "duration" and self.name in ("in", "took", "after", "#0"):
                    self.name = "duration"
        elif len(distinct) <= max_categories and not _ID_NAME_RE.search(self.name):
            self.kind = "categorical"
        else:
            self.kind = "skip"

    def learn(self, weight: float, decay: float) -> None:
        """Fold the closed bucket into the baseline (`weight` < 1 for a bucket that was anomalous)."""
        if decay < 1.0:
            for k in list(self.base):
                w = self.base[k] * decay
                if w < 1e-3:
                    del self.base[k]
                else:
                    self.base[k] = w
            self.base_n *= decay
        for k, n in self.cur.items():
            self.base[k] = self.base.get(k, 0.0) + n * weight
        self.base_n += self.cur_n * weight

    def reset_bucket(self) -> None:
        self.cur = {}
        self.cur_n = 0
        self.sample_raw = {}
        self.counts.clear()
        self.firsts.clear()

    def dump(self) -> dict[str, object]:
        return {"kind": self.kind, "name": self.name, "unit": self.unit, "sample": self.sample,
                "rises": self.rises, "falls": self.falls, "last": self.last,
                "base": {k: round(v, 3) for k, v in self.base.items()}, "base_n": round(self.base_n, 3)}

    @classmethod
    def restore(cls, doc: dict[str, object]) -> Slot:
        s = cls(str(doc["name"]))
        kind = str(doc["kind"])
        if kind not in ("pending", "numeric", "categorical", "skip"):
            raise ValueError(f"unknown slot kind {kind!r}")
        s.kind = kind
        s.unit = str(doc.get("unit", ""))
        sample = doc.get("sample", [])
        s.sample = [str(v) for v in sample] if isinstance(sample, list) else []
        s.rises = int(str(doc.get("rises", 0)))
        s.falls = int(str(doc.get("falls", 0)))
        last = doc.get("last")
        s.last = float(str(last)) if last is not None else None
        base = doc.get("base", {})
        if not isinstance(base, dict):
            raise ValueError("slot base must be a mapping")
        s.base = {str(k): float(v) for k, v in base.items()}
        s.base_n = float(str(doc.get("base_n", 0.0)))
        return s
