//! Pure pieces of `job verify` and `job repair`: the units (table × UTC day × exchange × symbol)
//! planned from what the sides hold, the figures a side gives for a unit, their comparison into
//! discrepancies, and the terminal table. No I/O.

use super::plan::{DAY_MS, Filter, day_name, day_start, parse_exchange};
use marketprism_jobs::fingerprint;
use marketprism_model::{DataType, Event, Exchange};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeSet, HashSet};

/// One unit: a table's rows of one exchange and symbol on one UTC day, clipped to the range.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct VerifyUnit {
    pub data_type: DataType,
    /// Start of the UTC day, ms.
    pub day_ms: i64,
    pub exchange: Exchange,
    pub symbol: String,
}

impl VerifyUnit {
    /// The unit id: `{table}/{YYYY-MM-DD}/{exchange}/{symbol}`, e.g. `trades/2026-11-30/binance_spot/BTC-USDT`.
    pub fn id(&self) -> String {
        format!(
            "{}/{}/{}/{}",
            self.data_type,
            day_name(self.day_ms),
            self.exchange,
            self.symbol
        )
    }

    /// The exchange-time window of the unit inside `filter`'s range: UTC ms, `to` exclusive.
    pub fn window(&self, filter: &Filter) -> (i64, i64) {
        (
            self.day_ms.max(filter.from_ms),
            (self.day_ms + DAY_MS).min(filter.to_ms),
        )
    }

    /// The replay filter selecting exactly this unit's stream (the shared readers take one).
    pub fn filter(&self, filter: &Filter) -> Filter {
        let (from_ms, to_ms) = self.window(filter);
        Filter {
            from_ms,
            to_ms,
            exchanges: vec![self.exchange],
            data_types: vec![self.data_type],
            symbols: vec![self.symbol.clone()],
        }
    }
}

/// The plan: every (table, exchange, symbol, `ts_ms`-day) any side holds, as found by the sides
/// (`SELECT DISTINCT` per table, the Parquet partitions' rows), kept when `filter` selects it; sorted
/// by table (`gaps` first), day, exchange, symbol and without repeats, so the same data gives the
/// same plan.
/// Rows of an exchange or table this build does not know are left out by the caller.
pub fn verify_plan(
    found: impl IntoIterator<Item = (DataType, Exchange, String, i64)>,
    filter: &Filter,
) -> Vec<VerifyUnit> {
    let set: BTreeSet<VerifyUnit> = found
        .into_iter()
        .filter(|(dt, ex, sym, day)| {
            filter.wants_type(*dt)
                && filter.wants_exchange(*ex)
                && (filter.symbols.is_empty() || filter.symbols.contains(sym))
                && filter.overlaps(day_start(*day), day_start(*day) + DAY_MS - 1)
        })
        .map(|(data_type, exchange, symbol, day)| VerifyUnit {
            data_type,
            day_ms: day_start(day),
            exchange,
            symbol,
        })
        .collect();
    // Gaps first: a stream's unit compares its gap rows, so repair mends them before the streams.
    let (gaps, rest): (Vec<VerifyUnit>, Vec<VerifyUnit>) =
        set.into_iter().partition(|u| u.data_type == DataType::Gaps);
    gaps.into_iter().chain(rest).collect()
}

/// A unit id back into its unit (`None` for an id of another shape).
pub fn parse_unit(id: &str) -> Option<VerifyUnit> {
    let mut parts = id.splitn(4, '/');
    let data_type = DataType::parse(parts.next()?)?;
    let day = parts.next()?;
    let exchange = parse_exchange(parts.next()?)?;
    let symbol = parts.next()?.to_owned();
    if day.len() != 10 {
        return None;
    }
    let day_ms = marketprism_report::when::parse_time(&format!("{day}T00:00:00Z"), "unit").ok()?;
    Some(VerifyUnit {
        data_type,
        day_ms,
        exchange,
        symbol,
    })
}

/// What one side holds of a unit.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Figures {
    /// Rows after `FINAL` (Parquet: distinct natural keys, what an import leaves after `FINAL`).
    pub rows_final: u64,
    /// Distinct natural keys (the table's sort key), counted before `FINAL`.
    pub distinct_keys: u64,
    /// Rows before `FINAL` beyond the distinct keys: copies a merge has not yet removed.
    pub duplicates: u64,
    /// Earliest and latest exchange time (`ts_ms`, UTC ms); `None` without rows.
    pub min_ts_ms: Option<i64>,
    pub max_ts_ms: Option<i64>,
    /// Gap rows (after `FINAL`) of the unit's stream (its exchange, symbol and table) ending in the window.
    pub gaps: u64,
    /// Content checksum of the rows after `FINAL`: ClickHouse `groupBitXor(cityHash64(<every
    /// column as text>))`, the same SQL on hot and cold; Parquet: the XOR of the XXH3 of each
    /// distinct row as decoded into an event (compared with hot's rows decoded the same way, not
    /// with hot's ClickHouse checksum). Values are compared per key: [`Discrepancy::ValuesDiffer`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checksum: Option<u64>,
}

