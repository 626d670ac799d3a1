#!/usr/bin/env bash
# The whole test suite: `bash tests/run.sh` (also what `.ci/run` runs).
#   1. installs what is missing (clickhouse 18.16 via apt, nats-server 2.10 from Debian trixie, a Python venv)
#   2. starts NATS (JetStream; and a TLS-only one) and ClickHouse (HTTP and HTTPS) on free loopback ports with
#      temp data dirs, with a private test CA for the TLS listeners
#   2b. builds the release binary (the smoke test runs it as separate processes)
#   3. cargo fmt --check, cargo test --workspace --all-targets (against those real servers)
#   4. python tests: the Helm chart (real Helm SDK), the chdb engine runner, the kind script (offline), this harness
#   5. kind end-to-end only when MARKETPRISM_KIND=1
# Servers are stopped whatever happens. Exits non-zero if any step failed.
# Knobs: MARKETPRISM_LINT=1 adds clippy -D warnings; MARKETPRISM_KEEP_SERVERS_DIR=1 keeps data and logs;
#        extra args are passed to cargo test (e.g. `bash tests/run.sh -p marketprism-tests`).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
# shellcheck source=tests/scripts/servers.sh
source tests/scripts/servers.sh lib

[[ -d $HOME/.cargo/bin && :$PATH: != *":$HOME/.cargo/bin:"* ]] && PATH="$HOME/.cargo/bin:$PATH"
if [[ ${CI:-} == true ]]; then
    # Cold one-shot build: incremental state is never reused and full debug info only slows linking.
    export CARGO_INCREMENTAL=0 CARGO_PROFILE_DEV_DEBUG=line-tables-only CARGO_PROFILE_TEST_DEBUG=line-tables-only
fi
export CARGO_TERM_COLOR=${CARGO_TERM_COLOR:-auto} RUST_BACKTRACE=${RUST_BACKTRACE:-1}

run_start=$SECONDS
failed=()
summary=()

# Runs one named step, recording its outcome and duration; never aborts the script.
step() {
    local name=$1 start rc=0
    shift
    mp_section "$name"
    start=$SECONDS
    "$@" || rc=$?
    summary+=("$(printf '%-40s %-6s %5ss' "$name" "$([[ $rc == 0 ]] && echo ok || echo FAIL)" $((SECONDS - start)))")
    ((rc == 0)) || failed+=("$name")
    return 0
}

finish() {
    local rc=$?
    if ((${#failed[@]} || rc != 0)); then
        mp_servers_tail_logs
    fi
    mp_section "stop servers"
    mp_servers_stop
    mp_section "summary"
    printf '  %s\n' "${summary[@]}"
    mp_info "total $((SECONDS - run_start))s"
    if ((${#failed[@]})); then
        mp_err "failed: ${failed[*]}"
        exit 1
    fi
    exit "$rc"
}
trap finish EXIT
trap 'exit 130' INT TERM

mp_section "install dependencies"
start=$SECONDS
bash tests/scripts/install-deps.sh
summary+=("$(printf '%-40s %-6s %5ss' "install dependencies" ok $((SECONDS - start)))")
command -v cargo >/dev/null || {
    mp_err "cargo not found: install the Rust toolchain (rustup) first"
    exit 1
}
mp_info "$(cargo --version), $(rustc --version), $("$(mp_venv_python)" --version)"
# The Rust tests that drive a Python tool (pyarrow reads a compacted dataset) use the pinned venv.
export MARKETPRISM_TEST_PYTHON="${MARKETPRISM_TEST_PYTHON:-$(mp_venv_python)}"

mp_section "start servers"
start=$SECONDS
mp_servers_start
summary+=("$(printf '%-40s %-6s %5ss' "start servers" ok $((SECONDS - start)))")

cargo_fmt() {
    if cargo fmt --version >/dev/null 2>&1; then
        cargo fmt --all -- --check
    else
        mp_info "rustfmt not installed; skipped"
    fi
}
cargo_clippy() { cargo clippy --workspace --all-targets -- -D warnings; }
# The binary users run: the smoke test (tests/tests/release_smoke.rs) drives it as separate processes.
release_build() {
    cargo build --release -p marketprism-collector --bin marketprism-collector &&
        export MARKETPRISM_RELEASE_BIN="$PWD/target/release/marketprism-collector"
}
cargo_tests() {
    local guard=()
    # In CI a hung test should fail with a message (and still stop the servers) before the job limit kills everything.
    [[ ${CI:-} == true ]] && guard=(timeout -k 60 "${MARKETPRISM_CARGO_TEST_TIMEOUT:-4500}")
    "${guard[@]}" cargo test --workspace --all-targets --no-fail-fast "$@"
}
python_tests() {
    "$MARKETPRISM_TEST_PYTHON" -m pytest -p no:cacheprovider -q -r fEs tests/chart tests/engine tests/kind tests/scripts
}
kind_e2e() { bash tests/kind/e2e.sh; }

step "cargo fmt --check" cargo_fmt
[[ ${MARKETPRISM_LINT:-0} == 1 ]] && step "cargo clippy" cargo_clippy
step "release build" release_build
step "cargo test" cargo_tests "$@"
step "python (chart, engine, kind, harness)" python_tests
if [[ ${MARKETPRISM_KIND:-0} == 1 ]]; then
    step "kind end-to-end" kind_e2e
else
    mp_section "kind end-to-end"
    mp_info "skipped (opt-in: MARKETPRISM_KIND=1 with docker and kind available)"
fi
