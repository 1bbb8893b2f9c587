#!/usr/bin/env python3
"""Compare `rnnd bench` with the PyTorch and JAX peers (../shared/peers) on one stream.

For every model x hidden x inputs x update-every of the matrix (window 32 by default) this runs,
strictly one process at a time:

  1. .build/release/rnnd bench --json --optimizer adam --lr 0.001 ...
                                                    (the Swift core, one thread, the peers' Adam)
  2. python3 torch_peer.py ... --threads 1          (the natural PyTorch learner)
  3. python3 jax_peer.py ...                        (LSTM only, when `import jax` works)

with the same settings and the same --seconds, parses the one JSON line each prints. Then it times
rnnd's default learner (`rnnd bench` with no model flags: LSTM H=64, k1 = 2, k2 = 20, Adafactor)
against the peers' LSTM H=64 D=1 k1=1 window 32 (issue 17's goal: at least 14x the JAX peer,
which learns every sample with Adam), running those peers when the matrix did not. It writes
bench/results/peers.json (everything, including the exact commands and the raw JSON of every
run) and bench/results/peers.md (a Markdown table, also printed to stdout).

Every figure in the output is parsed from a process that ran; a run that fails, times out or
prints no JSON is recorded with its error and shown as "error" / "timeout" in the table.

Only the Python 3 standard library is used here (the peers import torch / jax themselves).

Examples:
  python3 bench/compare_peers.py                                   # full matrix, 3 s per run
  python3 bench/compare_peers.py --seconds 0.5 --models lstm --hidden 16,64 --inputs 1
"""
import argparse
import datetime
import json
import os
import platform
import shlex
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_PEERS = os.path.normpath(os.path.join(ROOT, "..", "shared", "peers"))

MODELS = ["lstm", "gru", "elman"]
HIDDEN = [16, 64, 128]
INPUTS = [1, 8]
UPDATE_EVERY = [1, 32]

# The project's goals (rows they concern: LSTM, H=64, D=1, window 32).
LEARN_GOALS = {1: 20.0, 32: 100.0}      # k1 -> minimum rnnd/torch learning-throughput ratio
DEFAULT_GOAL_JAX = 14.0                 # rnnd's default learner / the JAX peer at k1 = 1 (issue 17)
# The matrix compares the same learner: Adam at the peers' learning rate.
SAME_OPTIMIZER = ["--optimizer", "adam", "--lr", "0.001"]
INFERENCE_GOAL_US = 5.0                 # rnnd forward step must be below this


def csv_list(kind, allowed=None):
    def parse(text):
        items = [s.strip() for s in text.split(",") if s.strip()]
        if not items:
            raise argparse.ArgumentTypeError("empty list")
        out = []
        for s in items:
            v = kind(s)
            if allowed is not None and v not in allowed:
                raise argparse.ArgumentTypeError(f"{s!r} is not one of {', '.join(map(str, allowed))}")
            out.append(v)
        return out
    return parse


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def capture(argv, cwd=ROOT, timeout=60):
    """stdout of a short helper command, stripped, or None if it failed."""
    try:
        p = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=timeout)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return p.stdout.strip() if p.returncode == 0 else None


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return None


def loadavg():
    try:
        with open("/proc/loadavg") as f:
            return [float(x) for x in f.read().split()[:3]]
    except (OSError, ValueError):
        return None


def binary_older_than_sources(binary):
    """A source file (Sources/, Package.swift) modified after `binary` was built, or None."""
    try:
        built = os.path.getmtime(binary)
    except OSError:
        return None
    candidates = [os.path.join(ROOT, "Package.swift")]
    for base, _, files in os.walk(os.path.join(ROOT, "Sources")):
        candidates += [os.path.join(base, f) for f in files]
    for path in candidates:
        try:
            if os.path.getmtime(path) > built:
                return os.path.relpath(path, ROOT)
        except OSError:
            pass
    return None


def last_json_object(text):
    """The last line of `text` that parses as a JSON object, or None."""
    for line in reversed(text.splitlines()):
        line = line.strip()
        if line.startswith("{") and line.endswith("}"):
            try:
                obj = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(obj, dict):
                return obj
    return None


def tail(text, lines=15):
    return "\n".join(text.strip().splitlines()[-lines:])


