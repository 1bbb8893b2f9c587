# Helpers shared by the benchmark scripts that start processes (bench/e2e.sh, bench/shards.sh,
# bench/metrics.sh). Sourced after the script sets ROOT (the repository) and CMDS (its commands.txt).

BENCH_NAME=$(basename "$0")
STARTED=()     # processes this script started, for the exit trap (each killed by its own pid)
FAILED=0
FAILURES=()

cleanup() {
    local pid
    for pid in "${STARTED[@]}"; do
        if alive "$pid"; then kill -KILL "$pid" 2>/dev/null || true; fi
    done
}
trap cleanup EXIT

# alive PID: the process exists and is not a zombie.
alive() {
    local state
    state=$(sed 's/^.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1) || return 1
    [ -n "$state" ] && [ "$state" != Z ]
}

# record LABEL ARGS...: append the command line to commands.txt.
record() {
    local label="$1"; shift
    { printf '%s: ' "$label"; printf '%q ' "$@" | sed "s|$ROOT/||g"; echo; } >> "$CMDS"
}

# fail MESSAGE: a run failed; the script says so at the end and exits 1.
fail() {
    FAILED=1
    FAILURES+=("$1")
    echo "$BENCH_NAME: FAILED: $1" >&2
}

# wait_ports_free PORT PORT HINT: neither port may be listening (a previous run's process is
# gone); after 5 s the script exits 2 with HINT.
wait_ports_free() {
    local i
    for i in $(seq 50); do
        if [ -z "$(ss -Hltn "( sport = :$1 or sport = :$2 )" 2>/dev/null)" ]; then return 0; fi
        sleep 0.1
    done
    echo "$BENCH_NAME: port $1 or $2 is in use by another process; $3" >&2
    ss -ltnp "( sport = :$1 or sport = :$2 )" >&2 || true
    exit 2
}

# counter LINE KEY: the integer after KEY= in a `stopped:` line (0 when absent).
counter() {
    local v
    v=$({ grep -oE "(^|[ {,])$2=[0-9]+" <<< "$1" || true; } | head -n 1 | sed 's/.*=//')
    echo "${v:-0}"
}

# j FILE FILTER: a value from a JSON line ("—" when missing).
j() {
    local v
    v=$(jq -r "$2 // \"—\"" "$1" 2>/dev/null | head -n 1) || v="—"
    echo "${v:-—}"
}

# num X [DECIMALS]: X with thousands separators and fixed decimals ("—" for none).
num() { awk -v x="$1" -v d="${2:-0}" 'BEGIN {
    if (x == "" || x == "—" || x == "null") { print "—"; exit }
    s = sprintf("%." d "f", x); neg = (substr(s, 1, 1) == "-"); if (neg) s = substr(s, 2)
    split(s, p, "."); i = p[1]; o = ""
    while (length(i) > 3) { o = "," substr(i, length(i) - 2) o; i = substr(i, 1, length(i) - 3) }
    o = i o; if (d > 0) o = o "." p[2]; print (neg ? "-" : "") o }'; }

# report_failures: the "Failed runs" section of a results file, when a run failed.
report_failures() {
    [ "${#FAILURES[@]}" -gt 0 ] || return 0
    echo "## Failed runs"
    echo
    for x in "${FAILURES[@]}"; do echo "- $x"; done
    echo
}

TCK=${TCK:-$(getconf CLK_TCK)}

# machine_busy: CPU seconds the whole machine spent busy so far (all CPUs; /proc/stat: user nice
# system irq softirq steal).
machine_busy() { awk -v t="$TCK" '$1 == "cpu" { printf "%.2f\n", ($2 + $3 + $4 + $7 + $8 + $9) / t }' /proc/stat; }

# cpu_seconds PID: CPU seconds (user + system) of a process, all threads, so far.
cpu_seconds() { sed 's/^.*) //' "/proc/$1/stat" | awk -v t="$TCK" '{ printf "%.2f\n", ($12 + $13) / t }'; }

# worker_cpu_seconds PID: CPU seconds of the process's threads named rnnd-worker-*.
worker_cpu_seconds() {
    local pid="$1" tid total=0 cpu
    for tid in $(ls "/proc/$pid/task"); do
        [[ "$(cat "/proc/$pid/task/$tid/comm" 2>/dev/null)" == rnnd-worker-* ]] || continue
        cpu=$(sed 's/^.*) //' "/proc/$pid/task/$tid/stat" | awk -v t="$TCK" '{ printf "%.2f", ($12 + $13) / t }')
        total=$(awk -v a="$total" -v b="$cpu" 'BEGIN { printf "%.2f", a + b }')
    done
    echo "$total"
}

# require_whole_number OPTION VALUE: exits 2 unless VALUE is a whole number of at least 1.
require_whole_number() {
    [[ "$2" =~ ^[0-9]+$ ]] && [ "$2" -ge 1 ] || { echo "$BENCH_NAME: $1 must be a whole number >= 1" >&2; exit 2; }
}

# require_tools TOOL...: exits 2 when one is not on the PATH.
require_tools() {
    local tool
    for tool in "$@"; do
        command -v "$tool" >/dev/null || { echo "$BENCH_NAME: $tool not found" >&2; exit 2; }
    done
}

# build_release BUILD: with BUILD=1, `swift build -c release` when $RNND or $E2E is missing or
# older than its sources; exits 2 when the build fails or, after it, a binary is missing.
build_release() {
    local stale=0
    if [ ! -x "$RNND" ] || [ ! -x "$E2E" ] \
        || [ -n "$(find Sources Package.swift -newer "$RNND" -type f -print -quit)" ] \
        || [ -n "$(find Sources/rnnd-e2e Sources/ZeroMQ Package.swift -newer "$E2E" -type f -print -quit)" ]; then
        stale=1
    fi
    if [ "$1" = 1 ] && [ "$stale" = 1 ]; then
        echo "$BENCH_NAME: building: swift build -c release" >&2
        swift build -c release >&2 || { echo "$BENCH_NAME: the release build failed" >&2; exit 2; }
    fi
    [ -x "$RNND" ] && [ -x "$E2E" ] || { echo "$BENCH_NAME: $RNND or $E2E missing (run without --no-build)" >&2; exit 2; }
}

# run_metadata: sets DATE, COMMIT (with the number of modified tracked files), CPU_MODEL, NPROC,
# LOAD_START and T_START for a results file's header.
run_metadata() {
    DATE=$(date -u +%Y-%m-%dT%H:%M:%SZ)
    COMMIT=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
    local dirty
    dirty=$(git --no-optional-locks status --porcelain --untracked-files=no 2>/dev/null | wc -l)
    [ "$dirty" -gt 0 ] && COMMIT="$COMMIT (+ $dirty modified tracked files)"
    CPU_MODEL=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
    NPROC=$(nproc)
    LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
    T_START=$(date +%s)
}

# wait_ready LOG PID: waits up to 15 s for rnnd's `ready:` line in LOG; false when it does not
# come or the process ends first.
wait_ready() {
    local k
    for k in $(seq 150); do
        grep -q "ready:" "$1" 2>/dev/null && return 0
        alive "$2" || return 1
        sleep 0.1
    done
    return 1
}

# stop_instance NAME PID LOG STOPPED: SIGTERM to an rnnd, up to 15 s to exit (then SIGKILL); a
# failure unless it exits 0 and logs its `stopped:` line, which goes to the file STOPPED.
stop_instance() {
    local name="$1" pid="$2" n=0 status
    kill -TERM "$pid"
    while alive "$pid" && [ "$n" -lt 300 ]; do sleep 0.05; n=$((n + 1)); done
    alive "$pid" && { kill -KILL "$pid"; fail "$name: did not stop within 15 s of SIGTERM"; }
    set +e; wait "$pid"; status=$?; set -e
    [ "$status" = 0 ] || fail "$name: exited with status $status"
    { grep -o 'stopped: .*' "$3" || true; } | tail -n 1 > "$4"
    [ -s "$4" ] || fail "$name: logged no stopped: line"
}

# tool_cpu JSON: the user + system CPU seconds an rnnd-e2e tool reported in its JSON line.
tool_cpu() { awk -v u="$(j "$1" .cpu_user_s)" -v s="$(j "$1" .cpu_sys_s)" 'BEGIN { printf "%.2f", u + s }'; }

# other_work BUSY0 BUSY1 CPU...: what the machine was busy with between the two machine_busy
# readings besides the given processes' CPU seconds (other work sharing it; a little is the
# kernel's own), never below 0.
other_work() {
    local busy0="$1" busy1="$2"
    shift 2
    awk -v a="$busy0" -v b="$busy1" -v own="$*" 'BEGIN { n = split(own, c, " "); x = b - a; for (i = 1; i <= n; i++) x -= c[i]; printf "%.1f", x < 0 ? 0 : x }'
}

# parse_run_options HELP ARGS...: the options of the scripts that repeat runs: --seconds S,
# --repeat R, --no-build, and -h (prints the script's comment lines HELP, as "2,19"); sets S,
# REPEAT and BUILD (keeping the script's defaults) and checks them.
parse_run_options() {
    local help="$1"
    shift
    while [ $# -gt 0 ]; do
        case "$1" in
            --seconds) S="$2"; shift 2 ;;
            --repeat) REPEAT="$2"; shift 2 ;;
            --no-build) BUILD=0; shift ;;
            -h|--help) sed -n "${help}p" "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
            *) echo "$BENCH_NAME: unknown argument: $1" >&2; exit 2 ;;
        esac
    done
    require_whole_number --seconds "$S"
    require_whole_number --repeat "$REPEAT"
}

