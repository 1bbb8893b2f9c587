#!/usr/bin/env bash
# A record of format 8, written by rnnd itself as it was before format 9 (commit 75af022, the last
# whose records were format 8: its novelty had a span of 5 samples that format 9 dropped), and
# that rnnd's forecasts and anomaly scores from it: what
# CheckpointTests.aFormatEightRecordGoesOnAsTheOldRnndWent checks the migration against. Run from
# anywhere; builds the old rnnd in a temporary directory (a few minutes), then writes, beside this
# script:
#   history.csv, next.csv      a daily cycle, hourly (the first 400 rows; the next 60, in which the
#                              level climbs beyond everything before and comes back)
#   gru.rnndckpt               `rnnd fit` on history.csv, format 8
#   gru-replay.csv             `rnnd replay next.csv --from gru.rnndckpt`: the published forecast,
#                              its band and the anomaly score, row by row, as the old rnnd made them
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source "$here/../old-rnnd.sh"
# RNND_FORMAT8=path/to/rnnd uses an old rnnd built already.
rnnd=${RNND_FORMAT8:-}
[[ -n $rnnd ]] || old_rnnd 75af022 release

python3 - "$here" <<'PY'
import math, sys, datetime
here = sys.argv[1]
def rows(rs):
    out = ["time,temp"]
    for r in rs:
        t = datetime.datetime.fromtimestamp(1_700_000_000 + 3600 * r, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        temp = 20 + 4 * math.sin(2 * math.pi * r / 24) + 0.3 * math.sin(r * 1.7) + (r % 7) * 0.021
        if 420 <= r < 440:
            temp += 3 + 0.5 * (r - 420)   # climbs past the range, then comes back
        out.append(f"{t},{temp:.9f}")
    return "\n".join(out) + "\n"
open(f"{here}/history.csv", "w").write(rows(range(0, 400)))
open(f"{here}/next.csv", "w").write(rows(range(400, 460)))
PY

gru=(--model gru --hidden 4 --window 4 --seed 5)
"$rnnd" fit "$here/history.csv" --out "$here/gru.rnndckpt" --stream plant/9 --force "${gru[@]}" >/dev/null
"$rnnd" replay "$here/next.csv" --from "$here/gru.rnndckpt" --predictions "$here/gru-replay.csv" "${gru[@]}" >/dev/null