/// The figures of a side read as events (a Parquet dataset): `rows` every copy of the unit's rows,
/// `gaps` its stream's gap rows. Keys are the XXH3 of `Event::msg_id` (the natural key).
pub fn event_figures(rows: &[Event], gaps: &[Event]) -> Figures {
    let keys: HashSet<u64> = rows.iter().map(|e| fingerprint(&e.msg_id())).collect();
    let gap_keys: HashSet<u64> = gaps.iter().map(|e| fingerprint(&e.msg_id())).collect();
    let distinct = keys.len() as u64;
    Figures {
        rows_final: distinct,
        distinct_keys: distinct,
        duplicates: rows.len() as u64 - distinct,
        min_ts_ms: rows.iter().map(|e| e.ts_ms).min(),
        max_ts_ms: rows.iter().map(|e| e.ts_ms).max(),
        gaps: gap_keys.len() as u64,
        checksum: Some(value_digests(rows).values().fold(0, |acc, (_, v)| acc ^ v)),
    }
}

/// The XXH3 of an event's content (its JSON): equal for equal values.
pub fn value_digest(event: &Event) -> u64 {
    fingerprint(&serde_json::to_string(event).unwrap_or_default())
}

/// Per natural key (XXH3 of `Event::msg_id`): the key's text and the digest of its last copy's
/// values.
pub fn value_digests(rows: &[Event]) -> std::collections::HashMap<u64, (String, u64)> {
    rows.iter()
        .map(|e| {
            let id = e.msg_id();
            (fingerprint(&id), (id, value_digest(e)))
        })
        .collect()
}

/// Keys both `a` and `b` hold whose values differ: their count and the first [`KEYS_NAMED`] key
/// texts (sorted). `b` may hold several copies of a key (a Parquet dataset): any equal one passes.
pub fn values_differ(a: &[Event], b: &[Event]) -> (u64, Vec<String>) {
    let mut in_b: std::collections::HashMap<u64, Vec<u64>> = std::collections::HashMap::new();
    for e in b {
        in_b.entry(fingerprint(&e.msg_id()))
            .or_default()
            .push(value_digest(e));
    }
    let mut keys: Vec<String> = value_digests(a)
        .into_iter()
        .filter(|(k, (_, v))| in_b.get(k).is_some_and(|vs| !vs.contains(v)))
        .map(|(_, (id, _))| id)
        .collect();
    keys.sort();
    let n = keys.len() as u64;
    keys.truncate(KEYS_NAMED);
    (n, keys)
}

/// The most keys a [`Discrepancy::ValuesDiffer`] names.
pub const KEYS_NAMED: usize = 5;

/// The sides a unit is read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Side {
    /// The hot database.
    Hot,
    /// The cold database, fed by the materialized view from hot.
    Cold,
    /// The Parquet dataset (compared against the hot database).
    Parquet,
}

impl Side {
    pub fn as_str(self) -> &'static str {
        match self {
            Side::Hot => "hot",
            Side::Cold => "cold",
            Side::Parquet => "parquet",
        }
    }
}

/// One difference found in a unit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Discrepancy {
    /// `rows` natural keys that `from` holds and `side` lacks.
    Missing { side: Side, from: Side, rows: u64 },
    /// `rows` copies before `FINAL` in `side` (not yet merged away; `FINAL` hides them).
    Duplicates { side: Side, rows: u64 },
    /// `rows` natural keys both sides hold (after `FINAL`) whose values differ; `keys` names the
    /// first few (sort key columns joined by `/`, or the event's message id against Parquet).
    ValuesDiffer {
        a: Side,
        b: Side,
        rows: u64,
        keys: Vec<String>,
    },
    /// A figure (`rows_final`, `distinct_keys`, `min_ts_ms`, `max_ts_ms`, `gaps`) differs.
    Differs {
        figure: String,
        a: Side,
        a_value: Option<i64>,
        b: Side,
        b_value: Option<i64>,
    },
}

