#!/usr/bin/env python3
"""PyTorch reference fixtures for rnnd's numeric core (Sources/RNNCore).

This script is an independent implementation of the contract in docs/numerics.md,
written from that document alone (not from the Swift code). Cells and heads are
written by hand with torch ops over leaf tensors named like the parameter buffer
(Wx, Wh, b, bhn for the GRU, Wy, by); all differentiation is done by torch autograd,
clipping by torch.nn.utils (norm/value) or by gradient hooks on the per-step state
(step), and the optimizer steps by torch.optim (Adafactor, which it lacks, by the class
`Adafactor` below). Everything is float64.

For every network scenario it simulates the online predict-then-learn TBPTT(k1, k2)
schedule (inputs normalised and formulated online, live prediction on every sample, an
update every k1 samples that recomputes the window from the carried state with the current
weights) and writes one JSON file <scenario>.json next to this script, containing the
configuration, the initial weights, the samples and their times, every live forecast, and
for every update its loss, gradient norm, gradients after clipping, and the parameters after
the step. For every forecaster scenario it runs the whole per-sample forecaster around that
network (experts, exponentiated-gradient combination, adaptive conformal bands, anomaly
scores, Page–Hinkley drift and its policy) in plain float64 and writes, per sample, what it
publishes.

Where the document leaves a choice open, READINGS says which reading is taken.

It is run once by hand, and the JSON files are committed; the Swift tests only read
them. To regenerate (from the repository root):

    python3 Tests/RNNCoreTests/Fixtures/generate.py
"""

import argparse
import json
import math
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F

torch.set_default_dtype(torch.float64)

OUT_DIR = os.path.dirname(os.path.abspath(__file__))

INPUTS = 3
HIDDEN = 4
TARGETS = [0, 2]


# ----------------------------------------------------------------------------------------
# Parameters

def param_shapes(cell, I, H, O):
    g = {"elman": 1, "lstm": 4, "gru": 3}[cell]
    shapes = [("Wx", (g * H, I)), ("Wh", (g * H, H)), ("b", (g * H,))]
    if cell == "gru":
        shapes.append(("bhn", (H,)))
    shapes += [("Wy", (O, H)), ("by", (O,))]
    return shapes


def init_params(cell, I, H, O, gen):
    params = {}
    for name, shape in param_shapes(cell, I, H, O):
        t = torch.rand(shape, generator=gen) - 0.5  # uniform(-0.5, 0.5)
        params[name] = t.clone().requires_grad_(True)
    return params


def flat(t):
    return [float(v) for v in t.detach().reshape(-1).tolist()]


# ----------------------------------------------------------------------------------------
# Cells. A state is one tensor s: h (Elman, GRU) or cat([h, c]) (LSTM). Everything that
# reads the state (the head and the next step) slices it, so that all gradient into the
# state of a step passes through that single tensor.

def state_h(cell, s, H):
    return s[:H] if cell == "lstm" else s


def zero_state(cell, H):
    return torch.zeros(2 * H if cell == "lstm" else H)


def cell_step(cell, act, P_, x, s, H):
    Wx, Wh, b = P_["Wx"], P_["Wh"], P_["b"]
    if cell == "elman":
        h_prev = s
        pre = Wx @ x + b + Wh @ h_prev
        if act == "tanh":
            return torch.tanh(pre)
        if act == "relu":
            return torch.relu(pre)
        if act == "sigmoid":
            return torch.sigmoid(pre)
        raise ValueError(act)
    if cell == "lstm":
        h_prev, c_prev = s[:H], s[H:]
        z = Wx @ x + b + Wh @ h_prev
        i = torch.sigmoid(z[0:H])
        f = torch.sigmoid(z[H:2 * H])
        g = torch.tanh(z[2 * H:3 * H])
        o = torch.sigmoid(z[3 * H:4 * H])
        c = f * c_prev + i * g
        h = o * torch.tanh(c)
        return torch.cat([h, c])
    if cell == "gru":
        h_prev = s
        a = Wx @ x + b
        u = Wh @ h_prev
        r = torch.sigmoid(a[0:H] + u[0:H])
        zg = torch.sigmoid(a[H:2 * H] + u[H:2 * H])
        n = torch.tanh(a[2 * H:3 * H] + r * (u[2 * H:3 * H] + P_["bhn"]))
        return (1 - zg) * n + zg * h_prev
    raise ValueError(cell)


def head(cell, P_, s, H):
    return P_["Wy"] @ state_h(cell, s, H) + P_["by"]  # g2 = identity


# ----------------------------------------------------------------------------------------
# Readings. Where docs/numerics.md leaves a choice open, READINGS holds the reading this
# reference takes from the document (Fixtures/README.md, "Readings of docs/numerics.md").
# SWIFT_READINGS are the other readings under which the reference reproduces the Swift; they
# were found by comparing outputs (not from the Swift source) and are for diagnosis only
# (`--readings swift --out DIR`): the committed files use READINGS.

READINGS = {
    # The change unit under normalisation none: "one" (values and changes fed unchanged), or
    # the running "rms" of the changes as with running normalisation (floored at 1e-6).
    "none_change_unit": "one",
    # The linear model's past changes: normalised with the unit they had on "arrival" (the
    # network's change inputs), or with the "current" unit.
    "lag_units": "current",
    # (s_o, σ_o and ē are settled by the document: taken before this resolution, started at
    # their first value, then bounded updates with weights 0.01, 0.01, 0.001: BoundedScale.)
    # ū, a running mean with forgetting factor λ (RunningMean): weights max(1/n, 1 − λ) like
    # the "normaliser", or "first" value, then 1 − λ.
    "drift_signal_mean": "normaliser",
    # ū in the Page–Hinkley term u − ū − δ: "updated" with u first, or its value "before" u.
    "drift_signal_order": "updated",
}

SWIFT_READINGS = dict(READINGS, none_change_unit="rms", lag_units="current",
                      drift_signal_order="before")


# ----------------------------------------------------------------------------------------
# Inputs: normalisation, change units, calendar phases (docs/numerics.md, "Inputs and
# formulations" and "Normalisation")

INPUT_BOUND = 8.0  # levels and changes, with the change formulation


def running_weight(n, forgetting):
    """Weight of the n-th value (n >= 1) of a running mean: 1/n, or max(1/n, 1 - λ)."""
    return 1.0 / n if forgetting is None else max(1.0 / n, 1.0 - forgetting)


class RunningMean:
    """A running mean with forgetting factor λ of the forecaster (`reading` "normaliser": the
    n-th value weighs max(1/n, 1 − λ), as in the normaliser; "first": the first value starts it,
    then every value weighs 1 − λ)."""

    def __init__(self, forgetting, reading="normaliser"):
        self.forgetting, self.reading, self.n, self.value = forgetting, reading, 0, 0.0

    def update(self, v):
        self.n += 1
        if self.reading == "first":
            a = 1.0 if self.n == 1 else 1.0 - self.forgetting
        else:
            a = running_weight(self.n, self.forgetting)
        self.value += a * (v - self.value)
        return self.value


def calendar_phases(t):
    """sin, cos of the phase of the day (t / 86400) and of the week ((t / 86400 + 3) / 7)."""
    if t is None:
        return [0.0] * 4
    day = t / 86400.0
    week = (day + 3.0) / 7.0
    a = 2.0 * math.pi * (day - math.floor(day))
    b = 2.0 * math.pi * (week - math.floor(week))
    return [math.sin(a), math.cos(a), math.sin(b), math.cos(b)]


def bound(v):
    return min(max(v, -INPUT_BOUND), INPUT_BOUND)


class InputEncoder:
    """One sample in original units -> the network's F inputs.

    Per channel: the running mean and (population) variance, updated with the new value
    first; the change unit, the running RMS of the changes x_t - x_{t-1} (from the second
    sample on, weighted like the normaliser), floored like the standard deviation.
    Normalisation "none": mean 0, std 1 and change unit 1 (values and changes fed unchanged).
    Features: levels (all channels), then changes (all channels, change formulation), then
    the four calendar phases (calendar on)."""

    def __init__(self, I, formulation, calendar, normalization):
        self.I, self.formulation, self.calendar = I, formulation, calendar
        self.enabled = normalization["kind"] == "running"
        self.forgetting = normalization.get("forgetting")
        self.n, self.mean, self.var = 0, [0.0] * I, [0.0] * I
        self.m, self.ms = 0, [0.0] * I
        self.prev = None
        self.levels, self.changes, self.phases = None, None, None

    def floor(self, j):
        return 1e-6 * max(1.0, abs(self.mean[j]))

    def offset(self, j):
        return self.mean[j] if self.enabled else 0.0

    def scale(self, j):
        return max(math.sqrt(self.var[j]), self.floor(j)) if self.enabled else 1.0

    def unit(self, j):
        if not self.enabled and READINGS["none_change_unit"] == "one":
            return 1.0
        return max(math.sqrt(self.ms[j]), self.floor(j))

    def move_mean(self, j, v):
        """The outlier gate's new level: the channel's mean becomes v (the variance is kept)."""
        if self.enabled:
            self.mean[j] = v

    def encode(self, x, t, restart=False):
        """`restart`: the first sample of a new segment: its change is 0 and not folded in."""
        x = [float(v) for v in x]
        if restart:
            self.prev = None
        if self.enabled:
            self.n += 1
            a = running_weight(self.n, self.forgetting)
            for j in range(self.I):
                d = x[j] - self.mean[j]
                self.mean[j] += a * d
                self.var[j] = (1.0 - a) * (self.var[j] + a * d * d)
        if self.prev is not None and (self.enabled or READINGS["none_change_unit"] == "rms"):
            self.m += 1
            a = running_weight(self.m, self.forgetting)
            for j in range(self.I):
                d = x[j] - self.prev[j]
                self.ms[j] += a * (d * d - self.ms[j])
        levels = [(x[j] - self.offset(j)) / self.scale(j) for j in range(self.I)]
        if self.prev is None:
            changes = [0.0] * self.I
        else:
            changes = [(x[j] - self.prev[j]) / self.unit(j) for j in range(self.I)]
        self.prev = x
        if self.formulation == "change":
            levels = [bound(v) for v in levels]
            changes = [bound(v) for v in changes]
        self.levels, self.changes, self.phases = levels, changes, calendar_phases(t)
        features = list(levels)
        if self.formulation == "change":
            features += changes
        if self.calendar:
            features += self.phases
        return features

    @property
    def features(self):
        return self.I * (2 if self.formulation == "change" else 1) + (4 if self.calendar else 0)


# ----------------------------------------------------------------------------------------
# The online schedule

def memory_shape(name, shape):
    """A tensor as it lies in the flat buffer (docs/numerics.md, "Parameters"): Wx and Wh are
    stored transposed ([F, GH] and [H, GH]), Wy as it is; the biases are vectors (rows × 1)."""
    if name in ("Wx", "Wh"):
        return shape[1], shape[0]
    return (shape[0], 1) if len(shape) == 1 else shape


def bfloat16(t):
    """t rounded to bfloat16 through float32 (the upper 16 bits of the float, rounded to nearest
    even), back in float64."""
    return t.to(torch.float32).to(torch.bfloat16).to(torch.float64)


