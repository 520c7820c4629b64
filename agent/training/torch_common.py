"""What the PyTorch models share: the train extra check, seeding, the fit loop, progress, ONNX export.

The DeepLog LSTM, its autoencoder variant and the Transformer differ only in their network and loss; the
loop around them (seeded shuffling, Adam, early stopping on held-out normal data with the best weights
restored, a progress line per epoch on stderr) and the export (torch.onnx with the dynamo exporter, one
file, dynamic batch and sequence axes, then a parity check in onnxruntime) live here once.

torch is imported lazily inside every function: this module is imported by the trainers only, but a
missing train extra must surface as `TrainExtraMissing` naming the extra, not as an ImportError traceback.
"""

from __future__ import annotations

import contextlib
import copy
import io
import logging
import math
import sys
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import IO, TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from agent.errors import LogwardenError

if TYPE_CHECKING:
    import torch

TRAIN_EXTRA_HINT = "install the train extra: pip install 'logwarden[train]'"


class TrainExtraMissing(LogwardenError):
    """torch or onnxscript is not installed; deep models need the `train` extra."""


class ExportMismatch(LogwardenError):
    """The exported ONNX model does not reproduce the PyTorch outputs; the bundle must not be written."""


def require_torch() -> ModuleType:
    """Import torch and onnxscript (the dynamo exporter needs it) or explain which extra is missing."""
    try:
        import torch
    except ImportError:
        raise TrainExtraMissing(f"PyTorch is not installed; deep models ({TRAIN_EXTRA_HINT})") from None
    try:
        import onnxscript  # noqa: F401
    except ImportError:
        raise TrainExtraMissing(f"onnxscript is not installed; exporting to ONNX needs it ({TRAIN_EXTRA_HINT})") from None
    return torch


@dataclass(frozen=True, slots=True, kw_only=True)
class FitOptions:
    """Knobs of the shared loop. Defaults train HDFS-sized data in a minute or two on 2 cores."""

    epochs: int = 60
    batch_size: int = 64
    learning_rate: float = 3e-3
    patience: int = 5
    """Epochs without a validation improvement of `min_delta` before stopping."""
    min_delta: float = 1e-4
    seed: int = 0
    threads: int = 2
    max_seconds: float = 900.0
    """Wall-clock cap: stop after the epoch that crosses it (the best weights so far are kept)."""


@dataclass(slots=True)
class FitResult:
    epochs_run: int
    best_epoch: int
    best_val_loss: float
    train_losses: list[float] = field(default_factory=list)
    val_losses: list[float] = field(default_factory=list)
    seconds: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return {
            "epochs_run": self.epochs_run,
            "best_epoch": self.best_epoch,
            "best_val_loss": round(self.best_val_loss, 6),
            "train_losses": [round(x, 6) for x in self.train_losses],
            "val_losses": [round(x, 6) for x in self.val_losses],
            "seconds": round(self.seconds, 2),
        }


def seed_everything(seed: int, threads: int) -> None:
    """Same seed, same weights: seed every RNG torch and numpy use, and pin the thread count.

    Thread count matters for reproducibility too: reductions split differently across threads can round
    differently, so `threads` is recorded in the manifest with the seed.
    """
    torch = require_torch()
    torch.set_num_threads(threads)
    torch.manual_seed(seed)
    np.random.seed(seed % (2**32))


class Progress:
    """Loss per epoch on stderr: a redrawn bar on a terminal, one plain line per epoch otherwise."""

    def __init__(self, label: str, epochs: int, stream: IO[str] | None = None) -> None:
        self.label = label
        self.epochs = epochs
        self.stream = stream if stream is not None else sys.stderr
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())

    def epoch(self, epoch: int, train_loss: float, val_loss: float, seconds: float, note: str = "") -> None:
        if self.tty:
            width = 24
            done = round(width * epoch / max(self.epochs, 1))
            bar = "#" * done + "." * (width - done)
            self.stream.write(
                f"\r{self.label} [{bar}] {epoch}/{self.epochs} loss {train_loss:.4f} val {val_loss:.4f} "
                f"{seconds:.1f}s {note}\x1b[K"
            )
        else:
            self.stream.write(
                f"{self.label} epoch {epoch}/{self.epochs} loss {train_loss:.4f} val {val_loss:.4f} "
                f"time {seconds:.1f}s{' ' + note if note else ''}\n"
            )
        self.stream.flush()

    def done(self, message: str) -> None:
        if self.tty:
            self.stream.write("\n")
        self.stream.write(f"{self.label} {message}\n")
        self.stream.flush()


LossFn = Callable[..., "torch.Tensor"]
"""`loss_fn(model, *batch_tensors) -> scalar mean loss` of one mini-batch."""


def _batches(n: int, batch_size: int, order: Sequence[int] | None) -> Iterator[Sequence[int] | slice]:
    for start in range(0, n, batch_size):
        if order is None:
            yield slice(start, min(n, start + batch_size))
        else:
            yield order[start : start + batch_size]


