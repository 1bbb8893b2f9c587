#!/usr/bin/env bash
# End-to-end benchmark of the rnnd daemon: real processes, real sockets, 127.0.0.1 only.
#
#   a. latency at 10,000 samples/s, one stream, LSTM H=64: rnnd (the default learner, k2 = 20,
#      k1 = 2, and k1 = k2 = 32) next to the bare-ZeroMQ echo round trip measured in the same run;
#   b. throughput with 1,000 streams, 2 workers, the publisher flooding: at the default model
#      (LSTM H=64, k2 = 20, k1 = 2, Adafactor) and at LSTM H=16, k2 = k1 = 16;
#   c. resident memory per stream with 10,000 LSTM H=32 streams (by model and hidden size,
#      the default one included: bench/memory.sh).
#
# Processes: `rnnd-e2e publish` (samples, each with its send time t), `rnnd run` (or
# `rnnd-e2e echo`), `rnnd-e2e subscribe` (latency = receive time - t echoed in the forecast).
# rnnd is stopped with SIGTERM every time; its exit status and its `stopped:` line are recorded.
# Every process is bounded in time (--seconds, timeout(1), and a watchdog that SIGKILLs rnnd).
#
# Usage: bench/e2e.sh [--seconds 10] [--no-build] [--only a|b|c]
#   --seconds S   length of the timed part of runs a and b (default 10)
#   --no-build    use the binaries in .build/release as they are
#   --only X      run only part a, b or c (the results file then says "partial")
# Environment: E2E_SUB_PORT (default 5556), E2E_PUB_PORT (default 5557).
# Writes bench/results/e2e.md (and prints it); logs and raw JSON go to bench/out/e2e/.
# Exit status: 0 when every run completed (goals met or not), 1 when a run failed (a process
# crashed, hung on SIGTERM or printed no result), 2 on a usage or build error.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$ROOT/scripts/lib/build-env.sh"   # the CPU the kernels are compiled for
cd "$ROOT"
RNND="$ROOT/.build/release/rnnd"
E2E="$ROOT/.build/release/rnnd-e2e"
OUT="$ROOT/bench/out/e2e"
RESULTS="$ROOT/bench/results/e2e.md"
SUBP="${E2E_SUB_PORT:-5556}"
PUBP="${E2E_PUB_PORT:-5557}"
SECONDS_TIMED=10
BUILD=1
ONLY=""

source "$ROOT/bench/lib/common.sh"   # cleanup (on exit), alive, record, fail, wait_ports_free, counter, j, num, report_failures,
                                     # require_whole_number, require_tools, build_release, prepare_out

while [ $# -gt 0 ]; do
    case "$1" in
        --seconds) SECONDS_TIMED="$2"; shift 2 ;;
        --no-build) BUILD=0; shift ;;
        --only) ONLY="$2"; shift 2 ;;
        -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
        *) echo "e2e.sh: unknown argument: $1" >&2; exit 2 ;;
    esac
done
require_whole_number --seconds "$SECONDS_TIMED"
case "$ONLY" in ""|a|b|c) ;; *) echo "e2e.sh: --only takes a, b or c" >&2; exit 2 ;; esac
require_tools jq timeout ss awk
build_release "$BUILD"

prepare_out
STATE="$OUT/state"

# ---------------------------------------------------------------------------------------------
# Helpers

# proc_cpu PID: "user system" CPU seconds of the process (all its threads) so far.
proc_cpu() {
    sed 's/^.*) //' "/proc/$1/stat" | awk -v t="$TCK" '{ printf "%.2f %.2f\n", $12 / t, $13 / t }'
}