class Adafactor:
    """docs/numerics.md's `adafactor`, which torch.optim does not have: Adam with the first
    moment stored in bfloat16, and the second moment of every weight matrix that has at least two
    rows and two columns *as it lies in the buffer* factored into row and column statistics.
    Works on the memory orientation (`memory_shape`), so Wx's and Wh's rows are their columns
    here. The interface is the part of torch.optim's that OnlineNetwork uses."""

    def __init__(self, named_params, lr, beta1, beta2, eps):
        self.param_groups = [{"lr": lr}]
        self.beta1, self.beta2, self.eps = beta1, beta2, eps
        self.n = 0
        # The closest any stored m came to a bfloat16 tie, in float32 ulps of its float (0: a
        # tie, which an implementation that rounds differently would break the other way).
        self.closest_tie = math.inf
        self.slots = []
        for name, p in named_params:
            rows, cols = memory_shape(name, tuple(p.shape))
            factored = name not in ("b", "bhn", "by") and rows >= 2 and cols >= 2
            self.slots.append({
                "param": p, "transposed": name in ("Wx", "Wh"), "shape": (rows, cols),
                "factored": factored, "m": torch.zeros(rows, cols),
                "r": torch.zeros(rows) if factored else None,
                "c": torch.zeros(cols) if factored else None,
                "v": None if factored else torch.zeros(rows, cols)})

    def zero_grad(self, set_to_none=True):
        for slot in self.slots:
            slot["param"].grad = None

    @torch.no_grad()
    def step(self):
        self.n += 1
        b1, b2, n = self.beta1, self.beta2, self.n
        step_size = self.param_groups[0]["lr"] / (1.0 - b1 ** n)
        root_correction2 = math.sqrt(1.0 - b2 ** n)
        for slot in self.slots:
            p = slot["param"]
            g = p.grad.T if slot["transposed"] else p.grad
            g = g.reshape(slot["shape"])
            if slot["factored"]:
                r, c = slot["r"], slot["c"]
                r.mul_(b2).add_((1.0 - b2) * (g * g).mean(dim=1))
                c.mul_(b2).add_((1.0 - b2) * (g * g).mean(dim=0))
                mean_r = r.mean()
                v = torch.outer(r, c) / mean_r if mean_r > 0 else torch.zeros_like(g)
            else:
                v = slot["v"]
                v.mul_(b2).add_((1.0 - b2) * g * g)
            m = b1 * slot["m"] + (1.0 - b1) * g
            # The step takes m unrounded; only what is kept for the next step is bfloat16.
            update = step_size * m / (torch.sqrt(v) / root_correction2 + self.eps)
            p.sub_((update.T if slot["transposed"] else update).reshape(p.shape))
            slot["m"] = bfloat16(m)
            low = m.to(torch.float32).numpy().view(np.uint32) & 0xFFFF
            nonzero = m != 0
            if bool(nonzero.any()):
                ties = np.abs(low.astype(np.int64) - 0x8000)[nonzero.numpy()]
                self.closest_tie = min(self.closest_tie, int(ties.min()))


def make_optimizer(names, plist, opt_cfg):
    if opt_cfg["kind"] == "adafactor":
        return Adafactor(list(zip(names, plist)), lr=opt_cfg["lr"], beta1=opt_cfg["beta1"],
                         beta2=opt_cfg["beta2"], eps=opt_cfg["eps"])
    if opt_cfg["kind"] == "sgd":
        return torch.optim.SGD(plist, lr=opt_cfg["lr"], foreach=False)
    if opt_cfg["kind"] == "momentum":
        return torch.optim.SGD(plist, lr=opt_cfg["lr"], momentum=opt_cfg["momentum"], foreach=False)
    if opt_cfg["kind"] == "adam":
        return torch.optim.Adam(plist, lr=opt_cfg["lr"], betas=(opt_cfg["beta1"], opt_cfg["beta2"]),
                                eps=opt_cfg["eps"], foreach=False)
    raise ValueError(opt_cfg)


class OnlineNetwork:
    """The predict-then-learn TBPTT(k1, k2) schedule of one network, sample by sample."""

    def __init__(self, sc, params):
        self.cell, self.act = sc["cell"], sc["activation"]
        self.H, self.targets = sc["hidden"], sc["targets"]
        self.K, self.P = len(self.targets), sc["horizon"]
        self.k2, self.k1 = sc["window"], sc["update_every"]
        assert 1 <= self.k1 <= self.k2 and self.P + self.k1 - 1 <= self.k2
        self.formulation = sc.get("formulation", "level")
        self.encoder = InputEncoder(sc["inputs"], self.formulation, sc.get("calendar", False),
                                    sc.get("normalization", {"kind": "none"}))
        self.params = params
        self.names = [n for n, _ in param_shapes(self.cell, self.encoder.features, self.H,
                                                 self.P * self.K)]
        self.plist = [params[n] for n in self.names]
        self.opt = make_optimizer(self.names, self.plist, sc["optimizer"])
        self.base_lr = sc["optimizer"]["lr"]
        self.clip_mode, self.c = sc["clip"]["mode"], sc["clip"]["threshold"]
        self.loss_cfg = sc["loss"]
        self.live = zero_state(self.cell, self.H)
        self.carry = zero_state(self.cell, self.H)  # s_{start-1}; zeros while start == 0
        self.carry_start = 0                          # the window start that `carry` belongs to
        self.segment = 0                              # s, the latest restart
        self.inputs, self.values = [], []             # per sample: features, original values
        self.T = -1
        self.clipped_count = 0
        self.output = self.forecast = None

    def predict(self, x, t=None, restart=False):
        """Step 1: one step from the live state; sets `output` (the head's) and `forecast`
        (original units, with the current statistics). `restart`: a new segment starts at
        this sample: s = T, the carried state becomes the live state before it."""
        self.T += 1
        if restart:
            self.segment = self.T
            self.carry = self.live.detach().clone()
            self.carry_start = self.T
        feats = self.encoder.encode(x, t, restart)
        self.inputs.append(torch.tensor(feats))
        self.values.append([float(v) for v in x])
        with torch.no_grad():
            self.live = cell_step(self.cell, self.act, self.params, self.inputs[-1], self.live, self.H)
            self.output = flat(head(self.cell, self.params, self.live, self.H))
        enc = self.encoder
        self.forecast = []
        for o, y in enumerate(self.output):
            c = self.targets[o % self.K]
            if self.formulation == "change":
                self.forecast.append(self.values[-1][c] + y * enc.unit(c))
            else:
                self.forecast.append(y * enc.scale(c) + enc.offset(c))
        return self.output

    def target(self, u, t):
        """The values the forecasts of step t are trained towards when x_u resolves them."""
        if self.formulation == "change":
            return [(self.values[u][c] - self.values[t][c]) / self.encoder.unit(c) for c in self.targets]
        return [float(self.inputs[u][c]) for c in self.targets]

    def learn(self, lr_scale=1.0):
        """Step 2, every k1 samples; returns the update's record, or None."""
        T, k1, k2, K, H, c = self.T, self.k1, self.k2, self.K, self.H, self.c
        cell, act, params = self.cell, self.act, self.params
        if (T + 1) % k1 != 0:
            return None
        start = max(self.segment, T - k2)
        assert start == self.carry_start, (T, start, self.carry_start)

        hook_hits = [0]

        def make_hook():
            def hook(g):
                n = g.norm()
                if n > c:
                    hook_hits[0] += 1
                    return g * (c / n)
                return g
            return hook

        s = self.carry.detach()
        states, outs = {}, {}
        for t in range(start, T):
            s = cell_step(cell, act, params, self.inputs[t], s, H)
            if self.clip_mode == "step":
                s.register_hook(make_hook())
            states[t] = s
            outs[t] = head(cell, params, s, H)

        preds, targs = [], []
        for u in range(T - k1 + 1, T + 1):
            for p in range(1, self.P + 1):
                t = u - p
                if u < 0 or t < start:
                    continue
                preds.append(outs[t][(p - 1) * K:p * K])
                targs.append(torch.tensor(self.target(u, t)))
        if not preds:
            # No terms, no update, not even the carry. (Only at T = 0 or at a restart, where
            # the window is empty and the carry cannot move.)
            assert start == T and max(self.segment, T + k1 - k2) == start
            return None
        pred = torch.cat(preds)
        targ = torch.cat(targs)
        if self.loss_cfg["kind"] == "squared":
            loss = F.mse_loss(pred, targ, reduction="mean")
        else:
            loss = F.huber_loss(pred, targ, reduction="mean", delta=self.loss_cfg["delta"])

        plist, names = self.plist, self.names
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        for p_ in plist:
            if p_.grad is None:
                p_.grad = torch.zeros_like(p_)
        grads = {n: flat(params[n].grad) for n in names}

        if self.clip_mode == "norm":
            grad_norm = float(torch.nn.utils.clip_grad_norm_(plist, c, foreach=False))
            clipped = grad_norm > c
        elif self.clip_mode == "value":
            grad_norm = float(torch.sqrt(sum((p_.grad ** 2).sum() for p_ in plist)))
            clipped = any(bool((p_.grad.abs() > c).any()) for p_ in plist)
            torch.nn.utils.clip_grad_value_(plist, c, foreach=False)
        else:  # step (already applied by the hooks) or none
            grad_norm = float(torch.sqrt(sum((p_.grad ** 2).sum() for p_ in plist)))
            clipped = hook_hits[0] > 0
        self.clipped_count += int(clipped)
        clipped_grads = {n: flat(params[n].grad) for n in names}
        assert math.isfinite(float(loss.detach())) and math.isfinite(grad_norm)

        for group in self.opt.param_groups:
            group["lr"] = self.base_lr * lr_scale
        self.opt.step()

        # Carry, from this recomputation (weights before the step).
        new_start = max(self.segment, T + k1 - k2)
        if new_start > start:
            self.carry = states[new_start - 1].detach().clone()
            self.carry_start = new_start

        return {
            "at": T,
            "loss": float(loss.detach()),
            "grad_norm": grad_norm,
            "grads": grads,
            "clipped_grads": clipped_grads,
            "params": {n: flat(params[n]) for n in names},
            "_clipped": clipped, "_step_hits": hook_hits[0], "_terms": len(preds),
        }


NETWORK_KEYS = ("cell", "activation", "inputs", "hidden", "targets", "horizon", "window",
                "update_every", "loss", "optimizer", "clip")
INPUT_KEYS = ("formulation", "calendar", "normalization")


def run_scenario(sc, seed):
    gen = torch.Generator().manual_seed(seed)
    sc = dict(sc)
    sc.setdefault("inputs", INPUTS)
    sc.setdefault("hidden", HIDDEN)
    sc.setdefault("targets", TARGETS)
    I, H, K = sc["inputs"], sc["hidden"], len(sc["targets"])
    features = InputEncoder(I, sc.get("formulation", "level"), sc.get("calendar", False),
                            sc.get("normalization", {"kind": "none"})).features
    params = init_params(sc["cell"], features, H, sc["horizon"] * K, gen)
    names = [n for n, _ in param_shapes(sc["cell"], features, H, sc["horizon"] * K)]
    initial = {n: flat(params[n]) for n in names}
    samples = torch.randn((sc["n_samples"], I), generator=gen) * 1.5
    times = [None] * sc["n_samples"]
    if "data" in sc:
        samples, times = sc["data"](samples, gen)
        # Written with 12 significant digits: make the samples exactly what is written.
        samples = torch.tensor(rounded(samples.tolist(), 12))

    net = OnlineNetwork(sc, params)
    forecasts, original, inputs, updates = [], [], [], []
    for T in range(samples.shape[0]):
        forecasts.append(net.predict(samples[T].tolist(), times[T]))
        original.append(net.forecast)
        inputs.append(flat(net.inputs[-1]))
        update = net.learn()
        if update is not None:
            updates.append(update)

    record = {"name": sc["name"]}
    record.update({k: sc[k] for k in NETWORK_KEYS})
    new_inputs = any(k in sc for k in INPUT_KEYS)
    if new_inputs:
        record.update({k: sc[k] for k in INPUT_KEYS})
    record["initial"] = initial
    record["samples"] = [[float(v) for v in row] for row in samples.tolist()]
    if new_inputs:
        record["times"] = times
        record["inputs_seen"] = inputs
        record["original_forecasts"] = original
    record["forecasts"] = forecasts
    record["updates"] = updates
    record["torch_version"] = torch.__version__
    if isinstance(net.opt, Adafactor):
        record["_closest_tie"] = net.opt.closest_tie
    return record, net.clipped_count


# ----------------------------------------------------------------------------------------
# The forecaster (docs/numerics.md, "The forecaster: ensemble, bands, anomaly, drift").
# Everything around the network is plain float64 Python (numpy for the linear model).

