#!/usr/bin/env bash
# Scale-out benchmark: aggregate samples/s learned by one rnnd instance with 2 workers, and by
# two instances (`--shard 0/2`, `--shard 1/2`) with 1 worker each, on the same machine and the
# same workload as bench/e2e.sh part b: 1,000 streams, LSTM H=16, k2 = k1 = 16, binary samples,
# the publisher flooding.
#
# Topology (no proxy: the instances are measured, not the forwarder): `rnnd-e2e publish` binds
# the samples port and every instance connects its SUB to it (so each instance receives every
# sample and drops the other shard's as other_shard); `rnnd-e2e subscribe` binds the forecasts
# port and every instance connects its PUB to it. The publisher's socket does not drop (NODROP):
# when an instance's queue is full it waits, so the slower instance paces the flood.
#
# Usage: bench/shards.sh [--seconds 10] [--repeat 2] [--no-build]
#   --seconds S   length of the flood of each run (default 10)
#   --repeat R    runs of each configuration, alternating one/two (default 2)
#   --no-build    use the binaries in .build/release as they are
# Environment: SHARDS_SAMPLES_PORT (default 5566), SHARDS_FORECASTS_PORT (default 5567).
# Writes bench/results/shards.md (and prints it); logs and raw JSON go to bench/out/shards/.
# Exit status: 0 when every run completed, 1 when a run failed, 2 on a usage or build error.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
RNND="$ROOT/.build/release/rnnd"
E2E="$ROOT/.build/release/rnnd-e2e"
OUT="$ROOT/bench/out/shards"
RESULTS="$ROOT/bench/results/shards.md"
SP="${SHARDS_SAMPLES_PORT:-5566}"
FP="${SHARDS_FORECASTS_PORT:-5567}"
S=10
REPEAT=2
BUILD=1

while [ $# -gt 0 ]; do
    case "$1" in
        --seconds) S="$2"; shift 2 ;;
        --repeat) REPEAT="$2"; shift 2 ;;
        --no-build) BUILD=0; shift ;;
        -h|--help) sed -n '2,19p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "shards.sh: unknown argument: $1" >&2; exit 2 ;;
    esac
done
[[ "$S" =~ ^[0-9]+$ ]] && [ "$S" -ge 1 ] || { echo "shards.sh: --seconds must be a whole number >= 1" >&2; exit 2; }
[[ "$REPEAT" =~ ^[0-9]+$ ]] && [ "$REPEAT" -ge 1 ] || { echo "shards.sh: --repeat must be a whole number >= 1" >&2; exit 2; }
for tool in jq timeout ss awk; do
    command -v "$tool" >/dev/null || { echo "shards.sh: $tool not found" >&2; exit 2; }
done

if [ "$BUILD" = 1 ]; then
    if [ ! -x "$RNND" ] || [ ! -x "$E2E" ] || [ -n "$(find Sources Package.swift -newer "$RNND" -type f -print -quit)" ]; then
        echo "shards.sh: building: swift build -c release" >&2
        swift build -c release >&2 || { echo "shards.sh: the release build failed" >&2; exit 2; }
    fi
fi
[ -x "$RNND" ] && [ -x "$E2E" ] || { echo "shards.sh: $RNND or $E2E missing (run without --no-build)" >&2; exit 2; }

rm -rf "$OUT"
mkdir -p "$OUT" "$(dirname "$RESULTS")"
CMDS="$OUT/commands.txt"
: > "$CMDS"
TCK=$(getconf CLK_TCK)
source "$ROOT/bench/lib/common.sh"   # cleanup (on exit), alive, record, fail, wait_ports_free, counter, j, num, report_failures
# CPU seconds the whole machine spent busy so far (all CPUs; /proc/stat: user nice system irq softirq steal).
machine_busy() { awk -v t="$TCK" '$1 == "cpu" { printf "%.2f\n", ($2 + $3 + $4 + $7 + $8 + $9) / t }' /proc/stat; }
# CPU seconds (user + system) of a process, all threads, so far.
proc_cpu() { sed 's/^.*) //' "/proc/$1/stat" | awk -v t="$TCK" '{ printf "%.2f\n", ($12 + $13) / t }'; }
# CPU seconds of the process's threads named rnnd-worker-*.
worker_cpu() {
    local pid="$1" tid total=0 cpu
    for tid in $(ls "/proc/$pid/task"); do
        [[ "$(cat "/proc/$pid/task/$tid/comm" 2>/dev/null)" == rnnd-worker-* ]] || continue
        cpu=$(sed 's/^.*) //' "/proc/$pid/task/$tid/stat" | awk -v t="$TCK" '{ printf "%.2f", ($12 + $13) / t }')
        total=$(awk -v a="$total" -v b="$cpu" 'BEGIN { printf "%.2f", a + b }')
    done
    echo "$total"
}

MODEL=(--model lstm --hidden 16 --window 16 --update-every 16)

