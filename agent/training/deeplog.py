"""DeepLog (Du et al., CCS'17): an LSTM that predicts the next log key from the last h keys.

Objective `next-event` (default): embedding of template ids → 2-layer LSTM → logits over the vocabulary
plus the reserved tokens (unknown, begin, end). A session is anomalous when an observed event is not among
the top-g predictions or is unknown; g comes from held-out normal sessions (see `next_event.py`).

Objective `autoencoder`: the seed's variant for time windows, an LSTM autoencoder over the per-interval
feature vectors of `agent/features.py` (counts, stats, temporal, levels — standardised as training saw
them). Consecutive intervals form sequences of `steps`; the exported graph returns each sequence's mean
squared reconstruction error, and the threshold is a quantile of that error on held-out normal intervals.

torch is imported lazily (module classes are built inside functions) so that importing this module for
`--help` or for the train-extra check costs nothing.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from agent.bundle import OnnxInfo, Threshold, new_manifest, write_bundle
from agent.features import featurize, fit_feature_spec
from agent.sequence import PAD
from agent.training import TrainingData, TrainingError
from agent.training.next_event import NextEventOptions, train_next_event, write_next_event_bundle
from agent.training.torch_common import (
    FitOptions,
    Progress,
    check_parity,
    export_onnx,
    fit,
    fit_options_from_args,
    onnx_opsets,
    quantile_threshold,
    require_torch,
    seed_everything,
)

AE_INPUT = "intervals"
AE_OUTPUT = "error"


def build_lstm(vocab_size: int, *, embed_dim: int = 32, hidden: int = 64, layers: int = 2) -> Any:
    """DeepLog's network: [B, h] int64 histories → [B, vocab_size] next-event logits."""
    require_torch()
    from torch import nn

    class DeepLogNet(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.embed = nn.Embedding(vocab_size, embed_dim, padding_idx=PAD)
            self.lstm = nn.LSTM(embed_dim, hidden, num_layers=layers, batch_first=True)
            self.head = nn.Linear(hidden, vocab_size)

        def forward(self, history: Any) -> Any:
            out, _ = self.lstm(self.embed(history))
            return self.head(out[:, -1])

    return DeepLogNet()


def build_autoencoder(n_features: int, *, hidden: int = 32) -> Any:
    """[B, T, F] float32 interval features → [B] mean squared reconstruction error."""
    require_torch()
    import torch
    from torch import nn

    class LstmAutoencoder(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.encoder = nn.LSTM(n_features, hidden, batch_first=True)
            self.decoder = nn.LSTM(hidden, hidden, batch_first=True)
            self.out = nn.Linear(hidden, n_features)

        def forward(self, intervals: Any) -> Any:
            _, (h, _) = self.encoder(intervals)
            # Broadcast the code over time without reading the length as a number: a Python int from
            # .shape lets torch.export specialise the steps axis (it did, after an earlier export).
            code = h[-1].unsqueeze(1) + torch.zeros_like(intervals[:, :, :1])
            decoded, _ = self.decoder(code)
            err = (self.out(decoded) - intervals) ** 2
            return err.mean(dim=(1, 2))

    return LstmAutoencoder()


def train(data: TrainingData, out: Path, args: argparse.Namespace) -> Path:
    """`logwarden train --model deeplog`: the table-driven entry point (see agent/training/__init__.py)."""
    objective = getattr(args, "objective", None) or "next-event"
    if objective == "autoencoder":
        return _train_autoencoder(data, out, args)
    if objective != "next-event":
        raise TrainingError(f"deeplog: unknown objective {objective!r}; choose next-event or autoencoder")
    if not data.windows:
        raise TrainingError("deeplog: the training set is empty")
    embed_dim = int(getattr(args, "embed_dim", None) or 32)
    hidden = int(getattr(args, "hidden", None) or 64)
    layers = int(getattr(args, "layers", None) or 2)
    options = NextEventOptions.from_args(
        args, session_windows=data.window.type == "session", fit=fit_options_from_args(args)
    )
    with tempfile.TemporaryDirectory(prefix="logwarden-deeplog-") as tmp:
        try:
            result = train_next_event(
                "deeplog",
                lambda v: build_lstm(v, embed_dim=embed_dim, hidden=hidden, layers=layers),
                data.sequences(),
                options,
                Path(tmp),
            )
        except ValueError as exc:
            raise TrainingError(str(exc)) from None
        arch = {"network": "lstm", "embed_dim": embed_dim, "hidden": hidden, "layers": layers}
        return write_next_event_bundle("deeplog", result, data, out, options, arch)


def interval_sequences(matrix: npt.NDArray[np.float32], steps: int) -> npt.NDArray[np.float32]:
    """Every run of `steps` consecutive interval vectors, [n - steps + 1, steps, F] (all rows when fewer)."""
    if matrix.shape[0] < steps:
        return matrix[None, :, :] if matrix.shape[0] else np.zeros((0, steps, matrix.shape[1]), dtype=np.float32)
    view = np.lib.stride_tricks.sliding_window_view(matrix, steps, axis=0)  # [n', F, steps]
    return np.ascontiguousarray(view.transpose(0, 2, 1), dtype=np.float32)


def train_autoencoder_matrix(
    matrix: npt.NDArray[np.float32],
    *,
    steps: int,
    hidden: int,
    quantile: float,
    fit_options: FitOptions,
    workdir: Path,
    holdout: float = 0.2,
) -> tuple[Path, float, dict[str, Any]]:
    """Fit the autoencoder on sequences of interval features; threshold = quantile of held-out errors.

    The held-out slice is the *last* part of the series (time order), not a random sample: neighbouring
    sequences overlap, so a random split would leak training intervals into the threshold.
    """
    torch = require_torch()
    seed_everything(fit_options.seed, fit_options.threads)
    seqs = interval_sequences(matrix, steps)
    if seqs.shape[0] < 2:
        raise ValueError(f"deeplog autoencoder: need at least {steps + 1} intervals, got {matrix.shape[0]}")
    cut = max(1, min(seqs.shape[0] - 1, round(seqs.shape[0] * (1.0 - holdout))))
    train_x, hold_x = torch.from_numpy(seqs[:cut]), torch.from_numpy(seqs[cut:])
    net = build_autoencoder(matrix.shape[1], hidden=hidden)

    def loss_fn(model: Any, x: Any) -> Any:
        return model(x).mean()

    result = fit(net, loss_fn, [train_x], [hold_x], fit_options, Progress("deeplog-ae", fit_options.epochs))
    path = workdir / "model.onnx"
    exporter = export_onnx(
        net,
        (train_x[:2],),
        path,
        input_names=[AE_INPUT],
        output_names=[AE_OUTPUT],
        dynamic={AE_INPUT: {0: ("batch", 1, 1 << 20), 1: ("steps", 1, 4096)}},
    )
    rng = np.random.default_rng(fit_options.seed)
    probes = [{AE_INPUT: rng.normal(size=(b, t, matrix.shape[1])).astype(np.float32)} for b, t in ((1, steps), (5, steps), (3, steps + 3))]
    parity = check_parity(net, path, probes)
    with torch.no_grad():
        errors = net(hold_x).numpy().astype(np.float64)
    threshold = quantile_threshold(errors, quantile)
    summary = {"intervals": int(matrix.shape[0]), "sequences": int(seqs.shape[0]), "holdout_sequences": int(hold_x.shape[0]),
               "fit": result.to_json(), "parity_max_abs_error": parity, "exporter": exporter}
    return path, threshold, summary


def _train_autoencoder(data: TrainingData, out: Path, args: argparse.Namespace) -> Path:
    if len(data.windows) < 3:
        raise TrainingError("deeplog autoencoder: needs a series of at least 3 time windows (train with --input LOG)")
    steps = int(getattr(args, "steps", None) or 8)
    hidden = int(getattr(args, "hidden", None) or 32)
    quantile = float(getattr(args, "quantile", None) or 0.995)
    spec = fit_feature_spec(data.windows, groups=("counts", "stats", "temporal", "levels"))
    windows = sorted(data.windows, key=lambda w: (w.start, w.end))
    matrix = featurize(spec, windows)
    options = fit_options_from_args(args)
    with tempfile.TemporaryDirectory(prefix="logwarden-deeplog-ae-") as tmp:
        try:
            path, threshold, summary = train_autoencoder_matrix(
                matrix, steps=min(steps, len(windows) - 1), hidden=hidden, quantile=quantile,
                fit_options=options, workdir=Path(tmp),
            )
        except ValueError as exc:
            raise TrainingError(str(exc)) from None
        manifest = new_manifest(
            detector="deeplog",
            window=data.window,
            features=spec,
            threshold=Threshold(threshold, "quantile of held-out normal reconstruction errors", quantile),
            onnx=OnnxInfo([AE_INPUT], [AE_OUTPUT], onnx_opsets(path)),
            training={"source": data.source, "windows": len(windows), **summary},
            train_command=data.command,
            model={"objective": "autoencoder", "architecture": {"network": "lstm-autoencoder", "hidden": hidden},
                   "steps": min(steps, len(windows) - 1), "seed": options.seed, "threads": options.threads},
            drain_snapshot=data.drain_snapshot,
            template_names=data.template_names(),
        )
        return write_bundle(out, path.read_bytes(), manifest, data.extra_files)
