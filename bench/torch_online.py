#!/usr/bin/env python3
"""An online PyTorch LSTM forecaster written the usual way, on a CSV file: the baseline of
docs/accuracy.md.

It is the learner of ../shared/peers/torch_peer.py (its Net, imported from there: an nn.LSTM of
64 units and a linear head, every input forecast one step ahead; update every sample: re-run the
last 32 steps from a detached carried state, MSE loss on the newest step, backward, clip the
global norm at 1.0, Adam at 1e-3), with what anyone adds to use it on real data: inputs
standardised with a running mean and variance, and a live hidden state carried from sample to
sample to forecast the next value before learning from the current one (predict, then learn, as
rnnd does). Rows whose time is not after the previous row's are left out, as rnnd refuses them.

Writes the predictions in rnnd replay's format (row,horizon,<columns>) and prints one JSON line:
{"file", "samples", "mse", "mae", "seconds"} over every forecast (rows 1 on), in the file's units.

Usage: bench/torch_online.py FILE.csv --predictions OUT.csv [--peer PATH] [--hidden 64] [--window 32]
"""
import argparse
import csv
import datetime
import importlib.util
import json
import math
import os
import time

import torch


def load_peer(path):
    spec = importlib.util.spec_from_file_location("torch_peer", path)
    peer = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(peer)
    return peer


def read(path):
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    header, rows = rows[0], rows[1:]
    times, values, kept = [], [], []
    last = None
    for i, r in enumerate(rows):
        t = datetime.datetime.strptime(r[0], "%Y-%m-%d %H:%M:%S").replace(tzinfo=datetime.timezone.utc).timestamp()
        if last is not None and t <= last:
            continue
        last = t
        times.append(t)
        values.append([float(x) for x in r[1:]])
        kept.append(i)
    return header[1:], kept, values


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser()
    ap.add_argument("file")
    ap.add_argument("--predictions", required=True)
    ap.add_argument("--peer", default=os.path.join(here, "..", "..", "shared", "peers", "torch_peer.py"))
    ap.add_argument("--hidden", type=int, default=64)
    ap.add_argument("--window", type=int, default=32)
    a = ap.parse_args()
    peer = load_peer(a.peer)
    torch.manual_seed(0)
    torch.set_num_threads(1)
    columns, rows, values = read(a.file)
    n, inputs = len(values), len(columns)
    net = peer.Net("lstm", inputs, a.hidden)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    carry = peer.zero_state("lstm", a.hidden)
    live = peer.zero_state("lstm", a.hidden)
    window = []
    # Running mean and variance (Welford) of each input.
    count, mean, m2 = 0, [0.0] * inputs, [0.0] * inputs
    sq = ab = 0.0
    scored = 0
    start = time.perf_counter()
    with open(a.predictions, "w") as out:
        out.write(",".join(["row", "horizon"] + columns) + "\n")
        forecast = None
        for i, x in enumerate(values):
            if forecast is not None:
                line = [str(rows[i]), "1"]
                for j in range(inputs):
                    e = forecast[j] - x[j]
                    sq += e * e
                    ab += abs(e)
                    line.append(repr(float(forecast[j])))
                scored += inputs
                out.write(",".join(line) + "\n")
            count += 1
            for j in range(inputs):
                d = x[j] - mean[j]
                mean[j] += d / count
                m2[j] += d * (x[j] - mean[j])
            std = [max(math.sqrt(m2[j] / count), 1e-6 * max(1.0, abs(mean[j]))) for j in range(inputs)]
            z = torch.tensor([(x[j] - mean[j]) / std[j] for j in range(inputs)], dtype=torch.float32)
            # Predict: one step from the live state.
            with torch.no_grad():
                y, live = net(z.view(1, 1, -1), live)
            forecast = [float(y[0, 0, j]) * std[j] + mean[j] for j in range(inputs)]
            # Learn: the peer's k1 = 1 update over the latest window.
            window.append(z)
            if len(window) > a.window:
                window = window[-(a.window + 1):]
                seq = torch.stack(window).unsqueeze(1)
                inp, tgt = seq[:-1], seq[1:]
                y0, s1 = net(inp[:1], carry)
                yr, _ = net(inp[1:], s1)
                loss = torch.nn.functional.mse_loss(yr[-1], tgt[-1])
                opt.zero_grad(set_to_none=True)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
                opt.step()
                carry = peer.detach(s1)
    seconds = time.perf_counter() - start
    print(json.dumps({"file": a.file, "samples": n, "mse": sq / scored, "mae": ab / scored, "seconds": round(seconds, 1)}))


if __name__ == "__main__":
    main()
