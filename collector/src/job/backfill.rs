//! `job backfill`: trade gaps filled from the venue's REST history.
//!
//! One unit per gap: the trades gaps recorded in the hot database's `gaps` table (`--from-gaps`, in
//! a time range by their start), or one window per symbol given on the command line. Per unit:
//! 1. **fetch**: the venue's trade history for the gap widened by `--margin-ms` on each side (clock
//!    offset, and trades the stream lost just before it noticed), paged inside the venue's REST
//!    budget ([`marketprism_venues::history`]: Binance `historicalTrades` / USD-M `aggTrades`, OKX
//!    `history-trades`, Deribit `get_last_trades_by_instrument_and_time`);
//! 2. **publish**: the trades not already stored ([`marketprism_venues::history::missing`]) through
//!    JetStream with the message ids live data has, acked;
//! 3. **land**: wait until the hot `trades` table holds every one of them (the sink writes them);
//! 4. **record**: one `gap_fills` row for the gap (fetched, published, ids still absent where ids are
//!    consecutive). The gap row itself is never changed: its fill is a fact of its own.
//!
//! Every step is idempotent, so a unit redone after a kill publishes duplicates JetStream drops (or
//! ClickHouse collapses) and records the same fill again. Failure steps: `config` (the gap's venue or
//! symbol is not configured), `instruments`, `fetch`, `query`, `publish`, `land`, `record`.

use super::backfill_io::{Backfiller, UnitFigures, recorded_gaps, recorded_holes};
use super::plan::Filter;
use super::{
    CommonArgs, JobOutcome, JobReport, blocking, default_work_dir, failure_lines, pinned_window,
    run_options, show_stats, start_afresh_if_attempted,
};
use crate::error::{Error, Result};
use marketprism_config::Config;
use marketprism_jobs::{UnitError, UnitId, WorkDir, run};
use std::path::PathBuf;
use std::time::Duration;

/// `job backfill --config FILE (--from-gaps [--from T] [--to T] | --exchange X --symbol S --from T --to T)`.
#[derive(Debug, Clone, clap::Args)]
pub struct BackfillArgs {
    /// The config: `exchanges` (endpoints, TLS), `sink.clickhouse` (gaps, stored trades, fills) and
    /// `outputs.nats` or `sink.nats` (where the trades are published).
    #[arg(long, short, env = "MARKETPRISM_CONFIG")]
    pub config: PathBuf,
    /// Fill the trades gaps recorded in ClickHouse (whose start is in `--from`..`--to`).
    #[arg(long)]
    pub from_gaps: bool,
    /// First time: RFC 3339 or UTC ms, inclusive (gaps: their start; a window: its start).
    #[arg(long)]
    pub from: Option<String>,
    /// End: RFC 3339 or UTC ms, exclusive.
    #[arg(long)]
    pub to: Option<String>,
    /// With `--from-gaps`: the gaps that started in the last duration (`90m`, `6h`, `1d`) instead
    /// of `--from`/`--to`, pinned in the work directory until a run completes (as `verify --last`).
    #[arg(long, conflicts_with_all = ["from", "to"], requires = "from_gaps")]
    pub last: Option<String>,
    /// Only these exchanges (config names); without `--from-gaps`, exactly one.
    #[arg(long, value_delimiter = ',')]
    pub exchange: Vec<String>,
    /// Only these normalized symbols; without `--from-gaps`, the symbols whose window is filled.
    #[arg(long, value_delimiter = ',')]
    pub symbol: Vec<String>,
    /// Widen each gap by this much on both sides, ms (clock offset between us and the venue, trades
    /// lost just before a disconnect was noticed). Trades already stored are never sent again.
    #[arg(long, default_value_t = 5_000)]
    pub margin_ms: i64,
    /// How long a unit waits for ClickHouse to hold what it published, s.
    #[arg(long, default_value_t = 120)]
    pub land_timeout_s: u64,
    /// At most this many REST pages per gap (a guard against a venue that never ends a walk).
    #[arg(long, default_value_t = 1000)]
    pub max_pages: usize,
    #[command(flatten)]
    pub common: CommonArgs,
}

pub const JOB: &str = "backfill";

/// One gap (or one requested window) to fill; its unit id is
/// `trades|exchange|market_type|symbol|start_ms|cause|end_ms`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GapUnit {
    pub exchange: String,
    /// As the gap row has it; empty for a requested window (the instrument's then).
    pub market_type: String,
    pub symbol: String,
    pub start_ms: i64,
    pub end_ms: i64,
    /// The gap's cause; `requested` for a window given on the command line.
    pub cause: String,
}

impl GapUnit {
    pub fn id(&self) -> String {
        format!(
            "trades|{}|{}|{}|{}|{}|{}",
            self.exchange, self.market_type, self.symbol, self.start_ms, self.cause, self.end_ms
        )
    }

