"""`logwarden parse`: the CLI contract (tsv after all input, one line per input line, final templates)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from agent.cli import main

LINES = [
    "081109 203615 148 INFO dfs.DataNode: PacketResponder 1 for block blk_3886 terminating",
    "081109 203807 222 INFO dfs.DataNode: Receiving block blk_-1608 src: /10.250.19.102:54106",
    "081109 203900 222 INFO dfs.DataNode: PacketResponder 2 for block blk_-6952 terminating",
    "081109 204005 35 WARN dfs.FSNamesystem: heartbeat lost by worker alpha",
    "081109 204005 35 WARN dfs.FSNamesystem: heartbeat lost by worker beta",
]
FMT = "<Date> <Time> <Pid> <Level> <Component>: <Content>"


def test_tsv_prints_final_templates_one_line_per_input_line(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    log = tmp_path / "a.log"
    log.write_text("\n".join(LINES) + "\n")
    assert main(["parse", str(log), "--output", "tsv", "--log-format", FMT]) == 0
    rows = [line.split("\t") for line in capsys.readouterr().out.splitlines()]
    assert len(rows) == len(LINES)
    assert rows[0] == rows[2] and rows[0][1] == "PacketResponder <*> for block <*> terminating"
    assert rows[1][1] == "Receiving block <*> src: <*>"
    assert rows[3] == rows[4] and rows[3][1] == "heartbeat lost by worker <*>"  # the first line's final template
    assert len({r[0] for r in rows}) == 3 and all(r[0].isdigit() for r in rows)


def test_jsonl_adds_params_and_summary_counts(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    log = tmp_path / "a.log"
    log.write_text("\n".join(LINES) + "\n")
    assert main(["parse", str(log), "--output", "jsonl", "--log-format", FMT]) == 0
    docs = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert [d["params"] for d in docs[3:]] == [["alpha"], ["beta"]]
    assert docs[0]["params"] == ["1", "blk_3886"]
    assert main(["parse", str(log), "--log-format", FMT]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "5 lines, 3 templates"
    assert out[1].split("\t")[0] == "2" and out[-1].startswith("1\t")


def test_reads_stdin_with_auto_header_parsing() -> None:
    text = "2024-01-02T03:04:05Z ERROR disk 91% full\n2024-01-02T03:04:06Z ERROR disk 95% full\n\xff\n"
    proc = subprocess.run([sys.executable, "-m", "agent.cli", "parse", "--output", "tsv"], input=text.encode("latin-1"),
                          capture_output=True, check=True)
    rows = proc.stdout.decode().splitlines()
    assert len(rows) == 3 and rows[0] == rows[1] and rows[0].endswith("\tdisk <*>% full")


def test_bad_format_and_missing_file_are_errors(tmp_path: Path) -> None:
    assert main(["parse", "--log-format", "<Date> no content"]) == 1
    assert main(["parse", str(tmp_path / "missing.log")]) == 1
