"""Placeholder: the Drain tree lands with the Drain issue."""

from __future__ import annotations

from dataclasses import dataclass

from agent.schema import opt


@dataclass(frozen=True, slots=True, kw_only=True)
class DrainConfig:
    sim_th: float = opt(0.4, ge=0.0, le=1.0, doc="Similarity a message needs to join a cluster.")
    depth: int = opt(4, ge=3, doc="Depth of the prefix tree.")
    max_children: int = opt(100, ge=2, doc="Children per internal node.")
    max_clusters: int = opt(100_000, ge=1, doc="Clusters kept; the least recently used is evicted beyond.")
