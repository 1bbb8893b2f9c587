#!/usr/bin/env bash
# Soak: rnnd fed twice the rate it can learn, for several minutes, with bad input mixed in.
#
#   1. the sustainable rate: 1,000 streams flooding for 20 s (2 workers; --model default: LSTM H=64,
#      k2 = 20, k1 = 2, Adafactor, rnnd's default; --model small: LSTM H=16, k2 = k1 = 16), learned samples
#      per second as rnnd's metrics count them;
#   2. the soak: the same daemon setup, fed at twice that rate for --minutes, one message in 50 a
#      bad one (each refusal reason in turn: rnnd-e2e publish --bad-every 50), a subscriber reading
#      every forecast, checkpoints every 30 s; rnnd's resident memory and counters every 10 s;
#   3. SIGTERM, and the accounting: every message sent is received, every one received is learned,
#      refused (by its reason, as many as were sent of it) or dropped and counted; every sample
#      learned is published or counted as a forecast drop; the memory over the run.
#
# Usage: bench/soak.sh [--minutes 5] [--model default|small] [--no-build]
# Environment: SOAK_SUB_PORT (5586), SOAK_PUB_PORT (5587), SOAK_HTTP_PORT (5588).
# Writes bench/results/soak-default.md or soak-small.md (and prints it); logs go to bench/out/soak/.
# Exit status: 0 when every check held, 1 when one did not, 2 on a usage or build error.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$ROOT/scripts/lib/build-env.sh"   # the CPU the kernels are compiled for
cd "$ROOT"
RNND="$ROOT/.build/release/rnnd"
E2E="$ROOT/.build/release/rnnd-e2e"
OUT="$ROOT/bench/out/soak"
SUBP="${SOAK_SUB_PORT:-5586}"
PUBP="${SOAK_PUB_PORT:-5587}"
HTTPP="${SOAK_HTTP_PORT:-5588}"
MINUTES=5
SIZE=default
BUILD=1

# cleanup (on exit), alive, record, fail, wait_ports_free, counter, j, num, require_tools,
# build_release, prepare_out, run_metadata, wait_ready, stop_instance, report_tail, publish_results:
source "$ROOT/bench/lib/common.sh"

while [ $# -gt 0 ]; do
    case "$1" in
        --minutes) MINUTES="$2"; shift 2 ;;
        --model) SIZE="$2"; shift 2 ;;
        --no-build) BUILD=0; shift ;;
        -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
        *) echo "soak.sh: unknown argument: $1" >&2; exit 2 ;;
    esac
done
require_whole_number --minutes "$MINUTES"
case "$SIZE" in
    default) MODEL_FLAGS=(--model lstm --hidden 64); MODEL_NAME="LSTM H=64, k2 = 20, k1 = 2, Adafactor (the default model)" ;;
    small) MODEL_FLAGS=(--model lstm --hidden 16 --window 16 --update-every 16); MODEL_NAME="LSTM H=16, k2 = k1 = 16" ;;
    *) echo "soak.sh: --model takes default or small" >&2; exit 2 ;;
esac
RESULTS="$ROOT/bench/results/soak-$SIZE.md"
require_tools jq timeout ss awk curl
build_release "$BUILD"
prepare_out
run_metadata

MODEL=(--workers 2 "${MODEL_FLAGS[@]}" --checkpoint-interval 30)
STREAMS=1000
URL="http://127.0.0.1:$HTTPP/metrics"

metric_sum() { awk -v n="$1" '$1 ~ "^"n"({|$)" { s += $NF } END { printf "%.0f\n", s + 0 }' "$OUT/scrape.txt"; }

# start_rnnd NAME: starts rnnd with MODEL and metrics; sets PID.
start_rnnd() {
    wait_ports_free "$SUBP" "$PUBP" "set SOAK_SUB_PORT/SOAK_PUB_PORT"
    local cmd=("$RNND" run --sub "@tcp://127.0.0.1:$SUBP" --pub "@tcp://127.0.0.1:$PUBP" --state-dir "$OUT/state/$1"
        --metrics-listen "127.0.0.1:$HTTPP" "${MODEL[@]}")
    record "$1 rnnd" "${cmd[@]}"
    ( exec "${cmd[@]}" ) 2> "$OUT/$1.rnnd.log" &
    PID=$!
    STARTED+=("$PID")
    wait_ready "$OUT/$1.rnnd.log" "$PID" || { fail "$1: rnnd did not become ready"; exit 1; }
}

