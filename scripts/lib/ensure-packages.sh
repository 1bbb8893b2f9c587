# Sourced by scripts/test and scripts/demo. ensure_packages NAME installs, with apt-get, the system
# packages rnnd's build needs when they are missing: libzmq's headers (libzmq3-dev, found through
# pkg-config) and SQLite's (libsqlite3-dev, for the checkpoint store). Quiet, and a no-op when
# they are installed or on a system without dpkg. NAME prefixes its messages (e.g. scripts/test).

ensure_packages() {
    local name=$1
    local missing=()
    if command -v dpkg >/dev/null 2>&1; then
        dpkg -s libzmq3-dev >/dev/null 2>&1 || missing+=(libzmq3-dev)
        dpkg -s libsqlite3-dev >/dev/null 2>&1 || missing+=(libsqlite3-dev)
        command -v pkg-config >/dev/null 2>&1 || missing+=(pkg-config)
    fi
    ((${#missing[@]} > 0)) || return 0
    if ! command -v apt-get >/dev/null 2>&1; then
        echo "$name: install ${missing[*]} (libzmq 4.x and SQLite 3 headers, pkg-config) first" >&2
        exit 1
    fi
    local sudo=()
    if [[ $(id -u) -ne 0 ]]; then
        if ! command -v sudo >/dev/null 2>&1; then
            echo "$name: ${missing[*]} missing, and installing it needs root or sudo" >&2
            exit 1
        fi
        sudo=(sudo)
    fi
    echo "$name: installing ${missing[*]} with apt-get" >&2
    ${sudo[@]+"${sudo[@]}"} apt-get update -qq >/dev/null
    ${sudo[@]+"${sudo[@]}"} env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}
