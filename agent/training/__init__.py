"""Offline training: turns windows into a model bundle. Heavy libraries (sklearn, torch) live only here.

Every detector's trainer has the same signature, so `logwarden train` dispatches through `TRAINERS` by
name and imports the module only when it is asked for:

    def train(data: TrainingData, out: Path, args: argparse.Namespace) -> Path

- `data` holds the normal training windows (already windowed per `data.window`, sessions already split
  at `max_length`), optional labelled abnormal windows (`--abnormal`, for supervised objectives), the
  Drain snapshot hash the template ids refer to (None for sessions files), a one-line description of the
  source, and the exact command line that reproduces the bundle (store it as the manifest's
  `train_command`).
- `args` is the parsed `logwarden train` namespace; `args.seed` is always set. Detector-specific options
  are read with `getattr(args, name, default)` so each trainer can add its own without touching the CLI.
- The trainer writes the bundle with `agent.bundle.write_bundle(out, model_bytes, manifest,
  data.extra_files)` (never a partial bundle) and returns its path. It raises `TrainingError` for problems users can fix (an empty
  training set, a missing extra such as torch).

`TrainingData.sequences()` gives the windows as lists of string keys, what sequence models consume.
"""

from __future__ import annotations

import argparse
import importlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from agent.errors import LogwardenError
from agent.types import Window
from agent.windows import WindowSpec

TRAINERS: dict[str, str] = {
    "iforest": "agent.training.iforest:train",
    "deeplog": "agent.training.deeplog:train",
    "transformer": "agent.training.transformer:train",
}

Trainer = Callable[["TrainingData", Path, argparse.Namespace], Path]


class TrainingError(LogwardenError):
    """Training cannot proceed for a reason the user can fix (no data, a missing extra, a bad option)."""


@dataclass(slots=True)
class TrainingData:
    windows: list[Window]
    window: WindowSpec
    command: str
    source: str = ""
    drain_snapshot: str | None = None
    abnormal: list[Window] = field(default_factory=list)
    extra_files: dict[str, bytes] = field(default_factory=dict)
    """Files the bundle must carry besides the model (e.g. `drain.json` for raw-log input): pass them on."""

    def sequences(self) -> list[list[str]]:
        return [[str(e) for e in w.events] for w in self.windows]

    def template_names(self) -> dict[int, str]:
        """Each template's text as the training windows last carried it (the manifest's `templates`)."""
        return window_names(self.windows)


def window_names(windows: Sequence[object]) -> dict[int, str]:
    """Template id → text over windows in order (a later text wins); summaries carry none."""
    names: dict[int, str] = {}
    for w in windows:
        if isinstance(w, Window):
            names.update(w.templates)
    return names


def resolve_trainer(model: str) -> Trainer:
    """The `train` function for a detector name; a clear TrainingError when it is unknown or not installed."""
    target = TRAINERS.get(model)
    if target is None:
        raise TrainingError(f"unknown model {model!r}; choose one of {', '.join(sorted(TRAINERS))}")
    module_name, _, func_name = target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name and module_name.startswith(exc.name):
            raise TrainingError(f"training for {model!r} is not available in this build ({module_name} is missing)") from None
        raise TrainingError(
            f"training for {model!r} needs the package {exc.name!r}; install logwarden's 'train' extra"
        ) from None
    func: Trainer = getattr(module, func_name)
    return func
