//! `job backfill` end to end, through the real binaries: the simulator (TLS, in this process) serves
//! four venues; `run` publishes their trades to NATS and `sink` lands them in ClickHouse; every
//! connection is cut, so each trade stream has a disconnect gap and Binance's consecutive ids a hole;
//! the sink is stopped and a backfill killed with SIGKILL while it waits for its trades to land; the
//! sink restarts, the backfill reruns, resumes, and ends with contiguous ids on every venue whose
//! ids are consecutive, not one row twice (before `FINAL`), and one `gap_fills` row per gap. A gap of
//! a symbol the venue does not list fails its unit in step `instruments` and the run exits non-zero.

use marketprism_model::Exchange;
use marketprism_simulator::{Fault, Simulator, SimulatorHandle, Target};
use marketprism_tests::jobs::{job_command, report};
use marketprism_tests::process::collector_bin;
use marketprism_tests::servers::{clickhouse_url, nats_url, unique_name};
use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A child process killed when dropped (a failed assertion leaves nothing running).
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn spawn(args: &[&str], config: &Path, log: &Path) -> Killed {
    Killed(
        Command::new(collector_bin())
            .args(args)
            .arg("--config")
            .arg(config)
            .env_remove("MARKETPRISM_CLICKHOUSE_URL")
            .env_remove("MARKETPRISM_NATS_URL")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(log).unwrap())
            .spawn()
            .expect("the collector binary starts"),
    )
}

const VENUES: [(Exchange, &str); 4] = [
    (Exchange::BinanceSpot, "BTC-USDT"),
    (Exchange::BinanceDerivatives, "BTC-USDT"),
    (Exchange::OkxSpot, "BTC-USDT"),
    (Exchange::DeribitDerivatives, "BTC-USD"),
];