EXPERTS = ("persistence", "smoothing", "linear", "network", "direct", "seasonal")
SMOOTHING = 0.1
RLS_FORGETTING = 0.999
EG_RATE, EG_FLOOR, EG_FORGETTING = 0.05, 1e-3, 0.99
# The direct expert (docs/numerics.md, "Experts and their combination"): single lags, block size,
# forgetting, ridge relative to the Gram matrix's mean diagonal, samples between solves.
DIRECT_RECENT, DIRECT_BLOCK, DIRECT_FORGETTING, DIRECT_RIDGE, DIRECT_SOLVE_EVERY = 96, 4, 0.9999, 1e-4, 16
BAND_WINDOW, BAND_WARMUP, BAND_FORGETTING, ACI_GAMMA = 256, 20, 0.99, 0.005
ACI_WINDUP, ACI_REPAY = 0.5, 0.001  # beyond step 1 the level stops at -ACI_WINDUP * alpha and owes the rest
BAND_FAR_WINDOW, BAND_FAR_FORGETTING = 128, 0.998  # beyond step 1: the newest scores the quantile takes, σ_o's forgetting
# The seasonal expert: day bins, week bins, the bins' rate, the week's start (Monday, UTC).
SEASONAL_DAY_BINS, SEASONAL_WEEK_BINS, SEASONAL_RATE, SEASONAL_WEEK_START = 288, 672, 0.1, 4 * 86400.0
ANOMALY_WARMUP = 100
ANOMALY_SPREAD_FLOOR = 0.05   # the error scale is at least this share of the target's std
ANOMALY_RUN = 3               # raw scores averaged
ANOMALY_MEMORY = 2000.0       # the long-term statistics' memory
ANOMALY_TARGET_WARMUP = 100   # means folded in before a target scores
ANOMALY_DEVIATION_FLOOR = 0.06  # the long-term standard deviation of the means is at least this
ANOMALY_DECADES = 24.0        # L = -log10(tail): 0.9 L / 24 below 24, then NOVELTY_FLOOR .. 1 at 48
ANOMALY_ALERT = 0.45          # a surprise this high starts a quiet period ...
ANOMALY_QUIET = 100           # ... of this many samples whose surprises score 0
ANOMALY_ROUTINE = 4.0         # a target's surprise alerts (forgotten at 1 / ANOMALY_MEMORY a sample)
ANOMALY_ROUTINE_CEILING = 0.44  # beyond which a further one is routine and scores at most this
NOVELTY_SPANS = (1, 20, 60)  # exponential smoothing spans (weight 2 / (span + 1))
NOVELTY_WARMUP = 300          # values folded in before a target's novelty scores
NOVELTY_MARGIN = 0.04         # beyond the range by more than this share of its width
NOVELTY_FORGETTING = 1e-4     # the range's ends move this share towards its middle per sample
NOVELTY_FLOOR = 0.92          # a novelty scores NOVELTY_FLOOR .. 1
NOVELTY_QUIET = 100           # samples whose novelties score 0 after one
NOVELTY_DRIFT_RUN = 75        # a drift: the longest span's smoothed value beyond its range's end
NOVELTY_DRIFT_REACH = 0.1     # on this many samples in a row, this share of the width past where
                              # that end stood when the run began; scores NOVELTY_FLOOR, once a run
                              # (watched once a day has passed since the first residual, with times)
NOVELTY_SHAPE_VALUES = 32     # a shape: the latest values (bounded as the smoothed spans take them)
NOVELTY_SHAPE_BLOCKS = 8      # as block means less their mean, in shares of the value's range
NOVELTY_SHAPE_MEMORY = 100    # shapes remembered, the oldest forgotten, ...
NOVELTY_SHAPE_STRIDE = 4      # ... one every this many samples
NOVELTY_SHAPE_MARGIN = 0.05   # new: farther from the nearest remembered than every shape before, by this share
NOVELTY_SHAPE_WARMUP = 75     # shapes remembered before a new one scores (and the value scores)
NOVELTY_RESIDUAL_SPANS = (1, 20, 60)  # the residual's spans (span 1 keeps its range, does not score)
NOVELTY_RESIDUAL_WARMUP = 86400.0  # seconds of residuals, besides NOVELTY_WARMUP of them
NOVELTY_RESIDUAL_MARGIN = 0.07  # the residual's margin
NOVELTY_PROFILE_RATE = 0.2    # the rate of the profile the residual is taken against


def surprise(decades):
    """The surprise of a tail probability 10^-decades."""
    if decades < ANOMALY_DECADES:
        return 0.9 * decades / ANOMALY_DECADES
    return NOVELTY_FLOOR + (1 - NOVELTY_FLOOR) * min(1.0, (decades - ANOMALY_DECADES) / ANOMALY_DECADES)


class AnomalyStatistics:
    """One target's surprise (docs/numerics.md, "Anomaly score"): the raw score
    r = ln(max(|e| / max(w, 0.05 std), 1)), the mean m of the latest 3, scored by the Gaussian
    upper tail of m against the long-term mean and variance of m (weight max(1/n, 1/2000); the
    standard deviation at least 0.06),
    surprise(-log10(tail)), once 100 means are in; then m is folded in."""

    def __init__(self):
        self.recent, self.mean, self.var, self.n = [], 0.0, 0.0, 0

    def observe(self, error, half, spread):
        if not math.isfinite(error):
            return None
        scale = max(half, ANOMALY_SPREAD_FLOOR * spread, sys.float_info.min)
        self.recent = (self.recent + [math.log(max(error / scale, 1.0))])[-ANOMALY_RUN:]
        m = sum(self.recent) / len(self.recent)
        score = 0.0
        if self.n >= ANOMALY_TARGET_WARMUP and m > self.mean:
            t = (m - self.mean) / math.sqrt(max(self.var, ANOMALY_DEVIATION_FLOOR ** 2))
            tail = 0.5 * math.erfc(t / math.sqrt(2.0))
            score = surprise(-math.log10(tail)) if tail > 0 else 1.0
        a = max(1.0 / (self.n + 1), 1.0 / ANOMALY_MEMORY)
        d = m - self.mean
        self.mean += a * d
        self.var = (1 - a) * (self.var + a * d * d)
        self.n += 1
        return score


def new_profile():
    """A seasonal profile (the seasonal expert's, and the novelty's own): its level, day and week
    bins, all unknown."""
    return dict(level=math.nan, day=[math.nan] * SEASONAL_DAY_BINS, week=[math.nan] * SEASONAL_WEEK_BINS)


def seasonal_bins(t):
    def at(length, bins, offset=0.0):
        phase = math.fmod(t - offset, length)
        if phase < 0:
            phase += length
        return min(int(phase / length * bins), bins - 1)
    return at(86400.0, SEASONAL_DAY_BINS), at(7 * 86400.0, SEASONAL_WEEK_BINS, SEASONAL_WEEK_START)


def profile_observe(s, x, t, interval, restart, rate=SEASONAL_RATE):
    """The level follows the value less its profile over about a day (in time); the deviation
    from it is learned by the day bin, then the week bin, each from what the other leaves at
    `rate` (a bin's first value whole; an unknown bin counts 0)."""
    b, c = seasonal_bins(t)
    daily = 0.0 if math.isnan(s["day"][b]) else s["day"][b]
    weekly = 0.0 if math.isnan(s["week"][c]) else s["week"][c]
    if math.isnan(s["level"]) or restart:
        s["level"] = x - daily - weekly
    else:
        a = min(max((interval if interval is not None else 86400.0 / 100) / 86400.0, 1e-4), 0.5)
        s["level"] += a * (x - daily - weekly - s["level"])
    d = x - s["level"]
    day = s["day"][b]
    s["day"][b] = d - weekly if math.isnan(day) else day + rate * (d - weekly - day)
    week = s["week"][c]
    s["week"][c] = d - s["day"][b] if math.isnan(week) else week + rate * (d - s["day"][b] - week)


def profile_expected(s, t):
    """ℓ + D[b] + W[c] at time t (an unknown week bin counts 0); None until ℓ and D[b] are known."""
    b, c = seasonal_bins(t)
    weekly = 0.0 if math.isnan(s["week"][c]) else s["week"][c]
    x = s["level"] + s["day"][b] + weekly
    return None if math.isnan(x) else x


class Ranges:
    """Per span, the exponentially smoothed value against the remembered range of the smoothed
    values (the first span is 1: the value's own range, which bounds what the others take)."""

    def __init__(self, spans):
        self.spans, self.n = spans, 0
        self.smoothed, self.low, self.high = [0.0] * len(spans), [0.0] * len(spans), [0.0] * len(spans)
        # per end of the longest span's range (low, high): the run of samples beyond it (negative
        # once it has alerted) and where the end stood when the run began
        self.runs, self.drifted = [[0.0, 0.0], [0.0, 0.0]], False

    def watch(self, v, lo, hi):
        """Advances the longest span's runs for its smoothed value `v` against `lo`..`hi`."""
        for side, end in enumerate((lo, hi)):
            run = self.runs[side]
            if not (v < end if side == 0 else v > end):
                run[0] = 0.0
                continue
            if run[0] == 0:
                run[0], run[1] = 1.0, end
            else:
                run[0] += 1.0 if run[0] > 0 else -1.0
            if run[0] >= NOVELTY_DRIFT_RUN and abs(v - run[1]) >= NOVELTY_DRIFT_REACH * (hi - lo):
                run[0] = -run[0]
                self.drifted = True

    def fold(self, value, scores, first, drift=False, first_reach=None):
        """Folds `value` in; returns the largest excess of spans `first`.. (0 unless `scores`);
        with `drift`, sets `drifted` when a run of the longest span alerts; `first_reach`, when
        given, is how far span 1's range may widen for this value."""
        excess = 0.0
        self.drifted = False
        # the smoothed spans take the value bounded to a width beyond the value's own range
        value_width = self.high[0] - self.low[0]
        bounded = value
        if self.n >= NOVELTY_WARMUP and value_width > 0:
            bounded = min(max(value, self.low[0] - value_width), self.high[0] + value_width)
        for i, span in enumerate(self.spans):
            x = value if i == 0 else bounded
            if self.n == 0:
                self.smoothed[i] = self.low[i] = self.high[i] = x
                continue
            v = self.smoothed[i] + 2.0 / (span + 1) * (x - self.smoothed[i])
            lo, hi = self.low[i], self.high[i]
            width = hi - lo
            if scores and width > 0 and i >= first:
                excess = max(excess, (v - hi) / width, (lo - v) / width)
            if drift and i == len(self.spans) - 1 and scores and width > 0:
                self.watch(v, lo, hi)
            reach = width if self.n >= NOVELTY_WARMUP and width > 0 else math.inf
            if i == 0 and first_reach is not None:
                reach = first_reach
            lo, hi = min(lo, max(v, lo - reach)), max(hi, min(v, hi + reach))
            middle = 0.5 * (lo + hi)
            self.low[i] = lo + NOVELTY_FORGETTING * (middle - lo)
            self.high[i] = hi + NOVELTY_FORGETTING * (middle - hi)
            self.smoothed[i] = v
        self.n += 1
        return excess


class Shapes:
    """The latest values' shape against the shapes remembered: new when its distance to the
    nearest is beyond every such distance before by NOVELTY_SHAPE_MARGIN of it. The record of those
    distances is held while the latest values include one novel to another part (one sentinel does
    not raise it for good); a new shape does not hold it."""

    def __init__(self):
        self.latest, self.remembered = [], []  # oldest first
        self.record, self.pushed, self.calm = 0.0, 0, 0  # calm: samples since another part's latest novelty

    def observe(self, value, width, scores, novel):
        self.latest = (self.latest + [value])[-NOVELTY_SHAPE_VALUES:]
        self.pushed += 1
        held = novel or self.calm < NOVELTY_SHAPE_VALUES - 1
        new = False
        if len(self.latest) == NOVELTY_SHAPE_VALUES and width > 0:
            size = NOVELTY_SHAPE_VALUES // NOVELTY_SHAPE_BLOCKS
            blocks = [sum(self.latest[b * size:(b + 1) * size]) / size for b in range(NOVELTY_SHAPE_BLOCKS)]
            centre = sum(blocks) / NOVELTY_SHAPE_BLOCKS
            shape = [(b - centre) / width for b in blocks]
            if self.remembered:
                nearest = math.sqrt(min(sum((a - b) * (a - b) for a, b in zip(old, shape)) for old in self.remembered))
                new = (scores and len(self.remembered) >= NOVELTY_SHAPE_WARMUP and self.record > 0
                       and nearest > self.record * (1 + NOVELTY_SHAPE_MARGIN))
                if not held:
                    self.record = max(self.record, nearest)
            if (self.pushed - NOVELTY_SHAPE_VALUES) % NOVELTY_SHAPE_STRIDE == 0:
                self.remembered = (self.remembered + [shape])[-NOVELTY_SHAPE_MEMORY:]
        self.calm = 0 if novel else self.calm + 1
        return new


