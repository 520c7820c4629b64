"""Evaluation report: four PNGs (confusion matrix, PR curve, ROC curve, score distributions with the
threshold) and an `index.html` plus `report.md` that show them next to the numbers.

matplotlib is imported inside `write_report` with the Agg backend (no display, no GUI toolkit), so the
evaluate command's JSON path and the daemon never pay for it. Every file is written through
`agent.state.write_atomic`, so a report folder never holds a half-written image or page. Scores that are
"off the scale" (DeepLog's unknown-template score of 1e6) are drawn at the right edge of the histogram
instead of stretching the axis into uselessness.
"""

from __future__ import annotations

import html
import io
import json
from pathlib import Path
from typing import Any

import numpy as np

from agent.evaluation import Evaluation, pr_curve, roc_curve
from agent.state import write_atomic

IMAGES = {
    "confusion": "confusion_matrix.png",
    "pr": "pr_curve.png",
    "roc": "roc_curve.png",
    "scores": "score_distribution.png",
}


def _png(fig: Any) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    return buf.getvalue()


def write_report(out_dir: str | Path, ev: Evaluation, *, title: str, context: dict[str, Any] | None = None) -> list[Path]:
    """Write the PNGs and the pages; returns the files written."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    m = ev.metrics
    labels, scores = ev.labels, ev.scores
    written: list[Path] = []

    def save(key: str, fig: Any) -> None:
        path = out / IMAGES[key]
        write_atomic(path, _png(fig))
        plt.close(fig)
        written.append(path)

    fig, ax = plt.subplots(figsize=(4.2, 3.6))
    cells = np.asarray([[m.tn, m.fp], [m.fn, m.tp]])
    ax.imshow(cells, cmap="Blues")
    for (i, j), v in np.ndenumerate(cells):
        ax.text(j, i, str(v), ha="center", va="center", color="black", fontsize=12)
    ax.set_xticks([0, 1], ["normal", "anomaly"])
    ax.set_yticks([0, 1], ["normal", "abnormal"])
    ax.set_xlabel("predicted")
    ax.set_ylabel("actual")
    ax.set_title("Confusion matrix")
    save("confusion", fig)

    fig, ax = plt.subplots(figsize=(4.6, 3.8))
    precision, recall, _ = pr_curve(labels, scores)
    ax.step(np.r_[0.0, recall], np.r_[precision[:1] if precision.size else [1.0], precision], where="post")
    ax.scatter([m.recall], [m.precision], color="red", zorder=3, label="threshold")
    ax.set_xlabel("recall")
    ax.set_ylabel("precision")
    ax.set_xlim(0, 1.02)
    ax.set_ylim(0, 1.02)
    ax.set_title(f"PR curve (AP {_fmt(m.pr_auc)})")
    ax.legend(loc="lower left")
    save("pr", fig)

    fig, ax = plt.subplots(figsize=(4.6, 3.8))
    fpr, tpr, _ = roc_curve(labels, scores)
    ax.plot(fpr, tpr)
    ax.plot([0, 1], [0, 1], linestyle=":", color="grey")
    n_neg = max(1, m.fp + m.tn)
    ax.scatter([m.fp / n_neg], [m.recall], color="red", zorder=3, label="threshold")
    ax.set_xlabel("false positive rate")
    ax.set_ylabel("true positive rate")
    ax.set_title(f"ROC curve (AUC {_fmt(m.roc_auc)})")
    ax.legend(loc="lower right")
    save("roc", fig)

    fig, ax = plt.subplots(figsize=(6.0, 3.8))
    finite = scores[np.isfinite(scores)]
    cap = _display_cap(finite, ev.threshold)
    low = float(min(finite.min(initial=0.0), ev.threshold))
    bins: list[float] = np.linspace(low, cap, 50).tolist()
    for name, values, colour in (("normal", ev.normal, "tab:blue"), ("abnormal", ev.abnormal, "tab:orange")):
        if values.size:
            ax.hist(np.minimum(values, cap), bins=bins, alpha=0.6, label=f"{name} ({values.size})", color=colour)
    ax.axvline(ev.threshold, color="red", linestyle="--", label=f"threshold {ev.threshold:g}")
    ax.set_yscale("log")
    ax.set_xlabel("score (higher = more anomalous; off-scale values drawn at the right edge)")
    ax.set_ylabel("items")
    ax.set_title("Score distribution")
    ax.legend()
    save("scores", fig)

    numbers = m.to_json()
    ctx = dict(context or {})
    written.append(_write_markdown(out, title, numbers, ev.threshold, ctx))
    written.append(_write_html(out, title, numbers, ev.threshold, ctx))
    write_atomic(out / "metrics.json", json.dumps({**numbers, "threshold": ev.threshold, **ctx}, indent=2) + "\n")
    written.append(out / "metrics.json")
    return written


def _display_cap(finite: np.ndarray[Any, Any], threshold: float) -> float:
    """Right edge of the histogram: past the bulk of the scores and the threshold, below outliers like 1e6."""
    if finite.size == 0:
        return threshold * 2 if threshold > 0 else 1.0
    q = float(np.quantile(finite, 0.99))
    top = max(q, threshold) * 1.5 if max(q, threshold) > 0 else 1.0
    return max(top, threshold + 1e-9)


def _fmt(value: float | int | None) -> str:
    if value is None:
        return "n/a"
    return f"{value:.4f}" if isinstance(value, float) else str(value)


def _rows(numbers: dict[str, Any], threshold: float, ctx: dict[str, Any]) -> list[tuple[str, str]]:
    rows = [(k, _fmt(numbers[k])) for k in ("precision", "recall", "f1", "roc_auc", "pr_auc", "tp", "fp", "tn", "fn")]
    rows.append(("threshold", f"{threshold:g}"))
    rows.extend((k, str(v)) for k, v in ctx.items())
    return rows


def _write_markdown(out: Path, title: str, numbers: dict[str, Any], threshold: float, ctx: dict[str, Any]) -> Path:
    lines = [f"# {title}", "", "| metric | value |", "|---|---|"]
    lines += [f"| {k} | {v} |" for k, v in _rows(numbers, threshold, ctx)]
    lines.append("")
    for key, caption in (("confusion", "Confusion matrix"), ("pr", "Precision-recall curve"),
                         ("roc", "ROC curve"), ("scores", "Score distribution, normal vs abnormal, with the threshold")):
        lines += [f"![{caption}]({IMAGES[key]})", ""]
    path = out / "report.md"
    write_atomic(path, "\n".join(lines))
    return path


def _write_html(out: Path, title: str, numbers: dict[str, Any], threshold: float, ctx: dict[str, Any]) -> Path:
    esc = html.escape
    table = "\n".join(f"<tr><th>{esc(k)}</th><td>{esc(v)}</td></tr>" for k, v in _rows(numbers, threshold, ctx))
    images = "\n".join(f'<figure><img src="{IMAGES[k]}" alt="{esc(k)}"><figcaption>{esc(c)}</figcaption></figure>'
                       for k, c in (("confusion", "Confusion matrix"), ("pr", "Precision-recall curve"),
                                    ("roc", "ROC curve"), ("scores", "Score distribution with the threshold")))
    page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{esc(title)}</title>
<style>body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse}}
th,td{{border:1px solid #ccc;padding:4px 10px;text-align:left}}figure{{display:inline-block;margin:1em}}</style>
</head><body>
<h1>{esc(title)}</h1>
<table>
{table}
</table>
{images}
</body></html>
"""
    path = out / "index.html"
    write_atomic(path, page)
    return path
