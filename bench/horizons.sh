#!/usr/bin/env bash
# ETTh2 and ETTm1 forecast 1, 24, 48 and 96 steps ahead, under the protocol of DSOF (Lau, Shao,
# Yeung, "Fast and Slow Streams for Online Time Series Forecasting Without Information Leakage",
# ICLR 2025): the 7 columns in and out, each z-scored with the mean and population standard
# deviation of the training rows; a warm-up pass over the rows before the test rows, then online
# (`rnnd replay --horizon H --warmup-rows F`: each step learned only once its target has arrived);
# MSE on the z-scored values over every forecast origin whose H targets all lie in the test rows,
# next to persistence, the one-day seasonal naive and the best published leakage-free figure; the
# bands' coverage, their coverage over every 500 consecutive origins, and their interval score
# (bench/accuracy_tools.py horizons). H = 1 keeps docs/accuracy.md's protocol (bench/lib/protocol.sh).
# Writes bench/results/horizons.md (and prints it).
#
# Usage: bench/horizons.sh [--no-build] [--label NAME] [--horizons "1 24 48 96"] [--keep]
#                          [--rnnd PATH] [-- EXTRA REPLAY FLAGS]
#   --label NAME   writes bench/results/horizons-NAME.md, outputs under bench/out/horizons/NAME/
#   --horizons     the horizons to run (default "1 24 48 96")
#   --keep         keeps the predictions files (ETTm1 at H = 96: about 4 million lines, 1 GB)
#   --rnnd PATH    replays with this binary instead of .build/release/rnnd (and does not build)
# Two replays at a time. Needs jq and python3 with numpy. Outputs under bench/out/horizons/.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$ROOT/scripts/lib/build-env.sh"   # the CPU the kernels are compiled for
cd "$ROOT"
RNND="$ROOT/.build/release/rnnd"
DATA="${DATA:-$ROOT/../shared/data}"
TOOLS="$ROOT/bench/accuracy_tools.py"
BUILD=1
LABEL=""
HORIZONS="1 24 48 96"
KEEP=0
EXTRA=()
ARGS=("$@")
while [ $# -gt 0 ]; do
    case "$1" in
        --no-build) BUILD=0; shift ;;
        --label) LABEL="${2:?--label needs a name}"; shift 2 ;;
        --horizons) HORIZONS="${2:?--horizons needs a list}"; shift 2 ;;
        --keep) KEEP=1; shift ;;
        --rnnd) RNND="${2:?--rnnd needs a path}"; BUILD=0; shift 2 ;;
        --) shift; EXTRA=("$@"); break ;;
        -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
        *) echo "horizons.sh: unknown argument: $1" >&2; exit 2 ;;
    esac
done
[[ -z "$LABEL" || "$LABEL" =~ ^[A-Za-z0-9._-]+$ ]] || { echo "horizons.sh: --label takes letters, digits, . _ -" >&2; exit 2; }
for h in $HORIZONS; do
    [[ "$h" =~ ^[1-9][0-9]*$ ]] || { echo "horizons.sh: --horizons takes positive integers, not $h" >&2; exit 2; }
done
[ -d "$DATA/ett" ] || { echo "horizons.sh: no ETT data at $DATA/ett (set DATA=DIR)" >&2; exit 2; }
command -v jq >/dev/null || { echo "horizons.sh: jq not found" >&2; exit 2; }
python3 -c "import numpy" 2>/dev/null || { echo "horizons.sh: python3 with numpy needed" >&2; exit 2; }
if [ "$BUILD" = 1 ]; then swift build -c release >&2; fi
[ -x "$RNND" ] || { echo "horizons.sh: no rnnd binary at $RNND" >&2; exit 2; }

OUT="$ROOT/bench/out/horizons/${LABEL:-default}"
RESULTS="$ROOT/bench/results/horizons${LABEL:+-$LABEL}.md"
rm -rf "$OUT"
mkdir -p "$OUT" "$(dirname "$RESULTS")"
source "$ROOT/bench/lib/protocol.sh"   # protocol_csv: the H = 1 rows
rel() { echo "${1#"$ROOT"/}"; }

