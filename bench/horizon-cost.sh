#!/usr/bin/env bash
# What forecasting far ahead costs (issue 15): the default model (LSTM H=64) at horizon 1 and 48,
# for one and for seven channels, `rnnd bench` (learning rate of the whole forecaster on a
# synthetic stream, and the bytes of a stream's state) and `rnnd replay`'s samples per second on
# real files (the taxi data, one channel; ETTh1, seven), for this build and, with --before BIN,
# for an earlier binary in the same run. The jax peer (../shared/peers/jax_peer.py, when jax is
# installed) learns the same LSTM at the same windows for comparison. Writes
# bench/results/horizon-cost.md.
#
# Usage: bench/horizon-cost.sh [--no-build] [--before BIN] [--seconds S]
#   --before BIN   an rnnd binary of an earlier commit, measured beside this one
#   --seconds S    seconds per `rnnd bench` (three rounds, the median; default 3)
# Needs jq. About 3 minutes (everything runs alone, one thing at a time).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$ROOT/scripts/lib/build-env.sh"
cd "$ROOT"
RNND="$ROOT/.build/release/rnnd"
DATA="${DATA:-$ROOT/../shared/data}"
PEERS="${PEERS:-$ROOT/../shared/peers}"
OUT="$ROOT/bench/out/horizon-cost"
RESULTS="$ROOT/bench/results/horizon-cost.md"
BUILD=1 BEFORE="" SECONDS_EACH=3
while [ $# -gt 0 ]; do
    case "$1" in
        --no-build) BUILD=0; shift ;;
        --before) BEFORE="${2:?--before needs a binary}"; shift 2 ;;
        --seconds) SECONDS_EACH="${2:?--seconds needs a number}"; shift 2 ;;
        -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
        *) echo "horizon-cost.sh: unknown argument: $1" >&2; exit 2 ;;
    esac
done
command -v jq >/dev/null || { echo "horizon-cost.sh: jq not found" >&2; exit 2; }
[ -z "$BEFORE" ] || [ -x "$BEFORE" ] || { echo "horizon-cost.sh: no binary at $BEFORE" >&2; exit 2; }
[ -f "$DATA/nab/nyc_taxi.csv" ] && [ -f "$DATA/ett/ETTh1.csv" ] \
    || { echo "horizon-cost.sh: the taxi and ETTh1 files are needed under $DATA (set DATA=DIR)" >&2; exit 2; }
if [ "$BUILD" = 1 ]; then swift build -c release >&2; fi
rm -rf "$OUT"
mkdir -p "$OUT" "$(dirname "$RESULTS")"
cp "$RNND" "$OUT/rnnd"
[ -z "$BEFORE" ] || cp "$BEFORE" "$OUT/rnnd-before"

num() { jq -r "$1 | if . == null then \"—\" elif . >= 100 then (. | round | tostring) else (. * 100 | round / 100 | tostring) end" "$2"; }
rows=()
for which in after before; do
    bin="$OUT/rnnd"
    if [ "$which" = before ]; then
        [ -n "$BEFORE" ] || continue
        bin="$OUT/rnnd-before"
    fi
    for inputs in 1 7; do
        file=$([ "$inputs" = 1 ] && echo "$DATA/nab/nyc_taxi.csv" || echo "$DATA/ett/ETTh1.csv")
        for h in 1 48; do
            tag="$which-i$inputs-h$h"
            echo "horizon-cost.sh: $tag" >&2
            "$bin" bench --inputs "$inputs" --horizon "$h" --seconds "$SECONDS_EACH" --json > "$OUT/$tag.bench.json"
            "$bin" replay "$file" --horizon "$h" --metrics "$OUT/$tag.replay.json" > /dev/null
            b="$OUT/$tag.bench.json" r="$OUT/$tag.replay.json"
            rows+=("| $which | LSTM H=64, $(jq -r '"\(.optimizer), k2 = \(.window), k1 = \(.update_every)"' "$b") | $inputs | $h | $(num .samples_per_second "$b") | $(num '.flops_per_sample / 1e6' "$b") | $(num '.state_bytes / 1000' "$b") | $(basename "$file") | $(num .samples_per_second "$r") |")
        done
    done
done

peer=()
if python3 -c "import jax" 2>/dev/null && [ -f "$PEERS/jax_peer.py" ]; then
    for inputs in 1 7; do
        for w in 20 49; do
            echo "horizon-cost.sh: jax peer, $inputs inputs, window $w" >&2
            python3 "$PEERS/jax_peer.py" --inputs "$inputs" --window "$w" --update-every 1 --seconds "$SECONDS_EACH" \
                > "$OUT/jax-i$inputs-w$w.json" 2>/dev/null
            peer+=("| $(jq -r .peer "$OUT/jax-i$inputs-w$w.json") | LSTM H=64, Adam, k2 = $w, k1 = 1 | $inputs | 1 (its outputs: the inputs, one step) | $(num .samples_per_second "$OUT/jax-i$inputs-w$w.json") |")
        done
    done
fi

{
    echo "# The cost of forecasting far ahead"
    echo
    echo "Produced by \`bench/horizon-cost.sh${BEFORE:+ --before $BEFORE}\` on $(date -u +%Y-%m-%dT%H:%M:%SZ), rnnd commit \`$(git rev-parse --short HEAD)$(git diff --quiet HEAD -- Sources || echo " + changes")\`; one thing at a time on a 2-core VM."
    echo
    echo "\`rnnd bench --inputs I --horizon H\`: the whole forecaster (network, experts, combination, bands) learning a"
    echo "synthetic stream of I sines plus noise, every channel in and out, samples per second (median of three rounds),"
    echo "the network's floating-point operations per sample (the direct expert's are not counted: about 0.35 million"
    echo "multiply-adds per sample per target at H = 48, docs/numerics.md \"Memory and cost\") and the bytes of a stream's"
    echo "state (its checkpoint record's). Replay: \`rnnd replay FILE --horizon H\`, every numeric column in and out, its"
    echo "samples per second over the whole file (parsing and scoring included). The settings are the defaults for H,"
    echo "as named in the model column."
    echo
    echo "| build | model | channels | H | bench samples/s | network MFLOP/sample | state kB | replay file | replay samples/s |"
    echo "|---|---|---:|---:|---:|---:|---:|---|---:|"
    printf '%s\n' "${rows[@]}"
    echo
    if [ ${#peer[@]} -gt 0 ]; then
        echo "The jax peer in the same run (../shared/peers/jax_peer.py: the network alone, Adam, an update after every"
        echo "sample over the window, no experts, bands or horizon; samples per second, median of three rounds):"
        echo
        echo "| peer | model | channels | steps ahead | samples/s |"
        echo "|---|---|---:|---|---:|"
        printf '%s\n' "${peer[@]}"
        echo
    fi
    echo "Outputs in bench/out/horizon-cost/ (\`*.bench.json\`, \`*.replay.json\`)."
} | tee "$RESULTS"