def run_one(argv, timeout, expect, env=None):
    """Runs one benchmark process to completion. Returns a record with the parsed JSON or the
    error. `expect` maps keys the JSON must echo back to their values (a sanity check that the
    process ran the requested setting)."""
    rec = {"command": shlex.join(argv), "argv": argv}
    t0 = time.monotonic()
    try:
        p = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=timeout, env=env)
    except subprocess.TimeoutExpired as e:
        rec["wall_seconds"] = round(time.monotonic() - t0, 2)
        rec["error"] = f"timeout after {timeout:g} s"
        rec["status"] = "timeout"
        err = e.stderr.decode(errors="replace") if isinstance(e.stderr, bytes) else (e.stderr or "")
        if err.strip():
            rec["stderr_tail"] = tail(err)
        return rec
    except OSError as e:
        rec["wall_seconds"] = round(time.monotonic() - t0, 2)
        rec["error"] = f"could not start: {e}"
        rec["status"] = "error"
        return rec
    rec["wall_seconds"] = round(time.monotonic() - t0, 2)
    rec["returncode"] = p.returncode
    obj = last_json_object(p.stdout)
    if p.returncode != 0 or obj is None:
        rec["status"] = "error"
        rec["error"] = (f"exit code {p.returncode}" if p.returncode != 0 else "no JSON object on stdout")
        if p.stderr.strip():
            rec["stderr_tail"] = tail(p.stderr)
        if p.stdout.strip():
            rec["stdout_tail"] = tail(p.stdout)
        return rec
    rec["json"] = obj
    missing = [k for k in ("samples_per_second", "inference_us") if not isinstance(obj.get(k), (int, float))]
    mismatched = [f"{k}={obj.get(k)!r} (asked {v!r})" for k, v in expect.items() if obj.get(k) != v]
    if missing or mismatched:
        rec["status"] = "error"
        rec["error"] = "; ".join(
            ([f"missing numeric {', '.join(missing)}"] if missing else [])
            + ([f"setting not echoed: {', '.join(mismatched)}"] if mismatched else []))
        return rec
    rec["status"] = "ok"
    return rec


def ratio(a, b):
    if a is None or b is None or b == 0:
        return None
    return a / b


def fmt_rate(x):
    return "—" if x is None else f"{x:,.0f}"


def fmt_us(x, digits=2):
    return "—" if x is None else f"{x:.{digits}f}"


def fmt_ratio(x):
    if x is None:
        return "—"
    return f"{x:.0f}×" if x >= 100 else f"{x:.1f}×" if x >= 1 else f"{x:.2f}×"


def cell(rec, value_text):
    """Table text for a figure of a run: the figure, or why there is none."""
    if rec is None:
        return "—"
    if rec["status"] != "ok":
        return "timeout" if rec["status"] == "timeout" else "error"
    return value_text


def goal_for(row, window):
    """The goals this row is concerned with, as a list of dicts (empty for most rows)."""
    if not (row["model"] == "lstm" and row["hidden"] == 64 and row["inputs"] == 1 and window == 32):
        return []
    k1 = row["update_every"]
    goals = []
    if k1 in LEARN_GOALS:
        need = LEARN_GOALS[k1]
        have = row["learn_ratio_torch"]
        goals.append({
            "goal": f"learning throughput >= {need:g}x torch (LSTM H=64 D=1 k1={k1})",
            "short": f"learn ≥{need:g}× torch",
            "value": have,
            "met": None if have is None else have >= need,
        })
    have = row["rnnd_inference_us"]
    goals.append({
        "goal": f"inference step < {INFERENCE_GOAL_US:g} us (LSTM H=64 D=1)",
        "short": f"infer <{INFERENCE_GOAL_US:g} µs",
        "value": have,
        "met": None if have is None else have < INFERENCE_GOAL_US,
    })
    return goals


