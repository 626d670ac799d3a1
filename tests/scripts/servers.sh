# shellcheck shell=bash
# Starts/stops a private NATS (JetStream) and ClickHouse on free loopback ports with temp data dirs.
#
# Developers:   source tests/scripts/servers.sh start    # exports MARKETPRISM_TEST_* into this shell
#               cargo test -p marketprism-tests ...
#               source tests/scripts/servers.sh stop     # stops both and removes the temp dir
# Or without sourcing: `bash tests/scripts/servers.sh start` prints the env file to `source`, and
#                      `bash tests/scripts/servers.sh stop DIR` stops that set.
# tests/run.sh sources it with `lib` and calls mp_servers_start / mp_servers_stop itself.

# shellcheck source=tests/scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

MP_SERVER_START_ATTEMPTS=3

# Writes the nats service dir for the given ports. Args: dir port monitor_port.
mp_nats_prepare() {
    local dir=$1 port=$2 mon=$3 bin
    bin=$(mp_nats_bin)
    mkdir -p "$dir/store"
    cat >"$dir/run" <<EOF
echo \$\$ >"$dir/pid"
exec "$bin" -a 127.0.0.1 -p $port -m $mon -js -sd "$dir/store"
EOF
    echo "http://127.0.0.1:$mon/healthz?js-enabled-only=true" >"$dir/ready_url"
}

# A private test CA and a server certificate for 127.0.0.1/localhost signed by it, as PEM files in $1:
# ca.pem, server.pem, server.key. Clients trust ca.pem through `tls.ca_file`, never by disabling checks.
mp_tls_prepare() {
    local dir=$1
    mkdir -p "$dir"
    openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=marketprism test CA" \
        -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
        -keyout "$dir/ca.key" -out "$dir/ca.pem" 2>"$dir/openssl.log" || return 1
    openssl req -newkey rsa:2048 -nodes -subj "/CN=localhost" -keyout "$dir/server.key" \
        -out "$dir/server.csr" 2>>"$dir/openssl.log" || return 1
    cat >"$dir/ext.cnf" <<EOF
subjectAltName=IP:127.0.0.1,DNS:localhost
basicConstraints=CA:FALSE
extendedKeyUsage=serverAuth
EOF
    openssl x509 -req -in "$dir/server.csr" -CA "$dir/ca.pem" -CAkey "$dir/ca.key" -CAcreateserial \
        -days 2 -extfile "$dir/ext.cnf" -out "$dir/server.pem" 2>>"$dir/openssl.log" || return 1
    chmod 644 "$dir/server.key"
}

# Writes a NATS service dir that accepts only TLS clients. Args: dir port monitor_port (certs in $MP_TLS_DIR).
mp_nats_tls_prepare() {
    local dir=$1 port=$2 mon=$3 bin
    bin=$(mp_nats_bin)
    mkdir -p "$dir/store"
    cat >"$dir/run" <<EOF
echo \$\$ >"$dir/pid"
exec "$bin" -a 127.0.0.1 -p $port -m $mon -js -sd "$dir/store" --tls --tlscert "$MP_TLS_DIR/server.pem" --tlskey "$MP_TLS_DIR/server.key"
EOF
    echo "http://127.0.0.1:$mon/healthz?js-enabled-only=true" >"$dir/ready_url"
}

# Writes the clickhouse service dir (config accepted by 18.16 and newer). Args: dir http_port tcp_port.
# It also serves HTTPS on $MP_CLICKHOUSE_HTTPS_PORT with the test CA's server certificate.
mp_clickhouse_prepare() {
    local dir=$1 http=$2 tcp=$3
    mkdir -p "$dir/data"
    cat >"$dir/config.xml" <<EOF
<?xml version="1.0"?>
<yandex>
    <logger><level>information</level><console>1</console></logger>
    <listen_host>127.0.0.1</listen_host>
    <http_port>$http</http_port>
    <tcp_port>$tcp</tcp_port>
    <path>$dir/data/</path>
    <tmp_path>$dir/data/tmp/</tmp_path>
    <user_files_path>$dir/data/user_files/</user_files_path>
    <format_schema_path>$dir/data/format_schemas/</format_schema_path>
    <users_config>/etc/clickhouse-server/users.xml</users_config>
    <default_profile>default</default_profile>
    <default_database>default</default_database>
    <timezone>UTC</timezone>
    <mlock_executable>false</mlock_executable>
    <mark_cache_size>268435456</mark_cache_size>
    <https_port>$MP_CLICKHOUSE_HTTPS_PORT</https_port>
    <openSSL>
        <server>
            <certificateFile>$MP_TLS_DIR/server.pem</certificateFile>
            <privateKeyFile>$MP_TLS_DIR/server.key</privateKeyFile>
            <verificationMode>none</verificationMode>
            <loadDefaultCAFile>false</loadDefaultCAFile>
            <cacheSessions>true</cacheSessions>
            <disableProtocols>sslv2,sslv3</disableProtocols>
            <preferServerCiphers>true</preferServerCiphers>
        </server>
    </openSSL>
</yandex>
EOF
    cat >"$dir/run" <<EOF
echo \$\$ >"$dir/pid"
exec clickhouse-server --config-file="$dir/config.xml"
EOF
    echo "http://127.0.0.1:$http/ping" >"$dir/ready_url"
}

