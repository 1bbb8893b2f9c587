#!/usr/bin/env bash
# How well rnnd forecasts the shared sensor data (../shared/data, or DATA=DIR), with default
# settings, next to the baselines; writes bench/results/accuracy.md (and prints it):
#   1. every file, one pass (`rnnd replay FILE`, the model `rnnd run` gives a new stream): MSE and
#      MAE of rnnd, persistence, seasonal persistence (one day earlier) and, with --torch, an online
#      PyTorch LSTM written the usual way (bench/torch_online.py); band coverage and width;
#   2. ETTh2 and ETTm1 under the online-forecasting papers' protocol (7 columns in and out, z-score
#      with the first 2,880 rows' statistics, warm-up on rows 0..3599, scored on rows 3600..14399);
#   3. the anomaly score of NAB's machine temperature against its labelled anomaly windows;
#   4. the taxi and ETTh1 data six steps ahead, each step scored on its own.
#
# Usage: bench/accuracy.sh [--no-build] [--torch] [-- EXTRA REPLAY FLAGS]
# Needs jq and python3 with numpy (--torch: torch as well). Outputs under bench/out/accuracy/.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$ROOT/scripts/lib/build-env.sh"   # the CPU the kernels are compiled for
cd "$ROOT"
RNND="$ROOT/.build/release/rnnd"
DATA="${DATA:-$ROOT/../shared/data}"
OUT="$ROOT/bench/out/accuracy"
RESULTS="$ROOT/bench/results/accuracy.md"
BUILD=1
TORCH=0
EXTRA=()
while [ $# -gt 0 ]; do
    case "$1" in
        --no-build) BUILD=0; shift ;;
        --torch) TORCH=1; shift ;;
        --) shift; EXTRA=("$@"); break ;;
        -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
        *) echo "accuracy.sh: unknown argument: $1" >&2; exit 2 ;;
    esac
done
[ -d "$DATA" ] || { echo "accuracy.sh: no data directory at $DATA (set DATA=DIR)" >&2; exit 2; }
command -v jq >/dev/null || { echo "accuracy.sh: jq not found" >&2; exit 2; }
python3 -c "import numpy" 2>/dev/null || { echo "accuracy.sh: python3 with numpy needed" >&2; exit 2; }
if [ "$TORCH" = 1 ]; then
    python3 -c "import torch" 2>/dev/null || { echo "accuracy.sh: --torch needs torch (pip install torch)" >&2; exit 2; }
fi
if [ "$BUILD" = 1 ]; then swift build -c release >&2; fi
rm -rf "$OUT"
mkdir -p "$OUT" "$(dirname "$RESULTS")"
TOOLS="$ROOT/bench/accuracy_tools.py"
source "$ROOT/bench/lib/protocol.sh"   # PROTOCOL_FILES, protocol_csv, protocol_replay

# A number for a table: 4 significant digits, or 3 decimals for small ones.
g='def g: if . == null then "—" elif (. | fabs) >= 1000 then (. | round | tostring) elif (. | fabs) >= 1 then (. * 1000 | round / 1000 | tostring) else (. * 10000 | round / 10000 | tostring) end;'

