"""`logwarden parse [FILE...] [--output summary|tsv|jsonl] [--log-format FMT]`.

Reads lines (stdin when no file is given) through the same parse stage the daemon uses, with the daemon's
defaults (the `auto` header parser, or `format` when --log-format is given, and the default Drain
settings). Because a cluster's template keeps generalising as lines arrive, `tsv` and `jsonl` print only
after all input, one line per input line, with the *final* template of that line's cluster.
"""

from __future__ import annotations

import argparse
import json
import sys
from array import array
from collections.abc import Iterator
from pathlib import Path
from typing import TextIO


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("files", nargs="*", metavar="FILE", help="Log files to read; stdin when none is given.")
    p.add_argument("--output", choices=("summary", "tsv", "jsonl"), default="summary",
                   help="summary: templates by count; tsv: '<template_id>\\t<template>' per input line; "
                        "jsonl: one object per input line with the parameters too.")
    p.add_argument("--log-format", metavar="FMT", default=None,
                   help="Header format such as '<Date> <Time> <Level> <Component>: <Content>' (default: auto).")
    p.add_argument("--snapshot", type=Path, default=None,
                   help="Drain snapshot to start from (when it exists) and to save to at the end.")


def _lines(files: list[str]) -> Iterator[str]:
    if not files:
        for line in sys.stdin:
            yield line.rstrip("\r\n")
        return
    for name in files:
        with open(name, encoding="utf-8", errors="replace", newline="") as fh:
            for line in fh:
                yield line.rstrip("\r\n")


def run(args: argparse.Namespace) -> int:
    from agent.commands.options import check_log_options
    from agent.errors import LogwardenError
    from agent.parsing import ParseStage, default_section
    from agent.registry import Registry
    from agent.types import Record

    check_log_options(args.log_format)
    if not args.files:
        sys.stdin.reconfigure(errors="replace")  # type: ignore[union-attr]
    for name in args.files:
        if not Path(name).is_file():
            raise LogwardenError(f"{name}: {'a folder, not a file' if Path(name).is_dir() else 'no such file'}")
    stage = ParseStage.from_section(default_section(args.log_format), Registry.default(entry_points=False),
                                    args.snapshot)
    drain = stage.drain
    members = array("q")
    messages: list[str] = []
    last_template: dict[int, str] = {}
    keep_messages = args.output == "jsonl"
    batch: list[Record] = []

    def flush() -> None:
        start = len(members)
        stage.process(batch, members)
        for i, rec in enumerate(batch):
            last_template[members[start + i]] = rec.template
            if keep_messages:
                messages.append(rec.message)
        batch.clear()

    for line in _lines(args.files):
        batch.append(Record(tag="parse", source="-", raw=line))
        if len(batch) >= 1024:
            flush()
    flush()
    out = sys.stdout
    if args.output == "summary":
        _summary(out, len(members), drain)
    else:
        for i, member in enumerate(members):
            gid, template = _final(drain, member, last_template)
            if args.output == "tsv":
                out.write(f"{gid}\t{template}\n")
            else:
                params = drain.extract(gid, messages[i]) if gid >= 0 else None
                out.write(json.dumps({"line": i + 1, "template_id": gid, "template": template,
                                      "params": list(params) if params is not None else None},
                                     ensure_ascii=False) + "\n")
    if args.snapshot is not None:
        stage.save(args.snapshot)
    return 0


def _final(drain: object, member: int, last_template: dict[int, str]) -> tuple[int, str]:
    from agent.drain import Drain

    assert isinstance(drain, Drain)
    try:
        gid = drain.resolve(member)
        return gid, drain.template(gid)
    except KeyError:  # evicted since: its last template is the best answer left
        return member, last_template[member]


def _summary(out: TextIO, lines: int, drain: object) -> None:
    from agent.drain import Drain

    assert isinstance(drain, Drain)
    rows = sorted(drain.clusters(), key=lambda r: (-r[2], r[0]))
    out.write(f"{lines} lines, {len(rows)} templates\n")
    for gid, template, count in rows:
        out.write(f"{count}\t{gid}\t{template}\n")