# Starts one service, retrying on fresh ports (another process may grab a port between check and bind).
# Args: name root_dir prepare_fn. Sets MP_PORT_A / MP_PORT_B to the ports in use.
mp_service_start() {
    local name=$1 root=$2 prepare=$3 attempt dir
    dir="$root/$name"
    for ((attempt = 1; attempt <= MP_SERVER_START_ATTEMPTS; attempt++)); do
        mp_free_port MP_PORT_A && mp_free_port MP_PORT_B || return 1
        rm -rf "$dir"
        mkdir -p "$dir"
        "$prepare" "$dir" "$MP_PORT_A" "$MP_PORT_B"
        printf '#!/usr/bin/env bash\nexec bash "%s" "%s" "$@"\n' "$root/serverctl.sh" "$dir" >"$root/$name-ctl"
        chmod +x "$root/$name-ctl"
        if "$root/$name-ctl" start; then
            return 0
        fi
        "$root/$name-ctl" kill || true
        mp_err "$name failed to start on ports $MP_PORT_A/$MP_PORT_B (attempt $attempt)"
    done
    return 1
}

mp_servers_export() {
    local root=$1
    # shellcheck disable=SC1091
    source "$root/env"
}

mp_servers_start() {
    if [[ ! -x $(mp_nats_bin) ]] || ! command -v clickhouse-server >/dev/null; then
        bash "$MP_REPO_ROOT/tests/scripts/install-deps.sh" apt nats || return 1
    fi
    local root
    root=$(mktemp -d "${TMPDIR:-/tmp}/marketprism-servers.XXXXXX") || return 1
    cp "$MP_REPO_ROOT/tests/scripts/serverctl.sh" "$root/serverctl.sh"
    export MARKETPRISM_TEST_SERVERS_DIR=$root

    MP_TLS_DIR="$root/tls"
    mp_tls_prepare "$MP_TLS_DIR" || {
        mp_err "openssl could not make the test CA: $(cat "$MP_TLS_DIR/openssl.log")"
        return 1
    }
    mp_service_start nats "$root" mp_nats_prepare || return 1
    local nats_port=$MP_PORT_A nats_mon=$MP_PORT_B
    mp_service_start nats-tls "$root" mp_nats_tls_prepare || return 1
    local nats_tls_port=$MP_PORT_A
    mp_free_port MP_CLICKHOUSE_HTTPS_PORT || return 1
    mp_service_start clickhouse "$root" mp_clickhouse_prepare || return 1
    local ch_http=$MP_PORT_A ch_tcp=$MP_PORT_B

    cat >"$root/env" <<EOF
export MARKETPRISM_TEST_SERVERS_DIR="$root"
export MARKETPRISM_TEST_NATS_URL="nats://127.0.0.1:$nats_port"
export MARKETPRISM_TEST_NATS_MONITOR_URL="http://127.0.0.1:$nats_mon"
export MARKETPRISM_TEST_NATS_CTL="$root/nats-ctl"
export MARKETPRISM_TEST_CLICKHOUSE_URL="http://127.0.0.1:$ch_http"
export MARKETPRISM_TEST_CLICKHOUSE_TCP_PORT="$ch_tcp"
export MARKETPRISM_TEST_CLICKHOUSE_CTL="$root/clickhouse-ctl"
export MARKETPRISM_TEST_NATS_TLS_URL="tls://127.0.0.1:$nats_tls_port"
export MARKETPRISM_TEST_CLICKHOUSE_HTTPS_URL="https://127.0.0.1:$MP_CLICKHOUSE_HTTPS_PORT"
export MARKETPRISM_TEST_TLS_CA_FILE="$MP_TLS_DIR/ca.pem"
export MARKETPRISM_TEST_PYTHON="$(mp_venv_python)"
export MARKETPRISM_TEST_CHDB_EXEC="$MP_REPO_ROOT/tests/engine/chdb_exec.py"
export MARKETPRISM_REQUIRE_SERVERS=1
EOF
    mp_servers_export "$root"
    mp_info "nats-server $("$(mp_nats_bin)" --version | sed 's/.* //') at $MARKETPRISM_TEST_NATS_URL (monitor $MARKETPRISM_TEST_NATS_MONITOR_URL)"
    mp_info "nats-server (TLS only) at $MARKETPRISM_TEST_NATS_TLS_URL"
    mp_info "clickhouse $(curl -fsS "$MARKETPRISM_TEST_CLICKHOUSE_URL/?query=SELECT%20version()") at $MARKETPRISM_TEST_CLICKHOUSE_URL (tcp $ch_tcp, $MARKETPRISM_TEST_CLICKHOUSE_HTTPS_URL)"
    curl -fsS --cacert "$MARKETPRISM_TEST_TLS_CA_FILE" -o /dev/null "$MARKETPRISM_TEST_CLICKHOUSE_HTTPS_URL/ping" || {
        mp_err "clickhouse does not answer HTTPS at $MARKETPRISM_TEST_CLICKHOUSE_HTTPS_URL"
        return 1
    }
    mp_info "data and logs: $root   env: $root/env"
}

