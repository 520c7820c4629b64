"""Event-key sequences per session, for sequence-model tests that need normal and abnormal sessions.

The keys are the generator's own step names (`gw.recv`, `auth.ok`, ...), i.e. ground-truth templates, so a
model test does not depend on the template miner. Abnormal sessions are those an incident changed in a way
that shows in the sequence (an error burst, a never-seen template, a broken order); latency spikes and
frequency shifts leave each session's sequence normal and are left out of both lists.
"""

from __future__ import annotations

import io

from agent.generator.engine import GeneratorConfig, generate
from agent.generator.services import Event

_SEQUENCE_VISIBLE = frozenset({"error_burst", "new_template", "broken_sequence"})


def generate_sessions(config: GeneratorConfig) -> tuple[list[list[str]], list[list[str]]]:
    """(normal, abnormal) event-key sequences, each list in order of the sessions' first lines."""
    keys: dict[str, list[str]] = {}

    def observe(rid: str, ev: Event) -> None:
        keys.setdefault(rid, []).append(ev.key)

    labels = generate(config, io.StringIO(), observe=observe)
    abnormal_ids: set[str] = set()
    touched: set[str] = set()
    for label in labels:
        touched.update(label.sessions)
        if label.type in _SEQUENCE_VISIBLE:
            abnormal_ids.update(label.sessions)
    normal = [seq for rid, seq in keys.items() if rid not in touched]
    abnormal = [seq for rid, seq in keys.items() if rid in abnormal_ids]
    return normal, abnormal