# run NAME CONFIG: one run; CONFIG is "one" (1 instance, 2 workers) or "two" (2 shards, 1 worker).
# Writes $OUT/NAME.row: config|learned|active_s|rate|sent|other_shard|dropped|pub_cpu|sub_cpu|rnnd_cpu|worker_cpu|forecasts_got
run() {
    local name="$1" config="$2" i
    echo "shards.sh: $name ($config)" >&2
    wait_ports_free "$SP" "$FP" "set SHARDS_SAMPLES_PORT/SHARDS_FORECASTS_PORT"
    local busy0
    busy0=$(machine_busy)
    local sub=("$E2E" subscribe --endpoint "@tcp://127.0.0.1:$FP" --seconds $((S + 60)) --idle 3 --warmup 5)
    record "$name subscriber" "${sub[@]}"
    timeout -k 5 $((S + 90)) "${sub[@]}" > "$OUT/$name.sub.json" 2> "$OUT/$name.sub.log" &
    local sub_pid=$!
    STARTED+=("$sub_pid")

    local pids=() count workers
    if [ "$config" = one ]; then count=1; workers=2; else count=2; workers=1; fi
    for i in $(seq 0 $((count - 1))); do
        local shard=()
        [ "$count" = 2 ] && shard=(--shard "$i/2")
        local cmd=("$RNND" run --sub ">tcp://127.0.0.1:$SP" --pub ">tcp://127.0.0.1:$FP" --workers "$workers" "${shard[@]}"
            --state-dir "$OUT/state/$name-$i" "${MODEL[@]}")
        record "$name rnnd $i" "${cmd[@]}"
        ( exec "${cmd[@]}" ) 2> "$OUT/$name.rnnd$i.log" &
        pids+=($!)
        STARTED+=($!)
    done
    for i in "${!pids[@]}"; do
        local k
        for k in $(seq 150); do grep -q "ready:" "$OUT/$name.rnnd$i.log" 2>/dev/null && break; sleep 0.1; done
        grep -q "ready:" "$OUT/$name.rnnd$i.log" || { fail "$name: instance $i did not become ready"; return 0; }
    done

    # The publisher binds; the instances, connecting since they started, subscribe within the
    # join wait. Its warm-up (5 samples) is left out of the subscriber's latency.
    local pub=("$E2E" publish --endpoint "@tcp://127.0.0.1:$SP" --streams 1000 --flood --binary --seconds "$S" --join-wait 2)
    record "$name publisher" "${pub[@]}"
    set +e
    timeout -k 5 $((S + 60)) "${pub[@]}" > "$OUT/$name.pub.json" 2> "$OUT/$name.pub.log"
    local status=$?
    set -e
    [ "$status" = 0 ] || fail "$name: publisher exited with status $status"
    set +e; wait "$sub_pid"; status=$?; set -e
    [ "$status" = 0 ] || fail "$name: subscriber exited with status $status"

    local learned=0 other=0 dropped=0 rnnd_cpu=0 wcpu=0 line busy1
    busy1=$(machine_busy)
    for i in "${!pids[@]}"; do
        local pid=${pids[$i]}
        rnnd_cpu=$(awk -v a="$rnnd_cpu" -v b="$(proc_cpu "$pid")" 'BEGIN { printf "%.2f", a + b }')
        wcpu=$(awk -v a="$wcpu" -v b="$(worker_cpu "$pid")" 'BEGIN { printf "%.2f", a + b }')
        kill -TERM "$pid"
        local n=0
        while alive "$pid" && [ "$n" -lt 300 ]; do sleep 0.05; n=$((n + 1)); done
        alive "$pid" && { kill -KILL "$pid"; fail "$name: instance $i did not stop within 15 s of SIGTERM"; }
        set +e; wait "$pid"; status=$?; set -e
        [ "$status" = 0 ] || fail "$name: instance $i exited with status $status"
        line=$({ grep -o 'stopped: .*' "$OUT/$name.rnnd$i.log" || true; } | tail -n 1)
        [ -n "$line" ] || fail "$name: instance $i logged no stopped: line"
        echo "$line" > "$OUT/$name.rnnd$i.stopped"
        learned=$((learned + $(counter "$line" learned)))
        other=$((other + $(counter "$line" other_shard)))
        dropped=$((dropped + $(counter "$line" worker_queue_full) + $(counter "$line" forecast_queue_full) + $(counter "$line" subscriber_slow)))
    done
    local first last active rate
    first=$(j "$OUT/$name.pub.json" .first_unix)
    last=$(j "$OUT/$name.sub.json" .last_unix)
    active=$(awk -v a="$first" -v b="$last" 'BEGIN { printf "%.3f", b - a }')
    rate=$(awk -v l="$learned" -v a="$active" 'BEGIN { printf "%.0f", l / a }')
    local pub_cpu sub_cpu
    pub_cpu=$(awk -v u="$(j "$OUT/$name.pub.json" .cpu_user_s)" -v s="$(j "$OUT/$name.pub.json" .cpu_sys_s)" 'BEGIN { printf "%.2f", u + s }')
    sub_cpu=$(awk -v u="$(j "$OUT/$name.sub.json" .cpu_user_s)" -v s="$(j "$OUT/$name.sub.json" .cpu_sys_s)" 'BEGIN { printf "%.2f", u + s }')
    # What the machine was busy with besides this run's processes (other work sharing it).
    local foreign
    foreign=$(awk -v a="$busy0" -v b="$busy1" -v p="$pub_cpu" -v s="$sub_cpu" -v r="$rnnd_cpu" 'BEGIN { x = b - a - p - s - r; printf "%.1f", x < 0 ? 0 : x }')
    echo "$config|$learned|$active|$rate|$(j "$OUT/$name.pub.json" .sent_total)|$other|$dropped|$pub_cpu|$sub_cpu|$rnnd_cpu|$wcpu|$(j "$OUT/$name.sub.json" .count)|$foreign" > "$OUT/$name.row"
}

