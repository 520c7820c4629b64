"""Prometheus exposition of the daemon's own numbers.

Components keep plain integer counters (cheap on the hot path) and report them through `stats()`; this
collector reads them at scrape time and names them `logwarden_<component>_<what>`. Counters that only go
up end in `_total` and are exposed as counters; everything else is a gauge.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector

StatsSource = Callable[[], dict[str, dict[str, float]]]

_SAFE = re.compile(r"[^a-zA-Z0-9_]")
GAUGE_HINTS = ("depth", "capacity", "pending", "open", "clusters", "templates", "age", "files", "active", "seconds")


def _metric_name(component: str, key: str) -> str:
    kind = component.split(".", 1)[0]
    return _SAFE.sub("_", f"logwarden_{kind}_{key}").lower()


class StatsCollector(Collector):
    def __init__(self, source: StatsSource, started: float | None = None) -> None:
        self.source = source
        self.started = started or time.time()

    def collect(self) -> Iterator[CounterMetricFamily | GaugeMetricFamily | HistogramMetricFamily]:
        families: dict[str, CounterMetricFamily | GaugeMetricFamily] = {}
        for component, values in sorted(self.source().items()):
            for key, value in sorted(values.items()):
                if key.startswith("hist_"):
                    continue
                base = _metric_name(component, key)
                is_counter = not any(h in key for h in GAUGE_HINTS)
                name = base[: -len("_total")] if base.endswith("_total") else base
                fam = families.get(name)
                if fam is None:
                    doc = f"{key} reported by {component.split('.', 1)[0]} components"
                    fam = (
                        CounterMetricFamily(name, doc, labels=["component"])
                        if is_counter
                        else GaugeMetricFamily(name, doc, labels=["component"])
                    )
                    families[name] = fam
                fam.add_metric([component], float(value))
        yield from families.values()
        yield GaugeMetricFamily("logwarden_uptime_seconds", "Seconds since the daemon started.", value=time.time() - self.started)
        yield from self._histograms()

    def _histograms(self) -> Iterator[HistogramMetricFamily]:
        """Components may report a histogram as `hist_<name>__le_<bound>` cumulative counts plus `hist_<name>__sum`."""
        hist: dict[tuple[str, str], dict[str, float]] = {}
        for component, values in self.source().items():
            for key, value in values.items():
                if key.startswith("hist_"):
                    name, _, rest = key[5:].partition("__")
                    hist.setdefault((component, name), {})[rest] = value
        by_name: dict[str, HistogramMetricFamily] = {}
        for (component, name), parts in sorted(hist.items()):
            buckets = sorted(
                ((float(k[3:]) if k[3:] != "inf" else float("inf")), v) for k, v in parts.items() if k.startswith("le_")
            )
            if not buckets:
                continue
            fam = by_name.setdefault(
                name, HistogramMetricFamily(f"logwarden_{name}", f"{name} histogram", labels=["component"])
            )
            fam.add_metric(
                [component], [("+Inf" if b == float("inf") else repr(b), c) for b, c in buckets], parts.get("sum", 0.0)
            )
        yield from by_name.values()


def render(source: StatsSource, started: float | None = None) -> bytes:
    reg = CollectorRegistry()
    reg.register(StatsCollector(source, started))
    return generate_latest(reg)
