# Sourced by the generate.sh of Fixtures/format1, format8 and format9, which write records with
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
