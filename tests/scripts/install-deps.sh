#!/usr/bin/env bash
# Installs what the test suite needs, idempotently (a no-op taking well under a second when present):
#   - clickhouse-server/-client 18.16, chromium (headless, for the report's HTML test) and base tools
#     from the machine's apt sources,
#   - nats-server 2.10+ extracted from Debian trixie's .deb into a cache, without touching system apt state,
#   - a private Python venv with the pinned tooling of tests/scripts/requirements.txt.
# Usage: bash tests/scripts/install-deps.sh [apt|nats|venv]...   (default: all three)
set -euo pipefail
# shellcheck source=tests/scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

MP_APT_UPDATED=0

mp_as_root() {
    if ((EUID == 0)); then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
        mp_err "need root (or sudo) to run: $*"
        return 1
    fi
}

mp_apt_get() {
    mp_as_root env DEBIAN_FRONTEND=noninteractive apt-get -q -o DPkg::Lock::Timeout=600 "$@"
}

# Debian packages whose command is missing here.
mp_missing_apt_packages() {
    local missing=()
    command -v clickhouse-server >/dev/null || missing+=(clickhouse-server)
    command -v clickhouse-client >/dev/null || missing+=(clickhouse-client)
    command -v curl >/dev/null || missing+=(curl ca-certificates)
    command -v dpkg-deb >/dev/null || missing+=(dpkg)
    [[ -e /usr/share/keyrings/debian-archive-keyring.gpg ]] || missing+=(debian-archive-keyring)
    command -v python3 >/dev/null || missing+=(python3)
    # Debian splits venv/ensurepip out of python3.
    if ! python3 -c 'import ensurepip, venv' 2>/dev/null; then missing+=(python3-venv); fi
    # The report's HTML is checked in a real browser (tests/tests/report_html_chromium.rs).
    command -v chromium >/dev/null || missing+=(chromium)
    # The cold cargo build compiles C (ring, zstd) and links with cc.
    command -v cc >/dev/null || missing+=(gcc libc6-dev)
    echo "${missing[@]}"
}

mp_install_apt() {
    local missing
    missing=$(mp_missing_apt_packages)
    if [[ -z $missing ]]; then
        mp_info "apt: all present ($(clickhouse-client --version 2>/dev/null | head -1 || true))"
        return 0
    fi
    mp_info "apt: installing $missing"
    # shellcheck disable=SC2086
    if ! mp_apt_get install -y --no-install-recommends $missing; then
        ((MP_APT_UPDATED)) || { mp_apt_get update && MP_APT_UPDATED=1; }
        # shellcheck disable=SC2086
        mp_apt_get install -y --no-install-recommends $missing
    fi
}

# The Debian mirror this machine already uses (deb822 sources first, then one-line sources).
mp_debian_mirror() {
    local uri=""
    if [[ -r /etc/apt/sources.list.d/debian.sources ]]; then
        uri=$(awk '/^URIs:/ && $2 !~ /security/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources)
    fi
    if [[ -z $uri ]]; then
        uri=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null |
            awk '$1 == "deb" && $0 !~ /security/ { for (i = 2; i <= NF; i++) if ($i ~ /^[a-z]+:\/\//) { print $i; exit } }')
    fi
    echo "${uri:-http://deb.debian.org/debian}"
}

mp_nats_version_ok() {
    local bin=$1 version
    [[ -x $bin ]] || return 1
    version=$("$bin" --version 2>/dev/null | sed -n 's/.*v\([0-9]*\)\.\([0-9]*\).*/\1 \2/p')
    read -r major minor <<<"$version"
    [[ -n ${major:-} ]] && ((major > 2 || (major == 2 && minor >= 10)))
}

mp_install_nats() {
    local bin
    bin=$(mp_nats_bin)
    if mp_nats_version_ok "$bin"; then
        mp_info "nats-server: present ($("$bin" --version))"
        return 0
    fi
    local work mirror
    work="$MP_CACHE/apt-trixie"
    mirror=$(mp_debian_mirror)
    mp_info "nats-server: downloading from Debian trixie via $mirror (private apt state in $work)"
    mkdir -p "$work/lists/partial" "$work/cache/archives/partial" "$work/deb"
    echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $mirror trixie main" >"$work/sources.list"
    # Read after /etc/apt/apt.conf.d (whose proxy and validity settings still apply): drops the hooks
    # that would clean or signal the system's own apt cache.
    printf '#clear %s;\n' APT::Update::Post-Invoke APT::Update::Post-Invoke-Success DPkg::Post-Invoke \
        DPkg::Pre-Invoke >"$work/apt.conf"
    local apt_opts=(
        -c "$work/apt.conf"
        -o "Dir::Etc::SourceList=$work/sources.list"
        -o "Dir::Etc::SourceParts=/dev/null"
        -o "Dir::State::Lists=$work/lists"
        -o "Dir::Cache=$work/cache"
        -o "APT::Sandbox::User=root"
        -o "Acquire::IndexTargets::deb::DEP-11::DefaultEnabled=false"
        -o "Acquire::IndexTargets::deb::DEP-11-icons::DefaultEnabled=false"
        -o "Acquire::IndexTargets::deb::DEP-11-icons-small::DefaultEnabled=false"
        -o "Acquire::IndexTargets::deb::Contents-deb::DefaultEnabled=false"
    )
    apt-get -q "${apt_opts[@]}" update >/dev/null
    rm -f "$work/deb"/*.deb
    (cd "$work/deb" && apt-get -q "${apt_opts[@]}" download nats-server >/dev/null)
    rm -rf "$MP_NATS_ROOT.partial"
    dpkg-deb -x "$work/deb"/nats-server_*.deb "$MP_NATS_ROOT.partial"
    rm -rf "$MP_NATS_ROOT"
    mv "$MP_NATS_ROOT.partial" "$MP_NATS_ROOT"
    mp_nats_version_ok "$bin" || {
        mp_err "extracted nats-server is not 2.10+: $("$bin" --version 2>&1)"
        return 1
    }
    mp_info "nats-server: $("$bin" --version) at $bin"
}

mp_install_venv() {
    local req="$MP_REPO_ROOT/tests/scripts/requirements.txt" stamp want
    want="$(sha256sum "$req" | cut -c1-16) $(python3 -c 'import sys; print(sys.version.split()[0])')"
    stamp="$MP_VENV/.marketprism-stamp"
    if [[ -x $MP_VENV/bin/python && -f $stamp && "$(cat "$stamp")" == "$want" ]]; then
        mp_info "venv: present ($MP_VENV)"
        return 0
    fi
    mp_info "venv: creating $MP_VENV"
    rm -rf "$MP_VENV"
    mkdir -p "$(dirname "$MP_VENV")"
    python3 -m venv "$MP_VENV"
    "$MP_VENV/bin/pip" install -q --disable-pip-version-check --no-input -r "$req"
    echo "$want" >"$stamp"
}

mp_install_main() {
    local steps=("$@") step start
    ((${#steps[@]})) || steps=(apt nats venv)
    mkdir -p "$MP_CACHE"
    for step in "${steps[@]}"; do
        start=$SECONDS
        case $step in
        apt) mp_install_apt ;;
        nats) mp_install_nats ;;
        venv) mp_install_venv ;;
        *)
            mp_err "unknown step $step (apt|nats|venv)"
            return 2
            ;;
        esac
        mp_info "($step: $((SECONDS - start))s)"
    done
}

mp_install_main "$@"
