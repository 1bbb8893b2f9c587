#!/usr/bin/env bash
# The evidence behind rnnd's default model (docs/tuning.md): every file of the shared sensor data
# (../shared/data, or DATA=DIR) replayed once with the defaults and with one setting changed at a
# time, and two synthetic regime changes replayed with and without drift handling. Writes
# bench/results/tuning.md (and prints it).
#
# Usage: bench/tuning.sh [--no-build] [--jobs N] [--report]
#   --report   replay only the regime changes; the table from the replays of the last run
# Needs jq and python3 with numpy. About 10 minutes on 2 cores.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$ROOT/scripts/lib/build-env.sh"   # the CPU the kernels are compiled for
cd "$ROOT"
RNND="$ROOT/.build/release/rnnd"
DATA="${DATA:-$ROOT/../shared/data}"
OUT="$ROOT/bench/out/tuning"
RESULTS="$ROOT/bench/results/tuning.md"
BUILD=1
JOBS=2
REPORT=0
while [ $# -gt 0 ]; do
    case "$1" in
        --no-build) BUILD=0; shift ;;
        --jobs) JOBS=$2; shift 2 ;;
        --report) REPORT=1; BUILD=0; shift ;;
        -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
        *) echo "tuning.sh: unknown argument: $1" >&2; exit 2 ;;
    esac
done
[ -d "$DATA" ] || { echo "tuning.sh: no data directory at $DATA (set DATA=DIR)" >&2; exit 2; }
command -v jq >/dev/null || { echo "tuning.sh: jq not found" >&2; exit 2; }
if [ "$BUILD" = 1 ]; then swift build -c release >&2; fi
if [ "$REPORT" = 0 ]; then rm -rf "$OUT"; fi
mkdir -p "$OUT" "$(dirname "$RESULTS")"

FILES=("$DATA"/ett/ETTh1.csv "$DATA"/ett/ETTh2.csv "$DATA"/ett/ETTm1.csv "$DATA"/nab/cpu_utilization_asg_misconfiguration.csv
    "$DATA"/nab/machine_temperature_system_failure.csv "$DATA"/nab/nyc_taxi.csv "$DATA"/nab/rogue_agent_key_hold.csv)
# label | flags (one setting changed from the defaults, or a named combination)
VARIANTS=(
    "defaults|"
    "the network alone (--ensemble off)|--ensemble off"
    "the network alone, level formulation, no calendar (the defaults before the forecaster)|--ensemble off --formulation level --calendar off"
    "the network alone, no calendar|--ensemble off --calendar off"
    "the network alone, GRU|--ensemble off --model gru"
    "level formulation|--formulation level"
    "no calendar inputs|--calendar off"
    "no linear model (--linear-lags 0)|--linear-lags 0"
    "--linear-lags 8|--linear-lags 8"
    "GRU|--model gru"
    "--hidden 32|--hidden 32"
    "--hidden 128|--hidden 128"
    "--lr 0.003|--lr 0.003"
    "--lr 0.0003|--lr 0.0003"
    "--window 16|--window 16"
    "--window 64|--window 64"
    "--normalization-forgetting 0.999|--normalization-forgetting 0.999"
    "--loss huber|--loss huber"
    "--drift off|--drift off"
    "--seed 1|--seed 1"
    "--seed 2|--seed 2"
)

