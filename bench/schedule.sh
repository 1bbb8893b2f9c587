#!/usr/bin/env bash
# The learning schedule and optimizer of the default model, measured (docs/tuning.md, "Schedule";
# issue 17): each variant replays every file of the shared sensor data (../shared/data, or
# DATA=DIR) with its flags, and ETTh2 and ETTm1 under the online-forecasting protocol of
# docs/accuracy.md, and `rnnd bench` times its learning (LSTM H=64, one channel). The variants
# with three seeds say how much of a difference is noise. Writes bench/results/schedule.md.
#
# Usage: bench/schedule.sh [--no-build] [--quick]
#   --quick   seed 0 only
# Needs jq and python3 with numpy. About 10 minutes on 2 cores (the replays run two at a time;
# the timings run alone).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$ROOT/scripts/lib/build-env.sh"   # the CPU the kernels are compiled for
cd "$ROOT"
RNND="$ROOT/.build/release/rnnd"
DATA="${DATA:-$ROOT/../shared/data}"
OUT="$ROOT/bench/out/schedule"
RESULTS="$ROOT/bench/results/schedule.md"
source "$ROOT/bench/lib/protocol.sh"   # PROTOCOL_FILES, protocol_csv, protocol_replay
BUILD=1
SEEDS=(0 1 2)
while [ $# -gt 0 ]; do
    case "$1" in
        --no-build) BUILD=0; shift ;;
        --quick) SEEDS=(0); shift ;;
        -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
        *) echo "schedule.sh: unknown argument: $1" >&2; exit 2 ;;
    esac
done
[ -d "$DATA" ] || { echo "schedule.sh: no data directory at $DATA (set DATA=DIR)" >&2; exit 2; }
command -v jq >/dev/null || { echo "schedule.sh: jq not found" >&2; exit 2; }
if [ "$BUILD" = 1 ]; then swift build -c release >&2; fi
rm -rf "$OUT"
mkdir -p "$OUT" "$(dirname "$RESULTS")"
for name in "${PROTOCOL_FILES[@]}"; do protocol_csv "$name" "$OUT/$name.protocol.csv"; done

FILES=(ETTh1 ETTh2 ETTm1 cpu_utilization_asg_misconfiguration machine_temperature_system_failure nyc_taxi rogue_agent_key_hold)
path() { case "$1" in ETT*) echo "$DATA/ett/$1.csv" ;; *) echo "$DATA/nab/$1.csv" ;; esac; }
OLD="--optimizer adam --update-every 1 --window 32 --lr 0.001"
# label | flags | seeds (all: every seed; 0: seed 0 only)
VARIANTS=(
    "**the defaults: Adafactor, k1 = 2, k2 = 20, lr 0.002**||all"
    "the defaults before issue 17: Adam, k1 = 1, k2 = 32, lr 0.001|$OLD|all"
    "Adam, k1 = 2, lr 0.001|$OLD --update-every 2|0"
    "Adam, k1 = 2, lr 0.002|$OLD --update-every 2 --lr 0.002|0"
    "Adam, k1 = 3, lr 0.003|$OLD --update-every 3 --lr 0.003|0"
    "Adam, k1 = 4, lr 0.004|$OLD --update-every 4 --lr 0.004|0"
    "Adam, k1 = 1, k2 = 16|$OLD --window 16|0"
    "Adafactor, k1 = 1, k2 = 32, lr 0.001|$OLD --optimizer adafactor|0"
    "Adafactor, k1 = 2, k2 = 32, lr 0.002|--window 32|all"
    "Adafactor, k1 = 2, k2 = 24, lr 0.002|--window 24|0"
)

# One replay of every file and protocol run; prints the table row's numbers.
measure() {
    local dir=$1; shift
    mkdir -p "$dir"
    local pids=()
    for f in "${FILES[@]}"; do
        "$RNND" replay "$(path "$f")" --metrics "$dir/$f.json" "$@" > "$dir/$f.txt" &
        pids+=($!)
        if [ ${#pids[@]} -ge 2 ]; then wait "${pids[0]}"; pids=("${pids[@]:1}"); fi
    done
    for name in "${PROTOCOL_FILES[@]}"; do
        protocol_replay "$OUT/$name.protocol.csv" "$dir/$name.protocol.json" "$@" > "$dir/$name.protocol.txt" &
        pids+=($!)
        if [ ${#pids[@]} -ge 2 ]; then wait "${pids[0]}"; pids=("${pids[@]:1}"); fi
    done
    wait
    local row=""
    for f in "${FILES[@]}"; do row+=" | $(jq -r '.overall.skill * 10000 | round / 10000' "$dir/$f.json")"; done
    for name in ETTh2 ETTm1; do row+=" | $(jq -r '.overall.model.mse * 10000 | round / 10000' "$dir/$name.protocol.json")"; done
    echo "$row"
}

rows=()
i=0
for v in "${VARIANTS[@]}"; do
    IFS='|' read -r label flags seeds <<< "$v"
    read -r -a args <<< "$flags"
    i=$((i + 1))
    for seed in "${SEEDS[@]}"; do
        if [ "$seeds" = 0 ] && [ "$seed" != 0 ]; then continue; fi
        echo "schedule.sh: $label, seed $seed" >&2
        numbers=$(measure "$OUT/v$i-s$seed" ${args[@]+"${args[@]}"} --seed "$seed")
        speed="—"
        if [ "$seed" = 0 ]; then
            speed=$("$RNND" bench --json ${args[@]+"${args[@]}"} | jq -r '.samples_per_second | round')
        fi
        rows+=("| $label | $seed$numbers | $speed |")
    done
done

{
    echo "# The default model's learning schedule and optimizer"
    echo
    echo "\`bench/schedule.sh\` at commit \`$(git rev-parse --short HEAD)\`$(git diff --quiet HEAD -- Sources 2>/dev/null || echo ' (with uncommitted changes)'), $(date -u +%Y-%m-%d)."
    echo "Skill = 1 − MSE / MSE(persistence) of \`rnnd replay FILE FLAGS\` over every row (docs/accuracy.md, first"
    echo "table); ETTh2 / ETTm1 protocol: MSE under the online-forecasting protocol (docs/accuracy.md, second"
    echo "table; lower is better); samples/s: \`rnnd bench FLAGS\` (LSTM H=64, one channel, median of three"
    echo "3-second rounds, the forecaster's whole per-sample path), at seed 0 only."
    echo
    echo "| variant | seed | ETTh1 | ETTh2 | ETTm1 | CPU | machine temp. | taxi | keystrokes | ETTh2 protocol | ETTm1 protocol | samples/s |"
    echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    printf '%s\n' "${rows[@]}"
} | tee "$RESULTS"