# Every replay uses one copy of the binary: .build/release/rnnd may be rebuilt during the run.
BIN="$OUT/rnnd"
cp "$RNND" "$BIN"
BIN_NOTE="$(rel "$RNND") of $(date -u -r "$RNND" +%Y-%m-%dT%H:%M:%SZ), sha256 $(sha256sum "$BIN" | cut -c1-12)"
START=$SECONDS

# The protocol of each file at H >= 24 (statistics from the first 20%, test from 25% on) and
# at H = 1 (docs/accuracy.md: both files' first 14,400 rows, statistics of 2,880, test from 3,600).
#   name: stats rows, rows, first test row, rows in a day
declare -A LONG=([ETTh2]="2880 14400 3600 24" [ETTm1]="11520 57600 14400 96")
FILES=(ETTh2 ETTm1)
for name in "${FILES[@]}"; do
    [ -f "$DATA/ett/$name.csv" ] || { echo "horizons.sh: $DATA/ett/$name.csv missing" >&2; exit 2; }
    read -r stats rows _ _ <<< "${LONG[$name]}"
    python3 "$TOOLS" zscore "$DATA/ett/$name.csv" "$OUT/$name.long.csv" --stats-rows "$stats" --rows "$rows"
    protocol_csv "$name" "$OUT/$name.protocol.csv"
done

# run NAME H: the replay, then its scores; the predictions file is deleted unless --keep.
run() {
    local name=$1 h=$2 csv first period base
    read -r _ _ first period <<< "${LONG[$name]}"
    csv="$OUT/$name.long.csv"
    if [ "$h" = 1 ]; then first=3600; csv="$OUT/$name.protocol.csv"; fi
    base="$OUT/$name-h$h"
    local t0=$SECONDS
    "$BIN" replay "$csv" --horizon "$h" --warmup-rows "$first" --metrics "$base.json" --predictions "$base.csv" \
        ${EXTRA[@]+"${EXTRA[@]}"} > "$base.txt"
    python3 "$TOOLS" horizons "$base.csv" "$csv" --horizon "$h" --first-test-row "$first" --period "$period" \
        --coverage "$(jq -r '.model.coverage' "$base.json")" --window 500 > "$base.horizons.json"
    [ "$KEEP" = 1 ] || rm -f "$base.csv"
    echo "horizons.sh: $name H=$h done in $((SECONDS - t0)) s" >&2
}
command_of() {   # the two commands of run NAME H, as the results list them
    local name=$1 h=$2 first period csv
    read -r _ _ first period <<< "${LONG[$name]}"
    csv="$OUT/$name.long.csv"
    if [ "$h" = 1 ]; then first=3600; csv="$OUT/$name.protocol.csv"; fi
    echo "$(rel "$BIN") replay $(rel "$csv") --horizon $h --warmup-rows $first --metrics $(rel "$OUT")/$name-h$h.json --predictions $(rel "$OUT")/$name-h$h.csv${EXTRA[*]:+ ${EXTRA[*]}}"
    echo "python3 bench/accuracy_tools.py horizons $(rel "$OUT")/$name-h$h.csv $(rel "$csv") --horizon $h --first-test-row $first --period $period --coverage C --window 500"
}

# The longest replays first, two at a time.
JOBS=()
for name in ETTm1 ETTh2; do
    for h in $(tr ' ' '\n' <<< "$HORIZONS" | sort -rn); do JOBS+=("$name $h"); done
done
trap 'kill $(jobs -p) 2>/dev/null || true' EXIT   # a failed job stops the other
running=0
for job in "${JOBS[@]}"; do
    read -r name h <<< "$job"
    echo "horizons.sh: $name H=$h" >&2
    run "$name" "$h" &
    running=$((running + 1))
    if [ "$running" -ge 2 ]; then wait -n; running=$((running - 1)); fi
done
while [ "$running" -gt 0 ]; do wait -n; running=$((running - 1)); done
ELAPSED=$((SECONDS - START))

