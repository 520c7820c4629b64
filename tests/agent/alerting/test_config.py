"""`service.alerts` settings, through the real config loader and the real delivery worker they drive."""

from __future__ import annotations

import dataclasses
import random
from pathlib import Path

import pytest

from agent.alerting.config import RetryConfig
from agent.alerting.delivery import DeliveryWorker
from agent.alerting.spool import Spool
from agent.config import load_config
from agent.errors import ConfigErrors
from agent.plugin import PluginContext
from agent.registry import Registry
from agent.schema import Duration
from plugins.outputs.stdout import StdoutConfig, StdoutOutput


def _load(tmp_path: Path, retry: str) -> None:
    cfg = tmp_path / "it.yaml"
    cfg.write_text(f"service:\n  state_dir: {tmp_path / 'state'}\n  alerts:\n    retry: {retry}\n"
                   f"pipeline:\n  inputs: [{{name: tail, path: {tmp_path}/*.log}}]\n  outputs: [{{name: stdout}}]\n")
    load_config(cfg, Registry.default())


def test_a_zero_retry_base_or_cap_is_refused_at_its_key(tmp_path: Path) -> None:
    """`retry: {base: 0s, cap: 0s}` was accepted and made a failing output retry in a busy loop: a cap below
    the worker's 10 ms jitter floor reads every scheduled retry as a clock step and sends at once (~500
    requests a second measured), and a zero base never grows, hammering the receiver 100 times a second."""
    with pytest.raises(ConfigErrors) as err:
        _load(tmp_path, "{base: 0s, cap: 0s}")
    found = {e.key_path: e.message for e in err.value.errors}
    assert set(found) == {"service.alerts.retry.base", "service.alerts.retry.cap"}, found
    assert "at least 10ms" in found["service.alerts.retry.base"]
    assert "at least 100ms" in found["service.alerts.retry.cap"]
    with pytest.raises(ConfigErrors, match=r"cap must not be smaller than retry\.base"):
        _load(tmp_path, "{base: 2s, cap: 1s}")
    _load(tmp_path, "{base: 10ms, cap: 100ms}")


def _least(name: str) -> float:
    (f,) = [f for f in dataclasses.fields(RetryConfig) if f.name == name]
    bound = f.metadata["ge"]
    assert isinstance(bound, float) and bound > 0
    return bound


def test_at_the_smallest_allowed_policy_no_retry_is_scheduled_beyond_cap(tmp_path: Path) -> None:
    """The worker sends at once a retry scheduled more than `cap` ahead (it can only be a clock step), so any
    delay `backoff` computes above `cap` turns into an immediate resend: the bounds must rule that out."""
    retry = RetryConfig(base=Duration(_least("base")), cap=Duration(_least("cap")))
    spool = Spool(tmp_path / "spool.db")
    out = StdoutOutput(StdoutConfig(), PluginContext(instance="output.stdout.0", state_dir=tmp_path, host="h"))
    worker = DeliveryWorker("output.stdout.0", out, spool, retry, rng=random.Random(3))
    for attempts in range(1, 40):
        for after_s in (None, 0.0, 1e9):
            wait = worker.backoff(attempts, after_s)
            assert 0 < wait <= retry.cap.seconds, (attempts, after_s, wait)
    spool.close()
