#!/usr/bin/env bash
# A record of format 10, written by rnnd itself as it was before format 11 (commit fb7bb8b, the last
# whose records were format 10: its novelty watched no drift, which format 11 added), and that
# rnnd's forecasts and anomaly scores from it: what
# CheckpointTests.aFormatTenRecordGoesOnAsTheOldRnndWent checks the migration against. The series
# is Fixtures/format8's. Run from anywhere; builds the old rnnd in a temporary directory (a few
# minutes), then writes gru.rnndckpt and gru-replay.csv beside this script (old-rnnd.sh,
# old_format_fixture; RNND_FORMAT10=path/to/rnnd uses an old rnnd built already).
set -euo pipefail
source "$(dirname "$0")/../old-rnnd.sh"
old_format_fixture 10 fb7bb8b
