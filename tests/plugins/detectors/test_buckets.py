"""The bucketed detectors' shared limit, checked where a config is written."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.config import load_config
from agent.errors import ConfigErrors
from agent.registry import Registry


@pytest.mark.parametrize("detector", ["volume", "params"])
@pytest.mark.parametrize("bucket", ["0s", "0", "500ms"])
def test_a_bucket_shorter_than_a_second_is_refused_at_its_key(tmp_path: Path, detector: str, bucket: str) -> None:
    """`bucket: 0s` used to pass `check` and then crash replay/run with ZeroDivisionError in the bucket clock;
    the config must refuse it where it was written, naming the key and the minimum."""
    log = tmp_path / "any.log"
    log.write_text("x\n")
    cfg = tmp_path / "it.yaml"
    cfg.write_text(f"pipeline:\n  inputs: [{{name: tail, path: {log}}}]\n"
                   f"  detectors: [{{name: {detector}, bucket: {bucket}}}]\n  outputs: [{{name: stdout}}]\n")
    with pytest.raises(ConfigErrors) as err:
        load_config(cfg, Registry.default())
    (only,) = err.value.errors
    assert only.key_path == "pipeline.detectors[0].bucket" and only.line == 3
    assert "must be at least 1s" in only.message