# prepare_out: an empty $OUT, the directory of $RESULTS, and an empty $CMDS in $OUT.
prepare_out() {
    rm -rf "$OUT"
    mkdir -p "$OUT" "$(dirname "$RESULTS")"
    CMDS="$OUT/commands.txt"
    : > "$CMDS"
}

# report_tail: the end of a results file: every run's `stopped:` line ($OUT/*.stopped), the
# failed runs, the commands.
report_tail() {
    local f
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
}

# publish_results MD: the finished results file MD becomes $RESULTS and is printed; false when a
# run failed (the script's exit status).
publish_results() {
    mv "$1" "$RESULTS"
    cat "$RESULTS"
    echo "$BENCH_NAME: wrote ${RESULTS#$ROOT/}; logs in ${OUT#$ROOT/}/" >&2
    [ "${#FAILURES[@]}" -eq 0 ]
}

# scrape: rnnd's metrics from $URL into $OUT/scrape.txt; metric NAME [LABELS]: the value of
# NAME{LABELS} in the last scrape, 0 when absent.
scrape() { curl -s --max-time 5 -o "$OUT/scrape.txt" "$URL"; }
metric() {
    local pattern="^$1"
    [ -n "${2:-}" ] && pattern="$pattern\\{$2\\}" || pattern="$pattern "
    awk -v p="$pattern" '$0 ~ p { v = $NF } END { printf "%.0f\n", v + 0 }' "$OUT/scrape.txt"
}
