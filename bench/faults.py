#!/usr/bin/env python3
"""The fault harness's files and figures (bench/faults.sh drives it; Python 3, standard library only).

  prepare OUT [--files a,b] [--faults x,y] [--data DIR] [--bundled DIR]
      Writes, for every series and fault kind, a copy of the series cut at its fault row + 5,000
      rows with that one fault injected (OUT/<series>/<fault>.csv), the clean copy cut at the same
      row (OUT/<series>/clean.csv), the level shift's reference (OUT/<series>/reference.csv),
      OUT/plan.json (every fault: where it is, what it did) and OUT/runs.tsv (the replays to run:
      name, CSV, then the replay's extra flags, tab-separated). Prints a note for each series whose file is absent.

  report OUT MD [--meta META.json]
      Reads every run's --predictions and --metrics under OUT, computes the figures and writes the
      Markdown report MD and OUT/summary.json. Exits 1 when a run's output is missing or the
      alignment check fails (the faulty and the clean run must publish identical lines for every
      row before the fault).

The fault kinds, their families and the goals they are checked against are FAULTS and GOALS below;
docs of the method: the header of the report (method()).
"""
import csv
import datetime
import json
import math
import os
import random
import sys

AFTER = 5000          # samples kept after the fault row (the cut: "the statistics 5,000 samples later")
FRACTION = 0.4        # the fault row, as a share of the original file's rows
SEED = 13             # the noise burst's random seed
BOOT_ROW = 20         # the boot faults' row: among a stream's first samples, before the warm-ups end
ALERT = 0.5           # an alert, for the boot faults' counts (the documented ticket rule)
ALERTS_FROM = 200     # the first row whose alerts are counted (after the anomaly score's warm-up)
HOUR, DAY = 3600, 86400

# name: (path relative to the data root, kind, injected column, where: "bundled" or "shared",
# the replay's flags: only what the file needs)
SERIES = {
    "nyc_taxi": ("nab/nyc_taxi.csv", "single", "value", "bundled", []),
    "machine_temperature": ("nab/machine_temperature_system_failure.csv", "single", "value", "bundled", []),
    "cpu_asg": ("nab/cpu_utilization_asg_misconfiguration.csv", "single", "value", "shared", []),
    "ETTm1_OT": ("ett/ETTm1.csv", "single", "OT", "shared", ["--columns", "OT"]),
    "ETTh1": ("ett/ETTh1.csv", "vector", "OT", "shared", []),
}

# kind: family
FAULTS = {
    "spike_-9999": "spike", "spike_0": "spike", "spike_65535": "spike", "unit_x1000": "spike",
    "sign_flip": "spike",
    "burst_10": "burst", "noise_burst": "burst", "stuck_6h": "burst",
    "level_shift": "level",
    "gap_1h": "gap", "gap_1d": "gap",
    "future_2100": "clock", "clock_back_1h": "clock", "dst_repeat": "clock",
    "missing_channel": "channel",
    "boot_-9999": "boot", "boot_65535": "boot",
}
FAMILIES = ["spike", "burst", "level", "gap", "clock", "channel", "boot"]


def fail(message, status=1):
    print(f"faults.py: {message}", file=sys.stderr)
    sys.exit(status)


# ---------------------------------------------------------------------------------------------
# Files

def parse_time(text):
    return datetime.datetime.strptime(text.strip(), "%Y-%m-%d %H:%M:%S").replace(tzinfo=datetime.timezone.utc)


def format_time(t):
    return t.strftime("%Y-%m-%d %H:%M:%S")


def read_csv(path):
    with open(path, newline="") as f:
        table = list(csv.reader(f))
    if len(table) < 2:
        fail(f"{path}: no data rows")
    return table[0], table[1:]


