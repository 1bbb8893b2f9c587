#!/usr/bin/env bash
# A record of format 11, written by rnnd itself as it was before format 12 (commit a5861e5, the last
# whose records were format 11: its novelty remembered no shapes, which format 12 added), and that
# rnnd's forecasts and anomaly scores from it: what
# CheckpointTests.aFormatElevenRecordGoesOnAsTheOldRnndWent checks the migration against. The series
# is Fixtures/format8's. Run from anywhere; builds the old rnnd in a temporary directory (a few
# minutes), then writes gru.rnndckpt and gru-replay.csv beside this script (old-rnnd.sh,
# old_format_fixture; RNND_FORMAT11=path/to/rnnd uses an old rnnd built already).
set -euo pipefail
source "$(dirname "$0")/../old-rnnd.sh"
old_format_fixture 11 a5861e5
