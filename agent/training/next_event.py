"""The next-event objective shared by the DeepLog LSTM and the Transformer (semi-supervised, normal data only).

Both networks map the last h tokens of a session to logits over the vocabulary; everything around the
network is the same and lives here: the vocabulary and windows (from `agent/sequence.py`, the path the
daemon uses too), deduplicated weighted training rows, the fit loop, the export and parity check, and the
choice of g. g is the threshold: a session is anomalous when its score exceeds g, i.e. when one of its
events was not among the top-g predictions. Unless given, g is the smallest integer that keeps the
`quantile` of *held-out normal* sessions below it, scored by the exported ONNX model through the same
function the daemon calls — so the threshold belongs to exactly the model that is served.

Training restarts (`NextEventOptions.restarts`): the same split is fitted with several seeds, each
restart is judged by the same held-out rules (g, then the allowlist), and `choose_restart` keeps the one
with the smallest g. Some fits land on a model whose held-out normal sessions need a larger g, which
lets every anomaly ranked just inside it through; held-out normal data can see that, labels are not needed.
Only the kept restart is exported.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from agent.bundle import OnnxInfo, Threshold, new_manifest, write_bundle
from agent.features import fit_feature_spec
from agent.sequence import (
    TRANSITIONS_FILE,
    TRANSITIONS_HASH,
    UNKNOWN_SCORE,
    Encoder,
    IntArray,
    NextEventBatch,
    SeenTransitions,
    Vocabulary,
    next_event_windows,
    predict_windows,
    session_scores,
)
from agent.training.seen_selection import (
    MIN_TOP_G,
    RESTART_RULE,
    SEEN_CONTEXTS,
    SEEN_MIN_COUNTS,
    RestartResult,
    SeenCandidate,
    choose_restart,
    choose_seen,
)
from agent.training.torch_common import (
    FitOptions,
    FitResult,
    Progress,
    check_parity,
    dedupe_rows,
    export_onnx,
    fit,
    holdout_split,
    onnx_opsets,
    require_torch,
    seed_everything,
)

if TYPE_CHECKING:
    from agent.training import TrainingData

INPUT_NAME = "history"
OUTPUT_NAME = "logits"


@dataclass(frozen=True, slots=True, kw_only=True)
class NextEventOptions:
    history: int = 10
    top_g: int | None = None
    """Fixed g; None chooses it from held-out normal sessions at `quantile` (at least `min_top_g`)."""
    quantile: float = 0.99
    min_top_g: int = MIN_TOP_G
    holdout: float = 0.2
    """Share of the normal sessions held out for early stopping and for choosing g and the allowlist."""
    bounded: bool = True
    """Sessions with real begin and end (session windows): BOS/EOS become predicted events."""
    weight_power: float = 1.0
    """Training rows weigh count ** weight_power (1 = plain cross-entropy over all windows)."""
    seen_context: int | None = None
    """Tokens of context of the seen-transition allowlist (`agent.sequence.SeenTransitions`), at most the
    history; 0 = off (the plain top-g rule); None = chosen from held-out normal data (`choose_seen`) among
    off, `SEEN_CONTEXTS` and the history."""
    seen_min_count: int | None = None
    """Distinct normal sessions a transition must occur in to be allowlisted; None = chosen from held-out
    normal data among `SEEN_MIN_COUNTS`. More than 1 keeps a transition that only a stray session or two of
    the "normal" data shows (HDFS's normal sessions hold a few that the abnormal ones repeat) scored by rank."""
    restarts: int = 3
    """Models trained with seeds seed .. seed + restarts - 1 on the same split; `choose_restart` keeps one
    (1 = a single model). Only the kept one is exported."""
    fit: FitOptions = field(default_factory=FitOptions)

    @classmethod
    def from_args(cls, args: Any, *, session_windows: bool, fit: FitOptions) -> NextEventOptions:
        """The next-event options of `logwarden train` (shared by the DeepLog and Transformer trainers)."""
        return cls(
            history=int(getattr(args, "history", None) or 10),
            top_g=getattr(args, "top_g", None),
            quantile=float(getattr(args, "quantile", None) or 0.99),
            bounded=session_windows,
            seen_context=_optional_int(args, "seen_context"),
            seen_min_count=_optional_int(args, "seen_min_count"),
            restarts=_default(_optional_int(args, "restarts"), 3),
            fit=fit,
        )

    def seen_candidates(self) -> list[tuple[int, int]]:
        """(context, min_count) settings the held-out rule chooses among; context 0 = off."""
        if self.restarts < 1:
            raise ValueError(f"--restarts must be >= 1, got {self.restarts}")
        if self.seen_context is not None and self.seen_context < 0:
            raise ValueError(f"--seen-context must be >= 0, got {self.seen_context}")
        if self.seen_min_count is not None and self.seen_min_count < 1:
            raise ValueError(f"--seen-min-count must be >= 1, got {self.seen_min_count}")
        if self.seen_context is not None:
            contexts = [min(self.seen_context, self.history)]
        else:
            contexts = [0, *sorted({c for c in SEEN_CONTEXTS if c < self.history} | {self.history})]
        counts = [self.seen_min_count] if self.seen_min_count is not None else list(SEEN_MIN_COUNTS)
        return [(c, 1) if c == 0 else (c, k) for c in contexts for k in ([1] if c == 0 else counts)]


def _optional_int(args: Any, name: str) -> int | None:
    """An integer option whose 0 is a real value (so `or default` would be wrong); None when absent."""
    value = getattr(args, name, None)
    return None if value is None else int(value)


def _default(value: int | None, default: int) -> int:
    return default if value is None else value


def judge_seen(
    logits: np.ndarray[Any, Any],
    hold_windows: NextEventBatch,
    held: Sequence[IntArray],
    train_windows: NextEventBatch,
    options: NextEventOptions,
    vocabulary_size: int,
) -> list[SeenCandidate]:
    """Every candidate setting's g and held-out flagged sessions, from one set of held-out logits."""
    out: list[SeenCandidate] = []
    for context, min_count in options.seen_candidates():
        seen = SeenTransitions.fit(train_windows, context, min_count) if context else None
        scores = session_scores(logits, hold_windows, held, seen).session
        g = choose_top_g(scores, options, vocabulary_size)
        out.append(SeenCandidate(context, min_count, g, int((scores > g).sum()), int(scores.size)))
    return out


def choose_top_g(hold_scores: np.ndarray[Any, Any], options: NextEventOptions, vocabulary_size: int) -> int:
    """The given g, else the smallest integer >= `min_top_g` above the held-out `quantile`."""
    if options.top_g is not None:
        g = options.top_g
    else:
        finite = hold_scores[hold_scores < UNKNOWN_SCORE]
        # Linear interpolation, not the next-higher sample: with a few hundred held-out sessions the
        # 0.99 quantile would otherwise be the single second-worst session, and one rare-but-normal
        # session would decide g for everything.
        q = float(np.quantile(finite, options.quantile)) if finite.size else 0.0
        g = max(options.min_top_g, math.ceil(q))
    return max(1, min(g, vocabulary_size - 1))


@dataclass(slots=True)
class NextEventResult:
    onnx_path: Path
    vocabulary: Vocabulary
    top_g: int
    threshold_method: str
    fit: FitResult
    parity_error: float
    summary: dict[str, Any]
    seen: SeenTransitions | None = None
    """Transitions of every normal session (training and held-out), for serving."""
    seen_selection: dict[str, Any] = field(default_factory=dict)
    """How the allowlist setting was chosen (`SeenChoice.to_json`): the rule, n, every candidate's g, held-out
    share and SE, the tie band and the choice."""
    restarts: dict[str, Any] = field(default_factory=dict)
    """The training restarts (`choose_restart`): the rule, every restart's seed, g, allowlist, held-out share and
    validation loss, and the index and seed of the kept one."""


NetFactory = Callable[[int], Any]
"""Builds the torch network for a vocabulary size; its forward maps [B, h] int64 to [B, V] logits."""


def train_next_event(
    label: str,
    make_net: NetFactory,
    sessions: Sequence[Sequence[str]],
    options: NextEventOptions,
    workdir: Path,
    progress: Progress | None = None,
) -> NextEventResult:
    torch = require_torch()
    fo = options.fit
    seed_everything(fo.seed, fo.threads)
    if len(sessions) < 2:
        raise ValueError(f"{label}: need at least 2 normal sessions to train and hold out, got {len(sessions)}")
    options.seen_candidates()  # refuse bad allowlist options before a long fit
    vocabulary = Vocabulary.fit(sessions)
    encoder = Encoder(vocabulary)
    encoded = [encoder.encode(s, bounded=options.bounded) for s in sessions]
    train_idx, hold_idx = holdout_split(len(encoded), options.holdout, fo.seed)
    train_w = next_event_windows([encoded[i] for i in train_idx], options.history, bounded=options.bounded)
    hold_w = next_event_windows([encoded[i] for i in hold_idx], options.history, bounded=options.bounded)
    if len(train_w) == 0:
        raise ValueError(f"{label}: the training sessions hold no next-event problem (all too short)")
    (hx, hy), counts = dedupe_rows(train_w.history, train_w.target)
    # Tempered weights: the decision is a rank, and every continuation seen in training should outrank
    # every one never seen. With raw counts a continuation seen 3 times next to one seen 700 times gets
    # too little gradient to climb above the never-seen ones; count ** weight_power keeps order by
    # frequency while lifting rare-but-legitimate transitions.
    hwt = np.power(counts, options.weight_power).astype(np.float32)
    (vx, vy), vwt = dedupe_rows(hold_w.history, hold_w.target) if len(hold_w) else ((hold_w.history, hold_w.target), np.zeros(0, np.float32))

    held = [encoded[i] for i in hold_idx]

    def loss_fn(model: Any, x: Any, y: Any, w: Any) -> Any:
        ce = torch.nn.functional.cross_entropy(model(x), y, reduction="none")
        return (ce * w).sum() / w.sum()

    tensors = [torch.from_numpy(hx), torch.from_numpy(hy), torch.from_numpy(hwt)]
    val = [torch.from_numpy(vx), torch.from_numpy(vy), torch.from_numpy(vwt)]
    runs: list[tuple[Any, FitResult]] = []
    judged: list[RestartResult] = []
    for r in range(options.restarts):
        # Every restart sees the same split, rows and weights; only the initial weights and the batch order
        # (both from the seed) differ, so the restarts measure the optimiser's luck and nothing else.
        ro = replace(fo, seed=fo.seed + r)
        seed_everything(ro.seed, ro.threads)
        net = make_net(vocabulary.size)
        tag = label if options.restarts == 1 else f"{label} restart {r + 1}/{options.restarts}"
        runs.append((net, fit(net, loss_fn, tensors, val, ro, progress or Progress(tag, ro.epochs))))
        if options.restarts > 1:
            # Judged with torch's own logits: exporting every restart would cost more than its fit. The kept
            # one is judged again below through its exported graph, which is what sets the served g.
            judged.append(_judge_restart(_torch_predict(torch, net), runs[-1][1], ro.seed, hold_w, held, train_w,
                                         options, vocabulary.size))
    kept = choose_restart(judged) if judged else 0
    net, result = runs[kept]
    seed = fo.seed + kept
    del runs

    onnx_path = workdir / "model.onnx"
    rng = np.random.default_rng(seed)
    example = torch.from_numpy(rng.integers(0, vocabulary.size, size=(2, options.history), dtype=np.int64))
    exporter = export_onnx(
        net,
        (example,),
        onnx_path,
        input_names=[INPUT_NAME],
        output_names=[OUTPUT_NAME],
        dynamic={INPUT_NAME: {0: ("batch", 1, 1 << 20), 1: ("seq", 1, options.history)}},
    )
    probes = [
        {INPUT_NAME: rng.integers(0, vocabulary.size, size=shape, dtype=np.int64)}
        for shape in ((1, options.history), (7, options.history), (3, max(1, options.history // 2)), (64, options.history))
    ]
    parity = check_parity(net, onnx_path, probes)

    predict = _onnx_predict(onnx_path)
    # The allowlist setting and g are chosen with the allowlist of the training part only: the held-out
    # sessions stand for normal traffic the allowlist has not seen. The bundle then serves the allowlist
    # of all normal sessions, which can only lower scores, so g stays on the safe side.
    hold_logits = predict_windows(predict, hold_w)
    candidates = judge_seen(hold_logits, hold_w, held, train_w, options, vocabulary.size)
    choice = choose_seen(candidates)
    chosen = choice.chosen
    hold_seen = SeenTransitions.fit(train_w, chosen.context, chosen.min_count) if chosen.context else None
    hold_scores = session_scores(hold_logits, hold_w, held, hold_seen).session
    seen = None
    if chosen.context:
        seen = SeenTransitions.fit(next_event_windows(encoded, options.history, bounded=options.bounded),
                                   chosen.context, chosen.min_count)
    g = chosen.top_g
    if options.top_g is not None:
        method = "top-g (given)"
    else:
        method = f"top-g (quantile of held-out normal session scores, at least {options.min_top_g})"
    selection = choice.to_json(candidates)
    restarts = {
        "rule": RESTART_RULE if options.restarts > 1 else "one training run (--restarts 1)",
        "count": options.restarts,
        "chosen": kept,
        "seed": seed,
        "judged_with": ("torch logits of each restart (the kept one is judged again through its ONNX graph: "
                        "seen_selection)") if judged else "the exported ONNX graph (seen_selection)",
        "runs": [j.to_json() for j in judged] or [RestartResult(
            seed, g, chosen.context, chosen.min_count, chosen.flagged, chosen.sessions, result.best_val_loss,
            result.epochs_run).to_json()],
    }
    summary = {
        "sessions": len(sessions),
        "train_sessions": len(train_idx),
        "holdout_sessions": len(hold_idx),
        "train_windows": len(train_w),
        "unique_train_windows": int(hx.shape[0]),
        "vocabulary": len(vocabulary.keys),
        "exporter": exporter,
        "holdout_score_quantiles": _quantiles(hold_scores),
        "holdout_flagged": int((hold_scores > g).sum()),
        "seen_transitions": len(seen) if seen is not None else 0,
    }
    return NextEventResult(onnx_path, vocabulary, g, method, result, parity, summary, seen, selection, restarts)


def _judge_restart(
    predict: Callable[[IntArray], Any],
    fitted: FitResult,
    seed: int,
    hold_windows: NextEventBatch,
    held: Sequence[IntArray],
    train_windows: NextEventBatch,
    options: NextEventOptions,
    vocabulary_size: int,
) -> RestartResult:
    """One restart's g, allowlist and held-out share by the same rules as the final choice."""
    candidates = judge_seen(predict_windows(predict, hold_windows), hold_windows, held, train_windows, options,
                            vocabulary_size)
    chosen = choose_seen(candidates).chosen
    return RestartResult(seed, chosen.top_g, chosen.context, chosen.min_count, chosen.flagged, chosen.sessions,
                         fitted.best_val_loss, fitted.epochs_run)


def _torch_predict(torch: Any, net: Any) -> Callable[[IntArray], Any]:
    net.train(False)

    def predict(x: IntArray) -> Any:
        with torch.no_grad():
            return net(torch.from_numpy(x)).numpy()

    return predict


def _quantiles(scores: np.ndarray[Any, Any]) -> dict[str, float]:
    if scores.size == 0:
        return {}
    return {f"q{q}": round(float(np.quantile(scores, q / 100)), 4) for q in (50, 90, 99, 100)}


def _onnx_predict(path: Path) -> Callable[[IntArray], Any]:
    import onnxruntime as ort

    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])

    def predict(x: IntArray) -> Any:
        return sess.run([OUTPUT_NAME], {INPUT_NAME: x})[0]

    return predict


def write_next_event_bundle(
    detector: str,
    result: NextEventResult,
    data: TrainingData,
    out: Path,
    options: NextEventOptions,
    architecture: dict[str, Any],
) -> Path:
    """The bundle of a next-event model: ONNX + a manifest naming g, the vocabulary and the windowing."""
    model = {
        "objective": "next-event",
        "architecture": architecture,
        "sequence": {
            "history": options.history,
            "bounded": options.bounded,
            "vocabulary": result.vocabulary.to_json(),
        },
        "top_g": result.top_g,
        "seen_transitions": None if result.seen is None else {
            "file": TRANSITIONS_FILE, "context": result.seen.context, "min_count": result.seen.min_count,
            "count": len(result.seen), "hash": TRANSITIONS_HASH,
        },
        "seen_selection": result.seen_selection,
        "min_top_g": options.min_top_g,
        "score": ("max over positions of (rank - 1) + (1 - p) of the observed event, (1 - p) when its transition is in "
                  "seen_transitions; unknown key scores 1e6"),
        "parity_max_abs_error": result.parity_error,
        "seed": options.fit.seed,
        "restarts": result.restarts,
        "threads": options.fit.threads,
    }
    manifest = new_manifest(
        detector=detector,
        window=data.window,
        features=fit_feature_spec(data.windows, groups=("counts",)),
        threshold=Threshold(float(result.top_g), result.threshold_method, options.quantile if options.top_g is None else None),
        onnx=OnnxInfo([INPUT_NAME], [OUTPUT_NAME], onnx_opsets(result.onnx_path)),
        training={"source": data.source, **result.summary, "fit": result.fit.to_json()},
        train_command=data.command,
        model=model,
        drain_snapshot=data.drain_snapshot,
        template_names=data.template_names(),
        preprocessing={"sequence": "agent.sequence (vocabulary and history in model.sequence)"},
    )
    extra = dict(data.extra_files)
    if result.seen is not None:
        extra[TRANSITIONS_FILE] = result.seen.to_bytes()
    return write_bundle(out, result.onnx_path.read_bytes(), manifest, extra)
