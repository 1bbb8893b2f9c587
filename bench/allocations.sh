#!/usr/bin/env bash
# Proves (or disproves) that rnnd's per-sample path does not allocate.
#
# For each configuration it runs `rnnd bench --samples N --seconds 1 --hidden H` under
# valgrind memcheck for two sample counts N1 < N2, reads "total heap usage: X allocs" and
# prints X for both and (X2 - X1) / (N2 - N1), the heap allocations per extra learned sample.
# The bench's setup (argument parsing, the synthetic stream, the trainer, the inference loop,
# the output) allocates the same whatever N is, so only the difference matters: it must be 0.
#
# When a configuration allocates per sample, the script reruns it with
# --xtree-memory=full for N1/10 and N2/10 samples and prints the functions whose inclusive allocation count
# grows with N (the call path of the allocation), unless --no-where is given.
#
# Exit status: 0 when every difference is exactly 0, 1 when any is > 0, 2 on a usage or run error.
#
# Usage: bench/allocations.sh [--n1 2000] [--n2 4000] [--hidden 16] [--no-where]
# Logs and xtree files go to bench/out/allocations/ (ignored by git).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$ROOT/scripts/lib/build-env.sh"   # the CPU the kernels are compiled for
RNND="${RNND:-$ROOT/.build/release/rnnd}"
OUT="$ROOT/bench/out/allocations"
N1=2000
N2=4000
HIDDEN=16
WHERE=1

while [ $# -gt 0 ]; do
    case "$1" in
        --n1) N1="$2"; shift 2 ;;
        --n2) N2="$2"; shift 2 ;;
        --hidden) HIDDEN="$2"; shift 2 ;;
        --no-where) WHERE=0; shift ;;
        -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
        *) echo "unknown argument: $1" >&2; exit 2 ;;
    esac
done
if ! [ "$N2" -gt "$N1" ] 2>/dev/null; then echo "--n2 must be greater than --n1" >&2; exit 2; fi
command -v valgrind >/dev/null || { echo "valgrind not found" >&2; exit 2; }
if [ ! -x "$RNND" ]; then
    echo "$RNND missing: building with swift build -c release" >&2
    (cd "$ROOT" && swift build -c release) || exit 2
fi
mkdir -p "$OUT"
# Valgrind 3.19 (Debian 12) cannot read the DWARF 5 debug information Swift 6.3 writes, and gives
# up on the binary; a copy without it (`strip -g` keeps the symbol table, so --xtree-memory still
# names the functions) is what runs under valgrind.
if command -v strip >/dev/null; then
    strip -g -o "$OUT/rnnd" "$RNND"
    RUN="$OUT/rnnd"
else
    RUN="$RNND"
fi

# model update-every [horizon] (the window and optimizer are the bench defaults: k2 = 20, Adafactor, and
# k2 = 32 at k1 = 32; beyond horizon 1 those the horizon gives, with the direct expert); lstm 2 is
# the default learner
CONFIGS=(
    "lstm 1" "lstm 2" "lstm 32" "lstm 2 48"
    "gru 1" "gru 32"
    "elman 1" "elman 32"
)

# heap_allocs LOG -> the X of "total heap usage: X allocs" (commas removed)
heap_allocs() {
    sed -n 's/.*total heap usage: \([0-9,]*\) allocs.*/\1/p' "$1" | tr -d , | tail -n 1
}

run_memcheck() { # model k1 horizon n log [extra valgrind args...]
    local model="$1" k1="$2" horizon="$3" n="$4" log="$5"; shift 5
    valgrind --tool=memcheck "$@" --log-file="$log" \
        "$RUN" bench --model "$model" --update-every "$k1" --horizon "$horizon" --hidden "$HIDDEN" \
        --samples "$n" --seconds 1 >"$log.stdout" 2>&1
}

echo "rnnd: $RNND ($(cd "$ROOT" && git rev-parse --short HEAD 2>/dev/null || echo '?'))"
echo "command: valgrind --tool=memcheck $RNND bench --model M --update-every K1 --horizon P --hidden $HIDDEN --samples N --seconds 1"
echo
printf '%-6s %4s %4s %7s %12s %12s %12s %16s\n' model H k1 horizon "allocs N=$N1" "allocs N=$N2" difference "per extra sample"
status=0
failing=()
for cfg in "${CONFIGS[@]}"; do
    read -r model k1 horizon <<<"$cfg"
    horizon="${horizon:-1}"
    a=() ; ok=1
    for n in "$N1" "$N2"; do
        log="$OUT/memcheck-$model-k$k1-h$HIDDEN-p$horizon-n$n.log"
        if ! run_memcheck "$model" "$k1" "$horizon" "$n" "$log"; then
            echo "valgrind/rnnd failed for $model k1=$k1 N=$n; see $log and $log.stdout" >&2
            ok=0; break
        fi
        x="$(heap_allocs "$log")"
        if [ -z "$x" ]; then
            echo "no 'total heap usage' line in $log" >&2
            ok=0; break
        fi
        a+=("$x")
    done
    if [ "$ok" != 1 ]; then status=2; continue; fi
    diff=$(( a[1] - a[0] ))
    per=$(awk -v d="$diff" -v n="$(( N2 - N1 ))" 'BEGIN { printf "%.4f", d / n }')
    flag=""
    if [ "$diff" -gt 0 ]; then flag="  <- allocates"; failing+=("$cfg"); [ "$status" = 0 ] && status=1; fi
    printf '%-6s %4s %4s %7s %12s %12s %12s %16s%s\n' "$model" "$HIDDEN" "$k1" "$horizon" "${a[0]}" "${a[1]}" "$diff" "$per" "$flag"
