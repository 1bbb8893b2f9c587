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
"""
import csv
import datetime
import json
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
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
