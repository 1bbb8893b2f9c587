#!/usr/bin/env bash
# Memory per stream by model and hidden size: what one more stream costs the daemon in resident
# memory, and what its checkpoint record weighs. Real processes on 127.0.0.1, the release build.
#
#   For each model:hidden (default: lstm:64, the default model, first):
#   1. start `rnnd run --model M --hidden H --workers 2` (the other settings the defaults)
#      on a fresh state directory, with a subscriber connected; read VmRSS;
#   2. send 2 samples to each of --streams streams (`rnnd-e2e publish --count`), wait until the
#      forecasts stop; read VmRSS again: (after - before) / streams is the memory per stream;
#   3. SIGTERM: the final checkpoint writes every stream (`checkpoint: N streams (K kB) in S s`),
#      K / N is the record size; the state directory is deleted afterwards.
#
# Usage: bench/memory.sh [--streams 2000] [--configs "lstm:64 lstm:16 ..."] [--no-build]
# Environment: MEMORY_SUB_PORT (5606), MEMORY_PUB_PORT (5607).
# Writes bench/results/memory.md (and prints it); logs go to bench/out/memory/.
# Exit status: 0 when every run completed, 1 when one failed, 2 on a usage or build error.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$ROOT/scripts/lib/build-env.sh"   # the CPU the kernels are compiled for
cd "$ROOT"
RNND="$ROOT/.build/release/rnnd"
E2E="$ROOT/.build/release/rnnd-e2e"
OUT="$ROOT/bench/out/memory"
RESULTS="$ROOT/bench/results/memory.md"
SUBP="${MEMORY_SUB_PORT:-5606}"
PUBP="${MEMORY_PUB_PORT:-5607}"
STREAMS=2000
CONFIGS="lstm:64 lstm:16 lstm:32 lstm:128 gru:16 gru:32 gru:64 gru:128 elman:16 elman:32 elman:64 elman:128"
BUILD=1

# cleanup (on exit), alive, record, fail, wait_ports_free, counter, j, num, require_tools,
# build_release, prepare_out, run_metadata, wait_ready, report_tail, publish_results:
source "$ROOT/bench/lib/common.sh"

while [ $# -gt 0 ]; do
    case "$1" in
        --streams) STREAMS="$2"; shift 2 ;;
        --configs) CONFIGS="$2"; shift 2 ;;
        --no-build) BUILD=0; shift ;;
        -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
        *) echo "memory.sh: unknown argument: $1" >&2; exit 2 ;;
    esac
done
require_whole_number --streams "$STREAMS"
for c in $CONFIGS; do
    [[ "$c" =~ ^(lstm|gru|elman):[0-9]+$ ]] || { echo "memory.sh: --configs takes model:hidden pairs, e.g. lstm:64" >&2; exit 2; }
done
require_tools jq timeout ss awk
build_release "$BUILD"
prepare_out
run_metadata

vm() { awk -v f="$2:" '$1 == f { print $2 }' "/proc/$1/status"; }   # PID FIELD -> kB