def evaluate_loss(model: Any, loss_fn: LossFn, tensors: Sequence[torch.Tensor], batch_size: int) -> float:
    """Mean loss over a data set, weighted by batch size; the model is left in inference mode."""
    torch = require_torch()
    n = int(tensors[0].shape[0])
    if n == 0:
        return math.nan
    model.train(False)
    total = 0.0
    with torch.no_grad():
        for idx in _batches(n, batch_size, None):
            part = [t[idx] for t in tensors]
            total += float(loss_fn(model, *part)) * int(part[0].shape[0])
    return total / n


def fit(
    model: Any,
    loss_fn: LossFn,
    train: Sequence[torch.Tensor],
    val: Sequence[torch.Tensor],
    options: FitOptions,
    progress: Progress,
) -> FitResult:
    """Adam over shuffled mini-batches, early stopping on `val`, best weights restored at the end.

    Shuffling uses a generator seeded from `options.seed`, so the batch order is the same on every run.
    An empty `val` disables early stopping (the last epoch wins).
    """
    torch = require_torch()
    gen = torch.Generator().manual_seed(options.seed)
    opt = torch.optim.Adam(model.parameters(), lr=options.learning_rate)
    n = int(train[0].shape[0])
    # Small (deduplicated) training sets would take only a step or two per epoch, and early stopping
    # would judge the model after a handful of updates; shrink the batch so an epoch is >= 16 steps.
    batch_size = max(1, min(options.batch_size, n // 16)) if n >= 16 else max(1, n)
    result = FitResult(epochs_run=0, best_epoch=0, best_val_loss=math.inf)
    best_state = copy.deepcopy(model.state_dict())
    stale = 0
    started = time.monotonic()
    for epoch in range(1, options.epochs + 1):
        t0 = time.monotonic()
        model.train()
        order = torch.randperm(n, generator=gen).tolist()
        total = 0.0
        for idx in _batches(n, batch_size, order):
            part = [t[idx] for t in train]
            opt.zero_grad()
            loss = loss_fn(model, *part)
            loss.backward()  # type: ignore[no-untyped-call]
            torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
            opt.step()
            total += float(loss.detach()) * len(part[0])
        train_loss = total / max(n, 1)
        val_loss = evaluate_loss(model, loss_fn, val, options.batch_size * 4)
        monitored = train_loss if math.isnan(val_loss) else val_loss
        result.epochs_run = epoch
        result.train_losses.append(train_loss)
        result.val_losses.append(val_loss)
        note = ""
        if monitored < result.best_val_loss - options.min_delta:
            result.best_val_loss = monitored
            result.best_epoch = epoch
            best_state = copy.deepcopy(model.state_dict())
            stale = 0
            note = "*"
        else:
            stale += 1
        progress.epoch(epoch, train_loss, val_loss, time.monotonic() - t0, note)
        if stale >= options.patience:
            break
        if time.monotonic() - started > options.max_seconds:
            break
    model.load_state_dict(best_state)
    model.train(False)
    result.seconds = time.monotonic() - started
    progress.done(f"stopped after epoch {result.epochs_run}, best epoch {result.best_epoch} "
                  f"(val {result.best_val_loss:.4f}) in {result.seconds:.1f}s")
    return result


def dedupe_rows(*arrays: npt.NDArray[Any]) -> tuple[list[npt.NDArray[Any]], npt.NDArray[np.float32]]:
    """Collapse identical training rows into one row with a count (used as a loss weight).

    Normal log sessions repeat the same short contexts thousands of times; weighting unique rows by their
    count gives the same loss as the full set at a fraction of the forward passes.
    """
    flat = np.concatenate([a.reshape(a.shape[0], -1).astype(np.int64) for a in arrays], axis=1)
    uniq, first, counts = np.unique(flat, axis=0, return_index=True, return_counts=True)
    del uniq
    order = np.sort(first)
    count_of = dict(zip(first.tolist(), counts.tolist(), strict=True))
    weights = np.asarray([count_of[i] for i in order.tolist()], dtype=np.float32)
    return [a[order] for a in arrays], weights


def quantile_threshold(normal_scores: npt.NDArray[np.float64], quantile: float) -> float:
    """The `quantile` of scores on held-out normal data: the only data a threshold may be chosen from."""
    if normal_scores.shape[0] == 0:
        raise LogwardenError("no held-out normal data to choose a threshold from")
    return float(np.quantile(normal_scores, quantile, method="higher"))


def holdout_split(n: int, fraction: float, seed: int, minimum: int = 1) -> tuple[list[int], list[int]]:
    """Seeded split of n items into (train, held-out); the held-out part picks early stopping and thresholds."""
    rng = np.random.default_rng(seed)
    perm = rng.permutation(n).tolist()
    k = min(n - 1, max(minimum, round(n * fraction))) if n > 1 else 0
    return sorted(perm[k:]), sorted(perm[:k])


@contextlib.contextmanager
def _quiet_exporter() -> Iterator[None]:
    """The dynamo exporter prints progress and registry warnings; a CLI's stdout must stay clean."""
    loggers = [logging.getLogger(n) for n in ("torch.onnx", "torch.export", "torch._export", "onnxscript")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            yield
    finally:
        for lg, level in zip(loggers, levels, strict=True):
            lg.setLevel(level)


def export_onnx(
    model: Any,
    example: tuple[torch.Tensor, ...],
    path: Path,
    *,
    input_names: Sequence[str],
    output_names: Sequence[str],
    dynamic: dict[str, dict[int, tuple[str, int, int]]],
) -> str:
    """Export to ONE file; `dynamic` maps an input name to {axis: (dim, min, max)}. Returns the exporter used.

    The dynamo exporter comes first: the legacy TorchScript one bakes a Transformer's sequence length
    into Reshape nodes. But torch.export cannot always keep an LSTM's axes symbolic (it specialised the
    time axis of our autoencoder, and of a second LSTM exported in the same process), so the result is
    checked: when a requested dynamic axis came out fixed, the model is exported again with the legacy
    exporter, which handles LSTMs with dynamic axes. A model neither can export dynamically is refused.
    The example batch should have >= 2 rows (a batch of 1 invites specialising that axis).
    """
    torch = require_torch()
    from torch.export import Dim

    # Positional (in input order), not keyed: torch.export matches dict keys against forward()'s argument
    # names, which need not be the ONNX input names.
    shapes = tuple(
        {axis: Dim(dim_name, min=lo, max=hi) for axis, (dim_name, lo, hi) in dynamic.get(name, {}).items()} or None
        for name in input_names
    )
    model.train(False)
    torch._dynamo.reset()
    with _quiet_exporter():
        try:
            torch.onnx.export(model, example, str(path), dynamo=True, external_data=False, input_names=list(input_names),
                              output_names=list(output_names), dynamic_shapes=shapes, verbose=False)
            if not _fixed_axes(path, dynamic):
                return "dynamo"
        except Exception:
            pass
        axes = {name: {axis: dim for axis, (dim, _lo, _hi) in spec.items()} for name, spec in dynamic.items()}
        axes.update({name: {0: "batch"} for name in output_names})
        torch.onnx.export(model, example, str(path), dynamo=False, opset_version=17, input_names=list(input_names),
                          output_names=list(output_names), dynamic_axes=axes)
    fixed = _fixed_axes(path, dynamic)
    if fixed:
        raise ExportMismatch(f"the exported model has fixed sizes where dynamic axes were asked for: {fixed}")
    return "torchscript"


def _fixed_axes(path: Path, dynamic: dict[str, dict[int, tuple[str, int, int]]]) -> list[str]:
    import onnx

    graph = onnx.load(str(path), load_external_data=False).graph
    out: list[str] = []
    for inp in graph.input:
        dims = inp.type.tensor_type.shape.dim
        for axis in dynamic.get(inp.name, {}):
            if axis < len(dims) and not dims[axis].dim_param:
                out.append(f"{inp.name}[{axis}]={dims[axis].dim_value}")
    return out


def check_parity(
    model: Any,
    onnx_path: Path,
    inputs: Sequence[dict[str, npt.NDArray[Any]]],
    *,
    atol: float = 1e-4,
) -> float:
    """Run PyTorch and onnxruntime on the same inputs; raise ExportMismatch beyond `atol`.

    Returns the largest absolute difference seen, which the manifest records.
    """
    torch = require_torch()
    import onnxruntime as ort

    sess = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    names = [i.name for i in sess.get_inputs()]
    worst = 0.0
    model.train(False)
    for feed in inputs:
        with torch.no_grad():
            ref = model(*[torch.from_numpy(feed[n]) for n in names])
        got = sess.run(None, feed)[0]
        err = float(np.max(np.abs(ref.numpy() - got))) if got.size else 0.0
        if not math.isfinite(err) or err > atol:
            shapes = {k: v.shape for k, v in feed.items()}
            raise ExportMismatch(f"ONNX output differs from PyTorch by {err:.3g} (> {atol}) for inputs {shapes}")
        worst = max(worst, err)
    return worst


def onnx_opsets(path: Path) -> dict[str, int]:
    """Opset per domain of an exported model, recorded in the manifest (`""` is the default domain)."""
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    return {imp.domain or "": int(imp.version) for imp in model.opset_import}


def fit_options_from_args(args: Any, **defaults: Any) -> FitOptions:
    """FitOptions from a `logwarden train` namespace; absent attributes keep the per-model defaults."""
    base = FitOptions(**defaults)
    return FitOptions(
        epochs=int(getattr(args, "epochs", None) or base.epochs),
        batch_size=int(getattr(args, "batch_size", None) or base.batch_size),
        learning_rate=float(getattr(args, "learning_rate", None) or base.learning_rate),
        patience=int(getattr(args, "patience", None) or base.patience),
        min_delta=base.min_delta,
        seed=int(getattr(args, "seed", None) or 0),
        threads=int(getattr(args, "threads", None) or base.threads),
        max_seconds=float(getattr(args, "max_train_seconds", None) or base.max_seconds),
    )