# 1. The sustainable rate.
echo "soak.sh: measuring the sustainable rate (20 s flood)" >&2
start_rnnd sustainable
sub=("$E2E" subscribe --endpoint ">tcp://127.0.0.1:$PUBP" --seconds 60 --idle 3)
record "sustainable subscriber" "${sub[@]}"
"${sub[@]}" > "$OUT/sustainable.sub.json" 2> "$OUT/sustainable.sub.log" &
SUB=$!
STARTED+=("$SUB")
sleep 0.5
scrape
learned0=$(metric rnnd_samples_learned_total)
pub=("$E2E" publish --endpoint ">tcp://127.0.0.1:$SUBP" --streams "$STREAMS" --flood --binary --seconds 20)
record "sustainable publisher" "${pub[@]}"
"${pub[@]}" > "$OUT/sustainable.pub.json" 2> "$OUT/sustainable.pub.log"
scrape
learned1=$(metric rnnd_samples_learned_total)
seconds=$(j "$OUT/sustainable.pub.json" .seconds)
SUSTAINABLE=$(awk -v a="$learned0" -v b="$learned1" -v s="$seconds" 'BEGIN { printf "%.0f", (b - a) / s }')
stop_instance sustainable "$PID" "$OUT/sustainable.rnnd.log" "$OUT/sustainable.stopped"
wait "$SUB" 2>/dev/null || true
RATE=$((2 * SUSTAINABLE))
echo "soak.sh: sustainable $SUSTAINABLE samples/s; soaking at $RATE/s for $MINUTES min" >&2

# 2. The soak.
start_rnnd soak
SOAK_SECONDS=$((MINUTES * 60))
sub=("$E2E" subscribe --endpoint ">tcp://127.0.0.1:$PUBP" --seconds $((SOAK_SECONDS + 120)) --idle 10)
record "soak subscriber" "${sub[@]}"
"${sub[@]}" > "$OUT/soak.sub.json" 2> "$OUT/soak.sub.log" &
SUB=$!
STARTED+=("$SUB")
sleep 0.5
pub=("$E2E" publish --endpoint ">tcp://127.0.0.1:$SUBP" --streams "$STREAMS" --rate "$RATE" --seconds "$SOAK_SECONDS" --binary --bad-every 50)
record "soak publisher" "${pub[@]}"
"${pub[@]}" > "$OUT/soak.pub.json" 2> "$OUT/soak.pub.log" &
PUB=$!
STARTED+=("$PUB")
echo "seconds,rss_kb,received,learned,refused,dropped,forecasts" > "$OUT/soak.samples.csv"
t0=$(date +%s)
while alive "$PUB"; do
    sleep 10
    alive "$PUB" || break
    scrape || true
    rss=$(awk '/^VmRSS/ { print $2 }' "/proc/$PID/status")
    echo "$(( $(date +%s) - t0 )),$rss,$(metric rnnd_samples_received_total),$(metric rnnd_samples_learned_total),$(metric_sum rnnd_samples_refused_total),$(metric_sum rnnd_samples_dropped_total),$(metric rnnd_forecasts_published_total)" >> "$OUT/soak.samples.csv"
done
wait "$PUB" || fail "the soak publisher exited with an error"
sleep 3  # the queues drain
scrape
rss_end=$(awk '/^VmRSS/ { print $2 }' "/proc/$PID/status")
stop_instance soak "$PID" "$OUT/soak.rnnd.log" "$OUT/soak.stopped"
wait "$SUB" 2>/dev/null || true