def goal_text(goals):
    parts = []
    for g in goals:
        state = "not measured" if g["met"] is None else "met" if g["met"] else "NOT MET"
        parts.append(f"{g['short']}: {state}")
    return "; ".join(parts)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=3.0, help="timed seconds per run, all programs (default 3)")
    ap.add_argument("--models", type=csv_list(str, MODELS), default=MODELS, help="comma-separated subset of lstm,gru,elman")
    ap.add_argument("--hidden", type=csv_list(int), default=HIDDEN, help="comma-separated hidden sizes (default 16,64,128)")
    ap.add_argument("--inputs", type=csv_list(int), default=INPUTS, help="comma-separated input channels (default 1,8)")
    ap.add_argument("--update-every", type=csv_list(int), default=UPDATE_EVERY,
                    help="comma-separated k1 values, each 1 or the window (default 1,32)")
    ap.add_argument("--window", type=int, default=32, help="k2 (default 32; the goals assume 32)")
    ap.add_argument("--no-jax", action="store_true", help="skip the JAX peer")
    ap.add_argument("--no-torch", action="store_true", help="skip the PyTorch peer")
    ap.add_argument("--threads", type=int, default=1, help="torch_peer.py --threads (default 1, like rnnd)")
    ap.add_argument("--timeout", type=float, default=None, help="per-run timeout in s (default 20*seconds+60)")
    ap.add_argument("--peers", default=DEFAULT_PEERS, help=f"directory of the peer scripts (default {DEFAULT_PEERS})")
    ap.add_argument("--python", default=sys.executable, help="interpreter for the peers (default: this one)")
    ap.add_argument("--rnnd", default=os.path.join(ROOT, ".build", "release", "rnnd"), help="rnnd binary")
    ap.add_argument("--out-dir", default=os.path.join(ROOT, "bench", "results"), help="where peers.json/peers.md go")
    a = ap.parse_args()

    if a.seconds <= 0:
        ap.error("--seconds must be positive")
    for k1 in a.update_every:
        if k1 not in (1, a.window):
            ap.error(f"--update-every {k1}: the peers only support 1 or the window ({a.window})")
    timeout = a.timeout if a.timeout is not None else 20 * a.seconds + 60

    if not os.access(a.rnnd, os.X_OK):
        log(f"{a.rnnd} missing: building with `swift build -c release`")
        # The CPU the kernels are compiled for, as scripts/lib/build-env.sh chooses it.
        subprocess.run(["bash", "-c", "source scripts/lib/build-env.sh && swift build -c release"], cwd=ROOT, check=True)
    torch_peer = os.path.join(a.peers, "torch_peer.py")
    jax_peer = os.path.join(a.peers, "jax_peer.py")

    torch_version = capture([a.python, "-c", "import torch; print(torch.__version__)"])
    jax_version = None
    jax_note = "skipped (--no-jax)"
    if not a.no_jax and "lstm" in a.models:
        jax_version = capture([a.python, "-c", "import jax; print(jax.__version__)"])
        jax_note = None if jax_version else "skipped (`import jax` failed)"
    elif not a.no_jax:
        jax_note = "not applicable (no LSTM rows)"
    run_jax = jax_version is not None
    run_torch = not a.no_torch
    if run_torch and torch_version is None:
        log("warning: `import torch` failed; the torch runs will record the error")

    commit = capture(["git", "rev-parse", "--short", "HEAD"])
    stale = binary_older_than_sources(a.rnnd)
    if stale:
        log(f"warning: {a.rnnd} is older than {stale}; rebuild with `swift build -c release` "
            "(the figures will be recorded as they are)")
    dirty = capture(["git", "status", "--porcelain", "--untracked-files=no"])
    meta = {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "machine": capture(["uname", "-m"]) or platform.machine(),
        "cpu_model": cpu_model(),
        "cpu_count": os.cpu_count(),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "torch_version": torch_version,
        "jax_version": jax_version,
        "jax_note": jax_note,
        "rnnd_commit": commit,
        "rnnd_tree_modified": bool(dirty) if dirty is not None else None,
        "rnnd_binary": os.path.relpath(a.rnnd, ROOT),
        "rnnd_binary_older_than": stale,
        "seconds": a.seconds,
        "window": a.window,
        "torch_threads": a.threads,
        "timeout_seconds": timeout,
        "loadavg_at_start": loadavg(),
        "invocation": shlex.join(["python3", os.path.relpath(os.path.abspath(__file__), ROOT)] + sys.argv[1:]),
        "matrix": {"models": a.models, "hidden": a.hidden, "inputs": a.inputs, "update_every": a.update_every},
        "full_matrix": (a.models == MODELS and a.hidden == HIDDEN and a.inputs == INPUTS
                        and a.update_every == UPDATE_EVERY and a.window == 32),
    }

    settings = [(m, h, d, k1) for m in a.models for h in a.hidden for d in a.inputs for k1 in a.update_every]
    log(f"{len(settings)} settings, {a.seconds:g} s per run, timeout {timeout:g} s per run; one process at a time")
    secs = f"{a.seconds:g}"
    rows = []
    started = time.monotonic()
    for n, (m, h, d, k1) in enumerate(settings, 1):
        common = ["--hidden", str(h), "--inputs", str(d), "--window", str(a.window),
                  "--update-every", str(k1), "--seconds", secs]
        expect = {"hidden": h, "inputs": d, "window": a.window, "update_every": k1}
        row = {"model": m, "hidden": h, "inputs": d, "window": a.window, "update_every": k1}

        log(f"[{n}/{len(settings)}] {m} H={h} D={d} k1={k1}: rnnd")
        r = run_one([a.rnnd, "bench", "--model", m] + common + SAME_OPTIMIZER + ["--json"], timeout,
                    dict(expect, model=m, optimizer="adam"))
        row["rnnd"] = r
        if r["status"] != "ok":
            log(f"    rnnd {r['status']}: {r['error']}")

        t = None
        if run_torch:
            log(f"[{n}/{len(settings)}] {m} H={h} D={d} k1={k1}: torch")
            t = run_one([a.python, torch_peer, "--model", m] + common + ["--threads", str(a.threads)],
                        timeout, dict(expect, model=m))
            if t["status"] != "ok":
                log(f"    torch {t['status']}: {t['error']}")
        row["torch"] = t

        j = None
        if run_jax and m == "lstm":
            log(f"[{n}/{len(settings)}] {m} H={h} D={d} k1={k1}: jax")
            j = run_one([a.python, jax_peer] + common, timeout, dict(expect, model="lstm"))
            if j["status"] != "ok":
                log(f"    jax {j['status']}: {j['error']}")
        row["jax"] = j

        def val(rec, key):
            if rec is None or rec["status"] != "ok":
                return None
            v = rec["json"].get(key)
            return float(v) if isinstance(v, (int, float)) else None

        row["rnnd_samples_per_second"] = val(r, "samples_per_second")
        row["rnnd_inference_us"] = val(r, "inference_us")
        row["rnnd_gflops"] = val(r, "gflops")
        share = val(r, "peak_share")
        row["rnnd_peak_percent"] = None if share is None else 100 * share
        row["rnnd_flops_per_sample"] = val(r, "flops_per_sample")
        for name, rec in (("torch", t), ("jax", j)):
            row[f"{name}_samples_per_second"] = val(rec, "samples_per_second")
            row[f"{name}_inference_us"] = val(rec, "inference_us")
            # Learning: rnnd samples/s over the peer's. Inference: the peer's µs over rnnd's,
            # so that both read "rnnd is N× faster".
            row[f"learn_ratio_{name}"] = ratio(row["rnnd_samples_per_second"], row[f"{name}_samples_per_second"])
            row[f"inference_speedup_{name}"] = ratio(row[f"{name}_inference_us"], row["rnnd_inference_us"])
        row["goals"] = goal_for(row, a.window)
        rows.append(row)
    # rnnd's default learner against the peers learning every sample (LSTM H=64 D=1, window 32).
    peer_row = next((row for row in rows if (row["model"], row["hidden"], row["inputs"], row["update_every"])
                     == ("lstm", 64, 1, 1) and a.window == 32), None)
    peer_common = ["--hidden", "64", "--inputs", "1", "--window", "32", "--update-every", "1", "--seconds", secs]
    peer_expect = {"hidden": 64, "inputs": 1, "window": 32, "update_every": 1, "model": "lstm"}
    log("default learner: rnnd")
    default = {"rnnd": run_one([a.rnnd, "bench", "--seconds", secs, "--json"], timeout, {"model": "lstm", "hidden": 64})}
    for name, run, argv in (("torch", run_torch, [a.python, torch_peer, "--model", "lstm"] + peer_common
                             + ["--threads", str(a.threads)]),
                            ("jax", run_jax, [a.python, jax_peer] + peer_common)):
        if peer_row is not None:
            default[name] = peer_row[name]
        elif run:
            log(f"default learner: {name} (LSTM H=64 D=1 k1=1)")
            default[name] = run_one(argv, timeout, peer_expect)
        else:
            default[name] = None

    def ok(rec, key):
        return rec["json"][key] if rec is not None and rec["status"] == "ok" else None

    default["rnnd_samples_per_second"] = ok(default["rnnd"], "samples_per_second")
    for name in ("torch", "jax"):
        default[f"{name}_samples_per_second"] = ok(default[name], "samples_per_second")
        default[f"learn_ratio_{name}"] = ratio(default["rnnd_samples_per_second"], default[f"{name}_samples_per_second"])
    meta["total_wall_seconds"] = round(time.monotonic() - started, 1)
    meta["loadavg_at_end"] = loadavg()
    peak = None
    for row in rows:
        if row["rnnd_gflops"] and row["rnnd_peak_percent"]:
            peak = row["rnnd_gflops"] / (row["rnnd_peak_percent"] / 100)
            break
    meta["rnnd_peak_gflops_assumed"] = None if peak is None else round(peak, 3)

    md = markdown(meta, rows, run_torch, run_jax, default)
    os.makedirs(a.out_dir, exist_ok=True)
    with open(os.path.join(a.out_dir, "peers.json"), "w") as f:
        json.dump({"meta": meta, "rows": rows, "default_learner": default}, f, indent=2)
        f.write("\n")
    with open(os.path.join(a.out_dir, "peers.md"), "w") as f:
        f.write(md)
    print(md, end="")
    log(f"wrote {os.path.join(os.path.abspath(a.out_dir), 'peers.json')} and peers.md "
        f"in {meta['total_wall_seconds']:g} s")
    failed = [(row, name) for row in rows for name in ("rnnd", "torch", "jax")
              if row[name] is not None and row[name]["status"] != "ok"]
    return 1 if any(name == "rnnd" for _, name in failed) or default["rnnd"]["status"] != "ok" else 0


