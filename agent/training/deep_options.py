"""`logwarden train` options of the deep models (deeplog, transformer), kept beside their trainers.

Only argparse here: the CLI builds its parser for every command, so this module must cost nothing to
import. Every option defaults to None and the trainers fall back to their own defaults, so the same
namespace serves both models and the ones a model does not use are ignored.
"""

from __future__ import annotations

import argparse


def add_arguments(group: argparse._ArgumentGroup) -> None:
    group.add_argument("--objective", choices=["next-event", "autoencoder", "classify"], default=None,
                       help="deeplog: next-event (default) or autoencoder (time windows); "
                            "transformer: next-event (default) or classify (supervised, needs --abnormal).")
    group.add_argument("--history", type=int, default=None, metavar="H", help="Events of context per prediction (default 10).")
    group.add_argument("--top-g", type=int, default=None, metavar="G",
                       help="An event outside the top-g predictions is anomalous (default: chosen from held-out normal sessions).")
    group.add_argument("--seen-context", type=int, default=None, metavar="K",
                       help="An event whose transition (last K events -> it) occurred in normal training data counts as "
                            "predicted whatever its rank; 0 turns this off (at most --history). Default: chosen with "
                            "--seen-min-count from held-out normal sessions (the smallest g, then the strictest setting among off, "
                            "3, 4, 6, 8 or --history whose held-out share above g is within one standard error of the "
                            "lowest); the choice, the band and every candidate are recorded in the manifest "
                            "(model.seen_selection).")
    group.add_argument("--seen-min-count", type=int, default=None, metavar="N",
                       help="A transition is allowlisted only when it occurred in at least N distinct normal sessions "
                            "(default: chosen from 1, 2, 3, 5 by the same held-out rule as --seen-context).")
    group.add_argument("--restarts", type=int, default=None, metavar="R",
                       help="next-event: train R models with seeds SEED .. SEED+R-1 on the same training/held-out split, "
                            "choose each one's g and allowlist on the held-out normal sessions, and keep the one with "
                            "the smallest g (the tightest acceptance at the same held-out coverage), ties to the lower "
                            "held-out share above g, then the lower seed (never the validation loss); every restart "
                            "and the choice are recorded in the manifest (model.restarts). Only the kept model is "
                            "exported. Default 3; 1 trains a single model.")
    group.add_argument("--quantile", type=float, default=None,
                       help="Share of held-out normal sessions the threshold (g) must pass (default 0.99).")
    group.add_argument("--epochs", type=int, default=None, help="Most epochs (early stopping usually ends sooner; default 60).")
    group.add_argument("--batch-size", type=int, default=None, help="Training mini-batch (default 64).")
    group.add_argument("--learning-rate", type=float, default=None, help="Adam learning rate (default 0.003).")
    group.add_argument("--patience", type=int, default=None, help="Epochs without validation improvement before stopping (default 5).")
    group.add_argument("--threads", type=int, default=None, help="torch threads (default 2).")
    group.add_argument("--embed-dim", type=int, default=None, help="deeplog: template embedding size (default 32).")
    group.add_argument("--hidden", type=int, default=None, help="deeplog: LSTM units (default 64; autoencoder 32).")
    group.add_argument("--layers", type=int, default=None, help="LSTM or encoder layers (default 2).")
    group.add_argument("--d-model", type=int, default=None, help="transformer: model width (default 64).")
    group.add_argument("--heads", type=int, default=None, help="transformer: attention heads (default 4).")
    group.add_argument("--ff", type=int, default=None, help="transformer: feed-forward width (default 128).")
    group.add_argument("--max-len", type=int, default=None, help="transformer classify: positions per chunk (default 128).")
    group.add_argument("--steps", type=int, default=None, help="deeplog autoencoder: consecutive windows per sequence (default 8).")
