# Helpers shared by the benchmark scripts that start processes (bench/e2e.sh, bench/shards.sh).
# Sourced after the script sets ROOT (the repository) and CMDS (its commands.txt).

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
