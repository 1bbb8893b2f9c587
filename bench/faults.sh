#!/usr/bin/env bash
# What real sensor faults do to a stream (issue 13): glitches, stuck values, clock faults, gaps.
#
#   For each series (the bundled NAB files in data/, and from ../shared/data, or DATA=DIR, the
#   NAB CPU file, ETTm1's OT column and ETTh1 as a 7-channel vector; a series whose file is absent
#   there is skipped with a note), a copy cut at its fault row (40% into the file) + 5,000 rows,
#   and one copy per fault kind with that fault injected (bench/faults.py prepare); `rnnd replay`
#   with the default settings on each, with --predictions and --metrics; then the figures against
#   the clean run and the goals of issue 13's "Show" as pass/fail columns (bench/faults.py report).
#
# Usage: bench/faults.sh [--files a,b] [--faults kind|family,...] [--no-build]
#   --files   series among nyc_taxi, machine_temperature, cpu_asg, ETTm1_OT, ETTh1 (default: all)
#   --faults  kinds (spike_-9999, spike_0, spike_65535, unit_x1000, sign_flip, burst_10,
#             noise_burst, stuck_6h, level_shift, gap_1h, gap_1d, future_2100, clock_back_1h,
#             dst_repeat, missing_channel, boot_-9999, boot_65535) or families (spike, burst, level,
#             gap, clock, channel, boot)
# A full run writes bench/results/faults.md; a subset run writes bench/out/faults/faults.md.
# Both print it. Files and outputs of every replay go to bench/out/faults/. Needs python3.
# Exit status: 0 when every replay ran (the goals do not set it), 1 when a replay or the report
# failed, 2 on a usage or build error.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$ROOT/scripts/lib/build-env.sh"   # the CPU the kernels are compiled for
cd "$ROOT"
RNND="$ROOT/.build/release/rnnd"
E2E="$ROOT/.build/release/rnnd-e2e"
DATA="${DATA:-$ROOT/../shared/data}"
OUT="$ROOT/bench/out/faults"
TOOLS="$ROOT/bench/faults.py"
FILES=""
FAULTS=""
BUILD=1
BENCH_NAME=faults.sh

source "$ROOT/bench/lib/common.sh"

ARGS=("$@")
while [ $# -gt 0 ]; do
    case "$1" in
        --files) FILES="${2:?--files needs a list}"; shift 2 ;;
        --faults) FAULTS="${2:?--faults needs a list}"; shift 2 ;;
        --no-build) BUILD=0; shift ;;
        -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
        *) echo "faults.sh: unknown argument: $1" >&2; exit 2 ;;
    esac
done
if [ -z "$FILES$FAULTS" ]; then
    RESULTS="$ROOT/bench/results/faults.md"
    SUBSET=false
else
    RESULTS="$OUT/faults.md"
    SUBSET=true
fi
require_tools python3 awk
build_release "$BUILD"
prepare_out
run_metadata

PREPARE=(python3 "$TOOLS" prepare "$OUT" --data "$DATA" --bundled "$ROOT/data")
[ -n "$FILES" ] && PREPARE+=(--files "$FILES")
[ -n "$FAULTS" ] && PREPARE+=(--faults "$FAULTS")
echo "faults.sh: preparing the files" >&2
status=0
"${PREPARE[@]}" || status=$?
[ "$status" = 0 ] || { echo "faults.sh: preparing the files failed" >&2; exit "$status"; }

# Every replay, one after another (the machine has 2 cores; a replay uses one).
total=$(wc -l < "$OUT/runs.tsv")
n=0
while IFS=$'\t' read -r -a run; do
    n=$((n + 1))
    name="${run[0]}" csv="${run[1]}"
    flags=("${run[@]:2}")
    base="$OUT/$name"
    echo "faults.sh: [$n/$total] $name" >&2
    cmd=("$RNND" replay "$csv" ${flags[@]+"${flags[@]}"} --predictions "$base.predictions.csv" --metrics "$base.json")
    record "$name" "${cmd[@]}"
    if ! "${cmd[@]}" > "$base.txt" 2> "$base.stderr"; then
        cat "$base.stderr" >&2
        echo "faults.sh: FAILED: $name: rnnd replay exited non-zero (see ${base#$ROOT/}.stderr)" >&2
        exit 1
    fi
done < "$OUT/runs.tsv"

LOAD_END=$(cut -d' ' -f1-3 /proc/loadavg)
ELAPSED=$(( $(date +%s) - T_START ))
python3 - "$OUT/meta.json" <<EOF
import json, sys
json.dump({
    "command": "bench/faults.sh${ARGS[*]:+ ${ARGS[*]}}",
    "date": "$DATE", "commit": "$COMMIT", "cpu": "$CPU_MODEL", "nproc": "$NPROC",
    "load_start": "$LOAD_START", "load_end": "$LOAD_END", "seconds": $ELAPSED, "runs": $total,
    "subset": $( [ "$SUBSET" = true ] && echo True || echo False ), "root": "$ROOT",
}, open(sys.argv[1], "w"))
EOF
echo "faults.sh: computing the figures" >&2
python3 "$TOOLS" report "$OUT" "$OUT/faults.tmp.md" --meta "$OUT/meta.json" > /dev/null \
    || { echo "faults.sh: the report failed" >&2; exit 1; }
{
    cat "$OUT/faults.tmp.md"
    echo "## Commands"
    echo
    echo '```'
    cat "$CMDS"
    echo '```'
} > "$OUT/faults.full.md"
rm "$OUT/faults.tmp.md"
publish_results "$OUT/faults.full.md"
