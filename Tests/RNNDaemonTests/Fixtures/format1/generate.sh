#!/usr/bin/env bash
# Records of format 1, written by rnnd itself as it was before format 2 (commit 2948ac7, the last
# whose checkpoints were format 1), and that rnnd's forecasts from them: what
# CheckpointTests.formatOneRecordsAreMigrated checks the migration against. Run from anywhere;
# builds the old rnnd in a temporary directory (a few minutes), then writes, beside this script:
#   history.csv, next.csv                      two series, hourly (the first 200 rows, the next 40)
#   gru.rnndckpt, elman.rnndckpt               `rnnd fit` on history.csv, format 1
#   gru-replay.csv, elman-replay.csv           `rnnd replay next.csv --from` each: the network's
#                                              forecasts, row by row, as the old rnnd made them
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source "$here/../old-rnnd.sh"
# RNND_FORMAT1=path/to/rnnd uses an old rnnd built already. Else portable code (no FMA); the
# tests compare with a tolerance either way.
rnnd=${RNND_FORMAT1:-}
[[ -n $rnnd ]] || RNND_TARGET_CPU=x86-64 old_rnnd 2948ac7 debug

python3 - "$here" <<'PY'
import math, sys, datetime
here = sys.argv[1]
def rows(rs):
    out = ["time,temp,load"]
    for r in rs:
        t = datetime.datetime.fromtimestamp(1_700_000_000 + 3600 * r, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        temp = 21.5 + 3 * math.sin(r * 0.37) + (r % 5) * 0.013
        load = 0.93 + 0.05 * math.cos(r * 0.21)
        out.append(f"{t},{temp:.9f},{load:.6f}")
    return "\n".join(out) + "\n"
open(f"{here}/history.csv", "w").write(rows(range(0, 200)))
open(f"{here}/next.csv", "w").write(rows(range(200, 240)))
PY

gru=(--model gru --hidden 6 --window 6 --horizon 2 --lr 0.01 --seed 7)
elman=(--columns temp --model elman --hidden 5 --window 3 --optimizer sgd --lr 0.02 --seed 3)
"$rnnd" fit "$here/history.csv" --out "$here/gru.rnndckpt" --stream plant/7 --epochs 2 --force "${gru[@]}" >/dev/null
"$rnnd" fit "$here/history.csv" --out "$here/elman.rnndckpt" --stream plant/8 --epochs 1 --force "${elman[@]}" >/dev/null
"$rnnd" replay "$here/next.csv" --from "$here/gru.rnndckpt" --predictions "$here/gru-replay.csv" "${gru[@]}" >/dev/null
"$rnnd" replay "$here/next.csv" --from "$here/elman.rnndckpt" --predictions "$here/elman-replay.csv" "${elman[@]}" >/dev/null
