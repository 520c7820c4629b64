"""Sequence-model scoring latency: onnxruntime (what the daemon runs) against torch eager, same run.

    .venv/bin/python bench/deep_latency.py [--repeats 200] [--history 10] [--vocab 18]

For the DeepLog LSTM (embed 32, 2 x 64) and the Transformer next-event encoder (d 64, 4 heads, 2 layers,
ff 128) — the default architectures `logwarden train` builds, with HDFS's vocabulary size — one model is
built and exported, then a batch of 1 and a batch of 256 histories of length h are scored by:
- torch eager, `torch.no_grad()`, 1 thread (the anchor: what serving with PyTorch would cost);
- onnxruntime with logwarden's session options (1 intra-op thread, sequential), one `run()` per batch;
- logwarden's whole serving path for next-event bundles (`agent.sequence.score_next_event`: windows,
  dedup, one onnxruntime call per 256 histories, rank scores) on sessions of h+1 events, for batch 256.
Medians of `--repeats` timed calls after warm-up; ratio = torch / onnxruntime.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from agent.scoring import session_options
from agent.sequence import score_next_event
from agent.training.deeplog import build_lstm
from agent.training.torch_common import export_onnx, require_torch
from agent.training.transformer import build_encoder


def median_us(fn: Callable[[], object], repeats: int) -> float:
    for _ in range(min(20, repeats)):
        fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1e6


def measure(name: str, net: Any, path: Path, args: argparse.Namespace, rng: np.random.Generator) -> None:
    torch = require_torch()
    import onnxruntime as ort

    h, v = args.history, args.vocab
    net.train(False)
    export_onnx(net, (torch.randint(1, v, (2, h)),), path, input_names=["history"], output_names=["logits"],
                dynamic={"history": {0: ("batch", 1, 1 << 20), 1: ("seq", 1, h)}})
    sess = ort.InferenceSession(str(path), sess_options=session_options(), providers=["CPUExecutionProvider"])

    def predict(hist: np.ndarray) -> Any:
        return sess.run(["logits"], {"history": hist})[0]

    for batch in (1, 256):
        x = rng.integers(1, v, size=(batch, h), dtype=np.int64)
        xt = torch.from_numpy(x)

        def torch_call(xt: Any = xt) -> object:
            with torch.no_grad():
                return net(xt)

        t_torch = median_us(torch_call, args.repeats)
        t_ort = median_us(partial(predict, x), args.repeats)
        serving = ""
        if batch == 256:
            # 256 sessions of h+1 events each: h+2 predictions per session, deduplicated before onnxruntime.
            seqs = [rng.integers(4, v, size=h + 1, dtype=np.int64) for _ in range(batch)]
            t_serve = median_us(partial(score_next_event, predict, seqs, h, bounded=True), max(5, args.repeats // 20))
            serving = f"{t_serve:.0f} (256 sessions, {256 * (h + 2)} predictions)"
        print(f"| {name} | {batch} | {t_torch:.0f} | {t_ort:.0f} | {t_torch / t_ort:.2f}x | {serving} |")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=200)
    ap.add_argument("--history", type=int, default=10)
    ap.add_argument("--vocab", type=int, default=18, help="Model classes (HDFS: 14 keys + 4 reserved tokens).")
    args = ap.parse_args()
    torch = require_torch()
    import onnxruntime as ort

    torch.set_num_threads(1)
    torch.manual_seed(0)
    h, v = args.history, args.vocab
    models = {
        "deeplog LSTM": build_lstm(v),
        "transformer": build_encoder(v, max_len=h),
    }
    rng = np.random.default_rng(0)
    print(f"history {h}, vocabulary {v}, medians of {args.repeats} calls; torch {torch.__version__} (1 thread), "
          f"onnxruntime {ort.__version__} (1 intra-op thread)\n")
    print("| model | batch | torch eager µs | onnxruntime µs | ratio torch/ort | logwarden serving path µs |")
    print("|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for name, net in models.items():
            measure(name, net, Path(tmp) / "m.onnx", args, rng)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
