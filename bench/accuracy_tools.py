#!/usr/bin/env python3
"""Helpers of bench/accuracy.sh (Python with numpy only; rnnd itself never needs Python).

  zscore FILE OUT [--stats-rows 2880] [--rows 14400]
      The online-forecasting papers' ETT protocol: the first --rows rows, every numeric column
      standardised with the mean and (population) standard deviation of the first --stats-rows
      rows. The data files stay as they are (their licence forbids modified copies); this writes
      a derived file under bench/out for the run.

  anomaly PREDICTIONS DATA LABELS KEY
      Scores rnnd's anomaly scores (the `anomaly` column of `rnnd replay --predictions`) against
      NAB's labelled anomaly windows (LABELS = combined_windows.json, KEY = e.g.
      realKnownCause/machine_temperature_system_failure.csv). Prints one JSON object.

  horizons PREDICTIONS DATA --horizon H --first-test-row F --period P [--coverage 0.9] [--window 500]
      Scores `rnnd replay --horizon H --predictions` under the long-horizon protocol of DSOF (Lau,
      Shao, Yeung, ICLR 2025): only the forecast origins o whose H targets all lie in the test rows
      (o + 1 >= F and o + H <= the last row of DATA, the replayed file); every forecast of those
      origins (each step and target) must be in PREDICTIONS, and the ones that are not are counted
      as missing. MSE of rnnd, of persistence (the value at o) and of the one-day seasonal naive (for
      step h the value at o + h - P ceil(h / P)), averaged over targets, steps and origins; per step,
      rnnd's MSE and its bands: coverage, the lowest and highest coverage over every run of --window
      consecutive origins (all targets pooled), mean width and the interval score at
      alpha = 1 - coverage (Gneiting and Raftery 2007: width + (2 / alpha) (lower - y) below the band,
      + (2 / alpha) (y - upper) above it). A forecast without a band counts as a missing band.
      Prints one JSON object. Streams the predictions (ETTm1 at H = 96 has about 4 million lines).
"""
import csv
import datetime
import itertools
import json
import math
import sys

import numpy as np


def parse_time(text):
    for fmt in ("%Y-%m-%d %H:%M:%S.%f", "%Y-%m-%d %H:%M:%S"):
        try:
            return datetime.datetime.strptime(text, fmt).replace(tzinfo=datetime.timezone.utc).timestamp()
        except ValueError:
            pass
    raise ValueError(text)


def zscore(path, out, stats_rows=2880, rows=14400):
    with open(path, newline="") as f:
        table = list(csv.reader(f))
    header, data = table[0], table[1:rows + 1]
    values = np.array([[float(x) for x in r[1:]] for r in data])
    mean, std = values[:stats_rows].mean(0), values[:stats_rows].std(0)
    z = (values - mean) / std
    with open(out, "w") as f:
        f.write(",".join(header) + "\n")
        for r, v in zip(data, z):
            f.write(r[0] + "," + ",".join(repr(float(x)) for x in v) + "\n")


def anomaly(predictions, data, labels, key):
    with open(data, newline="") as f:
        rows = list(csv.reader(f))[1:]
    times = [parse_time(r[0]) for r in rows]
    windows = [(parse_time(a), parse_time(b)) for a, b in json.load(open(labels))[key]]
    scores = {}
    with open(predictions, newline="") as f:
        reader = csv.DictReader(f)
        for r in reader:
            if r["horizon"] == "1" and r["anomaly"] != "":
                scores[int(r["row"])] = float(r["anomaly"])
    inside, outside = [], []
    per_window = [[] for _ in windows]
    for row, s in scores.items():
        t = times[row]
        w = next((k for k, (a, b) in enumerate(windows) if a <= t <= b), None)
        if w is None:
            outside.append(s)
        else:
            inside.append(s)
            per_window[w].append((t, s))
    outside = np.array(outside)
    days_outside = len(outside) * (times[1] - times[0]) / 86400
    result = {"scored": len(scores), "inside_windows": len(inside), "outside_windows": len(outside),
              "windows": [], "thresholds": []}
    for k, (a, b) in enumerate(windows):
        ws = per_window[k]
        peak = max(ws, key=lambda p: p[1]) if ws else None
        result["windows"].append({
            "start": datetime.datetime.fromtimestamp(a, datetime.timezone.utc).isoformat(),
            "end": datetime.datetime.fromtimestamp(b, datetime.timezone.utc).isoformat(),
            "samples": len(ws), "max_score": peak[1] if peak else None,
            "first_above_0.9_hours_after_start": next(((t - a) / 3600 for t, s in sorted(ws) if s >= 0.9), None)})
    for threshold in (0.5, 0.8, 0.9, 0.95):
        detected = sum(1 for ws in per_window if any(s >= threshold for _, s in ws))
        false_alarms = int((outside >= threshold).sum())
        result["thresholds"].append({
            "threshold": threshold, "windows_detected": detected, "windows": len(windows),
            "samples_above_outside": false_alarms,
            "share_above_outside": false_alarms / max(len(outside), 1),
            "per_day_outside": false_alarms / max(days_outside, 1e-9)})
    print(json.dumps(result))