mp_servers_tail_logs() {
    local root=${1:-${MARKETPRISM_TEST_SERVERS_DIR:-}} log
    [[ -n $root && -d $root ]] || return 0
    for log in "$root"/*/server.log; do
        [[ -f $log ]] || continue
        printf '\n---- last lines of %s ----\n' "$log"
        tail -n "${MARKETPRISM_LOG_TAIL:-40}" "$log"
    done
}

# Stops the servers of root (default: the exported set) and removes their data unless asked to keep it.
mp_servers_stop() {
    local root=${1:-${MARKETPRISM_TEST_SERVERS_DIR:-}} name
    [[ -n $root && -d $root ]] || return 0
    for name in clickhouse nats-tls nats; do
        [[ -x $root/$name-ctl ]] && "$root/$name-ctl" stop
    done
    if [[ ${MARKETPRISM_KEEP_SERVERS_DIR:-0} == 1 ]]; then
        mp_info "kept $root"
    else
        rm -rf "$root"
    fi
    if [[ $root == "${MARKETPRISM_TEST_SERVERS_DIR:-}" ]]; then
        unset MARKETPRISM_TEST_SERVERS_DIR MARKETPRISM_TEST_NATS_URL MARKETPRISM_TEST_NATS_MONITOR_URL \
            MARKETPRISM_TEST_NATS_CTL MARKETPRISM_TEST_CLICKHOUSE_URL MARKETPRISM_TEST_CLICKHOUSE_TCP_PORT \
            MARKETPRISM_TEST_CLICKHOUSE_CTL MARKETPRISM_TEST_PYTHON MARKETPRISM_TEST_CHDB_EXEC \
            MARKETPRISM_TEST_NATS_TLS_URL MARKETPRISM_TEST_CLICKHOUSE_HTTPS_URL MARKETPRISM_TEST_TLS_CA_FILE \
            MARKETPRISM_REQUIRE_SERVERS
    fi
    return 0
}

mp_servers_cli() {
    case ${1:-} in
    start) mp_servers_start ;;
    stop) mp_servers_stop "${2:-}" ;;
    logs) mp_servers_tail_logs "${2:-}" ;;
    "" | lib) return 0 ;;
    *)
        mp_err "usage: servers.sh start|stop [DIR]|logs [DIR]"
        return 2
        ;;
    esac
}

if [[ ${BASH_SOURCE[0]} == "$0" ]]; then
    # Executed: servers outlive this process; print how to use them.
    set -euo pipefail
    mp_servers_cli "$@"
    if [[ ${1:-} == start ]]; then
        echo "source $MARKETPRISM_TEST_SERVERS_DIR/env   # then: bash tests/scripts/servers.sh stop $MARKETPRISM_TEST_SERVERS_DIR"
    fi
else
    mp_servers_cli "$@"
fi
