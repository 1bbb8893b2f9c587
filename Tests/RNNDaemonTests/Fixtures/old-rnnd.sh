# Sourced by the generate.sh of Fixtures/format1 and format8 to format11, which write records with
# rnnd as it was at an older commit. `old_rnnd COMMIT CONFIGURATION` extracts that commit's
# sources into a temporary directory (removed when the script exits), builds its rnnd in
# CONFIGURATION (debug or release) with the caller's environment, and sets `rnnd` to the binary.
old_rnnd() {
    local commit=$1 configuration=$2 repo
    repo=$(git -C "$(dirname "${BASH_SOURCE[0]}")" rev-parse --show-toplevel)
    old_rnnd_build=$(mktemp -d)
    trap 'rm -rf "$old_rnnd_build"' EXIT
    git -C "$repo" archive "$commit" | tar -x -C "$old_rnnd_build"
    (cd "$old_rnnd_build" && swift build -c "$configuration" --product rnnd >/dev/null)
    rnnd="$old_rnnd_build/.build/$configuration/rnnd"
}

# `old_format_fixture FORMAT COMMIT`, from a generate.sh: the rnnd of COMMIT (or a prebuilt one,
# RNND_FORMAT<FORMAT>=path/to/rnnd) writes beside that script gru.rnndckpt, `rnnd fit` of a GRU of
# 4 units on Fixtures/format8/history.csv as stream plant/FORMAT, and gru-replay.csv, `rnnd replay`
# of Fixtures/format8/next.csv from it (the published forecast, its band and the anomaly score,
# row by row), as Fixtures/format9 to format11 keep them.
old_format_fixture() {
    local format=$1 commit=$2 dir series prebuilt
    dir=$(cd "$(dirname "$0")" && pwd)
    series=$(cd "$(dirname "${BASH_SOURCE[0]}")/format8" && pwd)
    prebuilt=RNND_FORMAT$format
    rnnd=${!prebuilt:-}
    [[ -n $rnnd ]] || old_rnnd "$commit" release
    local gru=(--model gru --hidden 4 --window 4 --seed 5)
    "$rnnd" fit "$series/history.csv" --out "$dir/gru.rnndckpt" --stream "plant/$format" --force "${gru[@]}" >/dev/null
    "$rnnd" replay "$series/next.csv" --from "$dir/gru.rnndckpt" --predictions "$dir/gru-replay.csv" "${gru[@]}" >/dev/null
}