class Novelty:
    """One target's novelty (docs/numerics.md, "Anomaly score"): the value's ranges, and those of
    its residual against a day-and-week profile of its own (the seasonal expert's algorithm, always
    on); novel when a smoothed value is beyond its range by more than NOVELTY_MARGIN of its width
    (once NOVELTY_WARMUP values are in), or a smoothed residual beyond its by NOVELTY_RESIDUAL_MARGIN
    (once NOVELTY_WARMUP residuals and a day of them are in); or drifting (Ranges.watch); or of a
    new shape (Shapes)."""

    def __init__(self):
        self.values = Ranges(NOVELTY_SPANS)
        self.residuals = Ranges(NOVELTY_RESIDUAL_SPANS)
        self.first_time = None
        self.profile = new_profile()
        self.shapes = Shapes()
        self.ends_quiet = False

    def observe(self, value, learned, t, interval, routine, j):
        # the drift and the shape are watched once a day has passed since the first residual (for a
        # sample with a time), as the residual waits
        day_old = t is None or (self.residuals.n > 0 and t - self.first_time >= NOVELTY_RESIDUAL_WARMUP)
        scores = self.values.n >= NOVELTY_WARMUP
        width = self.values.high[0] - self.values.low[0]
        # an incident of its own: at least 1.04 W_1 beyond span 1's range, held back by the gate;
        # it ends the novelty's quiet period before the sample is scored
        self.ends_quiet = (scores and learned != value and width > 0
                           and max(value - self.values.high[0], self.values.low[0] - value) >= (1 + NOVELTY_MARGIN) * width)
        # ... and counts as one of the target's alerts (routine[j]); span 1's range does not take it
        # until they are routine (more than ANOMALY_ROUTINE), then takes it whole
        first_reach = None
        if self.ends_quiet:
            routine[j] = min(routine[j] + 1.0, ANOMALY_MEMORY)
            first_reach = math.inf if routine[j] > ANOMALY_ROUTINE else 0.0
        bounded = min(max(value, self.values.low[0] - width), self.values.high[0] + width) if scores and width > 0 else value
        excess = self.values.fold(value, scores, 0, drift=day_old, first_reach=first_reach)
        if t is not None:
            expected = profile_expected(self.profile, t)
            if expected is not None:
                if self.residuals.n == 0 or t < self.first_time:
                    self.first_time = t
                scores = self.residuals.n >= NOVELTY_WARMUP and t - self.first_time >= NOVELTY_RESIDUAL_WARMUP
                e = self.residuals.fold(value - expected, scores, 1)
                excess = max(excess, e - (NOVELTY_RESIDUAL_MARGIN - NOVELTY_MARGIN))
            profile_observe(self.profile, learned, t, interval, False, NOVELTY_PROFILE_RATE)
        novel = excess > NOVELTY_MARGIN or self.values.drifted
        new_shape = self.shapes.observe(bounded, self.values.high[0] - self.values.low[0], scores and day_old, novel)
        if excess <= NOVELTY_MARGIN:
            return NOVELTY_FLOOR if self.values.drifted or new_shape else 0.0
        return NOVELTY_FLOOR + (1 - NOVELTY_FLOOR) * min(1.0, excess - NOVELTY_MARGIN)


DRIFT_WARMUP, DRIFT_ERROR_FORGETTING, DRIFT_SIGNAL_MEMORY = 200, 0.999, 200
DRIFT_BOUND, DRIFT_DELTA, DRIFT_THRESHOLD = 10.0, 0.1, 100.0
DRIFT_BOOST, DRIFT_BOOST_SAMPLES = 3.0, 500
SCALE_BOUND = 5.0                       # B: bounded updates of s_o, σ_o, ē
GATE_UNITS, GATE_WARMUP, GATE_MEMORY = 12.0, 10, 1000
CLOCK_GAP, CLOCK_KNOWN, CLOCK_PLAIN, CLOCK_WEIGHT = 10.0, 8, 20, 0.05


def band_quantile(scores, level):
    """The ⌈(1 − α_o)(m + 1)⌉-th smallest of the m scores (the largest past m; 0 when
    α_o ≥ 1), and how far (1 − α_o)(m + 1) is from an integer (a tie could round either way)."""
    m = len(scores)
    if level >= 1.0:
        return 0.0, math.inf
    x = (1.0 - level) * (m + 1)
    rank = math.ceil(x)
    tie = abs(x - round(x)) if rank <= m else math.inf
    return sorted(scores)[min(rank, m) - 1], tie


class BoundedScale:
    """s_o, σ_o or ē: the first value starts it (while it is 0), then each new value, bounded
    at `bound` times the scale, weighs 1 − λ."""

    def __init__(self, forgetting, bound):
        self.weight, self.bound, self.value = 1.0 - forgetting, bound, 0.0

    def update(self, v):
        if self.value == 0.0:
            self.value = v
        else:
            self.value += self.weight * (min(v, self.bound * self.value) - self.value)


def hampel(a, b):
    """Hampel's three-part redescending influence: b up to 1.5b, down to 0 at 4b."""
    if a <= 1.5 * b:
        return b
    if a < 4.0 * b:
        return b * (4.0 * b - a) / (2.5 * b)
    return 0.0


class SamplingClock:
    """The latest time and the usual interval (a plain mean of the first 20 intervals, then
    weight 0.05; an interval counts only within [½, 2] times the estimate, read as: bounded to
    that range, since "neither [a gap nor a clock jump] moves the estimate" says the others
    do). `observe`
    says whether the sample starts a new segment (a gap of more than 10 usual intervals once 8
    are known, or a time at or before the latest)."""

    def __init__(self):
        self.latest, self.interval, self.known = None, 0.0, 0
        self.margin = math.inf   # closest decision (gap, or an interval's counting), relative

    def usual(self):
        """The usual interval once one is known (SamplingClock.interval), else None."""
        return self.interval if self.known >= 1 and self.interval > 0 else None

    def observe(self, t):
        if t is None:
            return False
        latest, self.latest = self.latest, t
        if latest is None:
            return False
        d = t - latest
        if d <= 0.0:
            return True                                   # clock jump
        if self.known >= CLOCK_KNOWN:
            self.margin = min(self.margin, abs(d - CLOCK_GAP * self.interval) / d)
            if d > CLOCK_GAP * self.interval:
                return True                               # gap
        if self.known > 0:
            self.margin = min(self.margin, abs(d - 0.5 * self.interval) / d,
                              abs(d - 2.0 * self.interval) / d)
            d = min(max(d, 0.5 * self.interval), 2.0 * self.interval)
        self.known += 1
        self.interval += max(1.0 / self.known, CLOCK_WEIGHT) * (d - self.interval)
        return False


class OutlierGate:
    """Per channel: the reference r (the latest value taken as it came), the level before the
    latest adopted shift and its sample, and the side of the previous sample's outlier."""

    def __init__(self, I):
        self.I = I
        self.reference = [0.0] * I
        self.before_shift = [None] * I    # (level, sample of the shift)
        self.side = [0.0] * I             # sign of the previous sample's held-back outlier
        self.margin = math.inf            # closest |d| or |x − level| to the bound b, relative to b
        self.events = []                  # (n, channel, "outlier" | "return" | "new level")

    def reset(self, x):
        self.reference = list(x)
        self.before_shift = [None] * self.I
        self.side = [0.0] * self.I

    def apply(self, n, x, encoder, new_segment):
        """x̃ and whether a level shift (a return or a new level) was taken."""
        watching = encoder.enabled and encoder.m >= GATE_WARMUP
        if new_segment or not watching:
            self.reset(x)
            return list(x), False
        gated, shift = list(x), False
        for i in range(self.I):
            b = GATE_UNITS * encoder.unit(i)      # the unit before x_n
            d = x[i] - self.reference[i]
            self.margin = min(self.margin, abs(abs(d) - b) / b)
            if abs(d) <= b:
                self.reference[i], self.side[i] = x[i], 0.0
                continue
            side = math.copysign(1.0, d)
            before = self.before_shift[i]
            back = False
            if before is not None and n - before[1] <= GATE_MEMORY:
                self.margin = min(self.margin, abs(abs(x[i] - before[0]) - b) / b)
                back = abs(x[i] - before[0]) <= b
            if back or self.side[i] == side:
                self.events.append((n, i, "return" if back else "new level"))
                self.before_shift[i] = (self.reference[i], n)
                self.reference[i], self.side[i] = x[i], 0.0
                encoder.move_mean(i, x[i])
                shift = True
            else:
                self.events.append((n, i, "outlier"))
                # x̃ is a sample like the others: a float (docs/numerics.md, "Memory and cost").
                gated[i] = float(np.float32(self.reference[i] + side * hampel(abs(d), b)))
                self.side[i] = side
        return gated, shift


