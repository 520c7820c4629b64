"""How often normal scores cross a threshold chosen from n of them: the sample's quantile against a fitted tail.

    .venv/bin/python bench/tail_threshold.py [--trials 200] [--quantile 0.99999]

A self-baselined forest chooses its threshold from an hour of windows (n = 360 at a 10 s step) and then
judges 8,640 windows a day. For score distributions whose true tail is known (scipy.stats), each trial draws
n training scores, sets a threshold from them, and computes exactly — from the distribution, not by sampling —
how many of a day's 8,640 normal samples are expected above it. Rows compare:

- anchor: the empirical 0.999 quantile of the n scores (what `threshold_quantile: 0.999` did before the tail fit);
- tail, shape as fitted: `agent.training.tail` at `--quantile` with no floor on the GPD shape;
- tail (shipped): the same with the shape held at `MIN_SHAPE` or above.

The target is (1 - quantile) * 8,640 a day. Means hide the trials that page all day, so the 90th percentile
over trials is printed too; the ratio is the anchor's mean over the shipped fit's.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from agent.training.tail import MIN_SHAPE, tail_threshold

PER_DAY = 8640


def main(argv: list[str] | None = None) -> int:
    from scipy import stats

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--trials", type=int, default=200)
    ap.add_argument("--quantile", type=float, default=0.99999)
    ap.add_argument("--sizes", default="360,2000,8640", help="Training scores per trial (comma list).")
    args = ap.parse_args(argv)
    dists = {"normal": stats.norm(), "beta(5,5)": stats.beta(5, 5), "beta(2,8)": stats.beta(2, 8),
             "exponential": stats.expon(), "student t(5)": stats.t(5)}
    rng = np.random.default_rng(7)
    target = (1 - args.quantile) * PER_DAY
    print(f"expected normal samples a day ({PER_DAY}) above a threshold chosen from n; target {target:.3f} a day; "
          f"{args.trials} trials each\n")
    print("| distribution | n | anchor q0.999 mean / p90 | tail, shape as fitted mean / p90 | "
          f"tail, shape >= {MIN_SHAPE} mean / p90 | anchor ÷ shipped |")
    print("|---|---|---|---|---|---|")
    for name, dist in dists.items():
        for n in (int(s) for s in args.sizes.split(",")):
            rows: list[list[float]] = [[], [], []]
            for _ in range(args.trials):
                x = dist.rvs(size=n, random_state=rng)
                thresholds = (float(np.quantile(x, 0.999)),
                              tail_threshold(x, args.quantile, min_shape=-np.inf)[0],
                              tail_threshold(x, args.quantile)[0])
                for row, t in zip(rows, thresholds, strict=True):
                    row.append(float(dist.sf(t)) * PER_DAY)
            cells = [f"{np.mean(r):.2f} / {np.quantile(r, 0.9):.2f}" for r in rows]
            shipped = float(np.mean(rows[2]))
            ratio = f"{np.mean(rows[0]) / shipped:.0f}x" if shipped >= 0.01 else f"> {np.mean(rows[0]) / 0.01:.0f}x"
            print(f"| {name} | {n} | {' | '.join(cells)} | {ratio} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
