"""Metrics computed with numpy, cross-checked against scikit-learn; detection delays on labelled incidents."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from sklearn.metrics import average_precision_score, f1_score, precision_score, recall_score, roc_auc_score

from agent.errors import LogwardenError
from agent.evaluation import (
    AlertSpan,
    Incident,
    detection_delays,
    evaluate_scores,
    read_labels,
    roc_auc,
    roc_curve,
)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_metrics_match_sklearn_including_ties(seed: int) -> None:
    rng = np.random.default_rng(seed)
    normal = np.round(rng.normal(0.0, 1.0, 300), 1)  # rounding makes many ties
    abnormal = np.round(rng.normal(1.5, 1.0, 120), 1)
    ev = evaluate_scores(normal, abnormal, threshold=0.8)
    y = np.r_[np.zeros(300), np.ones(120)]
    s = np.r_[normal, abnormal]
    pred = s > 0.8
    m = ev.metrics
    assert m.roc_auc == pytest.approx(roc_auc_score(y, s), abs=1e-12)
    assert m.pr_auc == pytest.approx(average_precision_score(y, s), abs=1e-12)
    assert m.precision == pytest.approx(precision_score(y, pred))
    assert m.recall == pytest.approx(recall_score(y, pred))
    assert m.f1 == pytest.approx(f1_score(y, pred))
    assert (m.tp, m.fp, m.tn, m.fn) == (
        int((pred & (y == 1)).sum()), int((pred & (y == 0)).sum()), int((~pred & (y == 0)).sum()), int((~pred & (y == 1)).sum())
    )


def test_served_flags_win_over_the_threshold() -> None:
    ev = evaluate_scores([0.1, 0.2], [0.9], threshold=0.5, normal_flags=[True, False], abnormal_flags=[True])
    assert (ev.metrics.tp, ev.metrics.fp, ev.metrics.tn, ev.metrics.fn) == (1, 1, 1, 0)


def test_one_class_gives_null_auc_in_json() -> None:
    ev = evaluate_scores([0.1, 0.2], [], threshold=0.5)
    doc = ev.metrics.to_json()
    assert doc["roc_auc"] is None and doc["pr_auc"] is None
    json.dumps(doc)
    assert math.isnan(roc_auc(np.zeros(2, np.int8), np.asarray([0.1, 0.2])))


def test_roc_curve_ends_at_one_one() -> None:
    fpr, tpr, _ = roc_curve(np.asarray([0, 1, 0, 1], np.int8), np.asarray([0.1, 0.9, 0.4, 0.4]))
    assert (fpr[0], tpr[0]) == (0.0, 0.0)
    assert (fpr[-1], tpr[-1]) == (1.0, 1.0)


def test_detection_delay_per_type_and_false_alerts_per_normal_hour() -> None:
    incidents = [Incident("broken_sequence", 1000.0, 1060.0), Incident("error_burst", 5000.0, 5060.0),
                 Incident("broken_sequence", 8000.0, 8060.0)]
    alerts = [AlertSpan(990.0, 1010.0), AlertSpan(1030.0, 1050.0), AlertSpan(8050.0, 8070.0), AlertSpan(3000.0, 3010.0)]
    report = detection_delays(incidents, alerts, span=(0.0, 10_800.0))
    bs = report.per_type["broken_sequence"]
    assert (bs.incidents, bs.detected) == (2, 2)
    assert bs.delays_s == [10.0, 70.0]
    assert report.per_type["error_burst"].detected == 0
    assert report.false_alerts == 1
    assert report.normal_hours == pytest.approx((10_800 - 180) / 3600)
    assert report.to_json()["per_type"]["broken_sequence"]["recall"] == 1.0


def test_read_labels_names_the_bad_line(tmp_path: Path) -> None:
    p = tmp_path / "labels.jsonl"
    p.write_text('{"type": "error_burst", "start": 1.0, "end": 2.0, "lines": [], "sessions": []}\n{"type": 1}\n')
    with pytest.raises(LogwardenError, match=r"labels.jsonl:2"):
        read_labels(p)
    p.write_text('{"type": "error_burst", "start": 1.0, "end": 2.0}\n\n')
    assert read_labels(p) == [Incident("error_burst", 1.0, 2.0)]