class ForecasterReference:
    """One stream's forecaster, sample by sample: the clock and the gate, then score, forecast,
    learn."""

    def __init__(self, sc, params):
        self.net = OnlineNetwork(sc, params)
        self.I, self.targets, self.P = sc["inputs"], sc["targets"], sc["horizon"]
        self.K = len(self.targets)
        self.O = self.P * self.K
        self.ensemble, self.use_drift = sc["ensemble"], sc["drift"]
        self.coverage = sc["coverage"]
        self.alpha = 1.0 - sc["coverage"]
        lags = sc["linear_lags"]
        self.L = min(lags, max(1, 32 // self.I)) if lags > 0 else 0
        self.D = self.L * self.I + self.I + 4 + 1
        self.C = np.eye(self.D)
        self.W = np.zeros((self.O, self.D))
        self.features = {}                                            # n -> φ_n
        self.smoothed = None
        self.DL = sc["direct_lookback"]
        if self.DL > 0:
            single = min(self.DL, DIRECT_RECENT)
            self.DD = single + (self.DL - single + DIRECT_BLOCK - 1) // DIRECT_BLOCK + 1
            self.G = np.zeros((self.DD, self.DD))
            self.Bx = np.zeros((self.P, self.DD))
            self.DW = np.zeros((self.P, self.DD))
        self.direct_solved, self.since_solve = False, 0
        self.direct_start = 0         # the latest new segment (or 0): the look-back stops there
        self.active = [True, True, self.L > 0, True, self.DL > 0, self.P > 1]
        # The seasonal expert beyond horizon 1: per target its level, day and week profiles.
        self.season = [new_profile() for _ in range(self.K)]
        even = 1.0 / sum(self.active)
        self.weights = [[even if a else 0.0 for a in self.active] for _ in range(self.O)]
        self.sq_error = [BoundedScale(EG_FORGETTING, SCALE_BOUND ** 2) for _ in range(self.O)]  # s_o
        self.abs_error = [BoundedScale(BAND_FORGETTING if o < self.K else BAND_FAR_FORGETTING, SCALE_BOUND)
                          for o in range(self.O)]                            # σ_o (o < K: step 1)
        self.scores = [[] for _ in range(self.O)]                            # arrival order
        self.level = [self.alpha] * self.O                                   # α_o
        self.debt = [0.0] * self.O                                           # beyond step 1: what the bound held back
        self.history = {}                                                    # n -> published
        self.error_mean = [BoundedScale(DRIFT_ERROR_FORGETTING, SCALE_BOUND)
                           for _ in range(self.K)]  # ē
        self.restart_detector()
        self.drift_at = None
        self.anomaly_stats = [AnomalyStatistics() for _ in range(self.K)]
        self.novelty = [Novelty() for _ in range(self.K)]
        self.anomaly_quiet, self.novelty_quiet = 0, 0
        self.anomaly_routine = [0.0] * self.K
        self.counters = {"scored": 0, "banded": 0, "covered": 0, "drifts": 0}
        self.trace_rescales = 0
        self.min_margin = math.inf    # closest value to a band edge, relative to max(1, |y|)
        self.rank_ties = []           # (n, o, m, α_o) where (1 − α_o)(m + 1) is an integer
        self.clock = SamplingClock()
        self.gate = OutlierGate(self.I)
        self.segment_start = 0        # the latest gap or clock jump: nothing before it is scored
        self.restart_at = 0           # the latest restart (segment or level shift)
        self.segments, self.level_shifts = [], []
        self.learned = []             # x̃ per sample
        self.n = -1

    def restart_detector(self):
        self.signal_mean = RunningMean(1.0 - 1.0 / DRIFT_SIGNAL_MEMORY, READINGS["drift_signal_mean"])  # ū
        self.ph_sum, self.ph_min = 0.0, 0.0                                # S_n, min S

    def boost(self):
        if self.drift_at is None:
            return 1.0
        return 1.0 + (DRIFT_BOOST - 1.0) * max(0.0, 1.0 - (self.n - self.drift_at) / DRIFT_BOOST_SAMPLES)

    # 1. Score every forecast that x_n (as it came) resolves, made in this segment.
    def score(self, x, xg, t):
        n, K = self.n, self.K
        step1_errors = [None] * K
        anomaly_parts = []
        interval = self.clock.usual()
        novelties = [self.novelty[j].observe(x[c], xg[c], t, interval, self.anomaly_routine, j) if self.coverage > 0 else 0.0
                     for j, c in enumerate(self.targets)]
        if self.coverage > 0 and any(self.novelty[j].ends_quiet for j in range(K)):
            self.novelty_quiet = 0
        for p in range(1, self.P + 1):
            if n - p < self.segment_start:
                continue
            made = self.history[n - p]
            for j, c in enumerate(self.targets):
                o = (p - 1) * K + j
                y = x[c]
                published = made["forecast"][o]
                error = published - y
                self.counters["scored"] += 1
                if self.ensemble:
                    # v over the experts heard (weight above 0)
                    heard = [f for f, w in zip(made["experts"][o], self.weights[o]) if w > 0.0]
                    mean_sq = sum((f - y) ** 2 for f in heard) / len(heard)
                    s = self.sq_error[o].value                  # before this resolution
                    if s > 0.0:
                        bounded = min(max(published - y, -SCALE_BOUND * math.sqrt(s)), SCALE_BOUND * math.sqrt(s))
                        w = list(self.weights[o])
                        gs = [2.0 * bounded * (f - published) / s for f in made["experts"][o]]
                        if all(math.isfinite(g) for e, g in enumerate(gs) if w[e] > 0.0):
                            for e in range(len(EXPERTS)):
                                if w[e] > 0.0:
                                    w[e] = max(w[e] * math.exp(min(max(-EG_RATE / p * gs[e], -50.0), 50.0)), EG_FLOOR)
                            total = sum(w)
                            self.weights[o] = [v / total for v in w]
                    if math.isfinite(mean_sq):
                        self.sq_error[o].update(mean_sq)
                band = made["band"][o]
                if band is not None:
                    lower, upper, half = band
                    miss = 0.0 if lower <= y <= upper else 1.0
                    self.min_margin = min(self.min_margin, min(abs(y - lower), abs(y - upper)) / max(1.0, abs(y)))
                    self.counters["banded"] += 1
                    self.counters["covered"] += int(miss == 0.0)
                    level = self.level[o] + ACI_GAMMA * (self.alpha - miss)
                    if p > 1:
                        floor = -ACI_WINDUP * self.alpha
                        if level < floor:
                            self.debt[o] += floor - level
                            level = floor
                        elif self.debt[o] > 0.0:
                            paid = min(self.debt[o] * ACI_REPAY, level - floor)
                            level -= paid
                            self.debt[o] -= paid
                    self.level[o] = level
                if made["scale"][o] is not None:
                    self.scores[o].append(abs(error) / made["scale"][o])
                    if len(self.scores[o]) > BAND_WINDOW:
                        self.scores[o].pop(0)
                self.abs_error[o].update(abs(error))
                if p == 1:
                    step1_errors[j] = error
                    if self.coverage > 0:
                        spread = self.net.encoder.scale(c) if self.net.encoder.enabled else 0.0
                        anomaly_parts.append(None if band is None else
                                             self.anomaly_stats[j].observe(abs(error), band[2], spread))

        anomaly = None
        if self.coverage > 0 and n >= ANOMALY_WARMUP and anomaly_parts and None not in anomaly_parts:
            if self.novelty_quiet > 0:
                self.novelty_quiet -= 1
                novelties = [0.0] * K
            elif max(novelties) > 0:
                self.novelty_quiet = NOVELTY_QUIET
            for j in range(K):
                self.anomaly_routine[j] *= 1.0 - 1.0 / ANOMALY_MEMORY
                if self.anomaly_quiet == 0 and anomaly_parts[j] >= ANOMALY_ALERT:
                    self.anomaly_routine[j] = min(self.anomaly_routine[j] + 1.0, ANOMALY_MEMORY)
                    if self.anomaly_routine[j] > ANOMALY_ROUTINE:
                        anomaly_parts[j] = min(anomaly_parts[j], ANOMALY_ROUTINE_CEILING)
            if self.anomaly_quiet > 0:
                self.anomaly_quiet -= 1
                anomaly_parts = [0.0] * K
            elif max(anomaly_parts) >= ANOMALY_ALERT:
                self.anomaly_quiet = ANOMALY_QUIET
            anomaly = max(max(anomaly_parts), max(novelties))
            if anomaly >= NOVELTY_FLOOR:  # an alert of the novelty's rank quiets both halves
                self.anomaly_quiet, self.novelty_quiet = ANOMALY_QUIET, NOVELTY_QUIET

        drift = self.watch_drift(step1_errors)
        if drift:
            self.counters["drifts"] += 1
            self.drift_at = n
            self.C = np.eye(self.D)
            self.restart_detector()
        return anomaly, drift

    def watch_drift(self, step1_errors):
        """Page–Hinkley on the step-1 errors; True when a drift is raised."""
        # u over the targets whose slow mean ē (before this error) is already set; then ē takes it.
        ratios = []
        for j, error in enumerate(step1_errors):
            if error is None:
                continue                                  # not scored (first sample, new segment)
            e = abs(error)
            mean = self.error_mean[j].value
            if mean > 0:
                ratios.append(min(e / mean, DRIFT_BOUND))
            self.error_mean[j].update(e)
        if not (self.use_drift and self.n >= DRIFT_WARMUP and ratios):
            return False
        u = sum(ratios) / len(ratios)
        if READINGS["drift_signal_order"] == "before":
            u_mean = self.signal_mean.value if self.signal_mean.n > 0 else u
            self.signal_mean.update(u)
        else:
            u_mean = self.signal_mean.update(u)
        self.ph_sum += u - u_mean - DRIFT_DELTA
        self.ph_min = min(self.ph_min, self.ph_sum)
        return self.ph_sum - self.ph_min > DRIFT_THRESHOLD

    # 2. Forecast x_{n+1} ... x_{n+P} from x̃.
    def forecast(self, xg, t, restart):
        net, n = self.net, self.n
        net.predict(xg, t, restart)
        enc = net.encoder
        if self.smoothed is None or restart:
            self.smoothed = list(xg)
        else:
            self.smoothed = [l + SMOOTHING * (v - l) for l, v in zip(self.smoothed, xg)]
        values = self.learned
        if READINGS["lag_units"] == "current":
            lags = [[bound((values[n - k][i] - values[n - k - 1][i]) / enc.unit(i))
                     if n - k - 1 >= self.restart_at else 0.0 for i in range(self.I)]
                    for k in range(self.L)]
        else:  # the unit each change had on arrival (the network's change inputs)
            self.arrival_changes = getattr(self, "arrival_changes", {})
            self.arrival_changes[n] = list(enc.changes)
            lags = [list(self.arrival_changes[n - k]) if n - k - 1 >= self.restart_at
                    else [0.0] * self.I for k in range(self.L)]
        phi = np.array([v for lag in lags for v in lag] + list(enc.levels)
                       + list(enc.phases) + [1.0])
        assert phi.shape == (self.D,)
        self.features[n] = phi
        self.features.pop(n - self.P - 1, None)
        linear = self.W @ phi
        direct = {}
        if self.DL > 0:
            for j, c in enumerate(self.targets):
                s = enc.scale(c)
                psi = self.direct_features(n, c, s)
                for p in range(1, self.P + 1):
                    change = float(self.DW[p - 1] @ psi) if self.direct_solved else 0.0
                    direct[(p - 1) * self.K + j] = xg[c] + change * s
        seasonal = {}
        if self.P > 1:
            interval = self.clock.usual()
            for j, c in enumerate(self.targets):
                if t is not None:
                    profile_observe(self.season[j], xg[c], t, interval, n == 0 or restart)
                for p in range(1, self.P + 1):
                    change = self.seasonal_change(j, t, t + p * interval) if t is not None and interval else 0.0
                    seasonal[(p - 1) * self.K + j] = xg[c] + change
        made = {"experts": [], "forecast": [], "scale": [], "band": []}
        for o in range(self.O):
            c = self.targets[o % self.K]
            lin = xg[c] + float(linear[o]) * enc.unit(c) if self.L > 0 else xg[c]
            experts = [xg[c], self.smoothed[c], lin, net.forecast[o], direct.get(o, xg[c]), seasonal.get(o, xg[c])]
            if self.ensemble:
                published = sum(w * f for w, f in zip(self.weights[o], experts))
            else:
                published = net.forecast[o]
            scale = self.abs_error[o].value if self.abs_error[o].value > 0 else None
            band = None
            live = self.scores[o] if o < self.K else self.scores[o][-BAND_FAR_WINDOW:]
            if self.coverage > 0 and len(live) >= BAND_WARMUP:
                q, tie = band_quantile(live, self.level[o])
                if tie < 1e-9:
                    self.rank_ties.append((n, o, len(live), self.level[o]))
                half = scale * q
                band = (published - half, published + half, half)
            made["experts"].append(experts)
            made["forecast"].append(published)
            made["scale"].append(scale)
            made["band"].append(band)
        self.history[n] = made
        self.history.pop(n - self.P - 1, None)
        return made

    def seasonal_change(self, j, t, ahead):
        s = self.season[j]
        (b0, c0), (b1, c1) = seasonal_bins(t), seasonal_bins(ahead)
        def difference(profile, a, b):
            x = profile[b] - profile[a]
            return 0.0 if math.isnan(x) else x
        return difference(s["day"], b0, b1) + difference(s["week"], c0, c1)

    def direct_value(self, m, c):
        """Channel c's value as learned from at sample m; before the latest new segment (and
        before the stream), the value it started with."""
        return self.learned[max(m, self.direct_start)][c]

    def direct_features(self, m, c, s):
        """ψ of origin m for channel c: each lag's value less m's, over s; the lags beyond
        DIRECT_RECENT as block means; then 1."""
        latest = self.direct_value(m, c)
        single = min(self.DL, DIRECT_RECENT)
        psi = [(self.direct_value(m - lag, c) - latest) / s for lag in range(1, single + 1)]
        for start in range(single, self.DL, DIRECT_BLOCK):
            lags = range(start + 1, min(self.DL, start + DIRECT_BLOCK) + 1)
            psi.append((sum(self.direct_value(m - lag, c) for lag in lags) / len(lags) - latest) / s)
        psi.append(1.0)
        assert len(psi) == self.DD
        return np.array(psi)

    def learn_direct(self):
        """Ridge regression with forgetting: the origin n − P once its look-back and every step
        since are in this segment; a solve every DIRECT_SOLVE_EVERY samples."""
        n, enc = self.n, self.net.encoder
        o = n - self.P
        filled = n - self.direct_start + 1 >= self.DL + self.P + 1
        if filled and o >= 0:
            self.G *= DIRECT_FORGETTING
            self.Bx *= DIRECT_FORGETTING
            for c in self.targets:
                s = enc.scale(c)
                if not (s > 0 and math.isfinite(s)):
                    continue
                psi = self.direct_features(o, c, s)
                if not np.all(np.isfinite(psi)):
                    continue
                self.G += np.outer(psi, psi)
                for p in range(1, self.P + 1):
                    y = (self.direct_value(o + p, c) - self.direct_value(o, c)) / s
                    if math.isfinite(y):
                        self.Bx[p - 1] += y * psi
        if self.direct_solved:
            self.since_solve += 1
        if (not self.direct_solved and filled) or self.since_solve >= DIRECT_SOLVE_EVERY:
            trace = np.trace(self.G)
            if trace > 0 and math.isfinite(trace):
                A = self.G + DIRECT_RIDGE * trace / self.DD * np.eye(self.DD)
                try:
                    factor = np.linalg.cholesky(A)
                except np.linalg.LinAlgError:
                    return
                z = np.linalg.solve(factor, self.Bx.T)
                self.DW = np.linalg.solve(factor.T, z).T
                self.direct_solved, self.since_solve = True, 0

    # 3. Learn: the network's schedule, the direct model's statistics, the linear model's step (on x̃).
    def learn(self, xg):
        n, enc = self.n, self.net.encoder
        update = self.net.learn(lr_scale=self.boost())
        if self.DL > 0:
            self.learn_direct()
        if self.L == 0:
            return update
        for p in range(1, self.P + 1):  # step 1 first: steps p > 1 use the C it updated
            if n - p < self.restart_at:
                continue
            phi = self.features[n - p]
            c_phi = self.C @ phi
            den = RLS_FORGETTING + phi @ c_phi
            if not (math.isfinite(den) and den > 0):
                continue
            gain = c_phi / den
            for j, c in enumerate(self.targets):
                o = (p - 1) * self.K + j
                target = (xg[c] - self.learned[n - p][c]) / enc.unit(c)
                error = target - self.W[o] @ phi
                if math.isfinite(error):
                    self.W[o] += gain * error
            if p == 1:
                self.C = (self.C - np.outer(gain, phi @ self.C)) / RLS_FORGETTING
                trace = np.trace(self.C)
                if trace > self.D:
                    self.C *= self.D / trace
                    self.trace_rescales += 1
        return update

    def step(self, x, t):
        self.n += 1
        x = [float(v) for v in x]
        new_segment = self.clock.observe(t)
        xg, shift = self.gate.apply(self.n, x, self.net.encoder, new_segment)
        if new_segment:
            self.segment_start = self.n
            self.direct_start = self.n
            self.segments.append(self.n)
        if shift:
            self.level_shifts.append(self.n)
        restart = (new_segment or shift) and self.n > 0
        if restart:
            self.restart_at = self.n
        self.learned.append(xg)
        anomaly, drift = self.score(x, xg, t)
        made = self.forecast(xg, t, restart)
        self.learn(xg)
        return made, anomaly, drift


def run_forecaster(sc, seed):
    gen = torch.Generator().manual_seed(seed)
    sc = dict(sc)
    I, H, K = sc["inputs"], sc["hidden"], len(sc["targets"])
    features = InputEncoder(I, sc["formulation"], sc["calendar"], sc["normalization"]).features
    params = init_params(sc["cell"], features, H, sc["horizon"] * K, gen)
    names = [n for n, _ in param_shapes(sc["cell"], features, H, sc["horizon"] * K)]
    initial = {n: flat(params[n]) for n in names}
    samples, times = sc["data"](sc["n_samples"], gen)
    # Quantised to 1/1024 like a sensor's readings: exact in float32 and in a short decimal.
    samples = [[round(v * 1024.0) / 1024.0 for v in row] for row in samples]
    assert all(float(np.float32(v)) == v for row in samples for v in row)

    ref = ForecasterReference(sc, params)
    columns = {k: [] for k in ("forecast", "experts", "half_width", "anomaly", "counters")}
    drifts, weights, gated = [], {}, {}
    for n, (x, t) in enumerate(zip(samples, times)):
        made, anomaly, drift = ref.step(x, t)
        columns["forecast"].append(made["forecast"])
        columns["experts"].append([e[1:] for e in made["experts"]])  # persistence is the sample
        columns["half_width"].append([None if b is None else b[2] for b in made["band"]])
        columns["anomaly"].append(anomaly)
        columns["counters"].append([ref.counters[k] for k in ("scored", "banded", "covered", "drifts")])
        if drift:
            drifts.append(n)
        if ref.learned[-1] != x:
            gated[str(n)] = ref.learned[-1]
        if n % sc["weights_every"] == 0 or n == len(samples) - 1:
            weights[str(n)] = [list(w) for w in ref.weights]

    record = {"name": sc["name"]}
    record.update({k: sc[k] for k in NETWORK_KEYS + INPUT_KEYS + FORECASTER_KEYS})
    record["initial"] = initial
    record["samples"] = samples
    record["times"] = times
    record.update(columns)
    record["drifts"] = drifts
    record["weights"] = weights
    record["gated"] = gated
    record["segments"] = ref.segments
    record["level_shifts"] = ref.level_shifts
    record["torch_version"] = torch.__version__
    summary = {
        "drifts at": drifts,
        "first band": next((n for n, h in enumerate(columns["half_width"]) if h[0] is not None), None),
        "first anomaly": next((n for n, a in enumerate(columns["anomaly"]) if a is not None), None),
        "anomalies > 0": sum(1 for a in columns["anomaly"] if a),
        "counters": ref.counters,
        "trace rescales": ref.trace_rescales,
        "closest band edge (relative)": ref.min_margin,
        "rank ties (n, o, m, level)": ref.rank_ties,
        "network updates": ref.net.T + 1,
        "gate events (n, channel, kind)": ref.gate.events,
        "closest gate decision (relative to b)": ref.gate.margin,
        "new segments": ref.segments,
        "closest clock decision (relative)": ref.clock.margin,
        "usual interval": ref.clock.interval,
        "change units at the end": [ref.net.encoder.unit(i) for i in range(ref.I)],
    }
    if isinstance(ref.net.opt, Adafactor):
        summary["closest bfloat16 tie (float ulps)"] = ref.net.opt.closest_tie
    return record, summary


FORECASTER_KEYS = ("ensemble", "linear_lags", "direct_lookback", "coverage", "drift")


# ----------------------------------------------------------------------------------------
# Self-checks of the hand-written pieces against torch's own modules / a hand derivation

def self_check():
    gen = torch.Generator().manual_seed(1234)
    I, H = INPUTS, HIDDEN
    x = torch.randn(I, generator=gen)
    h0 = torch.randn(H, generator=gen)
    c0 = torch.randn(H, generator=gen)
    with torch.no_grad():
        # LSTM vs nn.LSTMCell (b = bias_ih + bias_hh).
        m = torch.nn.LSTMCell(I, H)
        P_ = {"Wx": m.weight_ih, "Wh": m.weight_hh, "b": m.bias_ih + m.bias_hh}
        h1, c1 = m(x[None], (h0[None], c0[None]))
        s1 = cell_step("lstm", "tanh", P_, x, torch.cat([h0, c0]), H)
        assert torch.allclose(s1, torch.cat([h1[0], c1[0]]), atol=1e-14, rtol=0)
        # GRU vs nn.GRUCell (b = bias_ih + bias_hh on r, z; bias_ih only on n; bhn apart).
        m = torch.nn.GRUCell(I, H)
        b = m.bias_ih.clone()
        b[:2 * H] += m.bias_hh[:2 * H]
        P_ = {"Wx": m.weight_ih, "Wh": m.weight_hh, "b": b, "bhn": m.bias_hh[2 * H:]}
        assert torch.allclose(cell_step("gru", "tanh", P_, x, h0, H), m(x[None], h0[None])[0],
                              atol=1e-14, rtol=0)
        # Elman vs nn.RNNCell.
        for act in ("tanh", "relu"):
            m = torch.nn.RNNCell(I, H, nonlinearity=act)
            P_ = {"Wx": m.weight_ih, "Wh": m.weight_hh, "b": m.bias_ih + m.bias_hh}
            assert torch.allclose(cell_step("elman", act, P_, x, h0, H), m(x[None], h0[None])[0],
                                  atol=1e-14, rtol=0)

    # Step clipping: hooks vs a hand-written BPTT with per-step delta clipping (Elman tanh).
    T, c = 6, 0.05
    xs = torch.randn(T, I, generator=gen) * 1.5
    ds = torch.randn(T, 1, generator=gen)
    P_ = {n: (torch.rand(s, generator=gen) - 0.5).requires_grad_(True)
          for n, s in param_shapes("elman", I, H, 1)}
    s = torch.zeros(H)
    hs, loss = [], 0.0

    def hook(g):
        n = g.norm()
        return g * (c / n) if n > c else g

    for t in range(T):
        s = cell_step("elman", "tanh", P_, xs[t], s, H)
        s.register_hook(hook)
        hs.append(s)
        loss = loss + ((head("elman", P_, s, H) - ds[t]) ** 2).sum()
    loss = loss / T
    loss.backward()
    with torch.no_grad():
        Wx, Wh, b, Wy, by = (P_[n].detach() for n in ("Wx", "Wh", "b", "Wy", "by"))
        hv = [h.detach() for h in hs]
        g = {n: torch.zeros_like(P_[n]) for n in P_}
        dnext = torch.zeros(H)  # gradient into h_t from step t+1
        for t in reversed(range(T)):
            e = 2 * (Wy @ hv[t] + by - ds[t]) / T
            g["Wy"] += torch.outer(e, hv[t])
            g["by"] += e
            dh = Wy.T @ e + dnext
            if dh.norm() > c:
                dh = dh * (c / dh.norm())
            da = dh * (1 - hv[t] ** 2)
            hprev = hv[t - 1] if t > 0 else torch.zeros(H)
            g["Wx"] += torch.outer(da, xs[t])
            g["Wh"] += torch.outer(da, hprev)
            g["b"] += da
            dnext = Wh.T @ da
        for n in P_:
            assert torch.allclose(P_[n].grad, g[n], atol=1e-14, rtol=0), n
    # The linear model's recursion (step 1 only, no trace bound) vs the closed form it solves:
    # argmin_w Σ λ^(N−i) (d_i − w·φ_i)² + λ^N |w|² (C starts at the identity).
    D, N = 5, 40
    phis = torch.randn(N, D, generator=gen).numpy()
    ds = torch.randn(N, generator=gen).numpy()
    C, w = np.eye(D), np.zeros(D)
    for phi, d in zip(phis, ds):
        gain = C @ phi / (RLS_FORGETTING + phi @ C @ phi)
        w += gain * (d - w @ phi)
        C = (C - np.outer(gain, phi @ C)) / RLS_FORGETTING
    decay = RLS_FORGETTING ** np.arange(N - 1, -1, -1)
    A = (phis.T * decay) @ phis + RLS_FORGETTING ** N * np.eye(D)
    assert np.allclose(w, np.linalg.solve(A, (phis.T * decay) @ ds), atol=1e-12, rtol=0)
    assert np.allclose(C, np.linalg.inv(A), atol=1e-12, rtol=0)
    # The band's rank: ⌈0.9 · 21⌉ = 19th of 20 scores; past m the largest; 0 from α_o = 1 on.
    scores = [float(k) for k in range(20, 0, -1)]
    assert band_quantile(scores, 0.1)[0] == 19.0
    assert band_quantile(scores, -0.5)[0] == 20.0 and band_quantile(scores, 1.0)[0] == 0.0
    # bfloat16: torch's conversion vs the document's definition on the float's bits (add
    # 0x7FFF plus the lowest kept bit, keep the upper 16), ties and near-ties included.
    f = (torch.randn(4000, generator=gen) * 10.0 ** torch.randint(-6, 3, (4000,), generator=gen))
    f = torch.cat([f, torch.tensor([1 + 2 ** -8, 1 + 3 * 2 ** -8, -(1 + 2 ** -8), 1 + 2 ** -8 + 2 ** -23])])
    bits = f.to(torch.float32).numpy().view(np.uint32).astype(np.uint64)
    kept = (((bits + 0x7FFF + ((bits >> 16) & 1)) >> 16) << 16).astype(np.uint32)
    assert np.array_equal(bfloat16(f).numpy(), kept.view(np.float32).astype(np.float64))
    assert bfloat16(torch.tensor([1 + 2 ** -8, 1 + 3 * 2 ** -8])).tolist() == [1.0, 1 + 2 ** -6]
    # Adafactor's first step vs torch.optim.Adam: the stored m starts at 0, and a factored
    # tensor whose g² has rank one (g_ij = a_i b_j) has v̂ = r_i c_j / mean(r) = (1 − β2) g_ij²,
    # Adam's v. The statistics follow the memory orientation: Wh [GH, H] keeps H row values.
    a, b_ = torch.randn(12, generator=gen), torch.randn(3, generator=gen)
    grads = {"Wx": torch.outer(a, torch.randn(5, generator=gen)), "Wh": torch.outer(a, b_),
             "b": torch.randn(12, generator=gen), "Wy": torch.randn(1, 3, generator=gen)}
    mine = {n: torch.randn(g.shape, generator=gen).requires_grad_(True) for n, g in grads.items()}
    theirs = {n: t.detach().clone().requires_grad_(True) for n, t in mine.items()}
    ours = Adafactor(list(mine.items()), lr=0.01, beta1=0.9, beta2=0.999, eps=1e-8)
    adam = torch.optim.Adam(list(theirs.values()), lr=0.01, betas=(0.9, 0.999), eps=1e-8, foreach=False)
    for n in grads:
        mine[n].grad, theirs[n].grad = grads[n].clone(), grads[n].clone()
    ours.step()
    adam.step()
    for n in grads:
        assert torch.allclose(mine[n], theirs[n], atol=1e-15, rtol=0), n
    assert [(s_["factored"], s_["shape"]) for s_ in ours.slots] == [
        (True, (5, 12)), (True, (3, 12)), (False, (12, 1)), (False, (1, 3))]
    print("self-checks passed")


# ----------------------------------------------------------------------------------------
# Scenarios

def scenarios():
    out = []
    for cell in ("elman", "lstm", "gru"):
        out.append(dict(name=f"{cell}_k1_adam_norm", cell=cell, activation="tanh",
                        window=5, update_every=1, horizon=2, loss={"kind": "squared"},
                        optimizer={"kind": "adam", "lr": 0.01, "beta1": 0.9, "beta2": 0.999,
                                   "eps": 1e-8},
                        clip={"mode": "norm", "threshold": 0.5}, n_samples=14))
        out.append(dict(name=f"{cell}_chunk_sgd_value", cell=cell, activation="tanh",
                        window=4, update_every=4, horizon=1,
                        loss={"kind": "huber", "delta": 0.5},
                        optimizer={"kind": "sgd", "lr": 0.1},
                        clip={"mode": "value", "threshold": 0.05}, n_samples=17))
        out.append(dict(name=f"{cell}_k1of2_momentum_step", cell=cell, activation="tanh",
                        window=6, update_every=2, horizon=2, loss={"kind": "squared"},
                        optimizer={"kind": "momentum", "lr": 0.05, "momentum": 0.9},
                        clip={"mode": "step", "threshold": 0.3}, n_samples=20))
    for act in ("relu", "sigmoid"):
        out.append(dict(name=f"elman_{act}_k1_sgd_none", cell="elman", activation=act,
                        window=4, update_every=1, horizon=1, loss={"kind": "squared"},
                        optimizer={"kind": "sgd", "lr": 0.05},
                        clip={"mode": "none", "threshold": 0.0}, n_samples=10))
    out += input_scenarios()
    out += adafactor_scenarios()
    return out


# The change formulation, calendar inputs and running normalisation. Each scenario's `data`
# turns the seeded N(0, 1.5²) draws into its samples and Unix times.

T0 = 1_700_000_000.0  # Tuesday 14 November 2023, 22:13:20 UTC

ADAM = {"kind": "adam", "lr": 0.01, "beta1": 0.9, "beta2": 0.999, "eps": 1e-8}


def spikes(samples, gen):
    """Two spikes that the ±8 input bound cuts (normalisation none: levels and changes are
    the values and their differences); no times."""
    samples = samples.clone()
    samples[6, 0] = 13.0
    samples[9, 1] = -11.0
    return samples, [None] * samples.shape[0]


def irregular_times(samples, gen):
    """Gaps of 1 to 30 hours plus a few seconds, so the phases of the day and the week
    move unevenly; sample 5 has no time (calendar phases 0)."""
    gaps = torch.randint(1, 31, (samples.shape[0],), generator=gen).tolist()
    jitter = torch.randint(0, 60, (samples.shape[0],), generator=gen).tolist()
    times, t = [], T0
    for g, j in zip(gaps, jitter):
        t += 3600.0 * g + j
        times.append(t)
    times[5] = None
    return samples, times


def level_and_scale(samples, gen):
    """Channels far from 0 and of very different scales, hourly times: the running mean,
    variance and change unit carry real statistics."""
    n = samples.shape[0]
    out = torch.empty_like(samples)
    out[:, 0] = 100.0 + 3.0 * samples[:, 0]
    out[:, 1] = 0.01 * samples[:, 1] + 0.002 * torch.arange(n)
    return out, [T0 + 3600.0 * k for k in range(n)]


def input_scenarios():
    out = []
    for cell in ("elman", "lstm", "gru"):
        out.append(dict(name=f"{cell}_change_k1_adam_norm", cell=cell, activation="tanh",
                        window=5, update_every=1, horizon=2, loss={"kind": "squared"},
                        optimizer=ADAM, clip={"mode": "norm", "threshold": 0.5}, n_samples=12,
                        formulation="change", calendar=False, normalization={"kind": "none"},
                        data=spikes))
    out.append(dict(name="gru_change_calendar_k2of6_p3_momentum_step", cell="gru",
                    activation="tanh", inputs=2, targets=[1], window=6, update_every=2,
                    horizon=3, loss={"kind": "squared"},
                    optimizer={"kind": "momentum", "lr": 0.05, "momentum": 0.9},
                    clip={"mode": "step", "threshold": 0.3}, n_samples=16,
                    formulation="change", calendar=True, normalization={"kind": "none"},
                    data=irregular_times))
    out.append(dict(name="lstm_change_calendar_running_k1_adam_norm", cell="lstm",
                    activation="tanh", inputs=2, targets=[0, 1], window=5, update_every=1,
                    horizon=2, loss={"kind": "squared"}, optimizer=ADAM,
                    clip={"mode": "norm", "threshold": 0.5}, n_samples=14,
                    formulation="change", calendar=True,
                    normalization={"kind": "running", "forgetting": None}, data=level_and_scale))
    out.append(dict(name="elman_change_forgetting_chunk_sgd_value", cell="elman",
                    activation="tanh", inputs=2, targets=[0], window=4, update_every=4,
                    horizon=1, loss={"kind": "huber", "delta": 0.5},
                    optimizer={"kind": "sgd", "lr": 0.1}, clip={"mode": "value", "threshold": 0.05},
                    n_samples=24, formulation="change", calendar=False,
                    normalization={"kind": "running", "forgetting": 0.9}, data=level_and_scale))
    out.append(dict(name="gru_level_running_k1_adam_norm", cell="gru", activation="tanh",
                    inputs=2, targets=[1], window=5, update_every=1, horizon=2,
                    loss={"kind": "squared"}, optimizer=ADAM,
                    clip={"mode": "norm", "threshold": 0.5}, n_samples=14,
                    formulation="level", calendar=False,
                    normalization={"kind": "running", "forgetting": None}, data=level_and_scale))
    for sc in out:
        sc["hidden"] = 3
    return out


# Adafactor (appended: the seeds of the scenarios above are their indices). Factored in
# every weight matrix (Wy too: four outputs), lr and clipping like the Adam runs, and enough
# updates that the bfloat16 first moment is rounded and read back many times.

ADAFACTOR = {"kind": "adafactor", "lr": 0.01, "beta1": 0.9, "beta2": 0.999, "eps": 1e-8}
# rnnd's default: no first moment (Adafactor's own default, β1 = 0).
ADAFACTOR_NO_MOMENTUM = dict(ADAFACTOR, beta1=0.0)


def adafactor_scenarios():
    return [
        # Level formulation, the layout of the first runs: Wx 3 × 16, Wh 4 × 16, Wy 4 × 4 in
        # memory; 12 updates (k1 = 2).
        dict(name="lstm_k1of2_adafactor_norm", cell="lstm", activation="tanh",
             window=6, update_every=2, horizon=2, loss={"kind": "squared"}, optimizer=ADAFACTOR,
             clip={"mode": "norm", "threshold": 0.5}, n_samples=24),
        # Change formulation with calendar inputs (irregular times, one sample without: a
        # zero input row of Wx, so r_i takes no new mean there) and running normalisation:
        # Wx 8 × 9, Wh 3 × 9, Wy 4 × 3 in memory; 19 updates.
        dict(name="gru_change_calendar_running_k1_adafactor_norm", cell="gru",
             activation="tanh", inputs=2, hidden=3, targets=[0, 1], window=5, update_every=1,
             horizon=2, loss={"kind": "squared"}, optimizer=ADAFACTOR,
             clip={"mode": "norm", "threshold": 0.5}, n_samples=20,
             formulation="change", calendar=True,
             normalization={"kind": "running", "forgetting": None}, data=irregular_times),
        # The default's form, β1 = 0 (no first moment), on the first run's layout.
        dict(name="lstm_k1of2_adafactor_no_momentum_norm", cell="lstm", activation="tanh",
             window=6, update_every=2, horizon=2, loss={"kind": "squared"},
             optimizer=ADAFACTOR_NO_MOMENTUM, clip={"mode": "norm", "threshold": 0.5}, n_samples=24),
    ]


# The forecaster runs. `data(n, gen)` makes the samples (rounded to float32 afterwards) and
# their Unix times.

def two_channels_with_a_change(n, gen):
    """Hourly samples (a few seconds late at random) of a daily cycle with AR(1) noise and a
    second channel that follows the first; from sample 260 the noise is six times larger and
    the first channel's level 10 higher: a lasting change of the error regime."""
    noise = torch.randn((n, 2), generator=gen)
    late = torch.randint(0, 30, (n,), generator=gen).tolist()
    samples, times, ar = [], [], 0.0
    for k in range(n):
        t = T0 + 3600.0 * k + late[k]
        big = 6.0 if k >= 260 else 1.0
        ar = 0.8 * ar + 0.5 * big * float(noise[k, 0])
        day = 2.0 * math.pi * k / 24.0
        a = 20.0 + 4.0 * math.sin(day) + ar + (10.0 if k >= 260 else 0.0)
        b = 5.0 + 0.3 * (a - 20.0) + 0.2 * big * float(noise[k, 1])
        samples.append([a, b])
        times.append(t)
    return samples, times


def with_faults(n, gen):
    """`two_channels_with_a_change` with what the outlier gate and the clock are for: a wild
    value of the first channel at sample 105 (about 1000 change units away: held back whole),
    the second channel 15 higher for samples 125-128 (about 40 change units: the first held
    back by Hampel's descending part, the second a new level, then a return at 129), a gap of
    15 hours after sample 160 (a new segment at 161) and the clock set back 3 hours at sample
    340 (a clock jump: a new segment at 340)."""
    samples, times = two_channels_with_a_change(n, gen)
    samples[105][0] = 1000.0
    for k in range(125, 129):
        samples[k][1] += 15.0
    times = [t + (14 * 3600.0 if k > 160 else 0.0) - (3 * 3600.0 if k >= 340 else 0.0)
             for k, t in enumerate(times)]
    return samples, times


def untimed_channel(n, gen):
    """One channel without times (calendar phases 0 for every sample): an AR(1) around a slow
    sine."""
    noise = torch.randn(n, generator=gen)
    samples, ar = [], 0.0
    for k in range(n):
        ar = 0.9 * ar + 0.3 * float(noise[k])
        samples.append([3.0 + math.sin(2.0 * math.pi * k / 50.0) + ar])
    return samples, [None] * n


def hourly_channel(n, gen):
    """`untimed_channel` with hourly times: the calendar phases move."""
    samples, _ = untimed_channel(n, gen)
    return samples, [T0 + 3600.0 * k for k in range(n)]


def daily_channel(n, gen):
    """One channel of hourly samples with a daily cycle (amplitude 2, small noise) whose peaks
    and troughs stop from sample 450 to 489, the value held near the cycle's middle: inside every
    value seen, a departure only for the time of day (the novelty's residual)."""
    noise = torch.randn(n, generator=gen)
    samples = []
    for k in range(n):
        cycle = 0.0 if 450 <= k < 490 else 2.0 * math.sin(2.0 * math.pi * k / 24.0)
        samples.append([3.0 + cycle + 0.1 * float(noise[k])])
    return samples, [T0 + 3600.0 * k for k in range(n)]


def resetting_channel(n, gen):
    """One channel of hourly samples that climbs by about 0.05 a sample (noisy) and falls back to
    0 every 200 samples, as a counter reset does: a miss the step-1 forecast cannot foresee, which
    the surprise alerts on at the first four resets and finds routine from the fifth on."""
    noise = torch.rand(n, generator=gen)
    samples, level = [], 0.0
    for k in range(n):
        level = 0.0 if k % 200 == 0 else level + 0.1 * float(noise[k])
        samples.append([level])
    return samples, [T0 + 3600.0 * k for k in range(n)]


def incident_channel(n, gen):
    """One channel of hourly samples with a daily cycle (amplitude 2, small noise), a value far
    above every one seen at 400 and one below every one seen at 560: novelties. The drop's miss
    makes the next sample's surprise alert on its own (0.52); an alert of the novelty's rank
    quiets both halves of the anomaly score, so the incident alerts once."""
    noise = torch.randn(n, generator=gen)
    samples = []
    for k in range(n):
        x = 5.0 + 2.0 * math.sin(2.0 * math.pi * k / 24.0) + 0.1 * float(noise[k])
        if k == 400:
            x = 12.0
        elif k == 560:
            x = 2.0
        samples.append([x])
    return samples, [T0 + 3600.0 * k for k in range(n)]


def sentinel_channel(n, gen):
    """The incidents' channel (a value far above every one seen at 400, one below every one seen
    at 560) with a sentinel, -9999, at 600: in the quiet period the drop started, but a whole range
    beyond every value seen and held back by the outlier gate, so it scores 1 and starts its own
    quiet period (without that rule it scored 0)."""
    samples, times = incident_channel(n, gen)
    samples[600] = [-9999.0]
    return samples, times


def sentinels_channel(n, gen):
    """`sentinel_channel` (a sentinel, -9999, at 600, held back by the outlier gate), then at 720 a
    value a tenth of the range's width below every value seen but the sentinel: novel, since the
    range did not take the sentinel (widened by one width, it held this value). Then four more
    sentinels (730 to 760). The target's alerts (the held-back 12.0 at 400, counted by the value
    and by the surprise, and the sentinels at 600 and 730) make the one at 740 routine, more than
    four within about 2,000 samples: it alerts and the range takes it whole, so that the sentinels
    at 750 and 760 and a value at 790 below all but the sentinels score 0."""
    samples, times = sentinel_channel(n, gen)
    samples[720] = [1.0]
    for k in (730, 740, 750, 760):
        samples[k] = [-9999.0]
    samples[790] = [0.5]
    return samples, times


def boot_sentinel_channel(n, gen):
    """`hourly_channel` with a sentinel, -9999, at its 21st sample: the outlier gate judges from
    the change unit's 10th change, so it holds the sentinel back (with 30 it took it, and the
    normaliser learned it for the stream's life)."""
    samples, times = hourly_channel(n, gen)
    samples[20] = [-9999.0]
    return samples, times


def falling_channel(n, gen):
    """One channel without times: a slow cycle (period 200, amplitude 1, noise of 0.003), then from
    sample 600 a steady fall of 0.01 a sample below every value seen. No step passes the value's
    range by its margin (a step is 0.5% of its width) and without times there is no residual: the
    novelty sees the fall as a drift, once, 75 samples into the longest span's run below its
    range."""
    noise = torch.randn(n, generator=gen)
    samples = []
    for k in range(n):
        x = 5.0 + math.sin(2.0 * math.pi * k / 200.0) if k < 600 else 5.0 - 0.01 * (k - 600)
        samples.append([x + 0.003 * float(noise[k])])
    return samples, [None] * n


def quickening_channel(n, gen):
    """One channel without times: a cycle of period 32 (amplitude 1, noise of 0.1), then from
    sample 660 a cycle of period 8 at the same level and amplitude. No mean leaves its range and the
    forecaster's misses stay below an alert of the novelty's rank (0.65 at 665); the latest 32
    values' shape (8 block means) is one the channel has not shown once the new cycle fills most of
    them (0.92 at 679)."""
    noise = torch.randn(n, generator=gen)
    samples = []
    for k in range(n):
        x = 5.0 + math.sin(2.0 * math.pi * k / (32.0 if k < 660 else 8.0))
        samples.append([x + 0.1 * float(noise[k])])
    return samples, [None] * n


def lstm_i1_scenario(**differences):
    """A one-channel LSTM scenario of 3 units (window 4, an update every second sample, bands at
    80%, no drift handling), with `differences` (the name, horizon, optimizer, ...)."""
    return dict(dict(cell="lstm", activation="tanh", inputs=1, hidden=3, targets=[0], window=4,
                     update_every=2, loss={"kind": "squared"}, clip={"mode": "norm", "threshold": 1.0},
                     formulation="change", calendar=True,
                     normalization={"kind": "running", "forgetting": 0.99},
                     ensemble=True, coverage=0.8, drift=False, weights_every=20), **differences)


def one_step_scenario(name, n_samples, data):
    """`lstm_i1_scenario` one step ahead with Adam, one lag and no direct expert."""
    return lstm_i1_scenario(name=name, horizon=1, optimizer=ADAM, linear_lags=1, direct_lookback=0,
                            n_samples=n_samples, data=data)


def forecaster_scenarios():
    return [
        dict(name="forecaster_gru_i2_p2_drift", cell="gru", activation="tanh", inputs=2,
             hidden=4, targets=[0, 1], horizon=2, window=6, update_every=1,
             loss={"kind": "squared"}, optimizer=ADAM, clip={"mode": "norm", "threshold": 1.0},
             formulation="change", calendar=True,
             normalization={"kind": "running", "forgetting": None},
             ensemble=True, linear_lags=4, direct_lookback=12, coverage=0.9, drift=True,
             n_samples=400, weights_every=20, data=with_faults),
        one_step_scenario("forecaster_lstm_i1_untimed", 600, untimed_channel),
        # Adafactor every second sample, two steps ahead: Wx 6 × 12, Wh 3 × 12 and Wy 2 × 3
        # factored in memory.
        lstm_i1_scenario(name="forecaster_lstm_i1_p2_adafactor", horizon=2, optimizer=ADAFACTOR,
                         linear_lags=2, direct_lookback=102, n_samples=400, data=hourly_channel),
        # A daily cycle that stops for 40 hours after 18 days: the novelty's residual against its
        # own day-and-week profile (one step ahead, where the seasonal expert is off).
        one_step_scenario("forecaster_lstm_i1_daily_residual", 560, daily_channel),
        # A counter reset every 200 samples: the surprise's routine (record format 10).
        one_step_scenario("forecaster_lstm_i1_routine_reset", 1500, resetting_channel),
        # A novelty followed by a surprise: one alert of the novelty's rank quiets both halves.
        one_step_scenario("forecaster_lstm_i1_incidents", 700, incident_channel),
        # A slow fall below every value seen: the novelty's drift (record format 11).
        one_step_scenario("forecaster_lstm_i1_slow_fall", 900, falling_channel),
        # A cycle grown four times faster at the same level: the novelty's shape (record format 12).
        one_step_scenario("forecaster_lstm_i1_quickening", 900, quickening_channel),
        # A sentinel in the quiet period of another incident: an incident of its own.
        one_step_scenario("forecaster_lstm_i1_sentinel", 700, sentinel_channel),
        # A sentinel among a stream's first samples: held back once the change unit has seen 10.
        one_step_scenario("forecaster_lstm_i1_boot_sentinel", 300, boot_sentinel_channel),
        # Sentinels after the warm-up: kept out of the value's range until they are routine.
        one_step_scenario("forecaster_lstm_i1_sentinels", 850, sentinels_channel),
    ]


def rounded(v, digits):
    """Floats to `digits` significant digits (the samples and times are written as they are)."""
    if isinstance(v, dict) and "samples" in v:
        return {k: (x if k in ("samples", "times", "gated") else rounded(x, digits)) for k, x in v.items()}
    if isinstance(v, float):
        return float(f"{v:.{digits}g}") if math.isfinite(v) else None
    if isinstance(v, list):
        return [rounded(x, digits) for x in v]
    if isinstance(v, dict):
        return {k: rounded(x, digits) for k, x in v.items()}
    return v


def write(name, record, compact, digits=12):
    path = os.path.join(OUT_DIR, name + ".json")
    with open(path, "w") as fh:
        if compact:
            json.dump(rounded(record, digits), fh, separators=(",", ":"), allow_nan=False)
        else:
            json.dump(record, fh)
        fh.write("\n")
    return path


def main():
    global OUT_DIR
    parser = argparse.ArgumentParser(description="Writes the reference fixtures.")
    parser.add_argument("--readings", choices=("doc", "swift"), default="doc",
                        help="the readings of docs/numerics.md (default), or those under which "
                             "the reference reproduces the Swift (diagnosis only)")
    parser.add_argument("--out", default=OUT_DIR, help="where to write (default: next to this script)")
    args = parser.parse_args()
    if args.readings == "swift":
        if os.path.abspath(args.out) == OUT_DIR:
            parser.error("--readings swift is for diagnosis: give --out another directory")
        READINGS.update(SWIFT_READINGS)
    OUT_DIR = os.path.abspath(args.out)
    self_check()
    for idx, sc in enumerate(scenarios()):
        record, clipped = run_scenario(sc, seed=1000 + idx)
        ats = [u["at"] for u in record["updates"]]
        detail = ""
        if sc["clip"]["mode"] == "step":
            detail = " step-hook hits per update " + str([u["_step_hits"] for u in record["updates"]])
        for u in record["updates"]:
            for k in ("_clipped", "_step_hits", "_terms"):
                del u[k]
        if "formulation" in sc:
            # Newer files: no pre-clipping gradients (the tests read the clipped ones), 12
            # significant digits, no spaces.
            for u in record["updates"]:
                del u["grads"]
        if "_closest_tie" in record:
            detail += f" closest bfloat16 tie {record.pop('_closest_tie')} float ulps"
        path = write(sc["name"], record, compact="formulation" in sc)
        print(f"{sc['name']}: {len(ats)} updates at {ats}, clipped {clipped}{detail}, "
              f"{os.path.getsize(path)} bytes")
    for idx, sc in enumerate(forecaster_scenarios()):
        record, summary = run_forecaster(sc, seed=2000 + idx)
        path = write(sc["name"], record, compact=True, digits=8)
        print(f"{sc['name']}: {os.path.getsize(path)} bytes")
        for k, v in summary.items():
            print(f"    {k}: {v}")


if __name__ == "__main__":
    main()
