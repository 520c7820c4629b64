from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
from pathlib import Path

from agent.alerting.payload import SCHEMA_VERSION, alert_from_dict
from agent.plugin import PluginContext, Sent
from agent.schema import ByteSize
from agent.types import Alert, AlertStatus, Evidence, Record, Severity, TemplateEvidence
from plugins.outputs.file import FileConfig, FileOutput


def _record(i: int) -> Record:
    return Record(
        tag="app", source="/var/log/app.log", raw=f"2024 INFO job {i} done", offset=100 + i, time=1_700_000_000.0 + i,
        level="INFO", component="job", message=f"job {i} done", template_id=3, template="job <*> done",
        params=(str(i),),
    )


def _alert(i: int) -> Alert:
    return Alert(
        fingerprint=f"fp{i}", status=AlertStatus.FIRING, severity=Severity.CRITICAL, title=f"t{i}", summary="s",
        evidence=Evidence([TemplateEvidence(1, "a <*>", 9.0, 1.0, 0.5)], ["line"], {"k": "v"}),
        host="h", source="/s", detector="volume", score=3.5, threshold=2.0, first_seen=1_700_000_000.25,
        last_seen=1_700_000_100.5, count=2, labels={"stream": "app"}, id=f"fp{i}-{i}",
    )


def _ctx(tmp_path: Path) -> PluginContext:
    return PluginContext(instance="output.file.0", state_dir=tmp_path / "state", host="h")


def test_records_are_jsonl_with_the_parsed_fields(tmp_path: Path) -> None:
    out = FileOutput(FileConfig(path=str(tmp_path / "sub" / "records.jsonl")), _ctx(tmp_path))
    out.start()
    out.write_records([_record(1), _record(2)])
    out.write_records([])
    out.stop()
    lines = (tmp_path / "sub" / "records.jsonl").read_text().splitlines()
    docs = [json.loads(line) for line in lines]
    assert [d["offset"] for d in docs] == [101, 102]
    assert docs[0]["template"] == "job <*> done" and docs[0]["params"] == ["1"]
    assert set(docs[0]) >= {"tag", "source", "offset", "time", "level", "component", "message", "template_id",
                            "template", "params", "raw"}


def test_alerts_round_trip_through_the_versioned_schema(tmp_path: Path) -> None:
    out = FileOutput(FileConfig(path=str(tmp_path / "alerts.jsonl"), fsync=False), _ctx(tmp_path))
    assert isinstance(out.deliver([_alert(1), _alert(2)]), Sent)
    out.stop()
    docs = [json.loads(line) for line in (tmp_path / "alerts.jsonl").read_text().splitlines()]
    assert [d["schema_version"] for d in docs] == [SCHEMA_VERSION] * 2
    back = alert_from_dict(docs[0])
    assert back.id == "fp1-1" and back.evidence.templates[0].observed == 9.0
    assert abs(back.first_seen - 1_700_000_000.25) < 1e-3


def test_appends_across_restarts_and_rotates_by_size(tmp_path: Path) -> None:
    path = tmp_path / "r.jsonl"
    cfg = FileConfig(path=str(path), rotate_size=ByteSize(2048), rotate_keep=2)
    for _ in range(3):
        out = FileOutput(cfg, _ctx(tmp_path))
        out.start()
        for i in range(10):
            out.write_records([_record(i)])
        out.stop()
    assert path.with_name("r.jsonl.1").exists() and path.with_name("r.jsonl.2").exists()
    assert not path.with_name("r.jsonl.3").exists()
    for p in (path, path.with_name("r.jsonl.1"), path.with_name("r.jsonl.2")):
        assert p.stat().st_size <= 2048
        for line in p.read_text().splitlines():
            json.loads(line)  # no line is torn by a rotation


def test_unwritable_target_is_retried_not_raised_for_alerts(tmp_path: Path) -> None:
    blocker = tmp_path / "blocker"
    blocker.write_text("a file where a directory should be")
    out = FileOutput(FileConfig(path=str(blocker / "alerts.jsonl")), _ctx(tmp_path))
    result = out.deliver([_alert(1)])
    assert type(result).__name__ == "Retry"


def test_preflight_refuses_a_directory_and_accepts_a_new_path(tmp_path: Path) -> None:
    assert FileOutput.preflight(FileConfig(path=str(tmp_path))) == [("path", "is a directory")]
    assert FileOutput.preflight(FileConfig(path=str(tmp_path / "new" / "x.jsonl"))) == []


_FULL_DISK_CHILD = """
import json, resource, signal, sys
from pathlib import Path
from agent.plugin import PluginContext
from plugins.outputs.file import FileConfig, FileOutput
from tests.plugins.outputs.test_file import _alert

signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # the kernel then fails the write with EFBIG, like ENOSPC
path = Path(sys.argv[1])
out = FileOutput(FileConfig(path=str(path)), PluginContext(instance="output.file.0", state_dir=path.parent, host="h"))
out.start()
_, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
first = out.deliver([_alert(i) for i in range(3)])
resource.setrlimit(resource.RLIMIT_FSIZE, (path.stat().st_size + 1000, hard))  # the disk fills mid-batch
full = out.deliver([_alert(i) for i in range(3, 20)])
resource.setrlimit(resource.RLIMIT_FSIZE, (hard, hard))  # space freed: the spool retries the same batch
again = out.deliver([_alert(i) for i in range(3, 20)])
records_full = None
resource.setrlimit(resource.RLIMIT_FSIZE, (path.stat().st_size + 100, hard))
try:
    out.write_records([_record(i) for i in range(50)])
except OSError as exc:
    records_full = exc.errno
resource.setrlimit(resource.RLIMIT_FSIZE, (hard, hard))
out.stop()
print(json.dumps([type(r).__name__ for r in (first, full, again)] + [records_full]))
"""


def test_a_disk_filling_mid_batch_leaves_no_torn_line_and_no_duplicate(tmp_path: Path) -> None:
    """A write cut short by a full disk must not leave half a batch behind the retry of the whole batch."""
    path = tmp_path / "alerts.jsonl"
    root = Path(__file__).resolve().parents[3]
    child = _FULL_DISK_CHILD.replace("import _alert", "import _alert, _record")
    done = subprocess.run([sys.executable, "-c", child, str(path)], cwd=root, capture_output=True, text=True,
                          timeout=60, env={**os.environ, "PYTHONPATH": str(root)})
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads(done.stdout.splitlines()[-1]) == ["Sent", "Retry", "Sent", errno.EFBIG]
    lines = path.read_bytes().split(b"\n")
    assert lines[-1] == b""  # ends at a line boundary
    docs = [json.loads(line) for line in lines[:-1]]  # no torn line
    assert [d["id"] for d in docs] == [f"fp{i}-{i}" for i in range(20)]  # each alert once, in order