    pub fn parse(id: &str) -> Option<GapUnit> {
        let p: Vec<&str> = id.split('|').collect();
        match p.as_slice() {
            ["trades", exchange, market_type, symbol, start, cause, end] => Some(GapUnit {
                exchange: (*exchange).into(),
                market_type: (*market_type).into(),
                symbol: (*symbol).into(),
                start_ms: start.parse().ok()?,
                end_ms: end.parse().ok()?,
                cause: (*cause).into(),
            }),
            _ => None,
        }
    }
}

/// The units of a run without `--from-gaps`: one window per symbol of the single exchange.
pub fn requested_units(filter: &Filter, from_given: bool, to_given: bool) -> Result<Vec<GapUnit>> {
    let invalid = |m: &str| Error::Other(format!("invalid argument: {m}"));
    if !from_given || !to_given {
        return Err(invalid(
            "without --from-gaps, give the window: --from and --to",
        ));
    }
    let [exchange] = filter.exchanges.as_slice() else {
        return Err(invalid("without --from-gaps, give exactly one --exchange"));
    };
    if !marketprism_venues::history::supported(*exchange) {
        return Err(invalid(&format!(
            "--exchange {exchange}: backfill is not supported for this venue (no trade history to fetch)"
        )));
    }
    if filter.symbols.is_empty() {
        return Err(invalid("without --from-gaps, give the --symbol(s) to fill"));
    }
    Ok(filter
        .symbols
        .iter()
        .map(|s| GapUnit {
            exchange: exchange.as_str().into(),
            market_type: String::new(),
            symbol: s.clone(),
            // The window is inclusive; `--to` is exclusive.
            start_ms: filter.from_ms,
            end_ms: filter.to_ms - 1,
            cause: "requested".into(),
        })
        .collect())
}

