#!/usr/bin/env bash
# Checkpoint benchmark: how long a checkpoint and a restore of many streams take, and how big
# the store is. Real processes on 127.0.0.1, the release build.
#
#   For each of --rounds rounds, with a fresh state directory:
#   1. start `rnnd run` (LSTM, --hidden, 1 input, otherwise the defaults: k2 = 20, k1 = 2, Adafactor),
#      give each of --streams streams one sample (`rnnd-e2e publish`), stop it with SIGTERM: the
#      stop writes every stream (the `checkpoint: N streams (K kB) in S s` line);
#   2. start it again on the same directory: the restore (`restored N streams ... in S s`),
#      the resident memory once ready; stop it (nothing changed: nothing is written).
#   Then the sample path during checkpoints: 1,000 streams (same model) at 10,000 samples/s
#   for 20 s, once with a checkpoint every 2 s (each writes every stream) and once with none
#   during the run (interval 3600 s); sample-to-forecast latency and drops side by side.
#
# Usage: bench/checkpoints.sh [--streams 10000] [--hidden 64] [--rounds 3] [--no-build]
#   --hidden 64 is the default model; 10,000 such streams need about 2.3 GB of disk and of memory.
# Writes bench/results/checkpoints-lstmH.md (H: --hidden; and prints it); logs in bench/out/checkpoints/.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$ROOT/scripts/lib/build-env.sh"   # the CPU the kernels are compiled for
cd "$ROOT"
RNND="$ROOT/.build/release/rnnd"
E2E="$ROOT/.build/release/rnnd-e2e"
OUT="$ROOT/bench/out/checkpoints"
STREAMS=10000 HIDDEN=64 ROUNDS=3 BUILD=1
SUBP="${E2E_SUB_PORT:-5556}" PUBP="${E2E_PUB_PORT:-5557}"

while [ $# -gt 0 ]; do
    case "$1" in
        --streams) STREAMS="$2"; shift 2 ;;
        --hidden) HIDDEN="$2"; shift 2 ;;
        --rounds) ROUNDS="$2"; shift 2 ;;
        --no-build) BUILD=0; shift ;;
        -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
        *) echo "checkpoints.sh: unknown argument: $1" >&2; exit 2 ;;
    esac
done
RESULTS="$ROOT/bench/results/checkpoints-lstm$HIDDEN.md"
if [ "$BUILD" = 1 ]; then swift build -c release >&2; fi
[ -x "$RNND" ] && [ -x "$E2E" ] || { echo "checkpoints.sh: build first (swift build -c release)" >&2; exit 2; }
rm -rf "$OUT"
mkdir -p "$OUT" "$(dirname "$RESULTS")"

PID=""
trap '[ -n "$PID" ] && kill -KILL "$PID" 2>/dev/null || true' EXIT

# start LOG STATE [FLAGS...]: starts rnnd, waits for "ready:" (at most 60 s).
start() {
    local log="$1" state="$2"
    shift 2
    "$RNND" run --sub "@tcp://127.0.0.1:$SUBP" --pub "@tcp://127.0.0.1:$PUBP" --state-dir "$state" \
        --model lstm --hidden "$HIDDEN" --workers 2 "$@" 2> "$log" &
    PID=$!
    for _ in $(seq 600); do
        grep -q "ready:" "$log" && return 0
        kill -0 "$PID" 2>/dev/null || break
        sleep 0.1
    done
    echo "checkpoints.sh: rnnd did not become ready; see $log" >&2
    exit 1
}

# stop: SIGTERM, wait for the exit; sets STATUS to the exit status.
stop() {
    kill -TERM "$PID"
    STATUS=0
    wait "$PID" || STATUS=$?
    PID=""
}

LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
rows=()
for round in $(seq "$ROUNDS"); do
    state="$OUT/state-$round"
    start "$OUT/$round-first.log" "$state"
    # One sample per stream, paced so that no worker queue overflows while the streams are created.
    "$E2E" publish --endpoint ">tcp://127.0.0.1:$SUBP" --streams "$STREAMS" --count "$STREAMS" --rate 20000 > "$OUT/$round-publish.json"
    sleep 1  # the last samples learned (learning is faster than the pace)
    t0=$(date +%s.%N)
    stop
    status1=$STATUS
    t1=$(date +%s.%N)
    line=$(grep "checkpoint: " "$OUT/$round-first.log" | tail -1)
    written=$(sed -n 's/.*checkpoint: \([0-9]*\) streams.*/\1/p' <<< "$line")
    kb=$(sed -n 's/.* streams (\([0-9]*\) kB).*/\1/p' <<< "$line")
    checkpoint_s=$(sed -n 's/.* in \([0-9.]*\) s$/\1/p' <<< "$line")
    stop_s=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }')
    file_mb=$(du -k "$state/rnnd.sqlite" | awk '{ printf "%.0f", $1 / 1024 }')

    start "$OUT/$round-second.log" "$state"
    restored=$(grep "restored " "$OUT/$round-second.log" | tail -1)
    restore_n=$(sed -n 's/.*restored \([0-9]*\) streams.*/\1/p' <<< "$restored")
    restore_s=$(sed -n 's/.* in \([0-9.]*\) s.*/\1/p' <<< "$restored")
    rss_mb=$(awk '$1 == "VmRSS:" { printf "%.0f", $2 / 1024 }' "/proc/$PID/status")
    stop
    status2=$STATUS
    rows+=("| $round | $written | $((kb / 1000)) MB ($((kb * 1000 / STREAMS)) B each) | $file_mb MB | $checkpoint_s s | $stop_s s | $restore_n | $restore_s s | $rss_mb MB | $status1, $status2 |")
done

# The sample path while checkpoints run.
latency=()
for interval in 2 3600; do
    name="latency-$interval"
    start "$OUT/$name.log" "$OUT/state-$name" --checkpoint-interval "$interval" --log-level debug  # checkpoint lines
    "$E2E" subscribe --endpoint ">tcp://127.0.0.1:$PUBP" --seconds 40 --idle 3 --warmup 5 > "$OUT/$name.sub.json" &
    SUB=$!
    sleep 0.5
    "$E2E" publish --endpoint ">tcp://127.0.0.1:$SUBP" --streams 1000 --rate 10000 --seconds 20 > "$OUT/$name.pub.json"
    wait "$SUB" || true
    stop
    checkpoints=$(grep -c "] checkpoint: [0-9]" "$OUT/$name.log" || true)
    refused=$(grep "stopped:" "$OUT/$name.log" | sed -n 's/.*refused={\(.*\)}.*/\1/p')
    latency+=("| $interval s | $((checkpoints - 1)) (+1 at stop) | $(jq -r '.count' "$OUT/$name.sub.json") | $(jq -r '.latency_us | "\(.p50) | \(.p99) | \(.max)"' "$OUT/$name.sub.json") | ${refused:-none} |")
done

{
    echo "# Checkpoints of $STREAMS streams"
    echo
    echo "Produced by \`bench/checkpoints.sh --streams $STREAMS --hidden $HIDDEN --rounds $ROUNDS\` on $(date -u +%Y-%m-%dT%H:%M:%SZ),"
    echo "rnnd commit \`$(git rev-parse --short HEAD)$(git diff --quiet HEAD -- Sources Package.swift || echo ' (+ changes)')\`;"
    echo "$(uname -sr), $(nproc) CPUs, $(awk '/MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo);"
    echo "state directory on $(df -T "$OUT" | awk 'NR == 2 { print $2 }'). Load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)."
    echo
    echo "Model: LSTM, $HIDDEN hidden units$([ "$HIDDEN" = 64 ] && echo " (the default model)"), 1 input, window k2 = 20, k1 = 2, Adafactor (the default learner); 2 workers."
    echo "Each stream learned one sample; the stop writes every stream (each worker's streams in a transaction of"
    echo "their own), the restart reads and rebuilds all of them before READY. Load average at the start: $LOAD_START."
    echo
    echo "| round | streams written at stop | records | rnnd.sqlite | checkpoint (log) | SIGTERM to exit | streams restored | restore (log) | RSS after restore | exit statuses |"
    echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|"
    printf '%s\n' "${rows[@]}"
    echo
    echo "Goal (issue 4): restore under 2 s for 10,000 streams."
    echo
    echo "## The sample path during checkpoints"
    echo
    echo "1,000 streams (the model above) at 10,000 samples/s for 20 s (\`rnnd-e2e publish --rate 10000\`), forecasts"
    echo "read by \`rnnd-e2e subscribe\`; latency = receive time − the sample's send time, in µs."
    echo
    echo "| checkpoint interval | checkpoints during the run | forecasts received | latency p50 | p99 | max | refused or dropped |"
    echo "|---|---:|---:|---:|---:|---:|---|"
    printf '%s\n' "${latency[@]}"
} | tee "$RESULTS"
