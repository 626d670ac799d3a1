"""The harness itself: servers.sh starts a private NATS + ClickHouse, the ctl scripts stop/start them on the same
ports and data, stop removes everything. Uses its own server set (not the one tests/run.sh exported)."""

from __future__ import annotations

import json
import os
import subprocess
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

SERVERS = Path(__file__).resolve().with_name("servers.sh")


def http(url: str, data: bytes | None = None) -> str:
    with urllib.request.urlopen(urllib.request.Request(url, data=data), timeout=10) as response:
        return response.read().decode()


def is_up(url: str) -> bool:
    try:
        http(url)
        return True
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return False


@pytest.fixture(scope="module")
def servers() -> Iterator[dict[str, str]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MARKETPRISM_TEST_")}
    started = subprocess.run(["bash", str(SERVERS), "start"], env=env, capture_output=True, text=True, timeout=180)
    assert started.returncode == 0, started.stderr + started.stdout
    env_file = started.stdout.strip().splitlines()[-1].split()[1]
    exported = dict(
        line.removeprefix("export ").replace('"', "").split("=", 1)
        for line in Path(env_file).read_text().splitlines()
    )
    yield exported
    subprocess.run(["bash", str(SERVERS), "stop", exported["MARKETPRISM_TEST_SERVERS_DIR"]], check=True, timeout=120)
    assert not Path(exported["MARKETPRISM_TEST_SERVERS_DIR"]).exists()


def ch(servers: dict[str, str], sql: str) -> str:
    return http(servers["MARKETPRISM_TEST_CLICKHOUSE_URL"] + "/", sql.encode())


def ctl(servers: dict[str, str], which: str, action: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([servers[f"MARKETPRISM_TEST_{which}_CTL"], action], capture_output=True, text=True,
                          timeout=120)


def test_exports_every_documented_variable_on_loopback(servers: dict[str, str]) -> None:
    assert servers["MARKETPRISM_TEST_NATS_URL"].startswith("nats://127.0.0.1:")
    assert servers["MARKETPRISM_TEST_CLICKHOUSE_URL"].startswith("http://127.0.0.1:")
    assert servers["MARKETPRISM_REQUIRE_SERVERS"] == "1"
    for key in ("MARKETPRISM_TEST_PYTHON", "MARKETPRISM_TEST_CHDB_EXEC", "MARKETPRISM_TEST_CLICKHOUSE_CTL",
                "MARKETPRISM_TEST_NATS_CTL"):
        assert os.access(servers[key], os.X_OK) or servers[key].endswith(".py"), key
    assert ch(servers, "SELECT version(), timezone()").startswith("18.16")
    jsz = json.loads(http(servers["MARKETPRISM_TEST_NATS_MONITOR_URL"] + "/varz"))
    assert jsz["version"].startswith("2.1") and jsz["jetstream"]["config"]["store_dir"].startswith(
        servers["MARKETPRISM_TEST_SERVERS_DIR"])


def test_tls_listeners_present_the_test_ca_and_refuse_clients_that_do_not_trust_it(servers: dict[str, str]) -> None:
    import socket
    import ssl

    https = servers["MARKETPRISM_TEST_CLICKHOUSE_HTTPS_URL"]
    assert https.startswith("https://127.0.0.1:")
    trusting = ssl.create_default_context(cafile=servers["MARKETPRISM_TEST_TLS_CA_FILE"])
    with urllib.request.urlopen(https + "/ping", timeout=10, context=trusting) as response:
        assert response.read().decode().strip() == "Ok."
    with pytest.raises(urllib.error.URLError, match="CERTIFICATE_VERIFY_FAILED"):
        urllib.request.urlopen(https + "/ping", timeout=10, context=ssl.create_default_context())

    # NATS (TLS only) sends INFO in clear, then requires the TLS handshake with the same certificate.
    host, port = servers["MARKETPRISM_TEST_NATS_TLS_URL"].removeprefix("tls://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as raw:
        info = raw.recv(4096).decode()
        assert info.startswith("INFO ") and '"tls_required":true' in info, info
        with trusting.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
            assert tls.getpeercert()["subjectAltName"] == (("IP Address", "127.0.0.1"), ("DNS", "localhost"))


def test_clickhouse_outage_keeps_ports_and_data(servers: dict[str, str]) -> None:
    ch(servers, "CREATE TABLE IF NOT EXISTS default.harness (x UInt32) ENGINE = MergeTree ORDER BY x")
    ch(servers, "INSERT INTO default.harness VALUES (42)")
    ping = servers["MARKETPRISM_TEST_CLICKHOUSE_URL"] + "/ping"
    stopped = ctl(servers, "CLICKHOUSE", "stop")
    assert stopped.returncode == 0, stopped.stderr
    assert not is_up(ping), "stop returned while ClickHouse still answers"
    assert ctl(servers, "CLICKHOUSE", "status").returncode == 3
    started = ctl(servers, "CLICKHOUSE", "start")
    assert started.returncode == 0, started.stderr
    assert is_up(ping), "start returned before ClickHouse answers"
    assert ch(servers, "SELECT sum(x) FROM default.harness").strip() == "42"


def test_nats_crash_and_restart_keeps_jetstream_store(servers: dict[str, str]) -> None:
    monitor = servers["MARKETPRISM_TEST_NATS_MONITOR_URL"]
    killed = ctl(servers, "NATS", "kill")
    assert killed.returncode == 0, killed.stderr
    assert not is_up(monitor + "/healthz")
    assert ctl(servers, "NATS", "start").returncode == 0
    assert is_up(monitor + "/healthz?js-enabled-only=true")
    assert ctl(servers, "NATS", "start").returncode == 0, "start on a running server is a no-op"


def test_unknown_ctl_action_is_an_error(servers: dict[str, str]) -> None:
    result = ctl(servers, "CLICKHOUSE", "explode")
    assert result.returncode == 2 and "unknown action" in result.stderr