pub async fn run_backfill(args: BackfillArgs) -> Result<JobOutcome> {
    let mut filter = Filter::parse(
        args.from.as_deref(),
        args.to.as_deref(),
        &args.exchange,
        &[],
        &args.symbol,
    )
    .map_err(|e| Error::Other(format!("invalid argument: {e}")))?;
    if args.margin_ms < 0 {
        return Err(Error::Other(
            "invalid argument: --margin-ms must be ≥ 0".into(),
        ));
    }
    let config = Config::load(&args.config)?;
    let clickhouse = config
        .sink
        .as_ref()
        .map(|s| s.clickhouse.clone())
        .ok_or_else(|| {
            Error::Other("invalid config: sink: job backfill needs `sink.clickhouse`".into())
        })?;
    let work_dir = args.common.work_dir.clone().unwrap_or_else(|| {
        // `--last` by its text: a rerun of the same command is the same job whatever the clock.
        let key = format!(
            "{}|{}|{}|{filter:?}|{}|last={:?}",
            clickhouse.url, clickhouse.hot_database, args.from_gaps, args.margin_ms, args.last
        );
        default_work_dir(JOB, &key)
    });
    if args.common.show_stats {
        return show_stats(&work_dir, JOB);
    }
    // A scheduled `--last` backfill in a fixed work directory: a run that attempted its whole window
    // (failed units included) is history, the next one looks at the new, overlapping window; an
    // interrupted one resumes its pinned window.
    if let Some(last) = &args.last {
        if !args.common.retry_failed {
            start_afresh_if_attempted(&work_dir, JOB)?;
        }
        let w = pinned_window(&work_dir, last)?;
        (filter.from_ms, filter.to_ms) = (w.from_ms, w.to_ms);
    }
    let units = if args.from_gaps {
        None
    } else {
        Some(requested_units(
            &filter,
            args.from.is_some(),
            args.to.is_some(),
        )?)
    };
    let opts = run_options(&args.common);
    let mut backfiller = Backfiller::connect(&config, clickhouse.clone()).await?;
    backfiller.margin_ms = args.margin_ms;
    backfiller.land_timeout = Duration::from_secs(args.land_timeout_s);
    backfiller.max_pages = args.max_pages.max(1);
    let units = match units {
        Some(u) => u,
        None => {
            recorded_gaps(
                &backfiller.client,
                backfiller.dialect,
                &clickhouse.hot_database,
                filter.from_ms,
                filter.to_ms,
                &filter.exchanges,
                &filter.symbols,
            )
            .await?
        }
    };
    // Gaps of venues without a trade history are not units: nothing could fill them, and a failed
    // unit would make every scheduled run fail. They are counted and named in the report.
    let (units, unsupported): (Vec<GapUnit>, Vec<GapUnit>) = units.into_iter().partition(|u| {
        super::plan::parse_exchange(&u.exchange).is_none_or(marketprism_venues::history::supported)
    });
    if !unsupported.is_empty() {
        tracing::warn!(
            gaps = unsupported.len(),
            first = %unsupported[0].id(),
            "trade gaps of venues without a trade history are left as they are"
        );
    }
    let ids: Vec<UnitId> = units
        .iter()
        .filter_map(|u| match UnitId::new(u.id()) {
            Ok(id) => Some(id),
            Err(e) => {
                tracing::error!(unit = %u.id(), error = %e, "gap left out: its id is not a unit id");
                None
            }
        })
        .collect();
    let wd_path = work_dir.clone();
    let client = backfiller.client.clone();
    let (summary, totals, failures) = blocking(move || {
        let mut wd = WorkDir::open(&wd_path, JOB)?;
        let mut totals = (0u64, UnitFigures::default());
        let work = |id: &UnitId| {
            let gap = GapUnit::parse(id.as_str())
                .ok_or_else(|| UnitError::new("plan", "not a backfill unit id"))?;
            let f = backfiller.fill(&gap).inspect_err(|e| {
                backfiller.output.reset();
                tracing::warn!(unit = %id, step = %e.step, error = %e.message, "gap not filled");
            })?;
            tracing::info!(unit = %id, fetched = f.fetched, published = f.published, "gap filled");
            totals.0 += 1;
            totals.1.fetched += f.fetched;
            totals.1.published += f.published;
            totals.1.holes_left += f.holes_left;
            Ok(())
        };
        let summary = run(&mut wd, || ids.iter().cloned(), &opts, work, |_| {})?;
        Ok((summary, totals, failure_lines(&wd)))
    })
    .await?;
    // Over every unit of the plan, done now or before an interruption: a resumed run answers for all.
    let holes_left = recorded_holes(&client, &clickhouse.hot_database, &units).await?;
    let details = serde_json::json!({
        "gaps": summary.progress.total,
        "filled": summary.progress.done,
        "filled_now": totals.0,
        "trades_fetched": totals.1.fetched,
        "trades": totals.1.published,
        "holes_left": holes_left,
        "holes_left_now": totals.1.holes_left,
        "gaps_without_history": unsupported.len(),
    });
    let mut report = JobReport::new(JOB, &work_dir, &summary, details);
    // No gap in the range is the outcome a scheduled backfill hopes for, not a wrong filter.
    report.empty_plan_ok = args.from_gaps;
    if (filter.from_ms, filter.to_ms) != super::plan::ALL_TIME {
        (report.from_ms, report.to_ms) = (Some(filter.from_ms), Some(filter.to_ms));
    }
    report.first = failures;
    // Ids still absent after the fill (Binance): an answer, not a failure a retry would change.
    if holes_left > 0 {
        report.discrepancies = Some(holes_left);
        report.first.push(format!(
            "{holes_left} trade ids still missing after the backfill (the venue no longer has them?): see gap_fills.holes_left"
        ));
    }
    Ok(JobOutcome::Ran(report))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_gap_unit_id_round_trips_and_garbage_is_refused() {
        let g = GapUnit {
            exchange: "binance_spot".into(),
            market_type: "spot".into(),
            symbol: "BTC-USDT".into(),
            start_ms: 1_700_000_000_000,
            end_ms: 1_700_000_005_000,
            cause: "disconnect".into(),
        };
        assert_eq!(GapUnit::parse(&g.id()), Some(g.clone()));
        assert!(UnitId::new(g.id()).is_ok());
        assert_eq!(GapUnit::parse("trades|a|b|c|x|d|1"), None);
        assert_eq!(GapUnit::parse("orderbooks|a|b|c|1|d|2"), None);
    }

    #[test]
    fn a_requested_window_needs_one_exchange_symbols_and_both_ends() {
        let f = |ex: &[&str], sy: &[&str]| {
            Filter::parse(
                Some("1700000000000"),
                Some("1700000060000"),
                &ex.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
                &[],
                &sy.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
            )
            .unwrap()
        };
        let units =
            requested_units(&f(&["okx_spot"], &["BTC-USDT", "ETH-USDT"]), true, true).unwrap();
        assert_eq!(units.len(), 2);
        assert_eq!(
            (units[0].start_ms, units[0].end_ms),
            (1_700_000_000_000, 1_700_000_059_999)
        );
        assert_eq!(units[1].cause, "requested");
        let err = |r: Result<Vec<GapUnit>>| r.unwrap_err().to_string();
        assert!(
            err(requested_units(&f(&[], &["BTC-USDT"]), true, true))
                .contains("exactly one --exchange")
        );
        assert!(err(requested_units(&f(&["okx_spot"], &[]), true, true)).contains("--symbol"));
        assert!(
            err(requested_units(
                &f(&["okx_spot"], &["BTC-USDT"]),
                true,
                false
            ))
            .contains("--from and --to")
        );
    }
}
