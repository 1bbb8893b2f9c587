#!/usr/bin/env bash
# Replays every file of the shared sensor data (../shared/data, or DATA=DIR) through rnnd with
# default settings (`rnnd replay FILE`, the model `rnnd run` gives a new stream) and tabulates
# MSE and MAE of the model against persistence, overall and per target column.
#
# Usage: bench/accuracy.sh [--no-build] [-- EXTRA REPLAY FLAGS]
# Writes bench/results/accuracy.md (and prints it); metrics JSON in bench/out/accuracy/.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
RNND="$ROOT/.build/release/rnnd"
DATA="${DATA:-$ROOT/../shared/data}"
OUT="$ROOT/bench/out/accuracy"
RESULTS="$ROOT/bench/results/accuracy.md"
BUILD=1
EXTRA=()
while [ $# -gt 0 ]; do
    case "$1" in
        --no-build) BUILD=0; shift ;;
        --) shift; EXTRA=("$@"); break ;;
        -h|--help) sed -n '2,8p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "accuracy.sh: unknown argument: $1" >&2; exit 2 ;;
    esac
done
[ -d "$DATA" ] || { echo "accuracy.sh: no data directory at $DATA (set DATA=DIR)" >&2; exit 2; }
command -v jq >/dev/null || { echo "accuracy.sh: jq not found" >&2; exit 2; }
if [ "$BUILD" = 1 ]; then swift build -c release >&2; fi
rm -rf "$OUT"
mkdir -p "$OUT" "$(dirname "$RESULTS")"

rows=()
for file in "$DATA"/ett/*.csv "$DATA"/nab/*.csv; do
    name=$(basename "$file" .csv)
    "$RNND" replay "$file" --metrics "$OUT/$name.json" ${EXTRA[@]+"${EXTRA[@]}"} > "$OUT/$name.txt" 2>&1
    rows+=("$(jq -r --arg name "$name" '
        def g: if . == null then "—" elif (. | fabs) >= 1000 or (. | fabs) < 0.01 then (. * 1000 | round / 1000 | tostring) else (. * 10000 | round / 10000 | tostring) end;
        "| \($name) | \(.samples) | \(.targets | length) | \(.overall.model.mse | g) | \(.overall.persistence.mse | g) | \(.overall.model.mae | g) | \(.overall.persistence.mae | g) | \(.overall.skill * 1000 | round / 1000) | \(.samples_per_second | round) |"
    ' "$OUT/$name.json")")
done

{
    echo "# rnnd replay with default settings on the shared sensor data"
    echo
    echo "Produced by \`bench/accuracy.sh${EXTRA[*]:+ -- ${EXTRA[*]}}\` on $(date -u +%Y-%m-%dT%H:%M:%SZ), rnnd commit \`$(git rev-parse --short HEAD)\`."
    echo "Each file is streamed once, in order, predict then learn (\`rnnd replay FILE\`: the default model, an"
    echo "LSTM with 64 hidden units, k1 = 1, k2 = 32, Adam lr 0.001, every numeric column in and out, horizon 1)."
    echo "Errors are in the files' units, averaged over every target column and every row from the second on;"
    echo "persistence forecasts the latest value. skill = 1 − MSE(model) / MSE(persistence): above 0 the model wins."
    echo
    echo "| file | rows | targets | MSE model | MSE persistence | MAE model | MAE persistence | skill | samples/s |"
    echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|"
    printf '%s\n' "${rows[@]}"
    echo
    echo "Per-target figures: bench/out/accuracy/FILE.txt (the replay's own table)."
} | tee "$RESULTS"
