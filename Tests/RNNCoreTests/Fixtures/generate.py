#!/usr/bin/env python3
"""PyTorch reference fixtures for rnnd's numeric core (Sources/RNNCore).

This script is an independent implementation of the contract in docs/numerics.md,
written from that document alone (not from the Swift code). Cells and heads are
written by hand with torch ops over leaf tensors named like the parameter buffer
(Wx, Wh, b, bhn for the GRU, Wy, by); all differentiation is done by torch autograd,
clipping by torch.nn.utils (norm/value) or by gradient hooks on the per-step state
(step), and the optimizer steps by torch.optim. Everything is float64.

For every scenario it simulates the online predict-then-learn TBPTT(k1, k2) schedule
(live prediction on every sample, an update every k1 samples that recomputes the
window from the carried state with the current weights) and writes one JSON file
<scenario>.json next to this script, containing the configuration, the initial
weights, the samples, every live forecast, and for every update its loss, gradient
norm, gradients before and after clipping, and the parameters after the step.

It is run once by hand, and the JSON files are committed; the Swift tests only read
them. To regenerate (from the repository root):

    python3 Tests/RNNCoreTests/Fixtures/generate.py
"""

import json
import math
import os

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
# Inputs: normalisation, change units, calendar phases (docs/numerics.md, "Inputs and
# formulations" and "Normalisation")

INPUT_BOUND = 8.0  # levels and changes, with the change formulation


def running_weight(n, forgetting):
    """Weight of the n-th value (n >= 1) of a running mean: 1/n, or max(1/n, 1 - λ)."""
    return 1.0 / n if forgetting is None else max(1.0 / n, 1.0 - forgetting)


class RunningMean:
    """A running mean updated with the new value first, weighted like the normaliser."""

    def __init__(self, forgetting):
        self.forgetting, self.n, self.value = forgetting, 0, 0.0

    def update(self, v):
        self.n += 1
        self.value += running_weight(self.n, self.forgetting) * (v - self.value)
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
        return max(math.sqrt(self.ms[j]), self.floor(j)) if self.enabled else 1.0

    def encode(self, x, t):
        x = [float(v) for v in x]
        if self.enabled:
            self.n += 1
            a = running_weight(self.n, self.forgetting)
            for j in range(self.I):
                d = x[j] - self.mean[j]
                self.mean[j] += a * d
                self.var[j] = (1.0 - a) * (self.var[j] + a * d * d)
            if self.prev is not None:
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

def make_optimizer(plist, opt_cfg):
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
        self.opt = make_optimizer(self.plist, sc["optimizer"])
        self.base_lr = sc["optimizer"]["lr"]
        self.clip_mode, self.c = sc["clip"]["mode"], sc["clip"]["threshold"]
        self.loss_cfg = sc["loss"]
        self.live = zero_state(self.cell, self.H)
        self.carry = zero_state(self.cell, self.H)  # s_{start-1}; zeros while start == 0
        self.carry_start = 0                          # the window start that `carry` belongs to
        self.inputs, self.values = [], []             # per sample: features, original values
        self.T = -1
        self.clipped_count = 0
        self.output = self.forecast = None

    def predict(self, x, t=None):
        """Step 1: one step from the live state; sets `output` (the head's) and `forecast`
        (original units, with the current statistics)."""
        self.T += 1
        feats = self.encoder.encode(x, t)
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
        start = max(0, T - k2)
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
            # No terms, no update. (Only happens at T = 0, where the window is empty and
            # the carry cannot move.)
            assert T == 0
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
        new_start = max(0, T + k1 - k2)
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
    return record, net.clipped_count


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


def rounded(v, digits):
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
        write(sc["name"], record, compact="formulation" in sc)
        print(f"{sc['name']}: {len(ats)} updates at {ats}, clipped {clipped}{detail}, "
              f"{os.path.getsize(os.path.join(OUT_DIR, sc['name'] + '.json'))} bytes")


if __name__ == "__main__":
    main()
