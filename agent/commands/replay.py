"""`logwarden replay FILE... -c CONFIG`: the configured pipeline over files, as fast as possible.

The same Pipeline as `run`, with the inputs replaced by the files and timers driven by the records' own
times; the files are read and processed on one thread (`Pipeline.process_inline`): the worker's code,
without a queue between a reader thread and it. State goes to a temporary directory unless `--state-dir`
is given, so a replay never moves the daemon's offsets, templates or alert spool.
"""

from __future__ import annotations

import argparse
import dataclasses
import fnmatch
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from agent.errors import LogwardenError


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("files", nargs="+", type=Path, help="Log files to replay, in order.")
    p.add_argument("-c", "--config", required=True, help="The YAML config file.")
    p.add_argument("--state-dir", type=Path, help="Keep state here instead of a temporary directory.")
    p.add_argument("--quiet", action="store_true", help="No progress bar and no summary.")


def run(args: argparse.Namespace) -> int:
    from agent.config import load_config
    from agent.logsetup import configure
    from agent.registry import Registry

    registry = Registry.default()
    config = load_config(args.config, registry)
    configure(config.service.log_level if not args.quiet else "warning")
    for f in args.files:
        if not f.is_file():
            raise LogwardenError(f"{f}: not a readable file")
    if args.state_dir is not None:
        try:
            args.state_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise LogwardenError(f"--state-dir {args.state_dir}: {exc.strerror or exc}") from None
    with tempfile.TemporaryDirectory(prefix="logwarden-replay-") as tmp:
        state_dir = args.state_dir or Path(tmp)
        summary = replay(config, registry, args.files, state_dir, progress=not args.quiet and sys.stderr.isatty())
    if not args.quiet:
        print(format_summary(summary), file=sys.stderr)
    return 0


def replay(config: Any, registry: Any, files: list[Path], state_dir: Path, *, progress: bool = False,
           on_alerts: Any = None) -> dict[str, Any]:
    """Run `config`'s pipeline over `files`; returns a summary. Shared by `replay` and `demo`."""
    from agent.pipeline import Pipeline
    from agent.replay import FileReplayInput

    service = dataclasses.replace(config.service, state_dir=str(state_dir))
    config = dataclasses.replace(config, service=service)
    section = _section_for(config, files[0])
    multiline = getattr(section.config, "multiline", None)
    max_line = getattr(section.config, "max_line_size", None)
    source = FileReplayInput(
        files, section.tag, batch_size=service.batch_size,
        multiline_start=getattr(multiline, "start", None) if multiline is not None else None,
        max_line_bytes=max_line.bytes if max_line is not None else 1 << 20,
    )
    pipeline = Pipeline(config, registry, inputs=[(section, source)], event_time=True, on_alerts=on_alerts)
    total_bytes = sum(f.stat().st_size for f in files)
    started = time.monotonic()
    pipeline.start(inline=True)
    stop_bar = threading.Event()
    bar = threading.Thread(target=_progress, args=(source, total_bytes, stop_bar), daemon=True) if progress else None
    if bar is not None:
        bar.start()
    try:
        for batch in source.batches():
            pipeline.process_inline(0, batch)
        pipeline.finish_inline()
    except BaseException:  # a file that cannot be read, or Ctrl-C: state saved and outputs closed first
        pipeline.stop()
        raise
    finally:
        stop_bar.set()
        if bar is not None:
            bar.join()
    elapsed = time.monotonic() - started
    stats = pipeline.component_stats()
    templates = sum(1 for p in pipeline.parsers for _ in p.drain.clusters())
    alerts = pipeline.router.recent(10_000)
    pipeline.stop()
    return {
        "files": [str(f) for f in files], "lines": source.lines, "records": pipeline.stats.records,
        "seconds": elapsed, "lines_per_s": source.lines / elapsed if elapsed > 0 else 0.0,
        "templates": templates, "scores": pipeline.stats.scores, "anomalies": pipeline.stats.anomalies,
        "alerts": len(alerts), "stage_errors": pipeline.stats.stage_errors, "stats": stats,
    }


def _section_for(config: Any, path: Path) -> Any:
    """The input whose path globs match the file, else the first input: its tag and parser apply."""
    for section in config.inputs:
        for pattern in getattr(section.config, "path", []) or []:
            if fnmatch.fnmatch(str(path.resolve()), pattern) or fnmatch.fnmatch(path.name, Path(pattern).name):
                return section
    return config.inputs[0]


def _progress(source: Any, total: int, stop: threading.Event) -> None:
    while not stop.wait(0.2):
        frac = source.bytes / total if total else 1.0
        filled = int(frac * 30)
        sys.stderr.write(f"\r[{'#' * filled}{'.' * (30 - filled)}] {frac:6.1%} {source.lines:>10,} lines")
        sys.stderr.flush()
    sys.stderr.write("\r" + " " * 60 + "\r")


def format_summary(s: dict[str, Any]) -> str:
    return (
        f"replayed {s['lines']:,} lines from {len(s['files'])} file(s) in {s['seconds']:.2f}s "
        f"({s['lines_per_s']:,.0f} lines/s): {s['templates']} templates, {s['scores']} windows scored, "
        f"{s['anomalies']} anomalous, {s['alerts']} alerts, {s['stage_errors']} stage errors"
    )
