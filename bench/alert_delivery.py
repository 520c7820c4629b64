"""Benchmark: 10,000 alerts through a receiver that is down for the first 60 s, with one router restart.

A child process runs the alert router (webhook output, SQLite spool) and submits every alert while the
receiver refuses connections; the child is killed (SIGKILL by default) halfway through the outage and a
second child is started on the same spool. The receiver comes back after `--down` seconds. Reported:
alerts lost (accepted by `submit` but never received: must be 0), duplicates (requests beyond one per
idempotency key), and the delivery latency after recovery (receipt time minus recovery time).

Anchors measured in the same run on the same alerts:
- `no outage`: the same router with the receiver up all along and no restart (latency = receipt minus
  submit), the best the spool-and-retry path can do;
- `fire-and-forget`: a plain `requests.post` per alert with no spool and no retry, during the same kind
  of outage: what an agent without durable delivery loses.

    .venv/bin/python bench/alert_delivery.py                 # full run (60 s outage)
    .venv/bin/python bench/alert_delivery.py --down 10 --alerts 2000   # while developing
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from agent.alerting.config import AlertsConfig, RetryConfig  # noqa: E402
from agent.alerting.router import AlertRouter  # noqa: E402
from agent.alerting.testing import Receiver  # noqa: E402
from agent.plugin import PluginContext  # noqa: E402
from agent.schema import Duration  # noqa: E402
from agent.types import Evidence, Score, TemplateEvidence  # noqa: E402
from plugins.outputs.webhook import WebhookConfig, WebhookOutput  # noqa: E402


def make_scores(start: int, n: int) -> list[Score]:
    return [
        Score(detector="novelty", stream="bench", key=f"w{i // 10}", start=float(i), end=float(i) + 1, score=1.0,
              threshold=0.5, is_anomaly=True, title=f"new template {i}", summary="a template never seen before",
              evidence=Evidence([TemplateEvidence(i, f"job <*> failed with code {i}", 3.0, 0.0)],
                                [f"2024-01-01 ERROR job 17 failed with code {i}"]),
              source="/var/log/bench.log", condition=f"cond-{i}")
        for i in range(start, start + n)
    ]


# ------------------------------------------------------------------------------------------------ child


def child(args: argparse.Namespace) -> int:
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    ctx = PluginContext(instance="output.webhook.0", state_dir=Path(args.spool).parent, host="bench")
    hook = WebhookOutput(WebhookConfig(url=args.url), ctx)
    config = AlertsConfig(max_per_minute=10**9, output_max_per_minute=10**9, max_pending=10**7,
                          retry=RetryConfig(base=Duration(args.base), cap=Duration(args.cap)))
    router = AlertRouter(config, [("output.webhook.0", "*", hook)], Path(args.spool), "bench")
    router.start()
    out = sys.stdout
    for start in range(0, args.alerts, args.batch):
        created = router.submit(make_scores(start, min(args.batch, args.alerts - start)))
        now = time.time()
        out.write("".join(f"A {a.id} {now:.6f}\n" for a in created))
        out.flush()
    out.write("SUBMITTED\n")
    out.flush()
    while not stop.wait(0.2):
        if args.exit_when_empty and router.stats()["pending"] == 0:
            break
    stats = router.stats()
    router.close(5.0)
    out.write(f"STATS {json.dumps(stats)}\n")
    out.flush()
    return 0


def spawn(args: argparse.Namespace, spool: Path, url: str, alerts: int, *, exit_when_empty: bool = False
          ) -> subprocess.Popen[str]:
    cmd = [sys.executable, __file__, "--child", "--spool", str(spool), "--url", url, "--alerts", str(alerts),
           "--batch", str(args.batch), "--base", str(args.base), "--cap", str(args.cap)]
    if exit_when_empty:
        cmd.append("--exit-when-empty")
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, cwd=ROOT)


def read_submitted(proc: subprocess.Popen[str], into: dict[str, float], done: threading.Event) -> None:
    assert proc.stdout is not None
    for line in proc.stdout:
        if line.startswith("A "):
            _, aid, t = line.split()
            into[aid] = float(t)
        elif line.startswith("SUBMITTED"):
            done.set()
    done.set()


# ------------------------------------------------------------------------------------------------ runs


def first_receipts(rx: Receiver) -> tuple[dict[str, float], int]:
    first: dict[str, float] = {}
    total = 0
    for r in list(rx.accepted):
        total += 1
        key = r.headers.get("idempotency-key", "")
        if key not in first:
            first[key] = r.at
    return first, total - len(first)


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    s = sorted(values)
    return s[min(len(s) - 1, int(q * len(s)))]


def run_outage(args: argparse.Namespace, work: Path) -> dict[str, float]:
    rx = Receiver()
    port = rx.port
    rx.down()
    spool = work / "outage" / "spool.db"
    spool.parent.mkdir(parents=True)
    url = f"http://127.0.0.1:{port}/hook"
    t0 = time.time()
    submitted: dict[str, float] = {}
    done = threading.Event()
    first = spawn(args, spool, url, args.alerts)
    reader = threading.Thread(target=read_submitted, args=(first, submitted, done), daemon=True)
    reader.start()
    done.wait()
    kill_at = t0 + args.down * args.kill_at
    time.sleep(max(0.0, kill_at - time.time()))
    first.send_signal(signal.SIGKILL if args.signal == "KILL" else signal.SIGTERM)
    first.wait()
    reader.join(5)
    second = spawn(args, spool, url, 0)
    threading.Thread(target=lambda: second.stdout and second.stdout.read(), daemon=True).start()
    time.sleep(max(0.0, t0 + args.down - time.time()))
    rx.up()
    recovered = time.time()
    deadline = recovered + args.timeout
    while time.time() < deadline:
        got, _ = first_receipts(rx)
        if all(a in got for a in submitted):
            break
        time.sleep(0.2)
    second.send_signal(signal.SIGTERM)
    second.wait(30)
    got, dups = first_receipts(rx)
    rx.close()
    lat = [got[a] - recovered for a in submitted if a in got]
    return {"alerts": len(submitted), "lost": sum(1 for a in submitted if a not in got), "duplicates": dups,
            "p50": pct(lat, 0.5), "p99": pct(lat, 0.99), "drain_s": max(lat) if lat else float("nan"),
            "rate": len(lat) / max(lat) if lat else float("nan")}


def run_no_outage(args: argparse.Namespace, work: Path) -> dict[str, float]:
    rx = Receiver()
    spool = work / "anchor" / "spool.db"
    spool.parent.mkdir(parents=True)
    submitted: dict[str, float] = {}
    done = threading.Event()
    proc = spawn(args, spool, rx.url + "/hook", args.alerts, exit_when_empty=True)
    read_submitted(proc, submitted, done)
    proc.wait(args.timeout)
    got, dups = first_receipts(rx)
    rx.close()
    lat = [got[a] - submitted[a] for a in submitted if a in got]
    span = (max(got.values()) - min(submitted.values())) if got else float("nan")
    return {"alerts": len(submitted), "lost": sum(1 for a in submitted if a not in got), "duplicates": dups,
            "p50": pct(lat, 0.5), "p99": pct(lat, 0.99), "drain_s": span, "rate": len(lat) / span if lat else 0.0}


def run_fire_and_forget(args: argparse.Namespace) -> dict[str, float]:
    rx = Receiver()
    rx.down()
    session = requests.Session()
    sent_ok = 0
    t0 = time.time()
    n = args.alerts
    for i in range(n):
        # The first half of the alerts is raised during the outage, the rest after recovery.
        if i == n // 2:
            rx.up()
        try:
            r = session.post(rx.url + "/hook", data=json.dumps({"i": i}), headers={"Idempotency-Key": str(i)},
                             timeout=5)
            sent_ok += r.ok
        except requests.RequestException:
            pass
    span = time.time() - t0
    _got, dups = first_receipts(rx)
    rx.close()
    return {"alerts": n, "lost": n - sent_ok, "duplicates": dups, "p50": float("nan"), "p99": float("nan"),
            "drain_s": span, "rate": n / span}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--alerts", type=int, default=10_000)
    p.add_argument("--down", type=float, default=60.0, help="Seconds the receiver refuses connections.")
    p.add_argument("--kill-at", type=float, default=0.5, help="Fraction of the outage when the router is killed.")
    p.add_argument("--signal", choices=["KILL", "TERM"], default="KILL")
    p.add_argument("--base", type=float, default=1.0, help="retry.base in seconds.")
    p.add_argument("--cap", type=float, default=30.0, help="retry.cap in seconds.")
    p.add_argument("--batch", type=int, default=100, help="Scores per submit() call.")
    p.add_argument("--timeout", type=float, default=600.0)
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--spool", help=argparse.SUPPRESS)
    p.add_argument("--url", help=argparse.SUPPRESS)
    p.add_argument("--exit-when-empty", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        return child(args)
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    with tempfile.TemporaryDirectory(prefix="lw-bench-") as tmp:
        work = Path(tmp)
        anchor = run_no_outage(args, work)
        outage = run_outage(args, work)
    naive = run_fire_and_forget(args)
    print(f"\nalert delivery: {args.alerts} alerts, receiver down {args.down:g}s, router SIG{args.signal} at "
          f"{args.kill_at:.0%} of the outage then restarted; retry base {args.base:g}s cap {args.cap:g}s")
    head = f"{'run':<34}{'alerts':>8}{'lost':>8}{'dups':>7}{'p50 s':>9}{'p99 s':>9}{'drain s':>9}{'alerts/s':>10}"
    print(head)
    print("-" * len(head))
    for name, r in (("spool+retry, outage+restart", outage), ("anchor: spool+retry, no outage", anchor),
                    ("anchor: fire-and-forget, outage", naive)):
        print(f"{name:<34}{r['alerts']:>8.0f}{r['lost']:>8.0f}{r['duplicates']:>7.0f}{r['p50']:>9.2f}"
              f"{r['p99']:>9.2f}{r['drain_s']:>9.2f}{r['rate']:>10.0f}")
    print(f"\nratio drain rate after recovery / no-outage rate: {outage['rate'] / anchor['rate']:.2f}")
    print("p50/p99 of the outage run are measured from recovery; of the no-outage anchor from submit.")
    return 0 if outage["lost"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