# proc_threads PID WORKERS: one line per thread, "tid|role|cpu_seconds". The role is the
# thread's name (/proc/PID/task/TID/comm: rnnd-publisher, rnnd-worker-N, rnnd-ingest, libzmq's
# ZMQbg/...); a thread still called "rnnd" (a build that does not name its threads) gets its
# role from the creation order (main, publisher, workers 0..W-1, ingest), marked "(by order)".
proc_threads() {
    local pid="$1" workers="$2" tid comm cpu i=0 role named
    # A build that names its threads may still have unnamed ones (the runtime's): no roles by order then.
    named=$(cat /proc/"$pid"/task/*/comm 2>/dev/null | grep -c '^rnnd-' || true)
    for tid in $(ls "/proc/$pid/task" | sort -n); do
        comm=$(cat "/proc/$pid/task/$tid/comm" 2>/dev/null) || continue
        cpu=$(sed 's/^.*) //' "/proc/$pid/task/$tid/stat" | awk -v t="$TCK" '{ printf "%.2f", ($12 + $13) / t }')
        if [[ "$comm" == ZMQbg* ]]; then
            role="libzmq $comm"
        elif [[ "$comm" == rnnd-* ]]; then
            role="${comm#rnnd-}"
            i=$((i + 1))
        elif [ "$named" -gt 0 ]; then
            if [ "$i" -eq 0 ]; then role="main (signals)"; else role="unnamed ($comm)"; fi
            i=$((i + 1))
        else
            if [ "$i" -eq 0 ]; then role="main (signals)"
            elif [ "$i" -eq 1 ]; then role="publisher (by order)"
            elif [ "$i" -le $((workers + 1)) ]; then role="worker-$((i - 2)) (by order)"
            elif [ "$i" -eq $((workers + 2)) ]; then role="ingest (by order)"
            else role="? ($comm)"; fi
            i=$((i + 1))
        fi
        echo "$tid|$role|$cpu"
    done
}

vm() { # PID FIELD -> kB
    awk -v f="$2:" '$1 == f { print $2 }' "/proc/$1/status"
}

# start_rnnd NAME ARGS...: starts `rnnd run` on the benchmark ports, waits for "ready:".
RNND_PID=""; WATCHDOG=""
start_rnnd() {
    local name="$1"; shift
    wait_ports_free "$SUBP" "$PUBP" "set E2E_SUB_PORT/E2E_PUB_PORT"
    local log="$OUT/$name.rnnd.log"
    local cmd=("$RNND" run --sub "@tcp://127.0.0.1:$SUBP" --pub "@tcp://127.0.0.1:$PUBP" --state-dir "$STATE/$name" "$@")
    record "$name rnnd" "${cmd[@]}"
    ( exec "${cmd[@]}" ) 2> "$log" &
    RNND_PID=$!
    STARTED+=("$RNND_PID")
    # Watchdog: no run takes longer than this; a hang is killed and reported.
    ( sleep $((SECONDS_TIMED * 3 + 120)); kill -KILL "$RNND_PID" 2>/dev/null ) &
    WATCHDOG=$!
    STARTED+=("$WATCHDOG")
    local i
    for i in $(seq 150); do
        grep -q "ready:" "$log" 2>/dev/null && return 0
        alive "$RNND_PID" || break
        sleep 0.1
    done
    fail "$name: rnnd did not become ready (log: ${log#$ROOT/})"
    return 1
}

# stop_rnnd NAME WORKERS: reads CPU time, sends SIGTERM, waits up to 15 s, records status.
# Sets R_CPU_USER R_CPU_SYS R_THREADS R_STATUS R_STOP_S R_HANG R_STOPPED.
stop_rnnd() {
    local name="$1" workers="$2" pid="$RNND_PID" log="$OUT/$1.rnnd.log"
    R_HANG=0; R_CPU_USER=""; R_CPU_SYS=""; R_THREADS=""
    if alive "$pid"; then
        read -r R_CPU_USER R_CPU_SYS < <(proc_cpu "$pid")
        R_THREADS=$(proc_threads "$pid" "$workers")
    fi
    local t0 t1 n=0
    t0=$(date +%s.%N)
    kill -TERM "$pid" 2>/dev/null || true
    while alive "$pid"; do
        sleep 0.05
        n=$((n + 1))
        if [ "$n" -ge 300 ]; then
            R_HANG=1
            kill -KILL "$pid" 2>/dev/null || true
            break
        fi
    done
    t1=$(date +%s.%N)
    set +e; wait "$pid"; R_STATUS=$?; set -e
    kill "$WATCHDOG" 2>/dev/null || true
    wait "$WATCHDOG" 2>/dev/null || true
    R_STOP_S=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }')
    R_STOPPED=$({ grep -o 'stopped: .*' "$log" || true; } | tail -n 1)
    if [ "$R_HANG" = 1 ]; then fail "$name: rnnd did not exit within 15 s of SIGTERM (killed)"; fi
    if [ "$R_STATUS" != 0 ]; then fail "$name: rnnd exited with status $R_STATUS"; fi
    if [ -z "$R_STOPPED" ]; then fail "$name: no 'stopped:' line in ${log#$ROOT/}"; fi
    if grep -qiE 'fatal error|precondition|crash|segmentation' "$log"; then fail "$name: the rnnd log mentions a crash"; fi
}

refused_total() { # LINE: sum of the refused={...} counts
    local inside
    inside=$(sed -n 's/.*refused={\([^}]*\)}.*/\1/p' <<< "$1")
    { grep -oE '=[0-9]+' <<< "$inside" || true; } | tr -d = | awk '{ s += $1 } END { print s + 0 }'
}
refused_list() { # LINE: "a=1, b=2" or "none"
    local inside
    inside=$(sed -n 's/.*refused={\([^}]*\)}.*/\1/p' <<< "$1")
    echo "${inside:-none}"
}

# start_subscriber NAME ARGS...: background subscriber, JSON to $OUT/NAME.sub.json.
SUB_PID=""
start_subscriber() {
    local name="$1"; shift
    local cmd=("$E2E" subscribe --endpoint ">tcp://127.0.0.1:$PUBP" "$@")
    record "$name subscriber" "${cmd[@]}"
    timeout -k 5 $((SECONDS_TIMED + 90)) "${cmd[@]}" > "$OUT/$name.sub.json" 2> "$OUT/$name.sub.log" &
    SUB_PID=$!
    STARTED+=("$SUB_PID")
    sleep 0.5  # the subscriber's connection and subscription reach the PUB socket
}

# run_publisher NAME ARGS...: foreground publisher, JSON to $OUT/NAME.pub.json.
run_publisher() {
    local name="$1"; shift
    local cmd=("$E2E" publish --endpoint ">tcp://127.0.0.1:$SUBP" "$@")
    record "$name publisher" "${cmd[@]}"
    set +e
    timeout -k 5 $((SECONDS_TIMED + 60)) "${cmd[@]}" > "$OUT/$name.pub.json" 2> "$OUT/$name.pub.log"
    local status=$?
    set -e
    [ "$status" = 0 ] || fail "$name: publisher exited with status $status"
    if [ "$(j "$OUT/$name.pub.json" .gave_up_on_full_queue)" = true ]; then
        fail "$name: the publisher's queue stayed full past its deadline (receiver stuck or gone)"
    fi
}

wait_subscriber() { # NAME
    set +e; wait "$SUB_PID"; local status=$?; set -e
    [ "$status" = 0 ] || fail "$1: subscriber exited with status $status"
}

calc() { awk -v OFMT=%.10g "BEGIN { x = $1; print x }" 2>/dev/null || echo "—"; }
int() { if [[ "$1" =~ ^-?[0-9]+$ ]]; then echo "$1"; else echo 0; fi; }

# ---------------------------------------------------------------------------------------------
# Machine and run metadata

DATE=$(date -u +%Y-%m-%dT%H:%M:%SZ)
COMMIT=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
DIRTY=$(git --no-optional-locks status --porcelain --untracked-files=no 2>/dev/null | wc -l)
[ "$DIRTY" -gt 0 ] && COMMIT="$COMMIT (+ $DIRTY modified tracked files)"
CPU_MODEL=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
NPROC=$(nproc)
MEM=$(awk '/^MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo)
KERNEL=$(uname -sr)
ZMQV=$(pkg-config --modversion libzmq 2>/dev/null || echo "?")
SWIFTV=$(swift --version 2>/dev/null | head -n 1 | sed 's/^.*Swift version \([^ ]*\).*/\1/' || echo "?")
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
BIN_TIME=$(date -u -r "$RNND" +%Y-%m-%dT%H:%M:%SZ)
T_START=$(date +%s)
S=$SECONDS_TIMED

# ---------------------------------------------------------------------------------------------
# a. Latency at 10,000 samples/s, one stream

run_a() {
    echo "e2e.sh: a. latency: bare echo" >&2
    wait_ports_free "$SUBP" "$PUBP" "set E2E_SUB_PORT/E2E_PUB_PORT"
    local cmd=("$E2E" echo --sub "@tcp://127.0.0.1:$SUBP" --pub "@tcp://127.0.0.1:$PUBP" --seconds $((S + 60)))
    record "a-echo echo" "${cmd[@]}"
    ( exec "${cmd[@]}" ) > "$OUT/a-echo.echo.json" 2> "$OUT/a-echo.echo.log" &
    local echo_pid=$!
    STARTED+=("$echo_pid")
    local i
    for i in $(seq 100); do grep -q ready "$OUT/a-echo.echo.log" 2>/dev/null && break; sleep 0.1; done
    start_subscriber a-echo --seconds $((S + 30)) --idle 2 --warmup 5
    run_publisher a-echo --streams 1 --rate 10000 --seconds "$S"
    wait_subscriber a-echo
    read -r A_ECHO_CPU_U A_ECHO_CPU_S < <(proc_cpu "$echo_pid")
    kill -TERM "$echo_pid" 2>/dev/null || true
    for i in $(seq 100); do alive "$echo_pid" || break; sleep 0.05; done
    alive "$echo_pid" && { kill -KILL "$echo_pid"; fail "a-echo: echo did not stop on SIGTERM"; }
    set +e; wait "$echo_pid"; A_ECHO_STATUS=$?; set -e
    [ "$A_ECHO_STATUS" = 0 ] || fail "a-echo: echo exited with status $A_ECHO_STATUS"

    local k1
    for k1 in 2 32; do
        local name="a-k1-$k1"
        echo "e2e.sh: a. latency: rnnd LSTM H=64 k1=$k1" >&2
        local extra=()
        [ "$k1" = 2 ] || extra=(--window "$k1" --update-every "$k1")
        start_rnnd "$name" --workers 2 --model lstm --hidden 64 "${extra[@]}" || continue
        start_subscriber "$name" --seconds $((S + 30)) --idle 2 --warmup 5
        run_publisher "$name" --streams 1 --rate 10000 --seconds "$S"
        wait_subscriber "$name"
        stop_rnnd "$name" 2
        printf '%s\n' "$R_STATUS" > "$OUT/$name.status"
        printf '%s\n' "$R_STOPPED" > "$OUT/$name.stopped"
        printf '%s %s %s %s\n' "$R_CPU_USER" "$R_CPU_SYS" "$R_STOP_S" "$R_HANG" > "$OUT/$name.cpu"
        printf '%s\n' "$R_THREADS" > "$OUT/$name.threads"
    done
}

# ---------------------------------------------------------------------------------------------
# b. Throughput: 1,000 streams, flood, at the default model and at the small one

# The two models of part b: the name of the run, how the results name the model, rnnd's flags.
B_RUNS=(b-default b-flood)
declare -A B_MODEL=(
    [b-default]="LSTM H=64, k2 = 20, k1 = 2, Adafactor (the default model)"
    [b-flood]="LSTM H=16, k2 = k1 = 16")
declare -A B_FLAGS=(
    [b-default]="--model lstm --hidden 64"
    [b-flood]="--model lstm --hidden 16 --window 16 --update-every 16")

run_b() {
    local name
    for name in "${B_RUNS[@]}"; do
        echo "e2e.sh: b. throughput: 1,000 streams, ${B_MODEL[$name]}, flood" >&2
        local t0 t1 flags
        read -r -a flags <<< "${B_FLAGS[$name]}"
        t0=$(date +%s.%N)
        start_rnnd "$name" --workers 2 "${flags[@]}" || continue
        start_subscriber "$name" --seconds $((S + 40)) --idle 3 --warmup 5
        run_publisher "$name" --streams 1000 --flood --binary --seconds "$S"
        wait_subscriber "$name"
        t1=$(date +%s.%N)
        stop_rnnd "$name" 2
        printf '%s\n' "$R_STATUS" > "$OUT/$name.status"
        printf '%s\n' "$R_STOPPED" > "$OUT/$name.stopped"
        printf '%s %s %s %s\n' "$R_CPU_USER" "$R_CPU_SYS" "$R_STOP_S" "$R_HANG" > "$OUT/$name.cpu"
        printf '%s\n' "$R_THREADS" > "$OUT/$name.threads"
        calc "$t1 - $t0" > "$OUT/$name.wall"
    done
}

# ---------------------------------------------------------------------------------------------
# c. Memory per stream: 10,000 streams, two samples each

run_c() {
    local name=c-memory
    echo "e2e.sh: c. memory: 10,000 streams, LSTM H=32" >&2
    start_rnnd "$name" --model lstm --hidden 32 --max-streams 20000 || return 0
    start_subscriber "$name" --seconds 90 --idle 3
    sleep 1
    C_RSS_BEFORE=$(vm "$RNND_PID" VmRSS)
    # Two rounds over 10,000 streams; no warm-up samples, so every stream gets exactly two.
    run_publisher "$name" --streams 10000 --rate 10000 --count 20000 --warmup 0 --seconds 30
    wait_subscriber "$name"   # ends 3 s after the last forecast
    C_RSS_AFTER=$(vm "$RNND_PID" VmRSS)
    C_HWM=$(vm "$RNND_PID" VmHWM)
    echo "$C_RSS_BEFORE $C_RSS_AFTER $C_HWM" > "$OUT/$name.rss"
    stop_rnnd "$name" 2
    printf '%s\n' "$R_STATUS" > "$OUT/$name.status"
    printf '%s\n' "$R_STOPPED" > "$OUT/$name.stopped"
    printf '%s %s %s %s\n' "$R_CPU_USER" "$R_CPU_SYS" "$R_STOP_S" "$R_HANG" > "$OUT/$name.cpu"
    printf '%s\n' "$R_THREADS" > "$OUT/$name.threads"
}

if [ -z "$ONLY" ] || [ "$ONLY" = a ]; then run_a; fi
if [ -z "$ONLY" ] || [ "$ONLY" = b ]; then run_b; fi
if [ -z "$ONLY" ] || [ "$ONLY" = c ]; then run_c; fi

LOAD_END=$(cut -d' ' -f1-3 /proc/loadavg)
T_TOTAL=$(( $(date +%s) - T_START ))

# ---------------------------------------------------------------------------------------------
# Report

MD="$OUT/e2e.md.tmp"
{
echo "# rnnd end to end"
echo
echo "Produced by \`bench/e2e.sh\`$([ -n "$ONLY" ] && echo " (partial: part $ONLY only)") on $DATE: rnnd commit \`$COMMIT\`, binary built $BIN_TIME;"
echo "$KERNEL, $CPU_MODEL, $NPROC logical CPUs, $MEM; libzmq $ZMQV, Swift $SWIFTV."
echo "Load average at start $LOAD_START, at end $LOAD_END; total ${T_TOTAL} s. Everything on 127.0.0.1;"
echo "publisher, daemon and subscriber are separate processes sharing the $NPROC CPUs."
echo
echo "Latency = the subscriber's receive time − the \`t\` the publisher stamped at send time (CLOCK_REALTIME),"
echo "echoed in the forecast (or, for the echo baseline, in the republished sample). The first 5 messages"
echo "(the publisher's warm-up) are left out of latency and rate."
echo
echo "Reproduce: \`bench/e2e.sh\` (exact commands below)."
echo
}> "$MD"

if [ -z "$ONLY" ] || [ "$ONLY" = a ]; then
    E="$OUT/a-echo.sub.json"
    ECHO_P50=$(j "$E" .latency_us.p50)
    {
    echo "## a. Latency at 10,000 samples/s, one stream (JSON samples, ~${S} s)"
    echo
    echo "| path | sent/s achieved | messages received | received/s | p50 µs | p90 µs | p99 µs | max µs | p50 ÷ bare p50 | refused/dropped (rnnd) | goal: p50 < 2× bare |"
    echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|---|"
    echo "| bare ZeroMQ echo | $(num "$(j "$OUT/a-echo.pub.json" .rate_achieved)") | $(num "$(j "$E" .count)") | $(num "$(j "$E" .rate)") | $(num "$ECHO_P50") | $(num "$(j "$E" .latency_us.p90)") | $(num "$(j "$E" .latency_us.p99)") | $(num "$(j "$E" .latency_us.max)") | 1 | — | — |"
    for k1 in 2 32; do
        n="a-k1-$k1"; F="$OUT/$n.sub.json"
        [ -f "$F" ] || continue
        st=$(cat "$OUT/$n.stopped" 2>/dev/null || true)
        p50=$(j "$F" .latency_us.p50)
        ratio=$(calc "$p50 / $ECHO_P50" 2>/dev/null || echo —)
        goal=$(awk -v r="$ratio" 'BEGIN { if (r == "—") print "—"; else print (r < 2 ? "met" : "NOT MET") }')
        echo "| rnnd LSTM H=64, k2=$([ "$k1" = 2 ] && echo "20 (the default)" || echo 32), k1=$k1 | $(num "$(j "$OUT/$n.pub.json" .rate_achieved)") | $(num "$(j "$F" .count)") | $(num "$(j "$F" .rate)") | $(num "$p50") | $(num "$(j "$F" .latency_us.p90)") | $(num "$(j "$F" .latency_us.p99)") | $(num "$(j "$F" .latency_us.max)") | $(num "$ratio" 2)× | $(refused_list "$st") | $goal |"
    done
    echo
    echo "*received/s* is the subscriber's rate from its first to its last timed message, so it includes the"
    echo "time rnnd took to work off its queue after the publisher stopped."
    echo
    echo "Accounting (sent = samples the publisher handed to its PUB socket, warm-up included, with"
    echo "ZMQ_XPUB_NODROP so it never drops; received/learned/forecasts/refused from rnnd's \`stopped:\` line;"
    echo "lost before subscription = sent − received; forecasts not delivered = rnnd's forecasts − messages the"
    echo "subscriber received, which rnnd does not count):"
    echo
    echo "| run | sent | received | learned | refused or dropped before learning | lost before subscription | received = learned + those? | forecasts (rnnd) | forecast_queue_full | subscriber got | forecasts not delivered | exit | SIGTERM → exit s | rnnd CPU s (user+sys) | busy worker CPU s | learned per worker CPU s |"
    echo "|---|---:|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    for k1 in 2 32; do
        n="a-k1-$k1"
        [ -f "$OUT/$n.stopped" ] || continue
        st=$(cat "$OUT/$n.stopped"); sent=$(int "$(j "$OUT/$n.pub.json" .sent_total)")
        rec=$(counter "$st" received); lea=$(counter "$st" learned); ref=$(refused_total "$st"); fc=$(counter "$st" forecasts)
        got=$(int "$(j "$OUT/$n.sub.json" .count)")
        read -r cu cs stop hang < "$OUT/$n.cpu"
        # Dropped after learning: the publisher's queue was full (a slow subscriber loses forecasts
        # on its own socket, uncounted: they show as "forecasts not delivered").
        fqf=$(( $(counter "$st" forecast_queue_full) )); pre=$((ref - fqf))
        ok=$([ $((lea + pre)) = "$rec" ] && echo yes || echo "NO ($((rec - lea - pre)) unaccounted)")
        # The busiest worker thread (one stream: one worker does all the learning).
        wcpu=$(awk -F'|' '$2 ~ /^worker/ { if ($3 > m) m = $3 } END { print m + 0 }' "$OUT/$n.threads")
        echo "| k1=$k1 | $(num "$sent") | $(num "$rec") | $(num "$lea") | $(num "$pre") | $(num $((sent - rec))) | $ok | $(num "$fc") | $(num "$fqf") | $(num "$got") | $(num $((fc - got))) | $(cat "$OUT/$n.status") | $stop | $(calc "$cu + $cs") | $wcpu | $(num "$(calc "$lea / $wcpu")") |"
    done
    echo
    echo "Echo baseline: echo exit status $A_ECHO_STATUS, CPU $(calc "$A_ECHO_CPU_U + $A_ECHO_CPU_S") s; $(jq -c . "$OUT/a-echo.echo.json" 2>/dev/null || echo 'no JSON')."
    echo
    } >> "$MD"
fi

if [ -z "$ONLY" ] || [ "$ONLY" = b ]; then
    for n in "${B_RUNS[@]}"; do
    P="$OUT/$n.pub.json"; F="$OUT/$n.sub.json"
    if [ -f "$OUT/$n.stopped" ]; then
        st=$(cat "$OUT/$n.stopped"); sent=$(int "$(j "$P" .sent_total)")
        rec=$(counter "$st" received); lea=$(counter "$st" learned); ref=$(refused_total "$st"); fc=$(counter "$st" forecasts)
        wqf=$(counter "$st" worker_queue_full); fqf=$(( $(counter "$st" forecast_queue_full) ))
        got=$(int "$(j "$F" .count)")
        first_send=$(j "$P" .first_unix); last_fc=$(j "$F" .last_unix)
        active=$(calc "$last_fc - $first_send")
        learned_rate=$(calc "$lea / $active")
        read -r cu cs stop hang < "$OUT/$n.cpu"
        pub_cpu=$(calc "$(j "$P" .cpu_user_s) + $(j "$P" .cpu_sys_s)")
        sub_cpu=$(calc "$(j "$F" .cpu_user_s) + $(j "$F" .cpu_sys_s)")
        rnnd_cpu=$(calc "$cu + $cs")
        wall=$(cat "$OUT/$n.wall")
        # The goal of 200,000 samples/s is the small model's; the default one updates on every sample.
        if [ "$n" = b-flood ]; then
            goal_rate=$(awk -v r="$learned_rate" 'BEGIN { print (r >= 200000 ? "met" : "NOT MET") }')
        else
            goal_rate="— (set for LSTM H=16, k2 = k1 = 16)"
        fi
        unexpl=$((rec - lea - (ref - fqf)))
        lost_sub=$((sent - rec))
        warm=$(j "$P" .warmup_sent)
        {
        echo "## b. Throughput: 1,000 streams, ${B_MODEL[$n]}, 2 workers, publisher flooding (binary samples, ~${S} s)"
        echo
        echo "| figure | value |"
        echo "|---|---:|"
        echo "| samples sent (publisher, timed part) | $(num "$(j "$P" .sent)") in $(num "$(j "$P" .seconds)" 2) s = $(num "$(j "$P" .rate_achieved)")/s (publisher waited on a full queue $(num "$(j "$P" .backpressure_waits)") times) |"
        echo "| **samples learned (accepted) per second** | **$(num "$learned_rate")** ($(num "$lea") learned between the first send and the last forecast, $(num "$active" 2) s) |"
        wsum=$(awk -F'|' '$2 ~ /^worker/ { s += $3 } END { print s + 0 }' "$OUT/$n.threads")
        echo "| learned per CPU-second of the worker threads | $(num "$(calc "$lea / $wsum")") ($(num "$wsum" 2) worker CPU-s in all) |"
        echo "| forecasts received per second (subscriber) | $(num "$(j "$F" .rate)") ($(num "$got") received over $(num "$(j "$F" .span_s)" 2) s) |"
        echo "| dropped: worker_queue_full (learning could not keep up) | $(num "$wqf") |"
        echo "| dropped after learning: forecast_queue_full (forecast not published) | $(num "$fqf") |"
        echo "| all refusals by reason | $(refused_list "$st") |"
        echo "| latency under flood (queueing), p50 / p99 | $(num "$(j "$F" .latency_us.p50)") / $(num "$(j "$F" .latency_us.p99)") µs |"
        echo "| goal: 200,000 samples/s learned | $goal_rate |"
        echo
        echo "Accounting: sent $(num "$sent") (incl. $warm warm-up) = received $(num "$rec") + lost before subscription $(num "$lost_sub");"
        echo "received $(num "$rec") = learned $(num "$lea") + refused or dropped before learning $(num "$((ref - fqf))") + unexplained **$(num "$unexpl")**;"
        echo "learned $(num "$lea") = forecasts published $(num "$fc") + forecast_queue_full $(num "$fqf") + unexplained **$(num $((lea - fc - fqf)))**;"
        echo "forecasts published $(num "$fc") − received by the subscriber $(num "$got") = **$(num $((fc - got)))** lost between rnnd's PUB socket and the subscriber (not counted by rnnd;"
        echo "the subscriber's per-stream \`seq\` check saw $(num "$(j "$F" .seq_gaps)") gaps, which also include the forecast_queue_full drops)."
        echo "rnnd exit status $(cat "$OUT/$n.status"), SIGTERM → exit $stop s."
        echo
        echo "Where the $NPROC CPUs went: CPU seconds (user + system) of each process over its life, from /proc/PID/stat for rnnd (read just"
        echo "before SIGTERM) and getrusage for the publisher and subscriber. From rnnd's start to SIGTERM took $(num "$wall" 1) s of wall time ="
        echo "$(num "$(calc "$wall * $NPROC")" 1) CPU-seconds available on $NPROC CPUs (the flood itself lasted $(num "$(j "$P" .seconds)" 1) s)."
        echo
        echo "| process / thread | CPU s |"
        echo "|---|---:|"
        echo "| publisher (\`rnnd-e2e publish\`, whole process) | $pub_cpu |"
        echo "| rnnd (whole process, start to SIGTERM) | $rnnd_cpu |"
        while IFS='|' read -r tid role cpu; do
            [ -n "$tid" ] && echo "| &nbsp;&nbsp;rnnd thread $tid: $role | $cpu |"
        done < "$OUT/$n.threads"
        echo "| subscriber (\`rnnd-e2e subscribe\`, whole process) | $sub_cpu |"
        echo
        if grep -q "by order" "$OUT/$n.threads"; then
            echo "This rnnd build does not name its threads (every thread's comm is \`rnnd\`), so roles marked"
            echo "\"by order\" are inferred from their creation order (main, publisher, worker 0, worker 1, ingest)."
        else
            echo "Thread roles are the threads' names in /proc/PID/task/TID/comm."
        fi
        echo
        } >> "$MD"
    fi
    done
fi

if [ -z "$ONLY" ] || [ "$ONLY" = c ]; then
    n=c-memory
    if [ -f "$OUT/$n.rss" ]; then
        read -r before after hwm < "$OUT/$n.rss"
        st=$(cat "$OUT/$n.stopped")
        per=$(calc "($after - $before) / 10000")
        goal=$(awk -v p="$per" 'BEGIN { print (p < 100 ? "met" : "NOT MET") }')
        F="$OUT/$n.sub.json"
        {
        echo "## c. Memory per stream: 10,000 streams, LSTM H=32 (otherwise the default learner), default workers ($NPROC)"
        echo
        echo "| figure | value |"
        echo "|---|---:|"
        echo "| VmRSS before (ready, subscriber connected) | $(num "$before") kB |"
        echo "| VmRSS after 2 samples × 10,000 streams, forecasts stopped | $(num "$after") kB (VmHWM $(num "$hwm") kB) |"
        echo "| **(after − before) / 10,000** | **$(num "$per" 1) kB per stream** |"
        echo "| goal: under 100 kB per stream | $goal |"
        echo "| streams / learned / updates (rnnd) | $(counter "$st" streams) / $(num "$(counter "$st" learned)") / $(num "$(counter "$st" updates)") |"
        echo "| refusals | $(refused_list "$st") |"
        echo "| forecasts received / latency p50, p99 (stream creation included) | $(num "$(j "$F" .count)") / $(num "$(j "$F" .latency_us.p50)"), $(num "$(j "$F" .latency_us.p99)") µs |"
        echo "| rnnd exit status, SIGTERM → exit | $(cat "$OUT/$n.status"), $(cut -d' ' -f3 "$OUT/$n.cpu") s |"
        echo "| rnnd CPU s: whole process; workers | $(calc "$(cut -d' ' -f1 "$OUT/$n.cpu") + $(cut -d' ' -f2 "$OUT/$n.cpu")"); $(awk -F'|' '$2 ~ /^worker/ { printf "%s%s", sep, $3; sep = " + " }' "$OUT/$n.threads") |"
        echo
        echo "Other models and hidden sizes, the default LSTM H=64 among them: \`bench/memory.sh\` (bench/results/memory.md)."
        echo
        } >> "$MD"
    fi
fi

{
echo "## rnnd's \`stopped:\` lines"
echo
for f in "$OUT"/*.stopped; do
    [ -f "$f" ] || continue
    echo "- $(basename "$f" .stopped) (exit $(cat "${f%.stopped}.status")): \`$(cat "$f")\`"
done
echo
report_failures
echo "## Commands"
echo
echo "Each block ran in this order; background processes were started first and stopped with SIGTERM."
echo
echo '```'
cat "$CMDS"
echo '```'
echo
echo "## Raw results"
echo
echo '```'
for f in "$OUT"/*.json; do
    [ -f "$f" ] || continue
    echo "$(basename "$f"): $(cat "$f")"
done
echo '```'
} >> "$MD"

mv "$MD" "$RESULTS"
cat "$RESULTS"
echo "e2e.sh: wrote ${RESULTS#$ROOT/}; logs in ${OUT#$ROOT/}/" >&2
exit "$FAILED"