# 3. The accounting, from rnnd's stopped line and the publisher's and subscriber's counts.
line=$(cat "$OUT/soak.stopped")
sent=$(j "$OUT/soak.pub.json" .sent_total)
received=$(counter "$line" received)
learned=$(counter "$line" learned)
forecasts=$(counter "$line" forecasts)
dropped=$(counter "$line" worker_queue_full)
forecast_drops=$(counter "$line" forecast_queue_full)   # a slow subscriber's losses are its own, uncounted
refused_total=0
bad_total=0
reasons=()
for key in $(jq -r 'keys[] | select(startswith("bad_"))' "$OUT/soak.pub.json"); do
    reason=${key#bad_}
    bad=$(j "$OUT/soak.pub.json" ".$key")
    got=$(counter "$line" "$reason")
    refused_total=$((refused_total + got))
    bad_total=$((bad_total + bad))
    # The message's own faults are refused by the ingest thread, every one; a stream's policy
    # (width, time) is applied by its worker, so those that found the worker's queue full were
    # dropped as worker_queue_full before it could refuse them: at most as many as were sent.
    if [ "$reason" = out_of_order ] || [ "$reason" = width_changed ]; then
        verdict=$([ "$got" -le "$bad" ] && echo "yes (the rest dropped with the queue full)" || echo NO)
        [ "$got" -le "$bad" ] || fail "$reason: $bad sent, $got refused"
    else
        verdict=$([ "$bad" = "$got" ] && echo yes || echo NO)
        [ "$bad" = "$got" ] || fail "$reason: $bad sent, $got refused"
    fi
    reasons+=("| \`$reason\` | $(num "$bad") | $(num "$got") | $verdict |")
done
[ "$sent" = "$received" ] || fail "sent $sent, received $received"
[ "$received" = $((learned + refused_total + dropped)) ] || fail "received $received ≠ learned $learned + refused $refused_total + dropped $dropped"
[ "$learned" = $((forecasts + forecast_drops)) ] || fail "learned $learned ≠ published $forecasts + dropped forecasts $forecast_drops"
received_sub=$(j "$OUT/soak.sub.json" .count)

# Memory: the samples of the first and second halves of the run.
mem=$(awk -F, -v half=$((SOAK_SECONDS / 2)) 'NR > 1 && $1 >= 60 { if ($1 < half) { if ($2 > a) a = $2 } else { if ($2 > b) b = $2 }; if (min == "" || $2 < min) min = $2 }
    END { printf "%d %d %d", min, a, b }' "$OUT/soak.samples.csv")
read -r mem_min mem_first mem_second <<< "$mem"
if [ "$mem_first" -gt 0 ] && [ "$mem_second" -gt $((mem_first * 11 / 10)) ]; then
    fail "resident memory grew: at most $mem_first kB in the first half (after the first minute), $mem_second kB in the second"
fi

{
    echo "# rnnd soak: twice the sustainable rate, with bad input"
    echo
    echo "Produced by \`bench/soak.sh --minutes $MINUTES --model $SIZE\` on $DATE, rnnd commit \`$COMMIT\`; $CPU_MODEL, $NPROC CPUs;"
    echo "load average at the start $LOAD_START. The publisher, rnnd and the subscriber share the machine."
    echo
    echo "| what | measured |"
    echo "|---|---|"
    echo "| the setup | 1,000 streams, $MODEL_NAME, 2 workers, checkpoints every 30 s, metrics on |"
    echo "| sustainable rate (20 s flood, learned/s) | $(num "$SUSTAINABLE") |"
    echo "| soak rate (2×), for $MINUTES min | $(num "$RATE") messages/s asked, $(num "$(j "$OUT/soak.pub.json" .rate_achieved)") sent/s achieved |"
    echo "| messages sent | $(num "$sent") (of them bad: $(num "$bad_total")) |"
    echo "| received by rnnd | $(num "$received") |"
    echo "| learned | $(num "$learned") |"
    echo "| refused as bad input | $(num "$refused_total") (each reason as often as sent: below) |"
    echo "| dropped, worker queue full (counted) | $(num "$dropped") |"
    echo "| forecasts published / dropped (counted) / received by the subscriber | $(num "$forecasts") / $(num "$forecast_drops") / $(num "$received_sub") |"
    echo "| sent = received; received = learned + refused + dropped; learned = published + dropped forecasts | $([ "$FAILED" = 0 ] && echo "hold" || echo "see the failures") |"
    echo "| resident memory (after the first minute): lowest, highest in the first half, highest in the second | $(num "$mem_min") kB, $(num "$mem_first") kB, $(num "$mem_second") kB; at the end $(num "$rss_end") kB |"
    echo "| exit after SIGTERM | $(grep -q "exited with status" <<< "${FAILURES[*]:-}" && echo "NOT 0" || echo 0) |"
    echo
    echo "## Bad input"
    echo
    echo "| reason | sent | refused by rnnd | as expected |"
    echo "|---|---:|---:|---|"
    printf '%s\n' "${reasons[@]}"
    echo
    echo "## Over time"
    echo
    echo "Every 10 s: seconds into the soak, rnnd's resident memory (kB), and its counters (from /metrics)."
    echo
    echo '```'
    cat "$OUT/soak.samples.csv"
    echo '```'
    echo
    report_tail
} > "$OUT/results.md"
publish_results "$OUT/results.md"
