#!/usr/bin/env bash
# A record of format 9, written by rnnd itself as it was before format 10 (commit f2f8b33, the last
# whose records were format 9: its surprise had no routine, which format 10 added), and that
# rnnd's forecasts and anomaly scores from it: what
# CheckpointTests.aFormatNineRecordGoesOnAsTheOldRnndWent checks the migration against. The series
# is Fixtures/format8's (history.csv, next.csv). Run from anywhere; builds the old rnnd in a
# temporary directory (a few minutes), then writes, beside this script:
#   gru.rnndckpt               `rnnd fit` on ../format8/history.csv, format 9
#   gru-replay.csv             `rnnd replay ../format8/next.csv --from gru.rnndckpt`: the published
#                              forecast, its band and the anomaly score, row by row, as the old
#                              rnnd made them
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
series=$here/../format8
source "$here/../old-rnnd.sh"
# RNND_FORMAT9=path/to/rnnd uses an old rnnd built already.
rnnd=${RNND_FORMAT9:-}
[[ -n $rnnd ]] || old_rnnd f2f8b33 release

gru=(--model gru --hidden 4 --window 4 --seed 5)
"$rnnd" fit "$series/history.csv" --out "$here/gru.rnndckpt" --stream plant/9 --force "${gru[@]}" >/dev/null
"$rnnd" replay "$series/next.csv" --from "$here/gru.rnndckpt" --predictions "$here/gru-replay.csv" "${gru[@]}" >/dev/null
