"""Days of log through the daemon's detectors in a minute: does its memory keep growing?

    .venv/bin/python bench/soak.py [--days 3] [--rate 8]

The live benchmark (`e2e.py`) measures a minute; a daemon runs for weeks, and state that grows with time
(windows kept for retraining, baselines per time of day, caches) only shows after days. This generates
`--days` of normal service log at `--rate` lines/s and replays it (`logwarden replay`, event time: the
detectors see days pass) with the shipped config's four detectors — the forest self-baselining after its
hour and retraining every 6 h — in a subprocess whose RSS is sampled twice a second together with its read
position in the log (from /proc), which says how many days it has seen.

Anchor: the RSS once the first simulated day is done (everything learned, every per-time-of-day slot
seen once); the table gives the growth after it per simulated day. Bounded state levels off after the first
day; state that grows without end keeps adding.
"""

from __future__ import annotations

import argparse
import collections
import json
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from e2e import ROOT, pipeline_config  # the bench folder's own helpers

DETECTORS = {
    "novelty": "    - name: novelty\n      match: '*'\n",
    "volume": "    - name: volume\n      match: '*'\n      bucket: 1m\n",
    "params": "    - name: params\n      match: app\n",
    "iforest": ("    - name: iforest\n      match: app\n      model: auto\n"
                "      window: {type: sliding, size: 60s, step: 10s}\n      learn_for: 1h\n      retrain_every: 6h\n"),
}
"""The shipped config's four, the forest retraining every 6 h so that model swaps are part of the days."""


def add_nightly_job(log: Path, days: float) -> None:
    """Insert one line of a batch job every 24 h of log time from 2 h in, in time order (the log's ISO
    timestamps sort as text); the files and seconds vary, so it is one Drain template."""
    lines = log.read_text().splitlines(keepends=True)
    start = datetime.fromisoformat(lines[0][:19]).replace(tzinfo=UTC)
    pending = [(start + timedelta(hours=2 + 24 * k)).strftime("%Y-%m-%dT%H:%M:%S.000Z")
               for k in range(int(days) + 1) if 2 + 24 * k < 24 * days]
    merged: list[str] = []
    for line in lines:
        while pending and line[:24] >= pending[0]:
            k = len(merged) % 97
            merged.append(f"{pending.pop(0)} INFO  backup-job req=000000000000 Nightly backup finished: "
                          f"{1200 + 37 * k} files in {14 + k % 9}s\n")
        merged.append(line)
    log.write_text("".join(merged))


def main() -> int:
    import psutil

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--days", type=float, default=3.0)
    ap.add_argument("--rate", type=float, default=8.0, help="Lines per second of log time.")
    ap.add_argument("--detectors", default=",".join(DETECTORS), help="Comma list: which of the four run.")
    ap.add_argument("--show-alerts", action="store_true", help="Print each alert fired: what a false page says.")
    ap.add_argument("--nightly", action="store_true",
                    help="Add a job's INFO line, never seen while learning, every 24 h from 2 h into the log: "
                    "normal, but new to the forest each time unless it learns what recurs.")
    ap.add_argument("--learn-recurring", type=int, default=None,
                    help="The forest's learn_recurring (its default, 3, when not given; 0 never learns a flagged window).")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="lw-soak-") as tmp_s:
        tmp = Path(tmp_s)
        log = tmp / "soak.log"
        subprocess.run([sys.executable, "-m", "agent.cli", "generate", "--out", str(log), "--duration",
                        f"{args.days * 86400:.0f}s", "--rate", str(args.rate), "--incidents", "none", "--seed", "4",
                        # Days that end an hour ago: the parse stage drops header times in the future (they
                        # would then count as read now, and a replay's buckets would stop closing).
                        "--start", f"{time.time() - args.days * 86400 - 3600:.0f}"],
                       cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
        if args.nightly:
            add_nightly_job(log, args.days)
        detectors = dict(DETECTORS)
        if args.learn_recurring is not None:
            detectors["iforest"] += f"      learn_recurring: {args.learn_recurring}\n"
        cfg = tmp / "soak.yaml"
        cfg.write_text(pipeline_config(tmp, detectors="".join(detectors[d] for d in args.detectors.split(",")),
                                       logs=str(log),
                                       outputs=f"    - name: file\n      path: {tmp / 'alerts.jsonl'}\n"))
        t0 = time.monotonic()
        with open(tmp / "replay.err", "w") as err:
            proc = subprocess.Popen([sys.executable, "-m", "agent.cli", "replay", str(log), "-c", str(cfg)],
                                    cwd=ROOT, stdout=subprocess.DEVNULL, stderr=err)
            ps = psutil.Process(proc.pid)
            size = log.stat().st_size
            samples: list[tuple[float, float]] = []  # (share of the log read, RSS MiB) while the log is open
            while proc.poll() is None:
                try:
                    at = [f.position for f in ps.open_files() if f.path == str(log)]
                    rss = ps.memory_info().rss / 2**20
                except psutil.NoSuchProcess:
                    break
                if at:
                    samples.append((at[0] / size, rss))
                time.sleep(0.5)
        wall = time.monotonic() - t0
        if proc.returncode != 0 or len(samples) < 20:
            print(f"replay failed (exit {proc.returncode}); see its stderr", file=sys.stderr)
            return 1
        alerts = [json.loads(line) for line in (tmp / "alerts.jsonl").read_text().splitlines()]
        firing = [a for a in alerts if a["status"] == "firing"]
        fired = collections.Counter(a["detector"] for a in firing)
    def rss_at(share: float) -> float:
        """RSS of the last sample taken before `share` of the log was read."""
        return [r for at, r in samples if at <= share + 1e-9][-1]

    anchor = rss_at(1.0 / args.days)
    print(f"{args.days:g} days at {args.rate:g} lines/s replayed in {wall:.0f} s with {args.detectors}, "
          f"{len(samples)} RSS samples (by the replay's read position in the log)\n")
    print("| simulated | RSS MiB | growth since the end of day 1 | per day after day 1 |")
    print("|---|---|---|---|")
    for k in range(1, 11):
        at = k / 10 * args.days
        rss = rss_at(k / 10)
        growth = rss - anchor if at >= 1.0 else float("nan")
        per_day = growth / (at - 1.0) if at > 1.0 else float("nan")
        print(f"| day {at:4.2f} | {rss:6.1f} | {growth:+5.1f} | {per_day:+5.2f} |")
    print(f"\nalerts fired on these normal days: {sum(fired.values())} ({', '.join(f'{d} {n}' for d, n in fired.most_common())})")
    for a in firing if args.show_alerts else []:
        print(f"  {a['detector']}: {a.get('title', '')} — {a.get('summary', '')}")
        for t in (a.get("evidence") or {}).get("templates", [])[:3]:
            print(f"      {t.get('template', '')[:90]!r}: observed {t.get('observed')}, expected {t.get('expected')}")
        for k, v in (a.get("evidence") or {}).get("params", {}).items():
            print(f"      {k}: {v}")
    print(f"\nanchor: {anchor:.1f} MiB at the end of day 1 (all learned); the stop that follows the last line "
          "(snapshots, the final save) is not sampled.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