impl Discrepancy {
    /// Whether `job repair` copies it away: rows hot holds and cold lacks (hot → cold), rows the
    /// Parquet dataset holds and ClickHouse lacks (Parquet → hot, the view → cold). Rows only in
    /// cold (hot's TTL drops whole days) or only in ClickHouse are reported, not copied back.
    pub fn repairable(&self) -> bool {
        matches!(
            self,
            Discrepancy::Missing {
                side: Side::Cold,
                from: Side::Hot,
                ..
            } | Discrepancy::Missing {
                side: Side::Hot,
                from: Side::Parquet,
                ..
            }
        )
    }

    /// One line of the terminal table.
    pub fn describe(&self) -> String {
        let v = |x: &Option<i64>| x.map_or("-".to_string(), |n| n.to_string());
        match self {
            Discrepancy::Missing { side, from, rows } => {
                format!(
                    "{rows} rows of {} missing in {}",
                    from.as_str(),
                    side.as_str()
                )
            }
            Discrepancy::Duplicates { side, rows } => {
                format!("{rows} duplicates before FINAL in {}", side.as_str())
            }
            Discrepancy::ValuesDiffer { a, b, rows, keys } => format!(
                "{rows} rows differ in value between {} and {} (same key): {}",
                a.as_str(),
                b.as_str(),
                keys.join(", ")
            ),
            Discrepancy::Differs {
                figure,
                a,
                a_value,
                b,
                b_value,
            } => format!(
                "{figure}: {} {} vs {} {}",
                a.as_str(),
                v(a_value),
                b.as_str(),
                v(b_value)
            ),
        }
    }
}

/// One pair's comparison: keys missing either way (counted by the caller), then every figure that
/// differs, in a fixed order.
pub fn compare(
    a: Side,
    fa: &Figures,
    b: Side,
    fb: &Figures,
    missing_in_b: u64,
    missing_in_a: u64,
) -> Vec<Discrepancy> {
    let mut out = Vec::new();
    if missing_in_b > 0 {
        out.push(Discrepancy::Missing {
            side: b,
            from: a,
            rows: missing_in_b,
        });
    }
    if missing_in_a > 0 {
        out.push(Discrepancy::Missing {
            side: a,
            from: b,
            rows: missing_in_a,
        });
    }
    let n = |x: u64| Some(x as i64);
    for (figure, x, y) in [
        ("rows_final", n(fa.rows_final), n(fb.rows_final)),
        ("distinct_keys", n(fa.distinct_keys), n(fb.distinct_keys)),
        ("min_ts_ms", fa.min_ts_ms, fb.min_ts_ms),
        ("max_ts_ms", fa.max_ts_ms, fb.max_ts_ms),
        ("gaps", n(fa.gaps), n(fb.gaps)),
    ] {
        if x != y {
            out.push(Discrepancy::Differs {
                figure: figure.into(),
                a,
                a_value: x,
                b,
                b_value: y,
            });
        }
    }
    out
}

/// Duplicates of every side that has some.
pub fn duplicates(sides: &[(Side, &Figures)]) -> Vec<Discrepancy> {
    sides
        .iter()
        .filter(|(_, f)| f.duplicates > 0)
        .map(|(side, f)| Discrepancy::Duplicates {
            side: *side,
            rows: f.duplicates,
        })
        .collect()
}

/// One unit's verdict, a line of the work directory's results file (JSON lines).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnitResult {
    pub unit: String,
    pub hot: Figures,
    pub cold: Figures,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parquet: Option<Figures>,
    pub discrepancies: Vec<Discrepancy>,
    /// Rows `job repair` copied into the unit (hot → cold and Parquet → hot), this attempt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repaired_rows: Option<u64>,
}

/// The terminal table of `results`' discrepancies: one line per discrepancy, under a header; or a
/// line saying there is none.
pub fn discrepancy_table(results: &[UnitResult]) -> String {
    let rows: Vec<(&str, String)> = results
        .iter()
        .flat_map(|r| {
            r.discrepancies
                .iter()
                .map(|d| (r.unit.as_str(), d.describe()))
        })
        .collect();
    if rows.is_empty() {
        return format!("no discrepancy in {} units\n", results.len());
    }
    let width = rows.iter().map(|(u, _)| u.len()).max().unwrap_or(0).max(4);
    let mut out = format!("{:<width$}  discrepancy\n", "unit");
    for (unit, what) in &rows {
        out.push_str(&format!("{unit:<width$}  {what}\n"));
    }
    let units = results
        .iter()
        .filter(|r| !r.discrepancies.is_empty())
        .count();
    out.push_str(&format!(
        "{} discrepancies in {units} of {} units\n",
        rows.len(),
        results.len()
    ));
    out
}

#[cfg(test)]
#[path = "verify_plan_tests.rs"]
mod tests;
