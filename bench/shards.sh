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
source "$ROOT/scripts/lib/build-env.sh"   # the CPU the kernels are compiled for
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

# cleanup (on exit), alive, record, fail, wait_ports_free, counter, j, num, report_failures, parse_run_options,
# require_tools, build_release, prepare_out, run_metadata, wait_ready, stop_instance, machine_busy, cpu_seconds,
# worker_cpu_seconds, tool_cpu, other_work, report_tail, publish_results:
source "$ROOT/bench/lib/common.sh"

parse_run_options 2,19 "$@"
require_tools jq timeout ss awk
build_release "$BUILD"
prepare_out

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
        wait_ready "$OUT/$name.rnnd$i.log" "${pids[$i]}" || { fail "$name: instance $i did not become ready"; return 0; }
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
        rnnd_cpu=$(awk -v a="$rnnd_cpu" -v b="$(cpu_seconds "$pid")" 'BEGIN { printf "%.2f", a + b }')
        wcpu=$(awk -v a="$wcpu" -v b="$(worker_cpu_seconds "$pid")" 'BEGIN { printf "%.2f", a + b }')
        stop_instance "$name: instance $i" "$pid" "$OUT/$name.rnnd$i.log" "$OUT/$name.rnnd$i.stopped"
        line=$(cat "$OUT/$name.rnnd$i.stopped")
        learned=$((learned + $(counter "$line" learned)))
        other=$((other + $(counter "$line" other_shard)))
        dropped=$((dropped + $(counter "$line" worker_queue_full) + $(counter "$line" forecast_queue_full)))
    done
    local first last active rate
    first=$(j "$OUT/$name.pub.json" .first_unix)
    last=$(j "$OUT/$name.sub.json" .last_unix)
    active=$(awk -v a="$first" -v b="$last" 'BEGIN { printf "%.3f", b - a }')
    rate=$(awk -v l="$learned" -v a="$active" 'BEGIN { printf "%.0f", l / a }')
    local pub_cpu sub_cpu foreign
    pub_cpu=$(tool_cpu "$OUT/$name.pub.json")
    sub_cpu=$(tool_cpu "$OUT/$name.sub.json")
    foreign=$(other_work "$busy0" "$busy1" "$pub_cpu" "$sub_cpu" "$rnnd_cpu")
    echo "$config|$learned|$active|$rate|$(j "$OUT/$name.pub.json" .sent_total)|$other|$dropped|$pub_cpu|$sub_cpu|$rnnd_cpu|$wcpu|$(j "$OUT/$name.sub.json" .count)|$foreign" > "$OUT/$name.row"
}

run_metadata

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
report_tail
} > "$MD"
publish_results "$MD"
