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
# The online schedule

def run_scenario(sc, seed):
    cell, act = sc["cell"], sc["activation"]
    I, H, K = INPUTS, HIDDEN, len(TARGETS)
    Ph, k2, k1 = sc["horizon"], sc["window"], sc["update_every"]
    O = Ph * K
    assert 1 <= k1 <= k2 and Ph + k1 - 1 <= k2

    gen = torch.Generator().manual_seed(seed)
    params = init_params(cell, I, H, O, gen)
    samples = torch.randn((sc["n_samples"], I), generator=gen) * 1.5
    names = [n for n, _ in param_shapes(cell, I, H, O)]
    plist = [params[n] for n in names]
    initial = {n: flat(params[n]) for n in names}

    opt_cfg = sc["optimizer"]
    if opt_cfg["kind"] == "sgd":
        opt = torch.optim.SGD(plist, lr=opt_cfg["lr"], foreach=False)
    elif opt_cfg["kind"] == "momentum":
        opt = torch.optim.SGD(plist, lr=opt_cfg["lr"], momentum=opt_cfg["momentum"], foreach=False)
    elif opt_cfg["kind"] == "adam":
        opt = torch.optim.Adam(plist, lr=opt_cfg["lr"], betas=(opt_cfg["beta1"], opt_cfg["beta2"]),
                               eps=opt_cfg["eps"], foreach=False)
    else:
        raise ValueError(opt_cfg)

    clip_mode, c = sc["clip"]["mode"], sc["clip"]["threshold"]
    loss_cfg = sc["loss"]
    tgt = torch.tensor(TARGETS)

    live = zero_state(cell, H)
    carry = zero_state(cell, H)  # s_{start-1}; zeros while start == 0
    carry_start = 0              # the window start that `carry` belongs to
    forecasts, updates = [], []
    clipped_count = 0

    for T in range(samples.shape[0]):
        # 1. Predict from the live state with the current weights.
        with torch.no_grad():
            live = cell_step(cell, act, params, samples[T], live, H)
            forecasts.append(flat(head(cell, params, live, H)))

        # 2. Learn every k1 samples.
        if (T + 1) % k1 != 0:
            continue
        start = max(0, T - k2)
        assert start == carry_start, (T, start, carry_start)

        hook_hits = [0]

        def make_hook():
            def hook(g):
                n = g.norm()
                if n > c:
                    hook_hits[0] += 1
                    return g * (c / n)
                return g
            return hook

        s = carry.detach()
        states, outs = {}, {}
        for t in range(start, T):
            s = cell_step(cell, act, params, samples[t], s, H)
            if clip_mode == "step":
                s.register_hook(make_hook())
            states[t] = s
            outs[t] = head(cell, params, s, H)

        preds, targs = [], []
        for u in range(T - k1 + 1, T + 1):
            for p in range(1, Ph + 1):
                t = u - p
                if u < 0 or t < start:
                    continue
                preds.append(outs[t][(p - 1) * K:p * K])
                targs.append(samples[u][tgt])
        if not preds:
            # No terms, no update. (Only happens at T = 0, where the window is empty and
            # the carry cannot move.)
            assert T == 0
            continue
        pred = torch.cat(preds)
        targ = torch.cat(targs)
        if loss_cfg["kind"] == "squared":
            loss = F.mse_loss(pred, targ, reduction="mean")
        else:
            loss = F.huber_loss(pred, targ, reduction="mean", delta=loss_cfg["delta"])

        opt.zero_grad(set_to_none=True)
        loss.backward()
        for p_ in plist:
            if p_.grad is None:
                p_.grad = torch.zeros_like(p_)
        grads = {n: flat(params[n].grad) for n in names}

        if clip_mode == "norm":
            grad_norm = float(torch.nn.utils.clip_grad_norm_(plist, c, foreach=False))
            clipped = grad_norm > c
        elif clip_mode == "value":
            grad_norm = float(torch.sqrt(sum((p_.grad ** 2).sum() for p_ in plist)))
            clipped = any(bool((p_.grad.abs() > c).any()) for p_ in plist)
            torch.nn.utils.clip_grad_value_(plist, c, foreach=False)
        else:  # step (already applied by the hooks) or none
            grad_norm = float(torch.sqrt(sum((p_.grad ** 2).sum() for p_ in plist)))
            clipped = hook_hits[0] > 0
        clipped_count += int(clipped)
        clipped_grads = {n: flat(params[n].grad) for n in names}
        assert math.isfinite(float(loss.detach())) and math.isfinite(grad_norm)

        opt.step()

        # Carry, from this recomputation (weights before the step).
        new_start = max(0, T + k1 - k2)
        if new_start > start:
            carry = states[new_start - 1].detach().clone()
            carry_start = new_start

        updates.append({
            "at": T,
            "loss": float(loss.detach()),
            "grad_norm": grad_norm,
            "grads": grads,
            "clipped_grads": clipped_grads,
            "params": {n: flat(params[n]) for n in names},
            "_clipped": clipped, "_step_hits": hook_hits[0], "_terms": len(preds),
        })

    record = {
        "name": sc["name"],
        "cell": cell,
        "activation": act,
        "inputs": I,
        "hidden": H,
        "targets": TARGETS,
        "horizon": Ph,
        "window": k2,
        "update_every": k1,
        "loss": loss_cfg,
        "optimizer": opt_cfg,
        "clip": sc["clip"],
        "initial": initial,
        "samples": [[float(v) for v in row] for row in samples.tolist()],
        "forecasts": forecasts,
        "updates": updates,
        "torch_version": torch.__version__,
    }
    return record, clipped_count


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
    return out


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
        path = os.path.join(OUT_DIR, sc["name"] + ".json")
        with open(path, "w") as fh:
            json.dump(record, fh)
            fh.write("\n")
        print(f"{sc['name']}: {len(ats)} updates at {ats}, clipped {clipped}{detail}, "
              f"{os.path.getsize(path)} bytes")


if __name__ == "__main__":
    main()