def markdown(meta, rows, run_torch, run_jax, default):
    L = []
    L.append("# rnnd vs. the PyTorch and JAX peers")
    L.append("")
    scope = "full matrix" if meta["full_matrix"] else "**subset of the matrix**"
    L.append(f"Produced by `bench/compare_peers.py` ({scope}) on {meta['date']}: "
             f"{meta['machine']}, {meta['cpu_model'] or 'unknown CPU'} ({meta['cpu_count']} logical CPUs), "
             f"rnnd commit `{meta['rnnd_commit']}`"
             + (" (tracked files modified)" if meta["rnnd_tree_modified"] else "")
             + f", torch {meta['torch_version'] or 'unavailable'}, "
             + (f"jax {meta['jax_version']}" if meta["jax_version"] else f"jax {meta['jax_note']}")
             + f", Python {meta['python']}."
             + (f" **Warning: the rnnd binary is older than {meta['rnnd_binary_older_than']}.**"
                if meta["rnnd_binary_older_than"] else ""))
    L.append("In the matrix rnnd runs the peers' learner, Adam at 0.001 (`--optimizer adam --lr 0.001`). "
             f"Each program learned the same synthetic stream for {meta['seconds']:g} s per setting "
             f"(median of three rounds), window k2 = {meta['window']}, one process at a time; "
             f"rnnd on one thread, torch with --threads {meta['torch_threads']}, jax as the peer sets it up. "
             f"Load average at start {fmt_load(meta['loadavg_at_start'])}, at end {fmt_load(meta['loadavg_at_end'])}; "
             f"total {meta['total_wall_seconds']:g} s.")
    L.append("")
    L.append(f"Reproduce: `{meta['invocation']}` (in the repository root; exact per-run commands are in peers.json).")
    L.append("")
    L.append("Columns: *samples/s* is learning throughput (predict + learn per sample); *µs* the inference "
             "(one forward step); *learn ×* = rnnd samples/s ÷ peer samples/s; *infer ×* = peer µs ÷ rnnd µs "
             "(both > 1 when rnnd is faster); *% peak* is rnnd's GFLOP/s of its matrix products over "
             + (f"{meta['rnnd_peak_gflops_assumed']:g} GFLOP/s" if meta["rnnd_peak_gflops_assumed"] else "the assumed peak")
             + " (rnnd's --peak-gflops). ★ marks the rows the project's goals concern.")
    L.append("")
    head = ["model", "H", "D", "k1", "rnnd samples/s", "rnnd µs", "GFLOP/s", "% peak"]
    if run_torch:
        head += ["torch samples/s", "torch µs", "learn × torch", "infer × torch"]
    if run_jax:
        head += ["jax samples/s", "jax µs", "learn × jax", "infer × jax"]
    head += ["goal"]
    L.append("| " + " | ".join(head) + " |")
    L.append("|" + "|".join("---" if i < 1 else "---:" for i in range(len(head) - 1)) + "|---|")
    for row in rows:
        r, t, j = row["rnnd"], row["torch"], row["jax"]
        star = "★ " if row["goals"] else ""
        cells = [star + row["model"], str(row["hidden"]), str(row["inputs"]), str(row["update_every"]),
                 cell(r, fmt_rate(row["rnnd_samples_per_second"])),
                 cell(r, fmt_us(row["rnnd_inference_us"], 3)),
                 cell(r, "—" if row["rnnd_gflops"] is None else f"{row['rnnd_gflops']:.2f}"),
                 cell(r, "—" if row["rnnd_peak_percent"] is None else f"{row['rnnd_peak_percent']:.1f}")]
        if run_torch:
            cells += [cell(t, fmt_rate(row["torch_samples_per_second"])), cell(t, fmt_us(row["torch_inference_us"])),
                      fmt_ratio(row["learn_ratio_torch"]), fmt_ratio(row["inference_speedup_torch"])]
        if run_jax:
            cells += [cell(j, fmt_rate(row["jax_samples_per_second"])), cell(j, fmt_us(row["jax_inference_us"])),
                      fmt_ratio(row["learn_ratio_jax"]), fmt_ratio(row["inference_speedup_jax"])]
        cells += [goal_text(row["goals"])]
        L.append("| " + " | ".join(cells) + " |")
    L.append("")
    d = default["rnnd"]
    config = "" if d["status"] != "ok" else (
        f"{d['json']['model'].upper()} H={d['json']['hidden']} D={d['json']['inputs']} k2={d['json']['window']} "
        f"k1={d['json']['update_every']} {d['json'].get('optimizer', '?')}")
    L.append(f"The default learner (`rnnd bench` with no model flags: {config or 'run failed'}) against the peers "
             "learning every sample (LSTM H=64 D=1 k1=1 window 32, Adam):")
    L.append("")
    L.append("| rnnd default samples/s | torch k1=1 samples/s | jax k1=1 samples/s | × torch | × jax | goal |")
    L.append("|---:|---:|---:|---:|---:|---|")
    jx = default["learn_ratio_jax"]
    state = "not measured" if jx is None else "met" if jx >= DEFAULT_GOAL_JAX else "**not met**"
    L.append(f"| {cell(d, fmt_rate(default['rnnd_samples_per_second']))} | {fmt_rate(default['torch_samples_per_second'])} | "
             f"{fmt_rate(default['jax_samples_per_second'])} | {fmt_ratio(default['learn_ratio_torch'])} | "
             f"{fmt_ratio(jx)} | ≥{DEFAULT_GOAL_JAX:g}× jax: {state} |")
    L.append("")

    goal_rows = [(row, g) for row in rows for g in row["goals"]]
    L.append("Goals:")
    L.append("")
    wanted = [("learn ≥20× torch", 1), ("learn ≥100× torch", 32)]
    for short, k1 in wanted:
        hits = [(row, g) for row, g in goal_rows if g["short"] == short and row["update_every"] == k1]
        if not hits:
            L.append(f"- LSTM H=64 D=1 k1={k1}, {short}: not run in this invocation")
        for row, g in hits:
            v = "no figure (run failed)" if g["value"] is None else f"{g['value']:.1f}×"
            state = "not measured" if g["met"] is None else "met" if g["met"] else "**not met**"
            L.append(f"- LSTM H=64 D=1 k1={k1}, {short}: {v} — {state}")
    infer = [(row, g) for row, g in goal_rows if g["short"].startswith("infer")]
    if not infer:
        L.append(f"- LSTM H=64 D=1 inference < {INFERENCE_GOAL_US:g} µs: not run in this invocation")
    for row, g in infer:
        v = "no figure (run failed)" if g["value"] is None else f"{g['value']:.3f} µs"
        state = "not measured" if g["met"] is None else "met" if g["met"] else "**not met**"
        L.append(f"- LSTM H=64 D=1 k1={row['update_every']} inference < {INFERENCE_GOAL_US:g} µs: {v} — {state}")
    L.append("")

    errors = [(row, name, row[name]) for row in rows for name in ("rnnd", "torch", "jax")
              if row[name] is not None and row[name]["status"] != "ok"]
    if errors:
        L.append("Failed runs (details, stderr included, in peers.json):")
        L.append("")
        for row, name, rec in errors:
            first = (rec.get("stderr_tail") or "").strip().splitlines()
            L.append(f"- {name} {row['model']} H={row['hidden']} D={row['inputs']} k1={row['update_every']}: "
                     f"{rec['error']}" + (f" — `{first[-1][:160]}`" if first else ""))
        L.append("")
    return "\n".join(L).rstrip("\n") + "\n"


def fmt_load(la):
    return "unknown" if not la else " / ".join(f"{x:.2f}" for x in la)


if __name__ == "__main__":
    sys.exit(main())
