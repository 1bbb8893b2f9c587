#!/usr/bin/env bash
# A record of format 9, written by rnnd itself as it was before format 10 (commit f2f8b33, the last
# whose records were format 9: its surprise had no routine, which format 10 added), and that
# rnnd's forecasts and anomaly scores from it: what
# CheckpointTests.aFormatNineRecordGoesOnAsTheOldRnndWent checks the migration against. The series
# is Fixtures/format8's. Run from anywhere; builds the old rnnd in a temporary directory (a few
# minutes), then writes gru.rnndckpt and gru-replay.csv beside this script (old-rnnd.sh,
# old_format_fixture; RNND_FORMAT9=path/to/rnnd uses an old rnnd built already).
set -euo pipefail
source "$(dirname "$0")/../old-rnnd.sh"
old_format_fixture 9 f2f8b33
