#!/usr/bin/env bash
# What --metrics-listen costs the sample path: bench/e2e.sh's latency run (part a, k1 = k2 = 32)
# and throughput run (part b, the flood), each without metrics and with metrics served and
# scraped every second, alternating, on the same binary.
#
#   latency: 10,000 JSON samples/s on one stream, LSTM H=64, k2 = k1 = 32, 2 workers;
#   flood:   1,000 streams of binary samples as fast as they go, LSTM H=16, k2 = k1 = 16, 2 workers.
#
# *on* adds `--metrics-listen 127.0.0.1:PORT` (the threads then time every sample, update and
# checkpoint) and a scraper: `curl /metrics` every second for the whole run, which records each
# scrape's time and size. The last scrape's rnnd_forecast_latency_seconds (rnnd's own view of its
# latency, from the SUB socket to the PUB socket) is set next to the subscriber's. Last, 500
# scrapes in a row of an idle daemon give rnnd's CPU time per scrape.
#
# Usage: bench/metrics.sh [--seconds 10] [--repeat 2] [--no-build]
#   --seconds S   length of the timed part of each run (default 10)
#   --repeat R    runs of each workload and mode, alternating off/on (default 2)
#   --no-build    use the binaries in .build/release as they are
# Environment: METRICS_SUB_PORT (5576), METRICS_PUB_PORT (5577), METRICS_HTTP_PORT (5578).
# Writes bench/results/metrics.md (and prints it); logs and raw JSON go to bench/out/metrics/.
# Exit status: 0 when every run completed, 1 when a run failed, 2 on a usage or build error.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$ROOT/scripts/lib/build-env.sh"   # the CPU the kernels are compiled for
cd "$ROOT"
RNND="$ROOT/.build/release/rnnd"
E2E="$ROOT/.build/release/rnnd-e2e"
OUT="$ROOT/bench/out/metrics"
RESULTS="$ROOT/bench/results/metrics.md"
SUBP="${METRICS_SUB_PORT:-5576}"
PUBP="${METRICS_PUB_PORT:-5577}"
HTTPP="${METRICS_HTTP_PORT:-5578}"
S=10
REPEAT=2
BUILD=1

# cleanup (on exit), alive, record, fail, wait_ports_free, counter, j, num, report_failures, parse_run_options,
# require_tools, build_release, prepare_out, run_metadata, wait_ready, stop_instance, machine_busy, cpu_seconds,
# worker_cpu_seconds, tool_cpu, other_work, report_tail, publish_results:
source "$ROOT/bench/lib/common.sh"

parse_run_options 2,21 "$@"
require_tools jq timeout ss awk curl
build_release "$BUILD"
prepare_out

# scraper URL FILE: every second, one GET of URL; appends "seconds bytes http_code" per scrape.
scraper() {
    while true; do
        curl -s -o "$OUT/last-scrape.txt" -w '%{time_total} %{size_download} %{http_code}\n' --max-time 5 "$1" >> "$2" || echo "- 0 failed" >> "$2"
        sleep 1
    done
}