done
echo

if [ "${#failing[@]}" -eq 0 ]; then
    if [ "$status" = 0 ]; then
        echo "OK: no heap allocation per learned sample in any configuration."
    fi
    exit "$status"
fi

echo "FAIL: the per-sample path allocates in: $(printf '%s; ' "${failing[@]}" | sed 's/; $//')"
[ "$WHERE" = 1 ] || exit "$status"

# Where: inclusive allocation counts per function from memcheck's xtree, for both N; the
# functions whose count grows with N are on the allocating call path (outermost first).
# The xtree runs use a tenth of the samples (memcheck is slow; the growth shows just as well).
W1=$(( N1 / 10 > 0 ? N1 / 10 : 1 ))
W2=$(( N2 / 10 > W1 ? N2 / 10 : W1 + 1 ))
command -v callgrind_annotate >/dev/null || { echo "callgrind_annotate not found; cannot locate" >&2; exit "$status"; }
for cfg in "${failing[@]}"; do
    read -r model k1 horizon <<<"$cfg"
    horizon="${horizon:-1}"
    echo
    echo "== where $model k1=$k1 allocates (functions whose inclusive allocation count grows from N=$W1 to N=$W2):"
    for n in "$W1" "$W2"; do
        xt="$OUT/xtree-$model-k$k1-h$HIDDEN-n$n.kcg"
        run_memcheck "$model" "$k1" "$horizon" "$n" "$OUT/xtree-$model-k$k1-h$HIDDEN-p$horizon-n$n.log" \
            --xtree-memory=full --xtree-memory-file="$xt" || true
        callgrind_annotate --inclusive=yes --sort=totBk --threshold=100 "$xt" 2>/dev/null \
            >"$OUT/xtree-$model-k$k1-h$HIDDEN-n$n.txt" || true
    done
    python3 - "$OUT/xtree-$model-k$k1-h$HIDDEN-n$W1.txt" "$OUT/xtree-$model-k$k1-h$HIDDEN-n$W2.txt" \
        "$(( W2 - W1 ))" <<'PY'
import re, subprocess, sys

def counts(path):
    """function -> inclusive allocation count (totBk) from callgrind_annotate's output."""
    out = {}
    body = False
    for line in open(path, errors="replace"):
        if "file:function" in line:
            body = True
            continue
        if not body:
            continue
        if line.startswith("-- ") or "Auto-annotated source" in line:
            break                      # the function table is over
        m = re.match(r"^\s*((?:[\d,]+(?:\s+\(\s*[\d.]+%\))?\s+){6})(\S.*)$", line.rstrip("\n"))
        if not m:
            continue
        nums = re.sub(r"\(\s*[\d.]+%\)", " ", m.group(1)).split()
        if len(nums) < 4:
            continue
        name = m.group(2).strip()
        if name.startswith("<") or name == "events annotated":
            continue
        out[name] = out.get(name, 0) + int(nums[3].replace(",", ""))
    return out

a, b, extra = counts(sys.argv[1]), counts(sys.argv[2]), int(sys.argv[3])
grow = [(b[f] - a.get(f, 0), f) for f in b if b[f] - a.get(f, 0) > 0]
grow.sort(key=lambda x: -x[0])
def demangle(names):
    try:
        p = subprocess.run(["swift", "demangle", "--simplified"], input="\n".join(names),
                           capture_output=True, text=True, timeout=30)
        if p.returncode == 0:
            return p.stdout.splitlines()
    except Exception:
        pass
    return names
names = [f for _, f in grow[:15]]
pretty = demangle([n.split(":", 1)[1] if ":" in n else n for n in names])
print(f"{'extra allocs':>12}  {'per sample':>10}  function (file)")
for (d, f), p in zip(grow[:15], pretty):
    where = f.split(":", 1)[0] if ":" in f else ""
    print(f"{d:>12}  {d / extra:>10.3f}  {p[:150]}  ({where})")
PY
done
exit "$status"
