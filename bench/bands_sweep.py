#!/usr/bin/env python3
"""Replays rnnd's bands (docs/numerics.md, "Bands") over the forecasts of a predictions file, with
other settings beyond step 1, and scores each as bench/horizons.sh does: long-run coverage, the
lowest and highest coverage over every run of 500 consecutive origins (per step, pooled over the
columns), and the mean interval score (Gneiting and Raftery 2007).

The bands do not feed back into the forecasts, so the forecasts of one replay (`rnnd replay FILE
--horizon H --warmup-rows F --predictions P`, or `bench/horizons.sh --keep`) serve every variant.
The replay here starts at the predictions file's first origin, without rnnd's warm-up, so its
figures differ slightly from rnnd's own; the first line ("as published") scores the bands in the
file, the second ("replayed") the default settings replayed, which shows how close the replay is.
docs/tuning.md, "Bands", has what it measured.

Usage: bench/bands_sweep.py PREDICTIONS DATA --horizon H --first-test-row F
                            [--variant WINDOW,FORGETTING ...] [--coverage 0.9]
  --variant  beyond step 1: the scores the quantile is taken over (at most 256) and the scale's
             forgetting; step 1 keeps 256 and 0.99. Default: the shipped 128,0.998 and the
             earlier 256,0.99.
Needs numpy.
"""
import argparse
import csv
import itertools
import math

import numpy as np

RING, WARMUP, GAMMA, BOUND = 256, 20, 0.005, 5.0
WINDUP, REPAY = 0.5, 0.001


class Bands:
    """ConformalBands over `o` outputs of one kind: step 1 (`far` False) or beyond."""

    def __init__(self, o, alpha, window, forgetting, far):
        self.alpha, self.window, self.forgetting, self.far = alpha, window, forgetting, far
        self.level, self.debt, self.scale = np.full(o, alpha), np.zeros(o), np.zeros(o)
        self.ring, self.count = np.full((o, window), np.nan), np.zeros(o, dtype=np.int64)

    def half_width(self):
        m = np.minimum(self.count, self.window)
        level = 1 - self.level
        rank = np.ceil(level * (m + 1)).astype(np.int64)
        i = np.clip(np.minimum(np.maximum(rank, 1), m) - 1, 0, self.window - 1)
        q = np.take_along_axis(np.sort(self.ring, axis=1), i[:, None], 1)[:, 0]
        q = np.where(level <= 0, 0, q)
        return np.where(self.count >= WARMUP, q * self.scale, np.nan)

    def resolve(self, mask, error, half, scale):
        has = mask & ~np.isnan(half)
        level = self.level + GAMMA * (self.alpha - np.where(error <= half, 0, 1))
        if self.far:
            floor = -WINDUP * self.alpha
            below = has & (level < floor)
            self.debt = np.where(below, self.debt + floor - level, self.debt)
            level = np.where(below, floor, level)
            paid = np.where(has & ~below & (self.debt > 0), np.minimum(self.debt * REPAY, level - floor), 0)
            level, self.debt = level - paid, self.debt - paid
        self.level = np.where(has, level, self.level)
        k = np.where(mask & (scale > 0))[0]
        self.ring[k, self.count[k] % self.window] = error[k] / scale[k]
        self.count[k] += 1
        s = self.scale
        new = np.where(s == 0, error, self.forgetting * s + (1 - self.forgetting) * np.minimum(error, BOUND * s))
        self.scale = np.where(mask, new, s)


def read(predictions, data, horizon):
    with open(data, newline="") as f:
        table = list(csv.reader(f))
    columns = table[0][1:]
    y = np.array([[float(x) for x in r[1:]] for r in table[1:]])
    with open(predictions, newline="") as f:
        reader = csv.reader(f)
        header = next(reader)
        targets = [t for t in header[2:] if t in columns]
        where = [0, 1] + [header.index(t + s) for s in ("", "_lower", "_upper") for t in targets]
        chunks = []
        while rows := list(itertools.islice(reader, 200_000)):
            chunks.append(np.array([[float(r[k]) if r[k] else math.nan for k in where] for r in rows]))
    a = np.concatenate(chunks)
    origin = (a[:, 0] - a[:, 1]).astype(np.int64)
    o0, C = int(origin.min()), len(targets)
    n = int(origin.max()) - o0 + 1
    shape = (n, horizon, C)
    forecast, lower, upper = np.full(shape, np.nan), np.full(shape, np.nan), np.full(shape, np.nan)
    i, p = origin - o0, a[:, 1].astype(np.int64) - 1
    forecast[i, p], lower[i, p], upper[i, p] = a[:, 2:2 + C], a[:, 2 + C:2 + 2 * C], a[:, 2 + 2 * C:]
    return forecast, lower, upper, y[:, [columns.index(t) for t in targets]], o0


