"""Transformer detector: the DeepLog detector's pipeline serving a `logwarden train --model transformer` bundle.

A next-event bundle is scored with the same top-g rule and explained with the same per-event misses; a
`classify` bundle scores each window's probability of being abnormal against the bundle's threshold (a
quantile of held-out normal probabilities) and explains with template count deviations. onnxruntime only.
"""

from __future__ import annotations

from typing import ClassVar

from plugins.detectors.deeplog import DeepLogDetector, SequenceDetectorConfig

TransformerConfig = SequenceDetectorConfig


class TransformerDetector(DeepLogDetector):
    name: ClassVar[str] = "transformer"
    config_class: ClassVar[type[SequenceDetectorConfig]] = SequenceDetectorConfig