# The best published leakage-free MSE, with its footnote.
published() {
    case "$1 $2" in
        "ETTh2 1") echo "0.365 [a]" ;;
        "ETTm1 1") echo "0.081 [a]" ;;
        "ETTh2 24") echo "1.694 [b]" ;;
        "ETTh2 48") echo "2.988 [c]" ;;
        "ETTm1 24") echo "0.418 [d]" ;;
        "ETTm1 48") echo "0.554 [d]" ;;
        *) echo "—" ;;
    esac
}
# Numbers for a table: d decimals (fixed); g: 3 decimals, 2 from 10 on, none from 1000 on; pct: a share in %.
g='def fixed(d): (. * pow(10; d) | round) as $x | ($x | fabs) as $a | pow(10; d) as $p
       | "\(if $x < 0 then "-" else "" end)\($a / $p | floor)" + (if d > 0 then "." + ("000000" + ($a % $p | tostring))[-d:] else "" end);
   def g: if . == null then "—" elif (. | fabs) >= 1000 then fixed(0) elif (. | fabs) >= 10 then fixed(2) else fixed(3) end;
   def pct: if . == null then "—" else (. * 100 | fixed(1)) + "%" end;'

rows=() details=() complete=()
for name in "${FILES[@]}"; do
    for h in $HORIZONS; do
        f="$OUT/$name-h$h.horizons.json"
        rows+=("$(jq -r --arg name "$name" --arg pub "$(published "$name" "$h")" "$g"'
            "| \($name) | \(.horizon) | \(.origins) | **\(.mse | g)** | \(.persistence | g) | \(.seasonal | g) | \($pub) | \(.coverage | pct) | \(.rolling_min | pct)–\(.rolling_max | pct) | \(.interval_score | g) |"
        ' "$f")")
        complete+=("$(jq -r --arg name "$name" '"| \($name) | \(.horizon) | \(.origins) | \(.forecasts) | \(.missing) | \(.missing_bands) | \(.duplicate_lines) |"' "$f")")
        details+=("" "### $name, H = $h" "" \
            "| step | MSE rnnd | persistence | seasonal naive | coverage | rolling-500 min–max | mean width | interval score |" \
            "|---:|---:|---:|---:|---:|---:|---:|---:|")
        while IFS= read -r line; do details+=("$line"); done < <(jq -r "$g"'
            .per_step[] | select([.step] | inside([1, 6, 12, 24, 48, 96])) |
            "| \(.step) | \(.mse | g) | \(.persistence | g) | \(.seasonal | g) | \(.coverage | pct) | \(.rolling_min | pct)–\(.rolling_max | pct) | \(.mean_width | g) | \(.interval_score | g) |"
        ' "$f")
    done
done

{
    echo "# ETTh2 and ETTm1 several steps ahead, without information leakage"
    echo
    echo "Produced by \`bench/horizons.sh${ARGS[*]:+ ${ARGS[*]}}\` on $(date -u +%Y-%m-%dT%H:%M:%SZ), rnnd commit" \
        "\`$(git rev-parse --short HEAD)$(git diff --quiet HEAD -- Sources Package.swift || echo ' + changes')\`," \
        "binary $BIN_NOTE, in $((ELAPSED / 60)) min $((ELAPSED % 60)) s (two replays at a time, $(nproc) cores)."
    echo
    echo "The protocol of DSOF (Lau, Shao, Yeung, \"Fast and Slow Streams for Online Time Series Forecasting"
    echo "Without Information Leakage\", ICLR 2025): the 7 columns in and out, each z-scored with the mean and"
    echo "population standard deviation of the training rows; \`rnnd replay --horizon H --warmup-rows F\` (one pass over"
    echo "rows 0 … F − 1, not scored, then online; each step is learned only once its target has arrived, so nothing"
    echo "is learned from a value before it is forecast). Scored on every forecast origin o whose H targets all lie in"
    echo "the test rows (o + 1 ≥ F, o + H ≤ the last row): MSE of the z-scored values over the 7 columns, the H steps"
    echo "and those origins (\`bench/accuracy_tools.py horizons\`)."
    echo
    echo "Model: rnnd's default, an LSTM of 64 hidden units (k1 = 2; at H = 1 a window of 20 and Adafactor at 0.002; beyond,"
    echo "as the horizon makes them, a window of max(20, H + 1), Adam at 0.001 and the direct expert), unless the replay"
    echo "flags in Commands say otherwise."
    echo
    echo "- H ≥ 24: ETTh2, the first 14,400 rows, statistics of rows 0 … 2,879, F = 3,600; ETTm1, the first 57,600"
    echo "  rows, statistics of rows 0 … 11,519, F = 14,400 (statistics from the first 20%, test from 25% on)."
    echo "- H = 1: docs/accuracy.md's protocol (bench/lib/protocol.sh) for both files: the first 14,400 rows,"
    echo "  statistics of rows 0 … 2,879, F = 3,600. On ETTm1 that is the first 150 days, not the 600 of H ≥ 24."
    echo
    echo "Persistence forecasts the value at the origin; the one-day seasonal naive forecasts step h with the value at"
    echo "o + h − P·⌈h/P⌉ (P = 24 rows on ETTh2, 96 on ETTm1), the latest value at the same time of day. Bands: the"
    echo "share of values inside their band (90% asked), pooled over columns; rolling-500: the lowest and highest"
    echo "share over every run of 500 consecutive origins, over all steps; interval score (Gneiting and Raftery 2007,"
    echo "α = 1 − coverage asked): width + (2/α)(lower − y) below the band, + (2/α)(y − upper) above it, averaged over"
    echo "columns and origins, then over steps (lower is better; in z-score units)."
    echo
    echo "| file | H | rows scored (origins) | MSE rnnd | persistence | one-day seasonal naive | best published leakage-free | band coverage | rolling-500 coverage min–max (all steps) | mean interval score |"
    echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    printf '%s\n' "${rows[@]}"
    echo
    echo "Best published figures (MSE, same files, split and scaling):"
    echo
    echo "- [a] H = 1: the best published online method, as docs/accuracy.md (\"ETTh2 and ETTm1 under the"
    echo "  online-forecasting protocol\") and bench/accuracy.sh quote it; neither names the paper."
    echo "- [b] DLinear + DSOF without its student, DSOF (ICLR 2025) Table 3."
    echo "- [c] FITS + DSOF, DSOF (ICLR 2025) Table 2."
    echo "- [d] OneNet + DSOF, DSOF (ICLR 2025) Table 2."
    echo "- H = 96: DSOF reports H = 1, 24 and 48 only; no leakage-free published figure was found for H = 96."
    echo
    echo "Completeness: every forecast of every scored origin (each step and column) must be in the predictions file."
    echo
    echo "| file | H | origins | forecasts expected | missing | without a band | duplicate lines |"
    echo "|---|---:|---:|---:|---:|---:|---:|"
    printf '%s\n' "${complete[@]}"
    echo
    echo "## Per step"
    echo
    echo "Each (file, H): steps 1, 6, 12, 24, 48 and 96, those that exist; mean width in z-score units."
    printf '%s\n' "${details[@]}"
    echo
    echo "## Commands"
    echo
    echo "Standardised files: \`python3 bench/accuracy_tools.py zscore ETT.csv OUT --stats-rows S --rows N\` (H ≥ 24, the"
    echo "values above; \`NAME.long.csv\`) and bench/lib/protocol.sh's \`protocol_csv\` (H = 1; \`NAME.protocol.csv\`)."
    echo "$(rel "$BIN") is a copy of $(rel "$RNND") taken at the start; C is the replay's coverage (\`.model.coverage\` of its"
    echo "metrics). Outputs in $(rel "$OUT")/ (each replay's table in \`NAME-hH.txt\`, the scores in \`NAME-hH.horizons.json\`)."
    echo
    echo '```'
    for name in "${FILES[@]}"; do for h in $HORIZONS; do command_of "$name" "$h"; done; done
    echo '```'
} | tee "$RESULTS"