def interval_score(lower, upper, y, alpha):
    """The interval score of central (1 - alpha) bands (Gneiting and Raftery 2007, eq. 43): the width,
    plus 2 / alpha times the distance by which y falls outside the band. Lower is better."""
    return (upper - lower) + (2 / alpha) * np.maximum(lower - y, 0) + (2 / alpha) * np.maximum(y - upper, 0)


def rolling_extremes(hits, counts, window):
    """The lowest and highest hits / counts over every run of `window` consecutive entries (all of
    them when there are fewer); runs with nothing counted are left out."""
    hits, counts = np.concatenate(([0], np.cumsum(hits))), np.concatenate(([0], np.cumsum(counts)))
    window = min(window, len(hits) - 1)
    h, c = hits[window:] - hits[:-window], counts[window:] - counts[:-window]
    share = h[c > 0] / c[c > 0]
    return (float(share.min()), float(share.max())) if len(share) else (None, None)


def horizons(predictions, data, horizon, first_test_row, period, coverage=0.9, window=500):
    with open(data, newline="") as f:
        table = list(csv.reader(f))
    columns = table[0][1:]
    y = np.array([[float(x) for x in r[1:]] for r in table[1:]])
    H, P, alpha = horizon, period, 1 - coverage
    first, last = first_test_row - 1, len(y) - 1 - H          # the origins scored, both included
    if last < first or first + 1 - P < 0:
        sys.exit(f"horizons: no origin to score (rows {len(y)}, first test row {first_test_row}, H {H}, P {P})")
    n = last - first + 1

    # Per origin (rows) and step (columns): the lines read, rnnd's squared errors summed over targets,
    # the targets forecast, those with a band, those inside it, and the bands' widths and scores.
    seen, sq, have = np.zeros((n, H), dtype=np.int32), np.zeros((n, H)), np.zeros((n, H), dtype=np.int32)
    banded, inside = np.zeros((n, H), dtype=np.int32), np.zeros((n, H), dtype=np.int32)
    width, score = np.zeros((n, H)), np.zeros((n, H))
    lines = 0
    with open(predictions, newline="") as f:
        reader = csv.reader(f)
        header = next(reader)
        targets = header[2:header.index("anomaly")] if "anomaly" in header else header[2:]
        targets = [t for t in targets if not t.endswith(("_lower", "_upper"))]
        C = len(targets)
        pick = [columns.index(t) for t in targets]
        where = [0, 1] + [header.index(t) for t in targets] \
            + [header.index(t + "_lower") for t in targets] + [header.index(t + "_upper") for t in targets]
        while True:
            rows = list(itertools.islice(reader, 200_000))
            if not rows:
                break
            lines += len(rows)
            a = np.array([[float(r[k]) if r[k] else math.nan for k in where] for r in rows])
            row, step = a[:, 0].astype(np.int64), a[:, 1].astype(np.int64)
            origin = row - step
            keep = (origin >= first) & (origin <= last) & (step >= 1) & (step <= H)
            a, row, i, j = a[keep], row[keep], origin[keep] - first, step[keep] - 1
            value, lower, upper = a[:, 2:2 + C], a[:, 2 + C:2 + 2 * C], a[:, 2 + 2 * C:]
            actual = y[row][:, pick]
            ok = ~np.isnan(value)
            band = ok & ~np.isnan(lower) & ~np.isnan(upper)
            np.add.at(seen, (i, j), 1)
            np.add.at(sq, (i, j), np.where(ok, (value - actual) ** 2, 0).sum(1))
            np.add.at(have, (i, j), ok.sum(1))
            np.add.at(banded, (i, j), band.sum(1))
            np.add.at(inside, (i, j), (band & (lower <= actual) & (actual <= upper)).sum(1))
            np.add.at(width, (i, j), np.where(band, upper - lower, 0).sum(1))
            np.add.at(score, (i, j), np.where(band, interval_score(lower, upper, actual, alpha), 0).sum(1))

    # The baselines, from the data alone, on every forecast that should be there.
    yt = y[:, pick]
    origins = np.arange(first, last + 1)
    persistence, seasonal = np.zeros((n, H)), np.zeros((n, H))
    for h in range(1, H + 1):
        persistence[:, h - 1] = ((yt[origins + h] - yt[origins]) ** 2).sum(1)
        seasonal[:, h - 1] = ((yt[origins + h] - yt[origins + h - P * math.ceil(h / P)]) ** 2).sum(1)

    def ratio(a, b):
        return float(a / b) if b else None

    steps = []
    for h in range(1, H + 1):
        k = h - 1
        low, high = rolling_extremes(inside[:, k], banded[:, k], window)
        steps.append({
            "step": h, "mse": ratio(sq[:, k].sum(), have[:, k].sum()),
            "persistence": float(persistence[:, k].sum() / (n * C)), "seasonal": float(seasonal[:, k].sum() / (n * C)),
            "missing": int(np.maximum(C - have[:, k], 0).sum()), "missing_bands": int(have[:, k].sum() - banded[:, k].sum()),
            "coverage": ratio(inside[:, k].sum(), banded[:, k].sum()), "rolling_min": low, "rolling_max": high,
            "mean_width": ratio(width[:, k].sum(), banded[:, k].sum()),
            "interval_score": ratio(score[:, k].sum(), banded[:, k].sum())})
    lows = [s["rolling_min"] for s in steps if s["rolling_min"] is not None]
    highs = [s["rolling_max"] for s in steps if s["rolling_max"] is not None]
    scores = [s["interval_score"] for s in steps if s["interval_score"] is not None]
    print(json.dumps({
        "predictions": predictions, "data": data, "rows": len(y), "targets": targets,
        "horizon": H, "first_test_row": first_test_row, "period": P, "coverage_asked": coverage, "window": window,
        "first_origin": first, "last_origin": last, "origins": n, "forecasts": n * H * C, "lines_read": lines,
        "missing": int(np.maximum(C - have, 0).sum()), "missing_bands": int(have.sum() - banded.sum()),
        "duplicate_lines": int((seen > 1).sum()),
        "mse": ratio(sq.sum(), have.sum()),
        "persistence": float(persistence.sum() / (n * H * C)), "seasonal": float(seasonal.sum() / (n * H * C)),
        "coverage": ratio(inside.sum(), banded.sum()), "mean_width": ratio(width.sum(), banded.sum()),
        "rolling_min": min(lows) if lows else None, "rolling_max": max(highs) if highs else None,
        "interval_score": sum(scores) / len(scores) if scores else None,
        "per_step": steps}))