def replay(forecast, y, o0, alpha, window, forgetting):
    n, H, C = forecast.shape
    step = np.repeat(np.arange(1, H + 1), C)
    column = np.tile(np.arange(C), H)
    near, far = Bands(C, alpha, RING, 0.99, False), Bands((H - 1) * C, alpha, window, forgetting, True)
    half, scale = np.full((n, H, C), np.nan), np.zeros((n, H, C))
    for t in range(o0, min(o0 + n, len(y))):
        made = t - step
        mask = made >= o0
        i = np.clip(made - o0, 0, n - 1)
        f = forecast[i, step - 1, column]
        mask &= ~np.isnan(f)
        error = np.abs(np.where(mask, f - y[t, column], 0))
        h, s = half[i, step - 1, column], scale[i, step - 1, column]
        near.resolve(mask[:C], error[:C], h[:C], s[:C])
        far.resolve(mask[C:], error[C:], h[C:], s[C:])
        half[t - o0] = np.concatenate((near.half_width(), far.half_width())).reshape(H, C)
        scale[t - o0] = np.concatenate((near.scale, far.scale)).reshape(H, C)
    return forecast - half, forecast + half


def score(lower, upper, y, o0, first, alpha, runs=500):
    n, H, C = lower.shape
    origins = np.arange(first, len(y) - H)
    inside_all = banded_all = 0
    low, high, scores = 1.0, 0.0, []
    for p in range(1, H + 1):
        i = origins - o0
        lo, up, actual = lower[i, p - 1], upper[i, p - 1], y[origins + p]
        band = ~np.isnan(lo)
        inside = band & (lo <= actual) & (actual <= up)
        hits = np.concatenate(([0], np.cumsum(inside.sum(1))))
        counts = np.concatenate(([0], np.cumsum(band.sum(1))))
        h, c = hits[runs:] - hits[:-runs], counts[runs:] - counts[:-runs]
        share = h[c > 0] / c[c > 0]
        low, high = min(low, share.min()), max(high, share.max())
        s = (up - lo) + (2 / alpha) * (np.maximum(lo - actual, 0) + np.maximum(actual - up, 0))
        scores.append(s[band].mean())
        inside_all, banded_all = inside_all + inside.sum(), banded_all + band.sum()
    return inside_all / banded_all, low, high, float(np.mean(scores))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("predictions")
    parser.add_argument("data")
    parser.add_argument("--horizon", type=int, required=True)
    parser.add_argument("--first-test-row", type=int, required=True)
    parser.add_argument("--coverage", type=float, default=0.9)
    parser.add_argument("--variant", action="append")
    a = parser.parse_args()
    alpha, first = 1 - a.coverage, a.first_test_row - 1
    forecast, lower, upper, y, o0 = read(a.predictions, a.data, a.horizon)
    print("| bands beyond step 1 | coverage | every 500 origins | interval score |")
    print("|---|---:|---:|---:|")

    def row(label, figures):
        coverage, low, high, s = figures
        print(f"| {label} | {100 * coverage:.1f}% | {100 * low:.1f}%–{100 * high:.1f}% | {s:.3f} |", flush=True)

    row("as published", score(lower, upper, y, o0, first, alpha))
    for variant in a.variant or ["128,0.998", "256,0.99"]:
        window, forgetting = variant.split(",")
        window, forgetting = int(window), float(forgetting)
        if not 20 <= window <= RING or not 0 < forgetting < 1:
            parser.error(f"--variant {variant}: a window of 20 to {RING} scores and a forgetting in (0, 1)")
        low, up = replay(forecast, y, o0, alpha, window, forgetting)
        row(f"replayed: window {window}, forgetting {forgetting}", score(low, up, y, o0, first, alpha))


if __name__ == "__main__":
    main()