def write_csv(path, header, rows):
    with open(path, "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(header)
        w.writerows(rows)


def number(x):
    """A value for a CSV cell: the shortest text that reads back as the same double."""
    return repr(float(x))


def median_interval(rows):
    times = [parse_time(r[0]).timestamp() for r in rows[:1001]]
    gaps = sorted(b - a for a, b in zip(times, times[1:]))
    return gaps[len(gaps) // 2]


def inject(kind, header, rows, fault, column, interval, stats):
    """A copy of `rows` (the clean cut) with fault `kind` at row `fault` of column `column`.
    Returns (rows, details): details says what changed, in the clean file's row numbers: `end` is
    the first row after the fault (for a removal, the first row after the gap), `removed` the rows
    left out ([a, b)), `rows` the rows whose cells changed."""
    out = [list(r) for r in rows]
    c = header.index(column)
    per_hour = round(HOUR / interval)
    value = float(rows[fault][c])
    d = {"kind": kind, "family": FAULTS[kind], "fault": fault, "column": column}

    def set_values(first, values):
        for i, v in enumerate(values):
            out[first + i][c] = number(v)
        d["rows"] = [first, first + len(values)]
        d["end"] = first + len(values)

    if kind in ("spike_-9999", "boot_-9999"):
        set_values(fault, [-9999])
    elif kind == "spike_0":
        set_values(fault, [0])
    elif kind in ("spike_65535", "boot_65535"):
        set_values(fault, [65535])
    elif kind == "unit_x1000":
        set_values(fault, [value * 1000])
    elif kind == "sign_flip":
        if value == 0:
            fail(f"sign_flip: the value at row {fault} is 0; flipping it changes nothing")
        set_values(fault, [-value])
    elif kind == "burst_10":
        set_values(fault, [-9999] * 10)
    elif kind == "stuck_6h":
        n = 6 * per_hour
        set_values(fault, [float(rows[fault - 1][c])] * n)
        d["stuck_value"] = float(rows[fault - 1][c])
    elif kind == "noise_burst":
        rng = random.Random(SEED)
        sigma = 10 * stats["change_scale"]
        set_values(fault, [float(rows[fault + i][c]) + rng.gauss(0, sigma) for i in range(100)])
        d["noise_sd"] = sigma
        d["seed"] = SEED
    elif kind == "level_shift":
        shift = 10 * stats["std"]
        for r in range(fault, len(out)):
            out[r][c] = number(float(rows[r][c]) + shift)
        d["rows"] = [fault, len(out)]
        d["end"] = fault
        d["shift"] = shift
    elif kind in ("gap_1h", "gap_1d"):
        n = per_hour if kind == "gap_1h" else round(DAY / interval)
        del out[fault:fault + n]
        d["removed"] = [fault, fault + n]
        d["end"] = fault + n
    elif kind == "future_2100":
        t = parse_time(rows[fault][0])
        try:
            future = t.replace(year=2100)
        except ValueError:          # 29 February
            future = t.replace(year=2100, day=28)
        out[fault][0] = format_time(future)
        d["rows"] = [fault, fault + 1]
        d["end"] = fault + 1
        d["time"] = format_time(future)
    elif kind == "clock_back_1h":
        for r in range(fault, len(out)):
            out[r][0] = format_time(parse_time(rows[r][0]) - datetime.timedelta(seconds=HOUR))
        d["rows"] = [fault, len(out)]
        d["end"] = fault
    elif kind == "dst_repeat":
        # A local-time file converted to UTC taking the earlier reading of the ambiguous hour:
        # the hour after the fall-back carries the timestamps of the hour before it again, and
        # the time axis is right again from the hour after.
        n = per_hour
        for i in range(n):
            out[fault + i][0] = rows[fault - n + i][0]
        d["rows"] = [fault, fault + n]
        d["end"] = fault + n
        d["repeated"] = n
    elif kind == "missing_channel":
        n = round(DAY / interval)
        for r in range(fault, fault + n):
            out[r][c] = ""
        d["rows"] = [fault, fault + n]
        d["end"] = fault + n
    else:
        fail(f"unknown fault kind {kind}")
    return out, d


def series_stats(rows, c, fault):
    """The series' spread and change scale over the rows before the fault (what a stream knew)."""
    x = [float(r[c]) for r in rows[:fault]]
    mean = sum(x) / len(x)
    std = math.sqrt(sum((v - mean) ** 2 for v in x) / len(x))
    change = math.sqrt(sum((b - a) ** 2 for a, b in zip(x, x[1:])) / (len(x) - 1))
    return {"mean": mean, "std": std, "change_scale": change}


def prepare(out, files, faults, data, bundled):
    plan = {"series": [], "notes": []}
    runs = []
    for name in files:
        relative, kind, column, where, flags = SERIES[name]
        path = os.path.join(bundled if where == "bundled" else data, relative)
        if not os.path.isfile(path):
            if where == "shared":
                note = f"{name}: {path} is absent: skipped"
                print(f"faults.py: note: {note}", file=sys.stderr)
                plan["notes"].append(note)
                continue
            fail(f"{path}: missing (a bundled file)")
        header, rows = read_csv(path)
        if column not in header:
            fail(f"{path}: no column {column}")
        fault = round(FRACTION * len(rows))
        cut = fault + AFTER
        if cut > len(rows):
            fail(f"{path}: {len(rows)} rows leave fewer than {AFTER} after the fault row {fault}")
        interval = median_interval(rows)
        clean = rows[:cut]
        c = header.index(column)
        stats = series_stats(clean, c, fault)
        directory = os.path.join(out, name)
        os.makedirs(directory, exist_ok=True)
        write_csv(os.path.join(directory, "clean.csv"), header, clean)
        entry = {"name": name, "file": path, "kind": kind, "column": column, "flags": flags,
                 "rows_in_file": len(rows), "fault_row": fault, "cut": cut, "interval": interval,
                 "stats": stats, "faults": []}
        runs.append((f"{name}/clean", os.path.join(directory, "clean.csv"), flags))
        for f in faults:
            if f == "missing_channel" and kind != "vector":
                continue
            row = BOOT_ROW if FAULTS[f] == "boot" else fault
            faulty, details = inject(f, header, clean, row, column, interval, stats)
            write_csv(os.path.join(directory, f"{f}.csv"), header, faulty)
            entry["faults"].append(details)
            runs.append((f"{name}/{f}", os.path.join(directory, f"{f}.csv"), flags))
            if f == "level_shift":
                # The reference: the clean file shifted by the same amount from row 0.
                shifted = [list(r) for r in clean]
                for r in shifted:
                    r[c] = number(float(r[c]) + details["shift"])
                write_csv(os.path.join(directory, "reference.csv"), header, shifted)
                runs.append((f"{name}/reference", os.path.join(directory, "reference.csv"), flags))
        if not entry["faults"]:
            note = f"{name}: none of the faults asked applies to a {kind} series (missing_channel needs a vector file)"
            print(f"faults.py: note: {note}", file=sys.stderr)
            plan["notes"].append(note)
        plan["series"].append(entry)
        print(f"faults.py: {name}: {len(rows)} rows, fault at row {fault}, cut at {cut}, "
              f"interval {interval:g} s, {len(entry['faults'])} faults", file=sys.stderr)
    if not plan["series"]:
        fail("no series to run")
    with open(os.path.join(out, "plan.json"), "w") as f:
        json.dump(plan, f, indent=1)
    with open(os.path.join(out, "runs.tsv"), "w") as f:
        for name, path, flags in runs:
            f.write("\t".join([name, path] + flags) + "\n")


# ---------------------------------------------------------------------------------------------
# Figures

class Run:
    """One replay's outputs: the horizon-1 line of every clean row it forecast, and its metrics."""

    def __init__(self, out, series, name, column, removed=None):
        base = os.path.join(out, series, name)
        for suffix in (".predictions.csv", ".json"):
            if not os.path.isfile(base + suffix):
                fail(f"{base}{suffix} is missing: the replay did not run")
        with open(base + ".json") as f:
            self.metrics = json.load(f)
        if self.metrics.get("horizon") != 1:
            fail(f"{base}: horizon {self.metrics.get('horizon')}: the figures assume 1")
        with open(base + ".predictions.csv", newline="") as f:
            reader = csv.reader(f)
            header = next(reader)
            v, lo, up = header.index(column), header.index(f"{column}_lower"), header.index(f"{column}_upper")
            targets = self.metrics["targets"]
            self.targets = targets
            self.lines = {}       # clean row -> the line's fields
            self.value, self.lower, self.upper, self.anomaly = {}, {}, {}, {}
            for fields in reader:
                if int(fields[1]) != 1:
                    continue
                row = int(fields[0])
                if removed and row >= removed[0]:
                    row += removed[1] - removed[0]
                self.lines[row] = fields
                self.value[row] = float(fields[v])
                if fields[lo] != "":
                    self.lower[row], self.upper[row] = float(fields[lo]), float(fields[up])
                if fields[-1] != "":
                    self.anomaly[row] = float(fields[-1])
        self.final = self.metrics.get("final_state")


def previous_rows(clean, count):
    """For every clean row, the clean run's previous accepted row (None for the first): the value
    persistence forecasts it with, as rnnd replay scores it. A row is accepted when it has a
    forecast, or is the first row."""
    prev, last = [], None
    for r in range(count):
        prev.append(last)
        if r in clean.lines or last is None:
            last = r
    return prev


def skill(run, actual, rows, prev):
    """1 - MSE(run) / MSE(persistence) over `rows` (clean row numbers), against `actual`; persistence
    forecasts actual[prev[r]], the clean run's previous sample, for every run alike. None when
    there is no row or persistence is perfect."""
    rows = [r for r in rows if r in run.value and prev[r] is not None]
    if not rows:
        return None, 0
    mse = sum((run.value[r] - actual[r]) ** 2 for r in rows) / len(rows)
    persistence = sum((actual[prev[r]] - actual[r]) ** 2 for r in rows) / len(rows)
    if persistence == 0:
        return None, len(rows)
    return 1 - mse / persistence, len(rows)


def band(run, actual, rows):
    """Mean band width and coverage over those of `rows` where the run published a band."""
    rows = [r for r in rows if r in run.lower]
    if not rows:
        return None, None
    width = sum(run.upper[r] - run.lower[r] for r in rows) / len(rows)
    coverage = sum(run.lower[r] <= actual[r] <= run.upper[r] for r in rows) / len(rows)
    return width, coverage


def ratio(a, b):
    return None if a is None or b is None or b == 0 else a / b


def final_scales(final, column_index, target_index):
    """The scales of the injected column from a replay's final_state."""
    i, t = final["inputs"][column_index], final["targets"][target_index]
    return {"mean": i["mean"], "std": i["std"], "change_unit": i["change_unit"],
            "band_scale": t["band_scale"][0], "combination_error_scale": t["combination_error_scale"][0],
            "drift_scale": t["drift_scale"]}


def refused_total(run):
    return sum(run.metrics["refused"].values())


def measure(out, entry, fault, clean, reference, actual, shifted_actual):
    series, column, kind = entry["name"], entry["column"], fault["kind"]
    removed = fault.get("removed")
    run = Run(out, series, kind, column, removed)
    f0, end, cut = fault["fault"], fault["end"], entry["cut"]
    m = {"kind": kind, "family": fault["family"], "fault_row": f0, "end": end}

    # Alignment: every row before the fault is the same sample in both files, so the replays must
    # publish the same lines for them, digit for digit.
    for r in range(f0):
        if run.lines.get(r) != clean.lines.get(r):
            fail(f"{series}/{kind}: row {r} (before the fault) differs from the clean run: "
                 f"{run.lines.get(r)} vs {clean.lines.get(r)}")

    base, truth = clean, actual
    if kind == "level_shift":
        base, truth = reference, shifted_actual
    windows = {"w0": (end, end + 2000), "w500": (end + 500, end + 2500), "w1000": (end + 1000, end + 3000)}
    for key, (a, b) in windows.items():
        if b > cut:
            fail(f"{series}/{kind}: window [{a}, {b}) passes the cut {cut}")
        rows = range(a, b)
        sf, nf = skill(run, truth, rows, clean.prev)
        sc, nc = skill(base, truth, rows, clean.prev)
        wf, cf = band(run, truth, rows)
        wc, cc = band(base, truth, rows)
        m[key] = {"rows": [a, b], "skill": sf, "skill_clean": sc, "scored": nf, "scored_clean": nc,
                  "width_ratio": ratio(wf, wc), "coverage": cf, "coverage_clean": cc}
        if kind == "level_shift":
            m[key]["skill_unshifted_clean"] = skill(clean, actual, rows, clean.prev)[0]
    # Band width, 50-row windows from the end of the fault: the first within 1.2x of the clean run's.
    m["width_back"] = None
    m["width_ratios"] = []
    for k in range(40):
        a = end + 50 * k
        rows = range(a, a + 50)
        q = ratio(band(run, truth, rows)[0], band(base, truth, rows)[0])
        m["width_ratios"].append(q)
        if q is not None and 1 / 1.2 <= q <= 1.2 and m["width_back"] is None:
            m["width_back"] = 50 * k
    # The anomaly score at the fault's first row (for a gap, the first row after it), and the
    # highest over the fault's rows.
    first = end if removed else f0
    m["anomaly_first"] = run.anomaly.get(first)
    m["anomaly_first_clean"] = clean.anomaly.get(first)
    a, b = fault.get("rows", [first, first + 1])
    scores = [run.anomaly[r] for r in range(a, min(b, cut)) if r in run.anomaly]
    m["anomaly_max"] = max(scores) if scores else None
    # Refusals: by reason, and beyond the clean run's.
    m["refused"] = run.metrics["refused"]
    m["refused_clean"] = clean.metrics["refused"]
    m["refused_extra"] = refused_total(run) - refused_total(clean)
    later = [r for r in range(f0 + 1, cut) if (removed is None or not removed[0] <= r < removed[1])]
    m["later_unforecast"] = sum(1 for r in later if r not in run.value) - sum(1 for r in later if r not in clean.value)
    resumed = next((r for r in range(f0, cut) if r in run.value and (removed is None or r >= removed[1])), None)
    m["resumed_at"] = None if resumed is None else resumed - f0
    m["drifts"], m["drifts_clean"] = run.metrics["drifts"], base.metrics["drifts"]
    # Alerts (anomaly ≥ ALERT) from row ALERTS_FROM on, faulty and clean, and how many at the same rows.
    alerts = {r for r, a in run.anomaly.items() if r >= ALERTS_FROM and a >= ALERT}
    alerts_clean = {r for r, a in base.anomaly.items() if r >= ALERTS_FROM and a >= ALERT}
    m["alerts"] = {"faulty": len(alerts), "clean": len(alerts_clean), "same": len(alerts & alerts_clean)}
    # The statistics at the cut, 5,000 rows after the fault, against the clean run's.
    ci, ti = run.metrics["inputs"].index(column), run.targets.index(column)
    if run.final is None or clean.final is None:
        fail(f"{series}/{kind}: the metrics JSON has no final_state (an rnnd without it?)")
    sf, sc = final_scales(run.final, ci, ti), final_scales(base.final, ci, ti)
    m["scales"] = {k: {"faulty": sf[k], "clean": sc[k], "ratio": ratio(sf[k], sc[k])} for k in sf}
    # Per channel: rows with a forecast while the fault lasts, and the other channels' skill then.
    if entry["kind"] == "vector":
        a, b = fault.get("rows", [f0, end])
        b = min(b, cut)
        counts = {}
        for j, target in enumerate(run.targets):
            def count(r):
                return sum(1 for row in range(a, b) if row in r.lines and r.lines[row][2 + j] != "")
            counts[target] = {"faulty": count(run), "clean": count(clean)}
        m["forecast_rows"] = counts
        m["during"] = [a, b]
    return m


def check_scoring(series, clean, actual, column):
    """The harness's scoring against rnnd's: over every row of the clean run, its skill, band width
    and coverage of the injected column must be the replay's own per-target figures (they differ
    only by float32 text round trips)."""
    figures = next(t for t in clean.metrics["per_target"] if t["target"] == column)
    mine, n = skill(clean, actual, range(1, len(actual)), clean.prev)
    width, coverage = band(clean, actual, range(1, len(actual)))
    theirs = figures["skill"], figures["bands"]["mean_width"], figures["bands"]["coverage"]
    if n != figures["count"] or any(a is None or b is None or abs(a - b) > 1e-6 * max(1, abs(b))
                                    for a, b in zip((mine, width, coverage), theirs)):
        fail(f"{series}: the harness's scoring of the clean run (skill {mine}, width {width}, coverage {coverage}, "
             f"{n} rows) is not rnnd's ({theirs}, {figures['count']} rows)")


def pooled_skill(run, clean_rows, targets, rows, skip, prev):
    """Skill of every target but `skip`, pooled, over `rows`, against the clean values."""
    mse = persistence = 0.0
    n = 0
    for j, t in enumerate(targets):
        if t == skip:
            continue
        for r in rows:
            if r not in run.lines or run.lines[r][2 + j] == "" or prev[r] is None:
                continue
            y, y0 = clean_rows[r][j], clean_rows[prev[r]][j]
            mse += (float(run.lines[r][2 + j]) - y) ** 2
            persistence += (y0 - y) ** 2
            n += 1
    return None if n == 0 or persistence == 0 else 1 - mse / persistence


# ---------------------------------------------------------------------------------------------
# Goals and the report

def within(a, b, tolerance):
    if a is None or b is None:
        return None
    return abs(a - b) <= tolerance


def scales_within(scales, tolerance=0.05):
    ratios = [s["ratio"] for s in scales.values()]
    if any(q is None for q in ratios):
        return None
    return all(abs(q - 1) <= tolerance for q in ratios)


def goals(m):
    """The goals of issue 13's "Show" for one fault: name -> pass (True/False) or None (not computable)."""
    g = {}
    fam, kind = m["family"], m["kind"]
    if fam in ("spike", "boot"):
        # A boot fault has a single spike's goals but the anomaly's (no sample is scored yet), and
        # its scales are read at the cut, thousands of rows after it.
        g["skill ±0.02 [end, end+2000)"] = within(m["w0"]["skill"], m["w0"]["skill_clean"], 0.02)
        g["width ≤1.2x within 200"] = m["width_back"] is not None and m["width_back"] + 50 <= 200
        if fam == "spike":
            g["scored ≥0.9"] = None if m["anomaly_first"] is None else m["anomaly_first"] >= 0.9
        g["scales ±5% at +5000" if fam == "spike" else "scales ±5% at the cut"] = scales_within(m["scales"])
    elif fam == "burst":
        g["skill ±0.05 [end+1000, end+3000)"] = within(m["w1000"]["skill"], m["w1000"]["skill_clean"], 0.05)
    elif fam == "level":
        g["skill ±0.05 [shift+500, shift+2500)"] = within(m["w500"]["skill"], m["w500"]["skill_clean"], 0.05)
    elif fam == "gap":
        g["skill ±0.05 [end+500, end+2500)"] = within(m["w500"]["skill"], m["w500"]["skill_clean"], 0.05)
        g["no drift from the gap"] = m["drifts"] <= m["drifts_clean"]
    elif kind == "future_2100":
        g["no later row refused"] = m["later_unforecast"] == 0
    elif kind == "dst_repeat":
        g["≤1 refusal per repeated timestamp"] = m["refused_extra"] <= m["repeated"]
    elif fam == "channel":
        others = {t: c for t, c in m["forecast_rows"].items() if t != m["column"]}
        g["other channels forecast"] = all(c["faulty"] == c["clean"] for c in others.values())
    return g


def fmt(x, digits=3):
    if x is None:
        return "—"
    if isinstance(x, bool):
        return "pass" if x else "FAIL"
    if isinstance(x, int):
        return f"{x:,}"
    if x != 0 and (abs(x) >= 1e5 or abs(x) < 1e-3):
        return f"{x:.3g}"
    return f"{x:.{digits}f}"


def verdict(x):
    return "—" if x is None else ("pass" if x else "**FAIL**")


def report(out, md, meta_path):
    with open(os.path.join(out, "plan.json")) as f:
        plan = json.load(f)
    meta = {}
    if meta_path:
        with open(meta_path) as f:
            meta = json.load(f)
    results = []
    for entry in plan["series"]:
        column = entry["column"]
        clean = Run(out, entry["name"], "clean", column)
        with open(os.path.join(out, entry["name"], "clean.csv"), newline="") as f:
            rows = list(csv.reader(f))
        header, rows = rows[0], rows[1:]
        c = header.index(column)
        actual = [float(r[c]) for r in rows]
        clean.prev = previous_rows(clean, len(rows))
        targets = clean.targets
        clean_rows = [[float(r[header.index(t)]) for t in targets] for r in rows]
        check_scoring(entry["name"], clean, actual, column)
        reference = shifted = None
        for fault in entry["faults"]:
            if fault["kind"] == "level_shift":
                reference = Run(out, entry["name"], "reference", column)
                shifted = [v + fault["shift"] for v in actual]
        for fault in entry["faults"]:
            m = measure(out, entry, fault, clean, reference, actual, shifted)
            m["series"], m["column"] = entry["name"], column
            if "repeated" in fault:
                m["repeated"] = fault["repeated"]
            if fault["kind"] == "missing_channel":
                a, b = m["during"]
                run = Run(out, entry["name"], fault["kind"], column)
                m["others_skill"] = pooled_skill(run, clean_rows, targets, range(a, b), column, clean.prev)
                m["others_skill_clean"] = pooled_skill(clean, clean_rows, targets, range(a, b), column, clean.prev)
            m["goals"] = goals(m)
            results.append(m)
        print(f"faults.py: {entry['name']}: {len(entry['faults'])} faults measured", file=sys.stderr)

    with open(os.path.join(out, "summary.json"), "w") as f:
        json.dump({"plan": plan, "meta": meta, "results": results}, f, indent=1)
    text = markdown(plan, meta, results)
    with open(md, "w") as f:
        f.write(text)
    sys.stdout.write(text)


def markdown(plan, meta, results):
    def skill_verdict(m, window, name):
        v, w = m["goals"].get(name), m[window]
        if v is None or w["skill"] is None or w["skill_clean"] is None:
            return verdict(v)
        return f"{verdict(v)} ({w['skill'] - w['skill_clean']:+.3f})"

    L = []
    L.append("# Faults: what one bad value, a stuck sensor, a clock fault or a gap does to a stream")
    L.append("")
    L.append(f"Produced by `{meta.get('command', 'bench/faults.sh')}` on {meta.get('date', '?')}, rnnd commit "
             f"`{meta.get('commit', '?')}`; machine: {meta.get('cpu', '?')}, nproc {meta.get('nproc', '?')}, "
             f"load average {meta.get('load_start', '?')} at start, {meta.get('load_end', '?')} at the end; "
             f"{meta.get('runs', '?')} replays in {meta.get('seconds', '?')} s. "
             + ("A subset of the series or faults." if meta.get("subset") else "Every series and fault."))
    L.append("")
    L += method(plan)
    L.append("")
    L.append("| series | file | replay flags | rows used | fault row | interval | injected column | std before the fault | change scale |")
    L.append("|---|---|---|---:|---:|---:|---|---:|---:|")
    for e in plan["series"]:
        flags = " ".join(e["flags"]) or "none"
        L.append(f"| {e['name']} | `{os.path.relpath(e['file'], meta.get('root', '.'))}` | {flags} | {e['cut']:,} of {e['rows_in_file']:,} | "
                 f"{e['fault_row']:,} | {e['interval']:g} s | {e['column']} | {fmt(e['stats']['std'])} | "
                 f"{fmt(e['stats']['change_scale'])} |")
    for note in plan["notes"]:
        L.append("")
        L.append(f"Note: {note}.")
    L.append("")

    def rows_of(family):
        return [m for m in results if m["family"] == family]

    def goal_cells(m, names):
        return " | ".join(verdict(m["goals"].get(n)) for n in names)

    def worst_scale(m):
        name, scale = max(m["scales"].items(), key=lambda kv: -1 if kv[1]["ratio"] is None else abs(kv[1]["ratio"] - 1))
        return f"{name} {fmt(scale['ratio'], 3)}"

    def width_back(m):
        return "not within 2,000 rows" if m["width_back"] is None else f"{m['width_back']} rows"

    spikes = rows_of("spike")
    if spikes:
        names = ["skill ±0.02 [end, end+2000)", "width ≤1.2x within 200", "scored ≥0.9", "scales ±5% at +5000"]
        L.append("## Single spike or sentinel")
        L.append("")
        L.append("One value replaced at the fault row. Goals: skill over the 2,000 rows after it within 0.02 of the clean run's;")
        L.append("mean band width back within 1.2x of the clean run's within 200 rows; the fault scored ≥ 0.9; the scales")
        L.append("5,000 rows later within 5% of the clean run's (the worst ratio of the six is shown).")
        L.append("")
        L.append("| series | fault | skill [end, +2000) | clean | width ratio [end, +2000) | width back within 1.2x after | "
                 "coverage [end, +2000) | clean | anomaly at the fault | clean | worst scale ratio at +5000 | "
                 + " | ".join(names) + " |")
        L.append("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|" + "---|" * len(names))
        for m in spikes:
            w = m["w0"]
            L.append(f"| {m['series']} | {m['kind']} | {fmt(w['skill'])} | {fmt(w['skill_clean'])} | {fmt(w['width_ratio'], 2)} | "
                     f"{width_back(m)} | {fmt(w['coverage'])} | {fmt(w['coverage_clean'])} | {fmt(m['anomaly_first'])} | "
                     f"{fmt(m['anomaly_first_clean'])} | {worst_scale(m)} | "
                     f"{skill_verdict(m, 'w0', names[0])} | {goal_cells(m, names[1:])} |")
        L.append("")
        L.append("The scales at +5,000 rows, faulty ÷ clean (the injected column):")
        L.append("")
        keys = ["mean", "std", "change_unit", "band_scale", "combination_error_scale", "drift_scale"]
        L.append("| series | fault | " + " | ".join(keys) + " |")
        L.append("|---|---|" + "---:|" * len(keys))
        for m in spikes:
            L.append(f"| {m['series']} | {m['kind']} | " + " | ".join(fmt(m["scales"][k]["ratio"], 3) for k in keys) + " |")
        L.append("")

    boots = rows_of("boot")
    if boots:
        names = ["skill ±0.02 [end, end+2000)", "width ≤1.2x within 200", "scales ±5% at the cut"]
        L.append("## A sentinel among the first samples")
        L.append("")
        L.append(f"One value replaced at row {BOOT_ROW} (the {BOOT_ROW + 1}st sample), before the change unit, the anomaly score")
        L.append("and the novelty's ranges have warmed up. Goals: those of a single spike, the scales at the cut (thousands of")
        L.append("rows later) rather than 5,000 rows after; no anomaly goal (no sample is scored before the 101st). Alerts:")
        L.append(f"rows from {ALERTS_FROM} on scoring {ALERT} or more, faulty and clean, and how many of the faulty run's are the clean")
        L.append("run's rows: what the fault leaves of the anomaly score.")
        L.append("")
        L.append("| series | fault | skill [end, +2000) | clean | width ratio [end, +2000) | width back within 1.2x after | "
                 "worst scale ratio at the cut | alerts | clean | at the same rows | " + " | ".join(names) + " |")
        L.append("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|" + "---|" * len(names))
        for m in boots:
            w, a = m["w0"], m["alerts"]
            L.append(f"| {m['series']} | {m['kind']} | {fmt(w['skill'])} | {fmt(w['skill_clean'])} | {fmt(w['width_ratio'], 2)} | "
                     f"{width_back(m)} | {worst_scale(m)} | {a['faulty']:,} | {a['clean']:,} | {a['same']:,} | "
                     f"{skill_verdict(m, 'w0', names[0])} | {goal_cells(m, names[1:])} |")
        L.append("")

    bursts = rows_of("burst")
    if bursts:
        name = "skill ±0.05 [end+1000, end+3000)"
        L.append("## Burst of 10 sentinels, noise burst, stuck value")
        L.append("")
        L.append("burst_10: ten rows of -9999; noise_burst: 100 rows plus Gaussian noise of 10x the series' change scale")
        L.append(f"(seed {SEED}); stuck_6h: six hours of rows hold the value before the fault. Goal: skill from 1,000 rows after")
        L.append("the fault ends, over 2,000 rows, within 0.05 of the clean run's.")
        L.append("")
        L.append("| series | fault | rows | skill [end, +2000) | clean | skill [end+1000, +3000) | clean | width ratio [end+1000, +3000) | "
                 "coverage [end+1000, +3000) | clean | highest anomaly in the fault | " + name + " |")
        L.append("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")
        for m in bursts:
            a, b = m["w0"], m["w1000"]
            L.append(f"| {m['series']} | {m['kind']} | {m['end'] - m['fault_row']} | {fmt(a['skill'])} | {fmt(a['skill_clean'])} | "
                     f"{fmt(b['skill'])} | {fmt(b['skill_clean'])} | {fmt(b['width_ratio'], 2)} | {fmt(b['coverage'])} | "
                     f"{fmt(b['coverage_clean'])} | {fmt(m['anomaly_max'])} | {skill_verdict(m, 'w1000', name)} |")
        L.append("")

    levels = rows_of("level")
    if levels:
        name = "skill ±0.05 [shift+500, shift+2500)"
        L.append("## Permanent level shift")
        L.append("")
        L.append("Every row from the fault on plus 10 standard deviations of the series (measured before the fault). The")
        L.append("reference is the clean file shifted by the same amount from row 0, replayed the same way; both runs are scored")
        L.append("against the shifted values. Goal: skill from 500 rows after the shift, over 2,000 rows, within 0.05 of the")
        L.append("reference's. (The unshifted clean run's skill on the same rows is shown too.)")
        L.append("")
        L.append("| series | shift | skill [shift, +2000) | reference | skill [shift+500, +2500) | reference | unshifted clean | "
                 "width ratio [shift+500, +2500) | coverage | reference | anomaly at the shift | " + name + " |")
        L.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")
        for m in levels:
            a, b = m["w0"], m["w500"]
            shift = next(f["shift"] for e in plan["series"] if e["name"] == m["series"] for f in e["faults"] if f["kind"] == "level_shift")
            L.append(f"| {m['series']} | {fmt(shift)} | {fmt(a['skill'])} | {fmt(a['skill_clean'])} | {fmt(b['skill'])} | "
                     f"{fmt(b['skill_clean'])} | {fmt(b['skill_unshifted_clean'])} | {fmt(b['width_ratio'], 2)} | {fmt(b['coverage'])} | "
                     f"{fmt(b['coverage_clean'])} | {fmt(m['anomaly_first'])} | {skill_verdict(m, 'w500', name)} |")
        L.append("")

    gaps = rows_of("gap")
    if gaps:
        names = ["skill ±0.05 [end+500, end+2500)", "no drift from the gap"]
        L.append("## Gaps: rows missing for an hour and for a day")
        L.append("")
        L.append("The rows of the gap are left out (the time jumps forward); both runs are scored on the rows after it. Goals:")
        L.append("skill from 500 rows after the gap, over 2,000 rows, within 0.05 of the clean run's; no more drifts than the")
        L.append("clean run over the whole replay (the metrics JSON's `drifts`).")
        L.append("")
        L.append("| series | fault | rows missing | skill [end, +2000) | clean | skill [end+500, +2500) | clean | width ratio [end+500, +2500) | "
                 "coverage | clean | anomaly after the gap | drifts | clean | " + " | ".join(names) + " |")
        L.append("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|" + "---|" * len(names))
        for m in gaps:
            a, b = m["w0"], m["w500"]
            L.append(f"| {m['series']} | {m['kind']} | {m['end'] - m['fault_row']} | {fmt(a['skill'])} | {fmt(a['skill_clean'])} | "
                     f"{fmt(b['skill'])} | {fmt(b['skill_clean'])} | {fmt(b['width_ratio'], 2)} | {fmt(b['coverage'])} | "
                     f"{fmt(b['coverage_clean'])} | {fmt(m['anomaly_first'])} | {m['drifts']} | {m['drifts_clean']} | "
                     f"{skill_verdict(m, 'w500', names[0])} | {goal_cells(m, names[1:])} |")
        L.append("")

    clocks = rows_of("clock")
    if clocks:
        L.append("## Clock faults")
        L.append("")
        L.append("future_2100: the fault row's timestamp in the year 2100 (its value unchanged). clock_back_1h: every timestamp from")
        L.append("the fault row on an hour earlier. dst_repeat: the hour after the fault row carries the hour before it's")
        L.append("timestamps again, then the time axis is right again (a local-time file converted to UTC taking the earlier")
        L.append("reading of the ambiguous hour). Refused: the metrics JSON's `refused`, less the clean run's; later rows")
        L.append("without a forecast: rows after the fault row that got none, less the clean run's. Goals: future_2100, no")
        L.append("later row refused; dst_repeat, at most one refusal per repeated timestamp; clock_back_1h has no documented")
        L.append("bound yet (the count is the figure to tune against).")
        L.append("")
        L.append("| series | fault | refused (faulty) | refused (clean) | refused beyond clean | later rows without a forecast | "
                 "first row with a forecast, from the fault row | skill [end+500, +2500) | clean | rows scored there, faulty of clean | goal | |")
        L.append("|---|---|---|---|---:|---:|---:|---:|---:|---:|---|---|")
        for m in clocks:
            refused = ", ".join(f"{k} {v:,}" for k, v in sorted(m["refused"].items())) or "none"
            clean_refused = ", ".join(f"{k} {v:,}" for k, v in sorted(m["refused_clean"].items())) or "none"
            goal = next(iter(m["goals"].items()), None)
            resumed = "never" if m["resumed_at"] is None else f"+{m['resumed_at']:,} rows"
            b = m["w500"]
            L.append(f"| {m['series']} | {m['kind']} | {refused} | {clean_refused} | {m['refused_extra']:,} | {m['later_unforecast']:,} | "
                     f"{resumed} | {fmt(b['skill'])} | {fmt(b['skill_clean'])} | {b['scored']:,} of {b['scored_clean']:,} | "
                     + (f"{goal[0]} | {verdict(goal[1])} |" if goal else "no documented bound | — |"))
        L.append("")

    channels = rows_of("channel")
    if channels:
        L.append("## A missing channel")
        L.append("")
        L.append("One column of the vector file empty for a day (replay carries the previous value forward, docs/replay.md).")
        L.append("Rows with a forecast per channel while the cells are missing, faulty / clean; the other channels' pooled skill")
        L.append("over those rows against the clean values. Goal: every other channel's forecasts continue.")
        L.append("")
        for m in channels:
            counts = ", ".join(f"{t} {c['faulty']}/{c['clean']}" for t, c in m["forecast_rows"].items())
            L.append(f"- {m['series']}, {m['column']} missing on rows [{m['during'][0]:,}, {m['during'][1]:,}): forecasts {counts}; "
                     f"other channels' skill {fmt(m['others_skill'])} (clean {fmt(m['others_skill_clean'])}); "
                     f"{m['column']}'s skill [end, +2000) {fmt(m['w0']['skill'])} (clean {fmt(m['w0']['skill_clean'])}); "
                     f"goal: {verdict(m['goals']['other channels forecast'])}")
        L.append("")

    total = [v for m in results for v in m["goals"].values()]
    L.append("## Summary")
    L.append("")
    L.append(f"{sum(1 for v in total if v is True)} goals met, {sum(1 for v in total if v is False)} not met, "
             f"{sum(1 for v in total if v is None)} not computable (—), over {len(results)} faulty replays.")
    L.append("")
    L.append("Every figure: bench/out/faults/summary.json; the files, predictions and metrics of each replay: bench/out/faults/SERIES/.")
    L.append("")
    return "\n".join(L) + "\n"


def method(plan):
    return [
        "## Method",
        "",
        f"Each series is cut at its fault row + {AFTER:,} rows, the fault row {int(FRACTION * 100)}% into the file (the boot",
        f"faults' row is {BOOT_ROW}, among the first samples; they keep the same cut). One fault",
        "is injected at a time into a copy of the cut file (in the column named below; the other columns are untouched), and",
        "`rnnd replay FILE --predictions P --metrics M` runs, with the default settings, on every copy and on the clean cut.",
        "Rows are aligned by the clean file's row numbers (a gap's rows are absent from the faulty run). The files are",
        "derived at run time under bench/out/faults/ (ETT's licence allows no modified copies to be shared).",
        "",
        "- **Skill** `1 − MSE(model) / MSE(persistence)` of the horizon-1 forecasts of the injected column over a window of",
        "  rows after the fault ends (`end`: the first row after the fault, or after the gap). Both runs are scored on the",
        "  same rows (those each forecast) against the **clean** file's values, and persistence is the clean run's previous",
        "  sample for both (as `rnnd replay` scores it), so the two skills differ only by the model's errors; the faulty",
        "  values themselves are never the truth. For the level shift, both the faulty run and the reference (the clean file shifted from row 0) are scored",
        "  against the shifted values. Windows: `[end, end+2000)`, `[end+500, end+2500)`, `[end+1000, end+3000)`.",
        "- **Band width**: the mean width of the published band, faulty ÷ clean, over the same rows; \"back within 1.2x\":",
        "  the first 50-row window from `end` whose ratio is between 1/1.2 and 1.2 (\"after N rows\": it starts N rows after",
        "  `end`; the goal \"within 200\" is a window ending by `end+200`). **Coverage**: the share of clean values inside the band.",
        "- **Anomaly**: the replay's anomaly score of the fault row (for a gap: of the first row after it).",
        "- **Scales at +5,000**: `final_state` of the replay's `--metrics` (docs/replay.md) at the cut, faulty ÷ clean: the",
        "  normaliser's mean and std and the change unit of the injected column, the band scale, the combination's error",
        "  scale and the drift scale of its target. Both runs end at the same clean row (the cut is the same instant;",
        "  for a gap, the faulty run has the gap's rows fewer).",
        "- **Refusals**: the metrics JSON's `refused` by reason; rows after the fault without a forecast.",
        "- \"Within x of clean\" is |faulty − clean| ≤ x, as issue 13 words it: a faulty run that does better by more",
        "  than x fails too (a sign that the stream's learning diverged from the clean run's); the signed difference",
        "  faulty − clean follows each skill verdict. A — is a figure that cannot be computed (no forecast, no band);",
        "  a goal on it is — too, never a pass.",
        "- Self-checks, each fatal: the harness's skill, band width and coverage of every clean run over all its rows",
        "  equal the replay's own per-target figures (`per_target` of `--metrics`, to 1e-6), and the faulty and the clean",
        "  run publish identical lines for every row before the fault.",
    ]


def main():
    args = sys.argv[1:]
    if not args or args[0] in ("-h", "--help"):
        print(__doc__)
        return
    command = args[0]
    options = {}
    positional = []
    i = 1
    while i < len(args):
        if args[i].startswith("--"):
            if i + 1 >= len(args):
                fail(f"{args[i]} needs a value")
            options[args[i][2:]] = args[i + 1]
            i += 2
        else:
            positional.append(args[i])
            i += 1
    if command == "prepare":
        if len(positional) != 1:
            fail("prepare OUT [--files a,b] [--faults x,y] [--data DIR] [--bundled DIR]")
        files = options.get("files", ",".join(SERIES)).split(",")
        for name in files:
            if name not in SERIES:
                fail(f"unknown series {name!r}; the series: {', '.join(SERIES)}", 2)
        faults = []
        for name in options.get("faults", ",".join(FAULTS)).split(","):
            if name in FAMILIES:
                faults += [k for k, f in FAULTS.items() if f == name and k not in faults]
            elif name in FAULTS:
                if name not in faults:
                    faults.append(name)
            else:
                fail(f"unknown fault {name!r}; the kinds: {', '.join(FAULTS)}; the families: {', '.join(FAMILIES)}", 2)
        prepare(positional[0], files, faults, options.get("data", "../shared/data"), options.get("bundled", "data"))
    elif command == "report":
        if len(positional) != 2:
            fail("report OUT MD [--meta META.json]")
        report(positional[0], positional[1], options.get("meta"))
    else:
        fail(f"unknown command {command}")


if __name__ == "__main__":
    main()
