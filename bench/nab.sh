#!/usr/bin/env bash
# rnnd's anomaly score on the Numenta Anomaly Benchmark (../shared/nab-corpus, or CORPUS=DIR):
#   1. every one of the 58 files replayed through rnnd's per-stream forecaster as the daemon
#      learns a new stream (one stream per file, from its first sample, default settings), its
#      `anomaly` column written as a NAB results file (`rnnd-nab detect`);
#   2. scored by `rnnd-nab score` (threshold optimised per profile, as NAB does), per profile
#      and per category;
#   3. the scorer's reproduction of the two published detectors the corpus holds.
# Writes bench/results/nab.md (and prints it).
#
# Usage: bench/nab.sh [--no-build] [--jobs N] [--seeds N] [-- EXTRA REPLAY FLAGS]
#   --seeds N  also replays and scores the corpus with the network's weight seeds 1 to N - 1
#              (`rnnd replay --seed`), and reports the three scores per seed with their mean and
#              standard deviation: the default seed's figures alone include its learning path's
#              luck (docs/anomalies.md). About 25 s a seed.
# Outputs under bench/out/nab/: the results files, rnnd.json, and rnnd-detail.csv (per profile,
# each window's earliest detection or, when missed, its highest score, and each false alarm);
# with --seeds, seed-S/ and seed-S.txt per further seed.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$ROOT/scripts/lib/build-env.sh"   # the CPU the kernels are compiled for
cd "$ROOT"
RNND="$ROOT/.build/release/rnnd"
NAB="$ROOT/.build/release/rnnd-nab"
CORPUS="${CORPUS:-$ROOT/../shared/nab-corpus}"
OUT="$ROOT/bench/out/nab"
RESULTS="$ROOT/bench/results/nab.md"
BUILD=1
JOBS="$(nproc)"
SEEDS=1
EXTRA=()
while [ $# -gt 0 ]; do
    case "$1" in
        --no-build) BUILD=0; shift ;;
        --jobs) JOBS="$2"; shift 2 ;;
        --seeds) SEEDS="$2"; shift 2
            [[ "$SEEDS" =~ ^[1-9][0-9]*$ ]] || { echo "nab.sh: --seeds needs a count of 1 or more" >&2; exit 2; } ;;
        --) shift; EXTRA=("$@"); break ;;
        -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
        *) echo "nab.sh: unknown argument: $1" >&2; exit 2 ;;
    esac
done
if [ "$SEEDS" -gt 1 ] && [[ " ${EXTRA[*]-} " == *" --seed "* ]]; then
    echo "nab.sh: --seeds sets the replays' --seed itself; leave it out of the extra flags" >&2; exit 2
fi
[ -d "$CORPUS/data" ] || { echo "nab.sh: no NAB corpus at $CORPUS (set CORPUS=DIR)" >&2; exit 2; }
if [ "$BUILD" = 1 ]; then swift build -c release --product rnnd >&2 && swift build -c release --product rnnd-nab >&2; fi
rm -rf "$OUT"
mkdir -p "$OUT"

# Replays every file of the corpus into the results directory $1, with the replay flags after it.
detect() {
    local command=("$NAB" detect --corpus "$CORPUS" --out "$1" --rnnd "$RNND" --jobs "$JOBS")
    shift
    [ $# -gt 0 ] && command+=(-- "$@")
    "${command[@]}" >&2
}
detect "$OUT/rnnd" ${EXTRA[@]+"${EXTRA[@]}"}
"$NAB" score --corpus "$CORPUS" --results "$OUT/rnnd" --json "$OUT/rnnd.json" --detail "$OUT/rnnd-detail.csv" > "$OUT/rnnd.txt"
for d in numenta windowedGaussian; do
    "$NAB" score --corpus "$CORPUS" --results "$CORPUS/results/$d" --detector "$d" > "$OUT/$d.txt"
done
for ((seed = 1; seed < SEEDS; seed++)); do
    detect "$OUT/seed-$seed" ${EXTRA[@]+"${EXTRA[@]}"} --seed "$seed"
    "$NAB" score --corpus "$CORPUS" --results "$OUT/seed-$seed" > "$OUT/seed-$seed.txt"
done

# The three normalised scores of a score report, on one line.
normalised() { awk '$1 == "standard" || $1 ~ /^reward_low_F[PN]_rate$/ { printf "%s ", $4 } END { print "" }' "$1" | cut -d' ' -f1-3; }

{
    echo "# rnnd on the Numenta Anomaly Benchmark"
    echo
    seeds_flag=""
    [ "$SEEDS" -gt 1 ] && seeds_flag=" --seeds $SEEDS"
    echo "Produced by \`bench/nab.sh$seeds_flag${EXTRA:+ -- ${EXTRA[*]}}\` on $(date -u +%Y-%m-%d), rnnd $(git -C "$ROOT" rev-parse --short HEAD)."
    echo "Every file replayed with \`rnnd replay FILE\` (default settings: the default model, LSTM with 64"
    echo "hidden units, unless the flags above say otherwise; one new stream per file), its"
    echo "\`anomaly\` column taken as the detector's score (null: 0), scored by \`rnnd-nab score\`"
    echo "(bench/results/nab-scorer.md checks it against NAB's published scores). What the figures"
    echo "mean and the published scoreboard: docs/anomalies.md."
    echo
    echo "## rnnd"
    echo
    sed 's/^/    /' "$OUT/rnnd.txt"
    if [ "$SEEDS" -gt 1 ]; then
        echo
        echo "## Weight seeds 0 to $((SEEDS - 1))"
        echo
        echo "The same replays with \`rnnd replay --seed S\` (seed 0 is the default, above): normalised scores."
        echo
        echo "| seed | standard | low FP | low FN |"
        echo "|---:|---:|---:|---:|"
        {
            echo "0 $(normalised "$OUT/rnnd.txt")"
            for ((seed = 1; seed < SEEDS; seed++)); do echo "$seed $(normalised "$OUT/seed-$seed.txt")"; done
        } | awk '{ print "| " $1 " | " $2 " | " $3 " | " $4 " |"; n++; for (i = 2; i <= 4; i++) { s[i] += $i; q[i] += $i * $i } }
            END { printf "| mean (sd) |"; for (i = 2; i <= 4; i++) { m = s[i] / n; v = n > 1 ? (q[i] - n * m * m) / (n - 1) : 0; printf " %.2f (%.2f) |", m, sqrt(v > 0 ? v : 0) }; print "" }'
    fi
    for d in numenta windowedGaussian; do
        echo
        echo "## $d (published results, rescored here)"
        echo
        sed 's/^/    /' "$OUT/$d.txt"
    done
} > "$RESULTS"
cat "$RESULTS"
