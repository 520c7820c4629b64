"""`logwarden run`: the long-lived process around a Pipeline — signals, reload, systemd, the ops endpoint.

SIGTERM/SIGINT stop the pipeline gracefully (inputs stop, queued work is finished, open windows are
flushed, state is saved) within `service.shutdown_timeout`, then exit 0. SIGHUP re-reads and validates the
config; an invalid one is refused with its errors and the running pipeline keeps going, a valid one
replaces it through a drain-and-rebuild that carries offsets, templates and pending alerts over in the
state directory. Signal handlers only set flags; the main loop does the work.
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import Any

import structlog

from agent import logsetup, malloc
from agent.coldpages import ColdPages
from agent.config import Config, load_config
from agent.errors import ConfigError, ConfigErrors
from agent.http import Endpoints, OpsServer
from agent.metrics import render
from agent.pipeline import Pipeline
from agent.registry import Registry
from agent.schema import secret_values
from agent.sdnotify import Notifier

log = structlog.get_logger("logwarden.daemon")

COLD_CHECK_S = 10.0
"""How often the main loop looks whether new library pages (a new model's session) are worth releasing: a
read of /proc/self/status. Once a minute left a new forest's session pages resident for most of a minute
after each swap (the live bench measured 92 MB steady in one run, 80 MB in the next, by that timing alone)."""


class Daemon:
    def __init__(self, config_path: str | Path, registry_factory: Callable[[], Registry] = Registry.default) -> None:
        self.config_path = str(config_path)
        self.registry_factory = registry_factory
        self.notifier = Notifier()
        self._stop = threading.Event()
        self._reload = threading.Event()
        self._wake = threading.Event()
        self.pipeline: Pipeline | None = None
        self.http: OpsServer | None = None
        self.started = time.time()
        self.reloads = 0
        self.reloads_failed = 0
        self.cold = ColdPages()
        # Installed before anything slow happens, so a SIGTERM during start-up is a graceful stop, not a kill.
        self._install_signals()

    def load(self) -> Config:
        return load_config(self.config_path, self.registry_factory())

    def run(self, config: Config | None = None) -> int:
        config = config or self.load()
        self._apply_logging(config)
        for w in config.warnings:
            log.warning("config_warning", detail=w)
        self.pipeline = Pipeline(config, self.registry_factory())
        self.pipeline.start()
        self._start_http(config)
        self.notifier.notify("READY=1\nSTATUS=running")
        log.info("daemon_started", config=self.config_path, inputs=len(config.inputs), detectors=len(config.detectors),
                 outputs=len(config.outputs))
        # Start-up is over: its library pages go back to the kernel (see `agent.coldpages`).
        cold = self.cold
        cold_check = COLD_CHECK_S if cold.start() else None
        next_cold = time.monotonic() + (cold_check or 0.0)
        # Signals, reloads and stops set `_wake`; the timers here are the systemd watchdog ping (half of
        # WatchdogSec) and the look at the library pages every `COLD_CHECK_S`. Nothing else polls.
        watchdog = self.notifier.watchdog_interval()
        timeout = min((t for t in (watchdog, cold_check) if t), default=None)
        while not self._stop.is_set():
            self._wake.wait(timeout)
            self._wake.clear()
            if cold_check and time.monotonic() >= next_cold:
                cold.check()
                next_cold = time.monotonic() + cold_check
            if self._reload.is_set():
                self._reload.clear()
                self._do_reload()
            if watchdog and self.pipeline is not None and not self.pipeline.stuck():
                self.notifier.notify("WATCHDOG=1")
        self.notifier.notify("STOPPING=1")
        log.info("daemon_stopping")
        if self.pipeline is not None:
            self.pipeline.stop()
        if self.http is not None:
            self.http.stop()
        self.notifier.close()
        return 0

    def request_stop(self) -> None:
        self._stop.set()
        self._wake.set()

    def request_reload(self) -> None:
        self._reload.set()
        self._wake.set()

    def _install_signals(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return

        def on_stop(signum: int, _frame: FrameType | None) -> None:
            self.request_stop()

        def on_hup(signum: int, _frame: FrameType | None) -> None:
            self.request_reload()

        signal.signal(signal.SIGTERM, on_stop)
        signal.signal(signal.SIGINT, on_stop)
        signal.signal(signal.SIGHUP, on_hup)

    def _apply_logging(self, config: Config) -> None:
        logsetup.configure(config.service.log_level)
        logsetup.set_secrets(
            secret_values([s.config for s in config.inputs] + [s.config for s in config.detectors]
                          + [s.config for s in config.outputs])
        )

    def _do_reload(self) -> None:
        self.notifier.notify(f"RELOADING=1\nMONOTONIC_USEC={int(time.monotonic() * 1e6)}")
        try:
            new = self.load()
        except (ConfigError, ConfigErrors) as exc:
            self.reloads_failed += 1
            log.error("config_rejected", config=self.config_path, errors=str(exc))
            self.notifier.notify("READY=1\nSTATUS=running (reload refused: invalid config)")
            return
        if self.pipeline is not None:
            self.pipeline.stop()
        if self.http is not None:
            self.http.stop()
            self.http = None
        self._apply_logging(new)
        self.pipeline = Pipeline(new, self.registry_factory())
        malloc.trim()  # the old pipeline (its models, windows, baselines) was freed as the new one replaced it
        self.pipeline.start()
        self._start_http(new)
        self.reloads += 1
        log.info("config_reloaded", config=self.config_path, generation=self.reloads)
        self.notifier.notify("READY=1\nSTATUS=running")

    # -- ops endpoint ------------------------------------------------------------------------------

    def _start_http(self, config: Config) -> None:
        if config.service.http is None:
            return
        self.http = OpsServer(
            config.service.http.listen,
            Endpoints(health=self._health, metrics=self._metrics, templates=self._templates, alerts=self._alerts),
        )
        self.http.start()

    def _health(self) -> tuple[bool, dict[str, Any]]:
        p = self.pipeline
        if p is None:
            return False, {"reason": "no pipeline"}
        stuck = p.stuck()
        outputs_ok = p.router.healthy()
        detail: dict[str, Any] = {"worker_stuck": stuck, "outputs_healthy": outputs_ok,
                                  "queue_depth": p.queue.qsize(), "records": p.stats.records}
        return (not stuck and outputs_ok), detail

    def _stats(self) -> dict[str, dict[str, float]]:
        p = self.pipeline
        out = p.component_stats() if p is not None else {}
        out["daemon"] = {"reloads_total": float(self.reloads), "reloads_failed_total": float(self.reloads_failed),
                         "page_releases_total": float(self.cold.releases)}
        return out

    def _metrics(self) -> bytes:
        return render(self._stats, self.started)

    def _templates(self, limit: int) -> list[dict[str, Any]]:
        p = self.pipeline
        if p is None:
            return []
        rows: list[dict[str, Any]] = []
        for (section, _), parser in zip(p.inputs, p.parsers, strict=True):
            for cid, template, count in parser.drain.clusters():
                rows.append({"tag": section.tag, "id": cid, "template": template, "count": count})
        rows.sort(key=lambda r: -int(r["count"]))
        return rows[:limit]

    def _alerts(self, limit: int) -> list[dict[str, Any]]:
        from agent.alerting.payload import alert_to_dict

        p = self.pipeline
        return [alert_to_dict(a) for a in p.router.recent(limit)] if p is not None else []
