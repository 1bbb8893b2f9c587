#!/usr/bin/env bash
# Churn: stream ids that keep changing, for minutes, through a daemon that keeps at most
# --max-streams of them in memory (docs/checkpoints.md, "Quiet streams and max_streams").
#
#   rnnd run (the model below, --max-streams, checkpoints every 60 s) fed at --rate samples a
#   second, each sample a stream id not seen before (rnnd-e2e publish --streams 10000000: the
#   ids cycle only after 10^7 samples), for --minutes; rnnd's resident memory, streams in memory,
#   streams unloaded, the parked records' bytes and the refusals every 10 s from its metrics; SIGTERM.
#   Checks: nothing refused as too_many_streams, streams in memory never above --max-streams,
#   the resident memory of the second half of the run within 10% of its first reading there.
#
# Usage: bench/churn.sh [--minutes 3] [--rate 500] [--max-streams 1000] [--hidden 64] [--no-build]
# Environment: CHURN_SUB_PORT (5596), CHURN_PUB_PORT (5597), CHURN_HTTP_PORT (5598).
# Writes bench/results/churn-lstmH.md (H the hidden size; and prints it); logs go to bench/out/churn/.
# Exit status: 0 when every check held, 1 when one did not, 2 on a usage or build error.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$ROOT/scripts/lib/build-env.sh"   # the CPU the kernels are compiled for
cd "$ROOT"
RNND="$ROOT/.build/release/rnnd"
E2E="$ROOT/.build/release/rnnd-e2e"
OUT="$ROOT/bench/out/churn"
SUBP="${CHURN_SUB_PORT:-5596}"
PUBP="${CHURN_PUB_PORT:-5597}"
HTTPP="${CHURN_HTTP_PORT:-5598}"
MINUTES=3
RATE=500
MAX_STREAMS=1000
HIDDEN=64
BUILD=1
BENCH_NAME=churn.sh

source "$ROOT/bench/lib/common.sh"

while [ $# -gt 0 ]; do
    case "$1" in
        --minutes) MINUTES="$2"; shift 2 ;;
        --rate) RATE="$2"; shift 2 ;;
        --max-streams) MAX_STREAMS="$2"; shift 2 ;;
        --hidden) HIDDEN="$2"; shift 2 ;;
        --no-build) BUILD=0; shift ;;
        -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
        *) echo "churn.sh: unknown argument: $1" >&2; exit 2 ;;
    esac
done
for option in --minutes:"$MINUTES" --rate:"$RATE" --max-streams:"$MAX_STREAMS" --hidden:"$HIDDEN"; do
    require_whole_number "${option%%:*}" "${option#*:}"
done
RESULTS="$ROOT/bench/results/churn-lstm$HIDDEN.md"
require_tools timeout curl awk
build_release "$BUILD"
prepare_out
run_metadata

MODEL=(--model lstm --hidden "$HIDDEN" --workers 2)
SECONDS_TOTAL=$((MINUTES * 60))
URL="http://127.0.0.1:$HTTPP/metrics"

wait_ports_free "$SUBP" "$PUBP"
cmd=("$RNND" run --sub "@tcp://127.0.0.1:$SUBP" --pub "@tcp://127.0.0.1:$PUBP" --state-dir "$OUT/state"
    --metrics-listen "127.0.0.1:$HTTPP" --max-streams "$MAX_STREAMS" --checkpoint-interval 60 "${MODEL[@]}")
echo "${cmd[*]}" >> "$CMDS"
"${cmd[@]}" > "$OUT/rnnd.log" 2>&1 &
PID=$!
wait_ready "$OUT/rnnd.log" "$PID" || { fail "rnnd did not start"; report_failures; exit 1; }

pub=("$E2E" publish --endpoint ">tcp://127.0.0.1:$SUBP" --streams 10000000 --rate "$RATE" --seconds "$SECONDS_TOTAL" --binary)
echo "${pub[*]}" >> "$CMDS"
"${pub[@]}" > "$OUT/publish.json" 2> "$OUT/publish.log" &
PUB=$!

echo "| s | VmRSS (kB) | streams in memory | unloaded (max_streams) | reloaded | parked (kB) | refused too_many_streams | learned |" > "$OUT/table.md"
echo "|---:|---:|---:|---:|---:|---:|---:|---:|" >> "$OUT/table.md"
: > "$OUT/rss.txt"
MAX_SEEN=0
for ((t = 10; t <= SECONDS_TOTAL; t += 10)); do
    sleep 10
    alive "$PID" || { fail "rnnd ended during the run"; break; }
    rss=$(awk '/^VmRSS/ { print $2 }' "/proc/$PID/status")
    scrape || true
    streams=$(metric rnnd_streams)
    echo "$t $rss" >> "$OUT/rss.txt"
    [ "$streams" -gt "$MAX_SEEN" ] && MAX_SEEN=$streams
    echo "| $t | $(num "$rss") | $(num "$streams") | $(num "$(metric rnnd_streams_unloaded_total 'reason="max_streams"')") | $(num "$(metric rnnd_streams_reloaded_total)") | $(num "$(($(metric rnnd_streams_parked_bytes) / 1000))") | $(num "$(metric rnnd_samples_refused_total 'reason="too_many_streams"')") | $(num "$(metric rnnd_samples_learned_total)") |" >> "$OUT/table.md"
done
wait "$PUB" || true
scrape || true
REFUSED=$(metric rnnd_samples_refused_total 'reason="too_many_streams"')
stop_instance rnnd "$PID" "$OUT/rnnd.log" "$OUT/rnnd.stopped"

[ "$REFUSED" = 0 ] || fail "$REFUSED samples refused as too_many_streams"
[ "$MAX_SEEN" -le "$MAX_STREAMS" ] || fail "$MAX_SEEN streams in memory, above --max-streams $MAX_STREAMS"
# The second half of the run: every reading within 10% of its first.
read -r FIRST LAST_MAX < <(awk -v h=$((SECONDS_TOTAL / 2)) '$1 >= h { if (f == "") f = $2; if ($2 > m) m = $2 } END { print f, m }' "$OUT/rss.txt")
GROWTH=$(awk -v f="$FIRST" -v m="$LAST_MAX" 'BEGIN { printf "%.1f", 100 * (m - f) / f }')
awk -v g="$GROWTH" 'BEGIN { exit !(g <= 10) }' || fail "resident memory grew $GROWTH% over the second half"

{
    echo "# Churn: a new stream id for every sample, $MINUTES min, at most $MAX_STREAMS streams in memory"
    echo
    echo "$DATE, commit $COMMIT, $CPU_MODEL ($NPROC CPUs), load average at the start $LOAD_START. Model: LSTM $HIDDEN, the rest of the model rnnd's defaults (k2 = 20, k1 = 2, Adafactor), 2 workers; $RATE samples/s, each of a new stream id (rnnd-e2e publish --streams 10000000); checkpoints every 60 s (and sooner when a worker's unloaded streams waiting for one pass its bound)."
    echo
    cat "$OUT/table.md"
    echo
    echo "Streams in memory at most $(num "$MAX_SEEN") (bound $MAX_STREAMS); resident memory over the second half: first $(num "$FIRST") kB, highest $(num "$LAST_MAX") kB ($GROWTH%); refused as too_many_streams: $REFUSED."
    echo
    report_tail
} > "$OUT/churn.md"
publish_results "$OUT/churn.md"
