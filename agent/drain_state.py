"""Drain snapshots: versioned JSON, written atomically, validated field by field on the way back in.

A snapshot holds each live cluster's id, tokens, gaps and count in LRU order (oldest first), the next id
(ids are never reused, even across restarts) and the masking version. Restoring re-places every cluster in
a fresh tree, so the file format does not depend on the tree's internal layout. Nothing is instantiated
from the file but strings and ints (Drain3 uses jsonpickle, which can build arbitrary objects); a file
made with other masks, of another kind or with a malformed field is refused with the reason.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from agent.errors import StateError
from agent.masking import MASKING_VERSION, READABLE_MASKING_VERSIONS
from agent.state import read_json_state, write_json_atomic

if TYPE_CHECKING:
    from agent.drain import Drain

KIND = "drain"
FORMAT_VERSION = 1


def snapshot(drain: Drain) -> dict[str, Any]:
    clusters = [
        {"id": c.id, "tokens": c.tokens, "gaps": c.gaps, "count": c.count}
        for c in drain._lru.values()
    ]
    return {
        "kind": KIND,
        "format_version": FORMAT_VERSION,
        "masking_version": MASKING_VERSION,
        "next_id": drain._next_id,
        "lines": drain.counters.lines,
        "clusters": clusters,
    }


def save(drain: Drain, path: Path) -> None:
    doc = snapshot(drain)
    del doc["kind"], doc["format_version"]
    write_json_atomic(path, KIND, FORMAT_VERSION, doc)


def load(drain: Drain, path: Path) -> Drain:
    doc = read_json_state(path, KIND, {FORMAT_VERSION})
    return restore(drain, doc, str(path))


def restore(drain: Drain, doc: Any, where: str) -> Drain:
    """Fill an empty tree from a snapshot document; StateError names the first problem found."""
    from agent.drain import _Cluster

    if not isinstance(doc, dict):
        raise StateError(where, "not a JSON object")
    if doc.get("kind") != KIND:
        raise StateError(where, f"expected a {KIND} snapshot, found kind {doc.get('kind')!r}")
    if doc.get("format_version") != FORMAT_VERSION:
        raise StateError(where, f"unsupported format_version {doc.get('format_version')!r}")
    masks = doc.get("masking_version")
    if not isinstance(masks, int) or masks not in READABLE_MASKING_VERSIONS:
        raise StateError(
            where, f"made with masking version {doc.get('masking_version')!r}, this build masks with {MASKING_VERSION}"
        )
    next_id = doc.get("next_id")
    clusters = doc.get("clusters")
    if not isinstance(next_id, int) or next_id < 1:
        raise StateError(where, "next_id must be a positive integer")
    if not isinstance(clusters, list):
        raise StateError(where, "clusters must be a list")
    seen: set[int] = set()
    limit = drain.config.max_clusters
    for i, item in enumerate(clusters[-limit:] if len(clusters) > limit else clusters):
        if not isinstance(item, dict):
            raise StateError(where, f"clusters[{i}] is not an object")
        cid, tokens, gaps, count = item.get("id"), item.get("tokens"), item.get("gaps"), item.get("count")
        if not isinstance(cid, int) or cid < 1 or cid >= next_id or cid in seen:
            raise StateError(where, f"clusters[{i}].id is not a unique id below next_id")
        if not isinstance(tokens, list) or not all(isinstance(t, str) for t in tokens):
            raise StateError(where, f"clusters[{i}].tokens must be a list of strings")
        if not isinstance(gaps, list) or len(gaps) != len(tokens) + 1 or not all(
            isinstance(g, str) and (not g or g.isspace()) for g in gaps
        ):
            raise StateError(where, f"clusters[{i}].gaps must be len(tokens)+1 whitespace strings")
        if not isinstance(count, int) or count < 0:
            raise StateError(where, f"clusters[{i}].count must be a non-negative integer")
        seen.add(cid)
        c = _Cluster(cid, list(tokens), list(gaps), "\x02".join(gaps))
        c.count = c.queued = count
        drain._place(c)
        drain._claim(c)
    drain._next_id = next_id
    lines = doc.get("lines", 0)
    drain.counters.lines = lines if isinstance(lines, int) else 0
    return drain
