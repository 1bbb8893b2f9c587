# Sourced by the generate.sh of Fixtures/format1 and Fixtures/format8, which write records with
# rnnd as it was at an older commit. `old_rnnd COMMIT DIRECTORY CONFIGURATION` extracts that
# commit's sources into DIRECTORY (the caller's temporary directory) and builds its rnnd in
# CONFIGURATION (debug or release) with the caller's environment; prints the binary's path.
old_rnnd() {
    local commit=$1 build=$2 configuration=$3 repo
    repo=$(git -C "$(dirname "${BASH_SOURCE[0]}")" rev-parse --show-toplevel)
    git -C "$repo" archive "$commit" | tar -x -C "$build"
    (cd "$build" && swift build -c "$configuration" --product rnnd >/dev/null)
    echo "$build/.build/$configuration/rnnd"
}