# 1. Every file with default settings.
rows=()
for file in "$DATA"/ett/*.csv "$DATA"/nab/*.csv; do
    name=$(basename "$file" .csv)
    echo "accuracy.sh: $name" >&2
    "$RNND" replay "$file" --metrics "$OUT/$name.json" --predictions "$OUT/$name.predictions.csv" \
        ${EXTRA[@]+"${EXTRA[@]}"} > "$OUT/$name.txt"
    torch='null'
    if [ "$TORCH" = 1 ]; then
        torch=$(python3 "$ROOT/bench/torch_online.py" "$file" --predictions "$OUT/$name.torch.csv")
    fi
    rows+=("$(jq -r --arg name "$name" --argjson torch "$torch" "$g"'
        .overall as $o |
        "| \($name) | \(.samples) | \(.targets | length) | **\($o.model.mse | g)** | \($o.persistence.mse | g) | \($o.seasonal.mse | g) | \($torch.mse // null | g) | **\($o.model.mae | g)** | \($o.persistence.mae | g) | \($o.seasonal.mae | g) | \($torch.mae // null | g) | \($o.skill * 1000 | round / 1000) | \(($o.bands.coverage // 0) * 1000 | round / 10)% | \($o.bands.mean_width | g) | \(.drifts) |"
    ' "$OUT/$name.json")")
done

# 2. The online-forecasting protocol on ETTh2 and ETTm1.
protocol=()
for name in "${PROTOCOL_FILES[@]}"; do
    [ -f "$DATA/ett/$name.csv" ] || continue
    protocol_csv "$name" "$OUT/$name.protocol.csv"
    protocol_replay "$OUT/$name.protocol.csv" "$OUT/$name.protocol.json" ${EXTRA[@]+"${EXTRA[@]}"} \
        > "$OUT/$name.protocol.txt"
    published=$([ "$name" = ETTh2 ] && echo '0.404 | 0.365' || echo '0.091 | 0.081')
    protocol+=("$(jq -r --arg name "$name" --arg published "$published" "$g"'
        .overall as $o |
        "| \($name) | \($o.count / 7) | **\($o.model.mse * 1000 | round / 1000)** | \($o.model.mae * 1000 | round / 1000) | \($o.persistence.mse * 1000 | round / 1000) | \($o.persistence.mae * 1000 | round / 1000) | \($published) | \(($o.bands.coverage // 0) * 1000 | round / 10)% |"
    ' "$OUT/$name.protocol.json")")
done

# 3. Anomaly scores on the machine temperature against NAB's labelled windows.
anomaly=()
mt="machine_temperature_system_failure"
if [ -f "$OUT/$mt.predictions.csv" ] && [ -f "$DATA/nab/combined_windows.json" ]; then
    python3 "$TOOLS" anomaly "$OUT/$mt.predictions.csv" "$DATA/nab/$mt.csv" "$DATA/nab/combined_windows.json" \
        "realKnownCause/$mt.csv" > "$OUT/$mt.anomaly.json"
    while IFS= read -r line; do anomaly+=("$line"); done < <(jq -r '
        . as $r |
        (.windows[] | "| \(.start[0:16]) … \(.end[0:16]) | \(.samples) | \(.max_score * 1000 | round / 1000) |"),
        "",
        "| threshold | labelled windows with a score at or above it | samples outside the windows at or above it | per day outside |",
        "|---:|---:|---:|---:|",
        (.thresholds[] | "| \(.threshold) | \(.windows_detected) of \(.windows) | \(.samples_above_outside) of \($r.outside_windows) | \(.per_day_outside * 100 | round / 100) |")
    ' "$OUT/$mt.anomaly.json")
fi

# 4. Several steps ahead: the taxi and ETTh1 data, six steps, every step scored on its own.
horizons=()
for name in nyc_taxi ETTh1; do
    file=$(ls "$DATA"/*/"$name.csv" 2>/dev/null | head -n 1)
    [ -n "$file" ] || continue
    "$RNND" replay "$file" --horizon 6 --metrics "$OUT/$name.h6.json" ${EXTRA[@]+"${EXTRA[@]}"} > "$OUT/$name.h6.txt"
    while IFS= read -r line; do horizons+=("$line"); done < <(jq -r --arg name "$name" "$g"'
        .per_horizon[] | "| \($name) | \(.horizon) | \(.model.mse | g) | \(.persistence.mse | g) | \(.seasonal.mse | g) | \(.skill * 1000 | round / 1000) | \((.bands.coverage // 0) * 1000 | round / 10)% | \(.bands.mean_width | g) |"
    ' "$OUT/$name.h6.json")
done

{
    echo "# rnnd's accuracy on the shared sensor data"
    echo
    invocation="bench/accuracy.sh$(if [ "$TORCH" = 1 ]; then echo " --torch"; fi)${EXTRA[*]:+ -- ${EXTRA[*]}}"
    echo "Produced by \`$invocation\` on $(date -u +%Y-%m-%dT%H:%M:%SZ), rnnd commit \`$(git rev-parse --short HEAD)\`."
    echo
    echo "## Every file, default settings, one pass"
    echo
    echo "Each file is streamed once, in order, predict then learn (\`rnnd replay FILE\`: the forecaster \`rnnd run\` gives a"
    echo "new stream, every numeric column in and out, horizon 1). Errors in the files' units, over every target column"
    echo "and every row from the second on. Persistence forecasts the latest value; seasonal persistence the value one"
    echo "day earlier (over the rows that have one); torch is an online PyTorch LSTM written the usual way"
    echo "(bench/torch_online.py; — when not run). skill = 1 − MSE(rnnd) / MSE(persistence). Coverage: the share of"
    echo "values inside their 90% band; width: the bands' mean width, in the file's units."
    echo
    echo "| file | rows | targets | MSE rnnd | MSE persistence | MSE seasonal | MSE torch | MAE rnnd | MAE persistence | MAE seasonal | MAE torch | skill | coverage | band width | drifts |"
    echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    printf '%s\n' "${rows[@]}"
    echo
    echo "## ETTh2 and ETTm1 under the online-forecasting protocol, horizon 1"
    echo
    echo "The first 14,400 rows, 7 columns in and out, each standardised with the mean and standard deviation of the"
    echo "first 2,880 rows; \`rnnd replay --warmup-rows 3600\` (one pass over rows 0..3599, not scored, then online);"
    echo "MSE and MAE of the standardised values of rows 3600..14399, every column."
    echo
    echo "| file | rows scored | MSE rnnd | MAE rnnd | MSE persistence | MAE persistence | published: persistence MSE | published: best MSE | coverage |"
    echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|"
    printf '%s\n' "${protocol[@]}"
    echo
    if [ ${#horizons[@]} -gt 0 ]; then
        echo "## Six steps ahead"
        echo
        echo "\`rnnd replay FILE --horizon 6\` (otherwise the defaults): one model forecasts the next six samples at every"
        echo "sample, each step trained only when its value has arrived (delayed targets) and scored on its own. Persistence"
        echo "forecasts the value p steps earlier; the band of each step is calibrated on that step's own errors."
        echo
        echo "| file | step | MSE rnnd | MSE persistence | MSE seasonal | skill | coverage | band width |"
        echo "|---|---:|---:|---:|---:|---:|---:|---:|"
        printf '%s\n' "${horizons[@]}"
        echo
    fi
    if [ ${#anomaly[@]} -gt 0 ]; then
        echo "## Anomaly scores on the machine temperature"
        echo
        echo "\`rnnd replay\`'s anomaly score of every sample (the default settings, section 1) against NAB's four labelled"
        echo "anomaly windows of machine_temperature_system_failure.csv (combined_windows.json); the highest score in each:"
        echo
        echo "| window (UTC) | samples | highest score |"
        echo "|---|---:|---:|"
        printf '%s\n' "${anomaly[@]}"
        echo
    fi
    echo "Per-target figures: bench/out/accuracy/FILE.txt (each replay's own table)."
} | tee "$RESULTS"