run() {  # variant index, file
    local i=$1 file=$2 flags
    flags=${VARIANTS[$i]#*|}
    # shellcheck disable=SC2086
    "$RNND" replay "$file" $flags --metrics "$OUT/$i.$(basename "$file" .csv).json" > /dev/null
}
export -f run
export RNND OUT
if [ "$REPORT" = 1 ]; then VARIANT_JOBS=0; else VARIANT_JOBS=1; fi
jobs=()
for i in "${!VARIANTS[@]}"; do
    [ "$VARIANT_JOBS" = 1 ] || break
    for file in "${FILES[@]}"; do jobs+=("$i $file"); done
done
# A pool of $JOBS replays at a time.
for job in ${jobs[@]+"${jobs[@]}"}; do
    while [ "$(jobs -rp | wc -l)" -ge "$JOBS" ]; do wait -n; done
    # shellcheck disable=SC2086
    run $job &
done
wait

table() {
    echo "| setting | ETTh1 | ETTh2 | ETTm1 | CPU | machine temp. | taxi | keystrokes | wins | worst |"
    echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    for i in "${!VARIANTS[@]}"; do
        local skills=()
        for file in "${FILES[@]}"; do
            skills+=("$(jq '.overall.skill' "$OUT/$i.$(basename "$file" .csv).json")")
        done
        printf '%s\n' "${skills[@]}" | jq -rs --arg setting "${VARIANTS[$i]%%|*}" '
            "| \($setting) | " + (map(. * 1000 | round / 1000 | tostring) | join(" | "))
            + " | \(map(select(. > 0)) | length) of \(length) | \(min * 1000 | round / 1000) |"'
    done
}

# Regime changes: the same stream before and after sample 6000, replayed with drift handling on
# and off; the MSE of the 500 forecasts after the change, and of all of them.
python3 - "$OUT" <<'EOF'
import sys
import numpy as np
out = sys.argv[1]
rng = np.random.default_rng(1)
t = np.arange(12000)
switch = np.where(t < 6000, np.sin(2 * np.pi * t / 50), 5 + 3 * np.sin(2 * np.pi * t / 17)) + 0.1 * rng.standard_normal(12000)
ar, e = np.zeros(12000), rng.standard_normal(12000)
for i in range(2, 12000):
    ar[i] = (0.9 if i < 6000 else -0.7) * ar[i - 1] + e[i]
for name, x in (("switch", switch), ("arflip", ar)):
    with open(f"{out}/{name}.csv", "w") as f:
        f.write("value\n" + "".join(f"{v:.6f}\n" for v in x))
EOF
drift=()
for name in switch arflip; do
    for setting in on off; do
        "$RNND" replay "$OUT/$name.csv" --drift "$setting" --predictions "$OUT/$name.$setting.csv" --metrics "$OUT/$name.$setting.json" > /dev/null
        drift+=("$(python3 - "$OUT" "$name" "$setting" <<'EOF'
import json, sys
import numpy as np
out, name, setting = sys.argv[1:]
x = np.loadtxt(f"{out}/{name}.csv", skiprows=1)
p = np.loadtxt(f"{out}/{name}.{setting}.csv", delimiter=",", skiprows=1, usecols=(0, 2))
rows, e = p[:, 0].astype(int), (p[:, 1] - x[p[:, 0].astype(int)]) ** 2
drifts = json.load(open(f"{out}/{name}.{setting}.json"))["drifts"]
after = e[(rows >= 6000) & (rows < 6500)].mean()
print(f"| {name} | {setting} | {drifts} | {after:.4g} | {e[(rows >= 6500) & (rows < 8000)].mean():.4g} | {e.mean():.4g} |")
EOF
)")
    done
done

{
    echo "# Tuning evidence"
    echo
    echo "Produced by \`bench/tuning.sh\` on $(date -u +%Y-%m-%dT%H:%M:%SZ), rnnd commit \`$(git rev-parse --short HEAD)\`."
    echo
    echo "Skill (1 − MSE / MSE of persistence; above 0 beats persistence) of one pass over each file (\`rnnd replay FILE"
    echo "FLAGS\`), with the defaults and with one setting changed. CPU is cpu_utilization_asg_misconfiguration, keystrokes"
    echo "rogue_agent_key_hold. The two seed lines show how much a figure moves with the initial weights alone."
    echo
    table
    echo
    echo "## Drift handling on regime changes"
    echo
    echo "Synthetic streams of 12,000 samples whose behaviour changes at sample 6000 (switch: a sine of period 50 and"
    echo "amplitude 1 becomes one of period 17, amplitude 3, level 5, noise 0.1; arflip: an AR(1) process whose coefficient"
    echo "goes from 0.9 to −0.7), replayed with \`--drift on\` (the default) and \`--drift off\`: MSE of the forecasts."
    echo
    echo "| stream | drift | drifts detected | MSE, 500 samples after the change | MSE, the 1500 after those | MSE, all |"
    echo "|---|---|---:|---:|---:|---:|"
    printf '%s\n' "${drift[@]}"
} | tee "$RESULTS"