HORIZONS_OPTIONS = {"--horizon": int, "--first-test-row": int, "--period": int, "--coverage": float, "--window": int}


def main():
    if len(sys.argv) >= 4 and sys.argv[1] == "zscore":
        args = sys.argv[2:]
        stats_rows, rows = 2880, 14400
        if "--stats-rows" in args:
            stats_rows = int(args[args.index("--stats-rows") + 1])
        if "--rows" in args:
            rows = int(args[args.index("--rows") + 1])
        zscore(args[0], args[1], stats_rows, rows)
    elif len(sys.argv) == 6 and sys.argv[1] == "anomaly":
        anomaly(*sys.argv[2:])
    elif len(sys.argv) >= 4 and sys.argv[1] == "horizons":
        args = sys.argv[4:]
        if len(args) % 2 or any(k not in HORIZONS_OPTIONS for k in args[::2]) \
                or not {"--horizon", "--first-test-row", "--period"} <= set(args[::2]):
            sys.exit(__doc__)
        options = {k: HORIZONS_OPTIONS[k](v) for k, v in zip(args[::2], args[1::2])}
        horizons(sys.argv[2], sys.argv[3], options["--horizon"], options["--first-test-row"], options["--period"],
                 options.get("--coverage", 0.9), options.get("--window", 500))
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