rows=()
for c in $CONFIGS; do
    model=${c%:*} hidden=${c#*:} name="$c"
    name=${name/:/-}
    echo "memory.sh: $model H=$hidden, $STREAMS streams" >&2
    wait_ports_free "$SUBP" "$PUBP" "set MEMORY_SUB_PORT/MEMORY_PUB_PORT"
    log="$OUT/$name.rnnd.log"
    cmd=("$RNND" run --sub "@tcp://127.0.0.1:$SUBP" --pub "@tcp://127.0.0.1:$PUBP" --state-dir "$OUT/state/$name"
        --model "$model" --hidden "$hidden" --workers 2 --max-streams $((STREAMS * 2)) --checkpoint-interval 3600)
    record "$name rnnd" "${cmd[@]}"
    ( exec "${cmd[@]}" ) 2> "$log" &
    PID=$!
    STARTED+=("$PID")
    wait_ready "$log" "$PID" || { fail "$name: rnnd did not become ready"; continue; }
    sub=("$E2E" subscribe --endpoint ">tcp://127.0.0.1:$PUBP" --seconds 120 --idle 3)
    record "$name subscriber" "${sub[@]}"
    timeout -k 5 150 "${sub[@]}" > "$OUT/$name.sub.json" 2> "$OUT/$name.sub.log" &
    SUB=$!
    STARTED+=("$SUB")
    sleep 1   # the subscription reaches rnnd
    before=$(vm "$PID" VmRSS)
    # Two samples per stream, no warm-up samples: every stream gets exactly two.
    pub=("$E2E" publish --endpoint ">tcp://127.0.0.1:$SUBP" --streams "$STREAMS" --rate 10000 --count $((STREAMS * 2)) --warmup 0 --seconds 60)
    record "$name publisher" "${pub[@]}"
    timeout -k 5 120 "${pub[@]}" > "$OUT/$name.pub.json" 2> "$OUT/$name.pub.log" || fail "$name: the publisher failed"
    wait "$SUB" || fail "$name: the subscriber failed"   # ends 3 s after the last forecast
    after=$(vm "$PID" VmRSS)
    # SIGTERM: the final checkpoint writes every stream; up to 60 s (larger models write more).
    t0=$(date +%s.%N)
    kill -TERM "$PID"
    n=0
    while alive "$PID" && [ "$n" -lt 1200 ]; do sleep 0.05; n=$((n + 1)); done
    alive "$PID" && { kill -KILL "$PID"; fail "$name: did not stop within 60 s of SIGTERM"; }
    set +e; wait "$PID"; status=$?; set -e
    t1=$(date +%s.%N)
    [ "$status" = 0 ] || fail "$name: exited with status $status"
    { grep -o 'stopped: .*' "$log" || true; } | tail -n 1 > "$OUT/$name.stopped"
    line=$(grep "checkpoint: [0-9]" "$log" | tail -n 1 || true)
    written=$(sed -n 's/.*checkpoint: \([0-9]*\) streams.*/\1/p' <<< "$line")
    kb=$(sed -n 's/.* streams (\([0-9]*\) kB).*/\1/p' <<< "$line")
    checkpoint_s=$(sed -n 's/.* in \([0-9.]*\) s$/\1/p' <<< "$line")
    streams=$(counter "$(cat "$OUT/$name.stopped")" streams)
    [ "$streams" = "$STREAMS" ] || fail "$name: rnnd holds $streams streams, not $STREAMS"
    refused=$(sed -n 's/.*refused={\([^}]*\)}.*/\1/p' "$OUT/$name.stopped")
    per=$(awk -v a="$after" -v b="$before" -v n="$STREAMS" 'BEGIN { printf "%.1f", (a - b) / n }')
    rec=$(awk -v k="${kb:-0}" -v n="${written:-0}" 'BEGIN { if (n > 0) printf "%.1f", k / n; else print "—" }')
    stop_s=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }')
    rows+=("| $model | $hidden | $(num "$streams") | $(num "$before") | $(num "$after") | **$per** | $rec | ${written:-—} in ${checkpoint_s:-—} s | $stop_s s | ${refused:-none} | $status |")
    rm -rf "$OUT/state/$name"
done

{
    echo "# rnnd memory per stream, by model and hidden size"
    echo
    echo "Produced by \`bench/memory.sh --streams $STREAMS --configs \"$CONFIGS\"\` on $DATE, rnnd commit \`$COMMIT\`;"
    echo "$CPU_MODEL, $NPROC CPUs. Load average at the start $LOAD_START, at the end $(cut -d' ' -f1-3 /proc/loadavg)."
    echo
    echo "Every model with 1 input (6 network inputs per step) and the default learner: window k2 = 20, an update every"
    echo "k1 = 2 samples, Adafactor without a first moment (the defaults but for the model and hidden size), 2 workers."
    echo "Each of the $(num "$STREAMS") streams got 2 samples. *per stream* = (VmRSS once the"
    echo "forecasts stopped − VmRSS before the first sample) ÷ streams: the model, its optimizer state, its window and"
    echo "the forecaster, and the stream table's share; the workers' shared training workspaces are in it once."
    echo "*record* = the final checkpoint's bytes ÷ streams written (the log's \`checkpoint: N streams (K kB)\`)."
    echo
    echo "| model | hidden | streams | VmRSS before, kB | after, kB | per stream, kB | record, kB | final checkpoint | SIGTERM to exit | refused | exit |"
    echo "|---|---:|---:|---:|---:|---:|---:|---|---:|---|---:|"
    printf '%s\n' "${rows[@]}"
    echo
    report_tail
} > "$OUT/results.md"
publish_results "$OUT/results.md"