# run NAME WORKLOAD MODE: one run; WORKLOAD latency|flood, MODE off|on. Writes $OUT/NAME.row:
# workload|mode|learned|active_s|learned_per_s|p50|p90|p99|max|rnnd_cpu|worker_cpu|scrapes|scrape_ms|scrape_bytes|own_mean_us|own_count|foreign
run() {
    local name="$1" workload="$2" mode="$3"
    echo "metrics.sh: $name ($workload, metrics $mode)" >&2
    wait_ports_free "$SUBP" "$PUBP" "set METRICS_SUB_PORT/METRICS_PUB_PORT"
    local model pub
    if [ "$workload" = latency ]; then
        model=(--workers 2 --model lstm --hidden 64 --update-every 32)
        pub=(--streams 1 --rate 10000 --seconds "$S")
    else
        model=(--workers 2 --model lstm --hidden 16 --window 16 --update-every 16)
        pub=(--streams 1000 --flood --binary --seconds "$S")
    fi
    local metrics=()
    [ "$mode" = on ] && metrics=(--metrics-listen "127.0.0.1:$HTTPP")
    local cmd=("$RNND" run --sub "@tcp://127.0.0.1:$SUBP" --pub "@tcp://127.0.0.1:$PUBP" --state-dir "$OUT/state/$name" "${model[@]}" "${metrics[@]}")
    record "$name rnnd" "${cmd[@]}"
    ( exec "${cmd[@]}" ) 2> "$OUT/$name.rnnd.log" &
    local pid=$!
    STARTED+=("$pid")
    wait_ready "$OUT/$name.rnnd.log" "$pid" || { fail "$name: rnnd did not become ready"; return 0; }
    local busy0 scraper_pid=""
    busy0=$(machine_busy)
    if [ "$mode" = on ]; then
        record "$name scraper" curl -s "http://127.0.0.1:$HTTPP/metrics" "(every second)"
        scraper "http://127.0.0.1:$HTTPP/metrics" "$OUT/$name.scrapes" &
        scraper_pid=$!
        STARTED+=("$scraper_pid")
    fi

    local sub=("$E2E" subscribe --endpoint ">tcp://127.0.0.1:$PUBP" --seconds $((S + 40)) --idle 3 --warmup 5)
    record "$name subscriber" "${sub[@]}"
    timeout -k 5 $((S + 90)) "${sub[@]}" > "$OUT/$name.sub.json" 2> "$OUT/$name.sub.log" &
    local sub_pid=$!
    STARTED+=("$sub_pid")
    sleep 0.5  # the subscription reaches the PUB socket
    local p=("$E2E" publish --endpoint ">tcp://127.0.0.1:$SUBP" "${pub[@]}")
    record "$name publisher" "${p[@]}"
    local status
    set +e
    timeout -k 5 $((S + 60)) "${p[@]}" > "$OUT/$name.pub.json" 2> "$OUT/$name.pub.log"
    status=$?
    set -e
    [ "$status" = 0 ] || fail "$name: publisher exited with status $status"
    set +e; wait "$sub_pid"; status=$?; set -e
    [ "$status" = 0 ] || fail "$name: subscriber exited with status $status"

    local own_mean="—" own_count="—"
    if [ -n "$scraper_pid" ]; then
        kill "$scraper_pid" 2>/dev/null || true
        wait "$scraper_pid" 2>/dev/null || true
        curl -s --max-time 5 "http://127.0.0.1:$HTTPP/metrics" > "$OUT/$name.final-scrape.txt" || fail "$name: the last scrape failed"
        own_count=$(awk '$1 == "rnnd_forecast_latency_seconds_count" { print $2 }' "$OUT/$name.final-scrape.txt")
        own_mean=$(awk '$1 == "rnnd_forecast_latency_seconds_sum" { s = $2 } $1 == "rnnd_forecast_latency_seconds_count" { c = $2 }
            END { if (c > 0) printf "%.0f", s / c * 1e6; else print "—" }' "$OUT/$name.final-scrape.txt")
    fi
    local rnnd_cpu wcpu busy1
    busy1=$(machine_busy)
    rnnd_cpu=$(cpu_seconds "$pid")
    wcpu=$(worker_cpu_seconds "$pid")
    stop_instance "$name: rnnd" "$pid" "$OUT/$name.rnnd.log" "$OUT/$name.stopped"
    local line
    line=$(cat "$OUT/$name.stopped")

    local learned first last active rate scrapes=0 scrape_ms="—" scrape_bytes="—"
    learned=$(counter "$line" learned)
    first=$(j "$OUT/$name.pub.json" .first_unix)
    last=$(j "$OUT/$name.sub.json" .last_unix)
    active=$(awk -v a="$first" -v b="$last" 'BEGIN { printf "%.3f", b - a }')
    rate=$(awk -v l="$learned" -v a="$active" 'BEGIN { if (a > 0) printf "%.0f", l / a; else print "—" }')
    if [ -f "$OUT/$name.scrapes" ]; then
        scrapes=$(awk '$3 == 200' "$OUT/$name.scrapes" | wc -l)
        [ "$scrapes" -eq "$(wc -l < "$OUT/$name.scrapes")" ] || fail "$name: a scrape failed ($OUT/$name.scrapes)"
        scrape_ms=$(awk '$3 == 200 { s += $1; n++ } END { if (n) printf "%.2f", s / n * 1000; else print "—" }' "$OUT/$name.scrapes")
        scrape_bytes=$(awk '$3 == 200 { s += $2; n++ } END { if (n) printf "%.0f", s / n; else print "—" }' "$OUT/$name.scrapes")
    fi
    local foreign
    foreign=$(other_work "$busy0" "$busy1" "$(tool_cpu "$OUT/$name.pub.json")" "$(tool_cpu "$OUT/$name.sub.json")" "$rnnd_cpu")
    local F="$OUT/$name.sub.json"
    echo "$workload|$mode|$learned|$active|$rate|$(j "$F" .latency_us.p50)|$(j "$F" .latency_us.p90)|$(j "$F" .latency_us.p99)|$(j "$F" .latency_us.max)|$rnnd_cpu|$wcpu|$scrapes|$scrape_ms|$scrape_bytes|$own_mean|$own_count|$foreign" > "$OUT/$name.row"
}

# scrape_cost N: rnnd's CPU time per scrape, N scrapes one after another of an idle daemon with
# two workers (what each scrape costs, apart from the load of the runs); writes $OUT/scrape-cost.
scrape_cost() {
    echo "metrics.sh: CPU per scrape, idle daemon, $1 scrapes" >&2
    wait_ports_free "$SUBP" "$PUBP" "set METRICS_SUB_PORT/METRICS_PUB_PORT"
    local cmd=("$RNND" run --sub "@tcp://127.0.0.1:$SUBP" --pub "@tcp://127.0.0.1:$PUBP" --state-dir "$OUT/state/scrape-cost" --workers 2
        --metrics-listen "127.0.0.1:$HTTPP")
    record "scrape-cost rnnd" "${cmd[@]}"
    ( exec "${cmd[@]}" ) 2> "$OUT/scrape-cost.rnnd.log" &
    local pid=$!
    STARTED+=("$pid")
    wait_ready "$OUT/scrape-cost.rnnd.log" "$pid" || { fail "scrape-cost: rnnd did not become ready"; return 0; }
    record "scrape-cost scraper" curl -s "http://127.0.0.1:$HTTPP/metrics" "($1 times)"
    local before after i t0 t1
    sleep 1
    before=$(cpu_seconds "$pid")
    t0=$(date +%s.%N)
    for i in $(seq "$1"); do curl -s -o /dev/null "http://127.0.0.1:$HTTPP/metrics" || { fail "scrape-cost: a scrape failed"; break; }; done
    t1=$(date +%s.%N)
    after=$(cpu_seconds "$pid")
    stop_instance "scrape-cost: rnnd" "$pid" "$OUT/scrape-cost.rnnd.log" "$OUT/scrape-cost.stopped"
    awk -v a="$before" -v b="$after" -v n="$1" -v t0="$t0" -v t1="$t1" 'BEGIN { printf "%.2f %.2f\n", (b - a) / n * 1000, (t1 - t0) / n * 1000 }' > "$OUT/scrape-cost"
}

run_metadata

NAMES=()
for r in $(seq "$REPEAT"); do
    for workload in latency flood; do
        for mode in off on; do
            run "$workload-$mode-$r" "$workload" "$mode"; NAMES+=("$workload-$mode-$r")
        done
    done
done
scrape_cost 500
LOAD_END=$(cut -d' ' -f1-3 /proc/loadavg)
T_TOTAL=$(( $(date +%s) - T_START ))

# median WORKLOAD MODE FIELD: the median of a row field over the runs of WORKLOAD in MODE.
median() {
    for n in "${NAMES[@]}"; do [ -f "$OUT/$n.row" ] && cat "$OUT/$n.row"; done \
        | awk -F'|' -v w="$1" -v m="$2" -v f="$3" '$1 == w && $2 == m && $f != "—" { print $f }' | sort -n \
        | awk '{ v[NR] = $1 } END { if (NR == 0) print "—"; else if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

MD="$OUT/metrics.md.tmp"
{
echo "# What serving metrics costs"
echo
echo "Produced by \`bench/metrics.sh --seconds $S --repeat $REPEAT\` on $DATE: rnnd commit \`$COMMIT\`;"
echo "$(uname -sr), $CPU_MODEL, $NPROC logical CPUs. Load average at start $LOAD_START (1, 5, 15 min),"
echo "at end $LOAD_END; total ${T_TOTAL} s. Everything on 127.0.0.1; publisher, rnnd and subscriber are separate"
echo "processes sharing the $NPROC CPUs."
echo
echo "*latency*: bench/e2e.sh part a at k1 = k2 = 32: 10,000 JSON samples/s on one stream, \`rnnd run --workers 2 --model lstm"
echo "--hidden 64 --update-every 32\`. *flood*: part b: 1,000 streams, binary samples as fast as they go, \`--workers 2"
echo "--model lstm --hidden 16 --window 16 --update-every 16\`. *off*: no metrics; *on*: \`--metrics-listen 127.0.0.1:$HTTPP\` and"
echo "\`curl /metrics\` every second for the whole run. Latency is the subscriber's (receive time − the \`t\` stamped at"
echo "send); *rnnd's own mean* is \`rnnd_forecast_latency_seconds\` sum ÷ count from the last scrape (SUB socket to PUB"
echo "socket, inside rnnd). Learned/s = samples learned ÷ (last forecast received − first sample sent). *CPU-s of other"
echo "work*: what /proc/stat counts busy during the run minus this run's processes (other work sharing the machine)."
echo
echo "| run | workload | metrics | learned | **learned/s** | p50 µs | p90 µs | p99 µs | max µs | rnnd CPU s | workers CPU s | learned per rnnd CPU-s | scrapes | ms per scrape | bytes per scrape | rnnd's own mean µs (count) | CPU-s of other work |"
echo "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
for n in "${NAMES[@]}"; do
    [ -f "$OUT/$n.row" ] || { echo "| $n | failed | | | | | | | | | | | | | | | |"; continue; }
    IFS='|' read -r workload mode learned active rate p50 p90 p99 max rcpu wcpu scrapes sms sbytes own owncount foreign < "$OUT/$n.row"
    per=$(awk -v l="$learned" -v c="$rcpu" 'BEGIN { if (c > 0) printf "%.0f", l / c; else print "—" }')
    ownc=$([ "$owncount" = "—" ] && echo "—" || echo "$(num "$own") ($(num "$owncount"))")
    echo "| $n | $workload | $mode | $(num "$learned") | **$(num "$rate")** | $(num "$p50") | $(num "$p90") | $(num "$p99") | $(num "$max") | $rcpu | $wcpu | $(num "$per") | $scrapes | $sms | $(num "$sbytes") | $ownc | $foreign |"
done
echo
echo "Medians over the runs:"
echo
echo "| workload | metrics | learned/s | p50 µs | p99 µs | rnnd CPU s |"
echo "|---|---|---:|---:|---:|---:|"
for workload in latency flood; do
    for mode in off on; do
        echo "| $workload | $mode | $(num "$(median "$workload" "$mode" 5)") | $(num "$(median "$workload" "$mode" 6)") | $(num "$(median "$workload" "$mode" 8)") | $(median "$workload" "$mode" 10) |"
    done
done
echo
if [ -f "$OUT/scrape-cost" ]; then
    read -r cpu_ms wall_ms < "$OUT/scrape-cost"
    echo "One scrape of an idle daemon with 2 workers, 500 in a row: $cpu_ms ms of rnnd's CPU time each, $wall_ms ms from curl's"
    echo "start to its end (/proc's CPU times count in 10 ms ticks, so the CPU figure is good to about 0.02 ms)."
    echo
fi
report_tail
} > "$MD"
publish_results "$MD"