fn config_yaml(sim: &SimulatorHandle, ca: &Path, nats: &str, ch: &str, name: &str) -> String {
    let upper = name.to_ascii_uppercase();
    let mut exchanges = String::new();
    for (exchange, symbol) in VENUES {
        let ep = sim.endpoints(exchange);
        exchanges += &format!(
            "  - {{exchange: {}, symbols: [{symbol}], data_types: [trades], endpoints: {{ws_url: \"{}\", rest_url: \"{}\"}}}}\n",
            exchange.as_str(),
            ep.ws_url.unwrap(),
            ep.rest_url.unwrap()
        );
    }
    let nats = format!(
        "{{url: \"{nats}\", subject_prefix: {name}, market_data_stream: {{name: {upper}_MD, max_bytes: 268435456, max_age_s: 3600, duplicate_window_s: 600}}, orderbook_stream: {{name: {upper}_OB, max_bytes: 268435456, max_age_s: 3600, duplicate_window_s: 60}}}}"
    );
    format!(
        "collector: {{instance_id: {name}, duration_s: 600}}
exchanges:
{exchanges}outputs:
  nats: {nats}
tls: {{ca_file: \"{ca}\"}}
http: {{listen: \"127.0.0.1:0\"}}
sink:
  nats: {nats}
  clickhouse: {{url: \"{ch}\", hot_database: {name}_hot, cold_database: {name}_cold}}
  consumer: {name}-sink
  batching: {{trades: {{max_rows: 1000, max_wait_ms: 200}}, gaps: {{max_rows: 1000, max_wait_ms: 200}}}}
  dead_letter_stream: {{name: {upper}_DL, max_bytes: 67108864, max_age_s: 3600, duplicate_window_s: 120}}
",
        ca = ca.display()
    )
}

async fn query_u64(ch: &clickhouse::Client, sql: &str) -> u64 {
    ch.query(sql)
        .fetch_one::<u64>()
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
}

/// Trade ids of a stream (hot, `FINAL`), as integers.
async fn ids(ch: &clickhouse::Client, db: &str, exchange: Exchange) -> Vec<u64> {
    let rows: Vec<String> = ch
        .query(&format!(
            "SELECT trade_id FROM {db}.trades FINAL WHERE exchange = '{}'",
            exchange.as_str()
        ))
        .fetch_all()
        .await
        .unwrap();
    let mut ids: Vec<u64> = rows.iter().map(|s| s.parse().unwrap()).collect();
    ids.sort_unstable();
    ids
}

fn holes(ids: &[u64]) -> u64 {
    match (ids.first(), ids.last()) {
        (Some(lo), Some(hi)) => hi - lo + 1 - ids.len() as u64,
        _ => 0,
    }
}

/// Waits for `check`; on a timeout, fails with the tail of every process log in `logs`.
async fn wait_until(
    logs: &Path,
    what: &str,
    timeout: Duration,
    mut check: impl AsyncFnMut() -> bool,
) {
    let deadline = tokio::time::Instant::now() + timeout;
    while !check().await {
        if tokio::time::Instant::now() >= deadline {
            let mut tails = String::new();
            for entry in std::fs::read_dir(logs).unwrap().flatten() {
                let path = entry.path();
                if path.extension().is_some_and(|e| e == "log") {
                    let text = std::fs::read_to_string(&path).unwrap_or_default();
                    let tail: Vec<&str> = text.lines().rev().take(15).collect();
                    tails += &format!("--- {}\n", path.display());
                    for l in tail.into_iter().rev() {
                        tails += l;
                        tails += "\n";
                    }
                }
            }
            panic!("timed out: {what}\n{tails}");
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_disconnect_gap_is_backfilled_to_contiguous_ids_through_a_kill_and_a_resume() {
    let test = "a_disconnect_gap_is_backfilled_to_contiguous_ids_through_a_kill_and_a_resume";
    let (Some(nats), Some(ch_url)) = (nats_url(test), clickhouse_url(test)) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let name = unique_name("bf");
    let sim = Simulator::start(marketprism_config::SimulatorConfig {
        tls: true,
        listen: "127.0.0.1:0".parse().unwrap(),
        rate_per_s: 40,
        ..Default::default()
    })
    .await
    .unwrap();
    let ca = dir.path().join("sim-ca.pem");
    std::fs::write(&ca, sim.ca_pem().unwrap()).unwrap();
    let config = dir.path().join("backfill.yaml");
    std::fs::write(&config, config_yaml(&sim, &ca, &nats, &ch_url, &name)).unwrap();
    let hot = format!("{name}_hot");
    // The client the pipeline uses (no row-type validation: ClickHouse 18.16 has no
    // RowBinaryWithNamesAndTypes).
    let ch = marketprism_pipeline::store::clickhouse::clickhouse_client(
        &marketprism_config::ClickHouseConfig {
            url: ch_url.clone(),
            ..Default::default()
        },
    );

    let log = |n: &str| dir.path().join(format!("{n}.log"));
    let sink = spawn(&["sink"], &config, &log("sink"));
    let run = spawn(&["run"], &config, &log("run"));
    let per_venue = |sql: &'static str| {
        let (ch, hot) = (ch.clone(), hot.clone());
        async move {
            let mut ok = true;
            for (exchange, _) in VENUES {
                let q = sql.replace("{db}", &hot).replace("{x}", exchange.as_str());
                // The sink creates the databases: until then, a query fails.
                ok &= ch.query(&q).fetch_one::<u64>().await.is_ok_and(|n| n > 0);
            }
            ok
        }
    };
    wait_until(
        dir.path(),
        "trades of every venue in ClickHouse",
        Duration::from_secs(90),
        async || per_venue("SELECT count() FROM {db}.trades WHERE exchange = '{x}'").await,
    )
    .await;
    // Every connection cut, and refused for 2 s (maintenance): each trade stream loses what trades
    // meanwhile.
    for (exchange, _) in VENUES {
        sim.inject(Fault::RefuseConnections {
            exchange,
            duration_ms: 2_000,
        });
        assert!(sim.inject(Fault::DropConnections(Target::venue(exchange))) >= 1);
    }
    wait_until(dir.path(), "a disconnect gap of every trade stream", Duration::from_secs(60), async || {
        per_venue("SELECT count() FROM {db}.gaps WHERE exchange = '{x}' AND data_type = 'trades' AND cause = 'disconnect'").await
    })
    .await;
    // Trades after the reconnect, then the collector stops and the sink drains.
    tokio::time::sleep(Duration::from_secs(4)).await;
    terminate(run);
    settled(&ch, &hot).await;
    for exchange in [
        Exchange::BinanceSpot,
        Exchange::BinanceDerivatives,
        Exchange::DeribitDerivatives,
    ] {
        let before = ids(&ch, &hot, exchange).await;
        assert!(
            holes(&before) > 0,
            "{exchange:?}: the cut lost no trade, so this test would prove nothing ({} ids)",
            before.len()
        );
    }

    // The sink stops: a backfill publishes, waits for its rows to land, and is killed there.
    terminate(sink);
    let work = dir.path().join("work");
    let args = [
        "backfill",
        "--config",
        s(&config),
        "--from-gaps",
        "--margin-ms",
        "2000",
        "--work-dir",
        s(&work),
        "--land-timeout-s",
        "60",
    ];
    let mut first = Killed(
        job_command(&args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let published = async || {
        let mut info = async_nats::jetstream::new(async_nats::connect(&nats).await.unwrap())
            .get_stream(format!("{}_MD", name.to_ascii_uppercase()))
            .await
            .unwrap();
        info.info().await.unwrap().state.messages
    };
    let before_publish = published().await;
    wait_until(
        dir.path(),
        "the killed backfill published something",
        Duration::from_secs(60),
        async || published().await > before_publish,
    )
    .await;
    sigkill(&mut first.0);
    assert_eq!(
        query_u64(&ch, &format!("SELECT count() FROM {hot}.gap_fills")).await,
        0,
        "nothing is recorded filled before its trades are in ClickHouse"
    );

    // The sink is back; the rerun resumes in the same work directory and finishes every gap.
    let _sink = spawn(&["sink"], &config, &log("sink2"));
    let out = job_command(&args).output().unwrap();
    let r = report(&out.stdout);
    assert!(
        out.status.success(),
        "{r}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let gaps = r["total"].as_u64().unwrap();
    assert!(gaps >= VENUES.len() as u64, "{r}");
    assert_eq!(r["done"].as_u64(), Some(gaps));
    assert!(r["details"]["trades"].as_u64().unwrap() > 0, "{r}");

    for exchange in [
        Exchange::BinanceSpot,
        Exchange::BinanceDerivatives,
        Exchange::DeribitDerivatives,
    ] {
        let after = ids(&ch, &hot, exchange).await;
        assert_eq!(
            holes(&after),
            0,
            "{exchange:?}: ids contiguous after the backfill"
        );
    }
    // Not one row twice, even before FINAL: the killed run's publishes had the same message ids.
    let rows = query_u64(&ch, &format!("SELECT count() FROM {hot}.trades")).await;
    let keys = query_u64(
        &ch,
        &format!("SELECT uniqExact(exchange, trade_id) FROM {hot}.trades"),
    )
    .await;
    assert_eq!(rows, keys, "duplicate trade rows");
    // One fill per gap, in hot and (through the view) in cold; Binance says no id is missing.
    let fills: BTreeMap<String, (u64, i64)> = {
        #[derive(clickhouse::Row, serde::Deserialize)]
        struct F {
            exchange: String,
            published: u64,
            holes_left: i64,
        }
        let rows: Vec<F> = ch
            .query(&format!(
                "SELECT exchange, published, holes_left FROM {hot}.gap_fills FINAL"
            ))
            .fetch_all()
            .await
            .unwrap();
        assert_eq!(rows.len() as u64, gaps);
        let mut m = BTreeMap::new();
        for f in rows {
            let e: &mut (u64, i64) = m.entry(f.exchange).or_insert((0, i64::MIN));
            e.0 += f.published;
            e.1 = e.1.max(f.holes_left);
        }
        m
    };
    assert_eq!(fills["binance_spot"].1, 0, "{fills:?}");
    assert_eq!(fills["okx_spot"].1, -1, "OKX ids say nothing: {fills:?}");
    assert!(
        fills.values().all(|(p, _)| *p > 0),
        "every venue had trades to fill: {fills:?}"
    );
    assert_eq!(
        query_u64(
            &ch,
            &format!("SELECT count() FROM {name}_cold.gap_fills FINAL")
        )
        .await,
        gaps
    );
    // The gap rows themselves are untouched.
    assert!(
        query_u64(
            &ch,
            &format!("SELECT count() FROM {hot}.gaps WHERE data_type = 'trades'")
        )
        .await
            >= gaps
    );

    // Run again: every unit is done, nothing is fetched or sent.
    let out = job_command(&args).output().unwrap();
    let again = report(&out.stdout);
    assert!(out.status.success(), "{again}");
    assert_eq!(again["attempted"].as_u64(), Some(0), "{again}");

    // The answer covers every unit of the plan, not only those finished by this run: a fill recorded
    // with ids missing (as an interrupted earlier run would have left it) makes a run that attempts
    // nothing exit 1 with that count.
    ch.query(&format!(
        "INSERT INTO {hot}.gap_fills SELECT exchange, market_type, symbol, data_type, gap_start_ms, \
         cause, gap_end_ms, window_from_ms, window_to_ms, fetched, published, 3, first_trade_id, \
         last_trade_id, source, filled_at_ms + 1 FROM {hot}.gap_fills FINAL \
         WHERE exchange = 'binance_spot' LIMIT 1"
    ))
    .execute()
    .await
    .unwrap();
    let out = job_command(&args).output().unwrap();
    let holed = report(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "ids still missing: {holed}");
    assert_eq!(
        (holed["attempted"].as_u64(), holed["discrepancies"].as_u64()),
        (Some(0), Some(3)),
        "{holed}"
    );

    // The scheduled form (as the operator's CronJob runs it) in a fresh work directory: every gap
    // again, nothing left to publish, and the termination-message summary says so.
    let summary_file = dir.path().join("summary.json");
    let scheduled_work = dir.path().join("scheduled");
    let scheduled = [
        "backfill",
        "--config",
        s(&config),
        "--from-gaps",
        "--last",
        "1h",
        "--work-dir",
        s(&scheduled_work),
        "--summary",
        s(&summary_file),
    ];
    let out = job_command(&scheduled).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let summary: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&summary_file).unwrap()).unwrap();
    assert_eq!(summary["job"], "backfill");
    assert_eq!(summary["succeeded"], true, "{summary}");
    // The window ends at the minute (pinned): the gaps that started in it, no more, no fewer.
    let (from, to) = (
        summary["from_ms"].as_i64().unwrap(),
        summary["to_ms"].as_i64().unwrap(),
    );
    assert_eq!(to - from, 3_600_000);
    let in_window = query_u64(
        &ch,
        &format!(
            "SELECT count() FROM {hot}.gaps FINAL WHERE data_type = 'trades' \
             AND cause != 'refused' AND start_ms >= {from} AND start_ms < {to}"
        ),
    )
    .await;
    assert_eq!(summary["total"].as_u64(), Some(in_window), "{summary}");
    assert_eq!(
        summary["details"]["trades"].as_u64(),
        Some(0),
        "nothing left to fill: {summary}"
    );

    // A trade gap of a venue without a trade history (Gate) is no unit: the scheduled run still
    // succeeds, and names it.
    let columns: Vec<String> = ch
        .query(&format!(
            "SELECT name FROM system.columns WHERE database = '{hot}' AND table = 'gaps'"
        ))
        .fetch_all()
        .await
        .unwrap();
    let select: Vec<String> = columns
        .iter()
        .map(|c| {
            if c == "exchange" {
                "'gate_spot'".to_owned()
            } else {
                c.clone()
            }
        })
        .collect();
    ch.query(&format!(
        "INSERT INTO {hot}.gaps ({}) SELECT {} FROM {hot}.gaps WHERE data_type = 'trades' \
         AND exchange = 'binance_spot' AND cause != 'refused' LIMIT 1",
        columns.join(", "),
        select.join(", ")
    ))
    .execute()
    .await
    .unwrap();
    let gate_work = dir.path().join("gate");
    // Every recorded gap (no window: independent of the clock's minute boundaries).
    let gate_args = [&scheduled[..4], &["--work-dir", s(&gate_work)]].concat();
    let out = job_command(&gate_args).output().unwrap();
    let r = report(&out.stdout);
    assert!(
        out.status.success(),
        "{r}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        r["details"]["gaps_without_history"].as_u64(),
        Some(1),
        "{r}"
    );
    // Asked for by name, it is refused at once, before any venue is called.
    let out = job_command(&[
        "backfill",
        "--config",
        s(&config),
        "--exchange",
        "gate_spot",
        "--symbol",
        "BTC-USDT",
        "--from",
        "1700000000000",
        "--to",
        "1700000060000",
        "--work-dir",
        s(&dir.path().join("gate2")),
    ])
    .output()
    .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("not supported for this venue"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // A symbol the venue does not list: the unit fails in step `instruments`, the run exits 2.
    let bad_work = dir.path().join("bad");
    let bad = [
        "backfill",
        "--config",
        s(&config),
        "--exchange",
        "okx_spot",
        "--symbol",
        "NOPE-USDT",
        "--from",
        "1700000000000",
        "--to",
        "1700000060000",
        "--work-dir",
        s(&bad_work),
    ];
    let out = job_command(&bad).output().unwrap();
    let r = report(&out.stdout);
    assert_eq!(out.status.code(), Some(2), "a failed unit exits 2: {r}");
    assert_eq!(r["failed"].as_u64(), Some(1), "{r}");
    let stats = job_command(&[&bad[..], &["--show-stats"]].concat())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&stats.stdout);
    assert!(
        text.contains("instruments") && text.contains("NOPE-USDT"),
        "{text}"
    );
    sim.stop().await;
}

/// SIGKILL, as `kill -9` (no chance to commit a batch).
fn sigkill(child: &mut Child) {
    child.kill().unwrap();
    child.wait().unwrap();
}

/// SIGTERM and wait for the exit (the collector and sink drain on it: nothing in flight is lost or
/// written twice).
fn terminate(mut child: Killed) {
    let status = Command::new("kill")
        .args(["-TERM", &child.0.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    for _ in 0..600 {
        if child.0.try_wait().unwrap().is_some() {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("process ignored SIGTERM for 60 s");
}

/// Waits until the hot trades table stops growing (the sink has landed what NATS holds).
async fn settled(ch: &clickhouse::Client, hot: &str) {
    let mut last = u64::MAX;
    loop {
        tokio::time::sleep(Duration::from_secs(2)).await;
        let n = query_u64(ch, &format!("SELECT count() FROM {hot}.trades")).await;
        if n == last {
            return;
        }
        last = n;
    }
}
