# shellcheck shell=bash
# Shared helpers for the test harness; sourced, never executed.
# Safe to source into an interactive shell: defines functions and variables only.

# shellcheck disable=SC2034 # used by the scripts that source this file
MP_REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
# Downloads and the venv are cached here so re-runs are fast; override to relocate.
MP_CACHE="${MARKETPRISM_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/marketprism}"
MP_VENV="${MARKETPRISM_VENV:-$MP_CACHE/venv}"
MP_NATS_ROOT="$MP_CACHE/nats-server"

mp_section() { printf '\n\033[1m==== %s ====\033[0m  (%s)\n' "$*" "$(date -u +%H:%M:%S)"; }
mp_info() { printf '  %s\n' "$*"; }
mp_err() { printf 'error: %s\n' "$*" >&2; }

# True when something accepts TCP connections on 127.0.0.1:$1.
mp_port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# Sets variable $1 to a loopback port nobody listens on and this shell has not handed out yet.
# Range below the Linux ephemeral range so outbound connections do not take it between the check
# and the server's bind; callers retry on a race.
MP_TAKEN_PORTS=" "
mp_free_port() {
    local -n mp_port_out=$1
    local port tries=0
    while ((tries++ < 200)); do
        port=$((15000 + RANDOM % 17000))
        [[ $MP_TAKEN_PORTS == *" $port "* ]] && continue
        if ! mp_port_in_use "$port"; then
            MP_TAKEN_PORTS+="$port "
            # shellcheck disable=SC2034 # nameref: assigns the caller's variable
            mp_port_out=$port
            return 0
        fi
    done
    mp_err "no free loopback port found"
    return 1
}

mp_nats_bin() { echo "$MP_NATS_ROOT/usr/sbin/nats-server"; }
mp_venv_python() { echo "$MP_VENV/bin/python"; }
