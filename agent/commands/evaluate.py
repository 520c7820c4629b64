"""`logwarden evaluate`: how well a bundle separates labelled normal from abnormal data, as one JSON object.

Two modes:
- `--normal FILE --abnormal FILE` (sessions, DeepLog's format): every session is scored with the bundle
  exactly as `logwarden score` does, and flagged by the bundle's own threshold — the evaluation never
  re-picks a threshold on the labels. Prints precision, recall, f1, roc_auc, pr_auc, tp, fp, tn, fn.
- `--labels FILE --input LOG...` (time-windowed logs from `logwarden generate`): every window is scored,
  flagged windows are alerts, and the output is recall and detection delay per incident type plus false
  alerts per hour of incident-free traffic.

`--report DIR` adds PNG plots and an `index.html`/`report.md` (sessions mode), via `agent.report`.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from agent.errors import LogwardenError


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", required=True, type=Path, metavar="DIR", help="Model bundle folder.")
    p.add_argument("--normal", type=Path, metavar="FILE", help="Normal sessions (DeepLog's format).")
    p.add_argument("--abnormal", type=Path, metavar="FILE", help="Abnormal sessions (DeepLog's format).")
    p.add_argument("--labels", type=Path, metavar="FILE", help="Incident labels JSONL from `logwarden generate`.")
    p.add_argument("--input", type=Path, nargs="+", metavar="LOG", help="Log files the labels describe.")
    p.add_argument("--log-format", metavar="FMT", help="Header format of --input.")
    p.add_argument("--grace", type=float, default=0.0, metavar="S",
                   help="Seconds after an incident's end during which an alert still counts as detecting it.")
    p.add_argument("--report", type=Path, metavar="DIR", help="Write PNG plots and index.html/report.md here.")
    p.add_argument("--batch-size", type=int, default=256, help="Windows per onnxruntime call.")


def run(args: argparse.Namespace) -> int:
    if args.labels is not None or args.input is not None:
        if args.labels is None or args.input is None:
            raise LogwardenError("detection-delay mode needs both --labels FILE and --input LOG...")
        doc = evaluate_delays(args)
    else:
        if args.normal is None or args.abnormal is None:
            raise LogwardenError("evaluate needs --normal FILE and --abnormal FILE (or --labels FILE --input LOG...)")
        if args.report is not None:  # before scoring: a report folder that cannot exist was a late traceback
            try:
                args.report.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise LogwardenError(f"--report {args.report}: {exc.strerror or exc}") from None
        doc = evaluate_sessions(args)
    sys.stdout.write(json.dumps(doc, sort_keys=False) + "\n")
    return 0


def evaluate_sessions(args: argparse.Namespace) -> dict[str, object]:
    from agent.commands.score import score_corpus
    from agent.evaluation import evaluate_scores

    scores: dict[str, list[float]] = {}
    threshold = 0.0
    for name, path in (("normal", args.normal), ("abnormal", args.abnormal)):
        ns = argparse.Namespace(sessions=path, input=None, log_format=None, batch_size=args.batch_size)
        scores[name], threshold = score_corpus(args.model, ns)
    if not scores["normal"] and not scores["abnormal"]:
        raise LogwardenError("nothing to evaluate: both sessions files are empty")
    ev = evaluate_scores(scores["normal"], scores["abnormal"], threshold)
    doc: dict[str, object] = dict(ev.metrics.to_json())
    if args.report is not None:
        from agent.report import write_report

        context = {"model": str(args.model), "normal": str(args.normal), "abnormal": str(args.abnormal),
                   "normal_sessions": len(scores["normal"]), "abnormal_sessions": len(scores["abnormal"])}
        write_report(args.report, ev, title=f"logwarden evaluation of {args.model.name}", context=context)
        print(f"wrote report to {args.report / 'index.html'}", file=sys.stderr)
    return doc


def evaluate_delays(args: argparse.Namespace) -> dict[str, object]:
    from agent.bundle import load_bundle
    from agent.corpus import load_logs
    from agent.evaluation import AlertSpan, detection_delays, read_labels
    from agent.scoring import open_window_model

    incidents = read_labels(args.labels)
    bundle = load_bundle(args.model)
    model = open_window_model(bundle)
    corpus = load_logs(args.input, args.log_format, bundle.window, bundle.files.get("drain.json"))
    if not corpus.windows:
        raise LogwardenError("nothing to evaluate: the input holds no windows")
    windows = sorted(corpus.windows, key=lambda w: (w.end, w.start))
    alerts: list[AlertSpan] = []
    batch = max(1, int(args.batch_size))
    for i in range(0, len(windows), batch):
        part = windows[i : i + batch]
        scored = model.score_windows(part).score
        alerts.extend(AlertSpan(w.start, w.end) for w, s in zip(part, scored, strict=True) if s > model.threshold)
    span = (min(w.start for w in windows), max(w.end for w in windows))
    report = detection_delays(incidents, alerts, span=span, grace_s=args.grace)
    return {"windows": len(windows), "alerts": len(alerts), **report.to_json()}