DATE=$(date -u +%Y-%m-%dT%H:%M:%SZ)
COMMIT=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
DIRTY=$(git --no-optional-locks status --porcelain --untracked-files=no 2>/dev/null | wc -l)
[ "$DIRTY" -gt 0 ] && COMMIT="$COMMIT (+ $DIRTY modified tracked files)"
CPU_MODEL=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
NPROC=$(nproc)
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
T_START=$(date +%s)

NAMES=()
for r in $(seq "$REPEAT"); do
    run "one-$r" one; NAMES+=("one-$r")
    run "two-$r" two; NAMES+=("two-$r")
done
LOAD_END=$(cut -d' ' -f1-3 /proc/loadavg)
T_TOTAL=$(( $(date +%s) - T_START ))

MD="$OUT/shards.md.tmp"
{
echo "# rnnd scale-out: one instance or two shards"
echo
echo "Produced by \`bench/shards.sh --seconds $S --repeat $REPEAT\` on $DATE: rnnd commit \`$COMMIT\`;"
echo "$(uname -sr), $CPU_MODEL, $NPROC logical CPUs. Load average at start $LOAD_START (1, 5, 15 min),"
echo "at end $LOAD_END; total ${T_TOTAL} s. Everything on 127.0.0.1; publisher, instances and subscriber are"
echo "separate processes sharing the $NPROC CPUs."
echo
echo "Workload (bench/e2e.sh part b): 1,000 streams round-robin, LSTM H=16, k2 = k1 = 16, binary samples, the publisher"
echo "flooding for $S s. *one*: one \`rnnd run --workers 2\`; *two*: \`rnnd run --workers 1 --shard 0/2\` and \`--shard 1/2\`."
echo "Both instances receive every sample and drop the other shard's unread (\`other_shard\`)."
echo "Learned/s = samples learned by all instances ÷ (last forecast received − first sample sent). CPU seconds are"
echo "over each process's life (rnnd's read just before SIGTERM); learned per CPU-second does not depend on how much of"
echo "the machine other work took, learned/s does. *CPU-s of other work*: what /proc/stat counts busy on the machine"
echo "during the run minus this run's processes: other work sharing the machine (a little is the kernel's own)."
echo
echo "| run | config | learned | over s | **learned/s** | sent | other_shard | dropped (queues full) | forecasts received | CPU s: publisher | subscriber | rnnd (all instances) | of which workers | learned per rnnd CPU-s | per worker CPU-s | CPU-s of other work |"
echo "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
for n in "${NAMES[@]}"; do
    [ -f "$OUT/$n.row" ] || { echo "| $n | failed | | | | | | | | | | | | | | |"; continue; }
    IFS='|' read -r config learned active rate sent other dropped pcpu scpu rcpu wcpu got foreign < "$OUT/$n.row"
    per_rnnd=$(awk -v l="$learned" -v c="$rcpu" 'BEGIN { if (c > 0) printf "%.0f", l / c; else print "—" }')
    per_worker=$(awk -v l="$learned" -v c="$wcpu" 'BEGIN { if (c > 0) printf "%.0f", l / c; else print "—" }')
    echo "| $n | $config | $(num "$learned") | $(num "$active" 2) | **$(num "$rate")** | $(num "$sent") | $(num "$other") | $(num "$dropped") | $(num "$got") | $pcpu | $scpu | $rcpu | $wcpu | $(num "$per_rnnd") | $(num "$per_worker") | $foreign |"
done
echo
for config in one two; do
    rates=$(for n in "${NAMES[@]}"; do [ -f "$OUT/$n.row" ] && cut -d'|' -f1,4 "$OUT/$n.row"; done | awk -F'|' -v c="$config" '$1 == c { print $2 }' | sort -n | tr '\n' ' ')
    echo "- $config: learned/s per run, sorted: $rates"
done
echo
echo "## rnnd's \`stopped:\` lines"
echo
for f in "$OUT"/*.stopped; do
    [ -f "$f" ] || continue
    echo "- $(basename "$f" .stopped): \`$(cat "$f")\`"
done
echo
report_failures
echo "## Commands"
echo
echo '```'
cat "$CMDS"
echo '```'
} > "$MD"
mv "$MD" "$RESULTS"
cat "$RESULTS"
echo "shards.sh: wrote ${RESULTS#$ROOT/}; logs in ${OUT#$ROOT/}/" >&2
[ "${#FAILURES[@]}" -eq 0 ]
