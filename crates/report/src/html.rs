//! The report as one self-contained HTML page (inline CSS and SVG; no script, font or image from
//! anywhere), readable offline and attachable to a ticket:
//! - a summary (verdict, range, failures) and a table of every stream's figures;
//! - per stream, rows per minute as a heat strip (blue, darker = more rows; an empty minute red) with
//!   the stream's gaps on the same time axis below it (orange);
//! - per stream, a latency histogram over fixed buckets (purple).

use crate::evaluate::{Report, StreamReport, Verdict};
use crate::stats::MINUTE_MS;
use std::collections::BTreeMap;
use std::fmt::Write;

/// Colours the page draws with (the browser test looks for them in a screenshot).
pub mod colour {
    /// A whole minute without a row.
    pub const EMPTY_MINUTE: &str = "#d7301f";
    /// A gap row's span.
    pub const GAP: &str = "#ff7f00";
    /// A latency histogram bar.
    pub const LATENCY: &str = "#6a51a3";
    /// Rows per minute, fewest to most (linear blend).
    pub const FEW_ROWS: (u8, u8, u8) = (0xc6, 0xdb, 0xef);
    pub const MANY_ROWS: (u8, u8, u8) = (0x08, 0x51, 0x9c);
}

/// Heat strips wider than this many columns show one column per several minutes (their minimum, so
/// an empty minute stays visible).
const MAX_COLUMNS: usize = 1_440;
const WIDTH: f64 = 960.0;

/// Latency histogram buckets: upper bounds in ms (the last is open).
const LATENCY_BOUNDS_MS: [i64; 14] = [
    0, 1, 2, 5, 10, 20, 50, 100, 200, 500, 1_000, 2_000, 5_000, 10_000,
];

/// The page for `report`.
pub fn render(report: &Report) -> String {
    let mut h = String::with_capacity(64 * 1024);
    let verdict = verdict_word(report.verdict);
    let _ = write!(
        h,
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <title>marketprism data quality: {verdict}</title><style>{CSS}</style></head><body>\n\
         <h1>Data quality: <span class=\"{cls}\">{verdict}</span></h1>\n\
         <p class=\"meta\">{from} → {to} UTC · {n} streams, {failing} failing · source {source}</p>\n",
        cls = verdict_class(report.verdict),
        from = utc(report.range.from_ms),
        to = utc(report.range.to_ms),
        n = report.streams.len(),
        failing = report
            .streams
            .iter()
            .filter(|s| s.verdict == Verdict::Fail)
            .count(),
        source = esc(&report.source),
    );
    if !report.failures.is_empty() {
        h.push_str("<h2>Failures</h2><ul class=\"failures\">");
        for f in report.failures.iter().take(200) {
            let _ = write!(h, "<li>{}</li>", esc(f));
        }
        if report.failures.len() > 200 {
            let _ = write!(h, "<li>… {} more</li>", report.failures.len() - 200);
        }
        h.push_str("</ul>\n");
    }
    if !report.skipped.is_empty() {
        h.push_str(
            "<h2>Left out</h2><p class=\"legend\">not part of the dataset's layout:</p><ul>",
        );
        for s in report.skipped.iter().take(50) {
            let _ = write!(h, "<li>{}</li>", esc(s));
        }
        h.push_str("</ul>\n");
    }
    streams_table(&mut h, report);
    h.push_str(
        "<h2>Rows per minute and gaps</h2><p class=\"legend\">blue: rows in a minute (darker = more); \
         red: a minute without a row; orange: a gap row's span</p>\n",
    );
    for s in &report.streams {
        timeline(&mut h, s, report);
    }
    h.push_str("<h2>Latency (receive − exchange time)</h2>\n<div class=\"hists\">");
    for s in report.streams.iter().filter(|s| s.latency.is_some()) {
        histogram(&mut h, s);
    }
    h.push_str("</div>\n</body></html>\n");
    h
}

const CSS: &str = "body{font:14px/1.4 system-ui,sans-serif;margin:24px;color:#222}\
h1 span{padding:2px 10px;border-radius:4px;color:#fff}.pass{background:#1a9850}.fail{background:#d73027}\
table{border-collapse:collapse;font-size:13px}td,th{border-bottom:1px solid #ddd;padding:3px 8px;text-align:right;white-space:nowrap}\
td:first-child,th:first-child{text-align:left}.meta,.legend{color:#555}figure{margin:8px 0}\
figcaption{font-size:12px;color:#333}.hists{display:flex;flex-wrap:wrap;gap:12px}.hists figure{width:300px}\
.failures{color:#a50026}";

fn verdict_word(v: Verdict) -> &'static str {
    match v {
        Verdict::Pass => "PASS",
        Verdict::Fail => "FAIL",
    }
}

fn verdict_class(v: Verdict) -> &'static str {
    match v {
        Verdict::Pass => "pass",
        Verdict::Fail => "fail",
    }
}

fn streams_table(h: &mut String, report: &Report) {
    h.push_str(
        "<h2>Streams</h2><table><tr><th>stream</th><th>verdict</th><th>rows</th><th>rows/h</th>\
         <th>empty min</th><th>duplicates</th><th>gaps</th><th>gap time</th><th>causes</th>\
         <th>p50 ms</th><th>p99 ms</th><th>max ms</th></tr>\n",
    );
    for s in &report.streams {
        let (p50, p99, max) = s.latency.as_ref().map_or(
            ("–".to_string(), "–".to_string(), "–".to_string()),
            |l| {
                (
                    l.p50_ms.to_string(),
                    l.p99_ms.to_string(),
                    l.max_ms.to_string(),
                )
            },
        );
        let causes = s
            .gaps
            .causes
            .iter()
            .map(|(c, n)| format!("{c} {n}"))
            .collect::<Vec<_>>()
            .join(", ");
        let _ = writeln!(
            h,
            "<tr><td>{id}</td><td><span class=\"{cls}\" style=\"color:#fff;padding:0 6px\">{v}</span></td>\
             <td>{rows}</td><td>{rph:.1}</td><td>{empty}/{whole}</td><td>{dups}</td><td>{gaps}</td>\
             <td>{gt:.1} s</td><td>{causes}</td><td>{p50}</td><td>{p99}</td><td>{max}</td></tr>",
            id = esc(&s.id.to_string()),
            cls = verdict_class(s.verdict),
            v = verdict_word(s.verdict),
            rows = s.rows,
            rph = s.events_per_hour,
            empty = s.empty_minutes,
            whole = s.whole_minutes,
            dups = s.duplicates,
            gaps = s.gaps.count,
            gt = s.gaps.duration_ms as f64 / 1000.0,
            causes = esc(&causes),
        );
    }
    h.push_str("</table>\n");
}

/// `#rrggbb` between the two heat colours, `t` in 0..=1.
fn blend(t: f64) -> String {
    let (a, b) = (colour::FEW_ROWS, colour::MANY_ROWS);
    let mix = |x: u8, y: u8| (x as f64 + (y as f64 - x as f64) * t.clamp(0.0, 1.0)).round() as u8;
    format!(
        "#{:02x}{:02x}{:02x}",
        mix(a.0, b.0),
        mix(a.1, b.1),
        mix(a.2, b.2)
    )
}

fn timeline(h: &mut String, s: &StreamReport, report: &Report) {
    let minutes = &s.rows_per_minute;
    let per_column = minutes.len().div_ceil(MAX_COLUMNS).max(1);
    let columns: Vec<u64> = minutes
        .chunks(per_column)
        .map(|c| c.iter().copied().min().unwrap_or(0))
        .collect();
    let max = columns.iter().copied().max().unwrap_or(0).max(1) as f64;
    // One time axis for the strip and the gaps: the whole minutes, or the range when it has none.
    let minutes_axis = report.range.whole_minutes();
    let (axis_from, axis_to) = if minutes_axis.is_empty() {
        (report.range.from_ms, report.range.to_ms)
    } else {
        (minutes_axis.start * MINUTE_MS, minutes_axis.end * MINUTE_MS)
    };
    let _ = write!(
        h,
        "<figure class=\"timeline\"><figcaption>{id}: {rows} rows, {empty} empty minutes, {gaps} gaps</figcaption>\
         <svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{WIDTH}\" height=\"46\" viewBox=\"0 0 {WIDTH} 46\">\
         <rect x=\"0\" y=\"0\" width=\"{WIDTH}\" height=\"34\" fill=\"#f4f4f4\"/>\
         <text x=\"0\" y=\"44\" font-size=\"10\" fill=\"#555\">{from}</text>\
         <text x=\"{WIDTH}\" y=\"44\" font-size=\"10\" fill=\"#555\" text-anchor=\"end\">{to} UTC</text>",
        id = esc(&s.id.to_string()),
        rows = s.rows,
        empty = s.empty_minutes,
        gaps = s.gaps.count,
        from = utc(axis_from),
        to = utc(axis_to),
    );
    let w = WIDTH / columns.len().max(1) as f64;
    for (i, &n) in columns.iter().enumerate() {
        let fill = if n == 0 {
            colour::EMPTY_MINUTE.to_string()
        } else {
            blend(n as f64 / max)
        };
        let _ = write!(
            h,
            "<rect x=\"{:.2}\" y=\"0\" width=\"{:.2}\" height=\"20\" fill=\"{fill}\"/>",
            i as f64 * w,
            w + 0.05
        );
    }
    let span = (axis_to - axis_from).max(1) as f64;
    for g in &s.gaps.spans {
        let start = g.start_ms.max(axis_from);
        let end = g.end_ms.min(axis_to);
        if end < start {
            continue;
        }
        let x = (start - axis_from) as f64 / span * WIDTH;
        // At least 2 px, so a 50 ms reconnect gap shows.
        let gw = ((end - start) as f64 / span * WIDTH).max(2.0);
        let _ = write!(
            h,
            "<rect x=\"{x:.2}\" y=\"23\" width=\"{gw:.2}\" height=\"10\" fill=\"{}\"><title>{} {} → {}</title></rect>",
            colour::GAP,
            esc(&g.cause),
            utc(g.start_ms),
            utc(g.end_ms),
        );
    }
    h.push_str("</svg></figure>\n");
}

fn bucket_label(i: usize) -> String {
    match i {
        0 => "≤0".to_string(),
        i if i < LATENCY_BOUNDS_MS.len() => format!("≤{}", LATENCY_BOUNDS_MS[i]),
        _ => format!(">{}", LATENCY_BOUNDS_MS[LATENCY_BOUNDS_MS.len() - 1]),
    }
}

/// Rows per latency bucket (`LATENCY_BOUNDS_MS`, one open bucket after the last bound).
pub(crate) fn latency_buckets(latency_ms: &BTreeMap<i64, u64>) -> Vec<u64> {
    let mut buckets = vec![0; LATENCY_BOUNDS_MS.len() + 1];
    for (&l, &n) in latency_ms {
        let i = LATENCY_BOUNDS_MS.partition_point(|&b| b < l);
        buckets[i] += n;
    }
    buckets
}

fn histogram(h: &mut String, s: &StreamReport) {
    let buckets = latency_buckets(&s.latency_ms);
    let max = buckets.iter().copied().max().unwrap_or(0).max(1) as f64;
    let (w, bar_h) = (300.0, 80.0);
    let bw = w / buckets.len() as f64;
    let l = s.latency.as_ref().expect("streams with latency only");
    let _ = write!(
        h,
        "<figure class=\"histogram\"><figcaption>{id}<br>p50 {} ms · p99 {} ms · max {} ms</figcaption>\
         <svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"100\" viewBox=\"0 0 {w} 100\">",
        l.p50_ms,
        l.p99_ms,
        l.max_ms,
        id = esc(&s.id.to_string()),
    );
    for (i, &n) in buckets.iter().enumerate() {
        let bh = if n == 0 {
            0.0
        } else {
            (n as f64 / max * bar_h).max(1.5)
        };
        let _ = write!(
            h,
            "<rect x=\"{:.2}\" y=\"{:.2}\" width=\"{:.2}\" height=\"{bh:.2}\" fill=\"{}\"><title>{} ms: {n}</title></rect>",
            i as f64 * bw + 1.0,
            bar_h - bh,
            bw - 2.0,
            colour::LATENCY,
            bucket_label(i),
        );
    }
    let _ = write!(
        h,
        "<text x=\"0\" y=\"95\" font-size=\"10\">≤0 ms</text><text x=\"{}\" y=\"95\" font-size=\"10\" \
         text-anchor=\"end\">&gt;10 s</text></svg></figure>",
        w
    );
}

/// `YYYY-MM-DD HH:MM:SS` of a UTC ms timestamp.
fn utc(ts_ms: i64) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp(ts_ms.div_euclid(1000))
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02}",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latency_buckets_are_upper_bounded() {
        let lat = BTreeMap::from([(-3, 1), (0, 1), (1, 2), (3, 1), (10_000, 1), (10_001, 4)]);
        let b = latency_buckets(&lat);
        assert_eq!(b[0], 2); // ≤ 0 ms, clock skew included
        assert_eq!(b[1], 2); // ≤ 1 ms
        assert_eq!(b[3], 1); // ≤ 5 ms
        assert_eq!(b[13], 1); // ≤ 10 s
        assert_eq!(b[14], 4); // > 10 s
        assert_eq!(b.iter().sum::<u64>(), 10);
    }

    #[test]
    fn heat_colours_span_the_scale() {
        assert_eq!(blend(0.0), "#c6dbef");
        assert_eq!(blend(1.0), "#08519c");
    }

    #[test]
    fn gaps_and_minutes_share_one_time_axis() {
        use crate::criteria::Criteria;
        use crate::stats::{Gap, Observed, Range, StreamId, StreamStats};
        let mut stats = StreamStats::default();
        for m in [0, 1, 2, 3, 5, 6, 7, 8, 9] {
            stats.add_rows(m * MINUTE_MS + 5, 3, 10);
        }
        stats.add_gap(Gap {
            start_ms: 4 * MINUTE_MS,
            end_ms: 5 * MINUTE_MS,
            cause: "disconnect".into(),
        });
        let id = StreamId {
            exchange: "okx_spot".into(),
            market_type: "spot".into(),
            data_type: marketprism_model::DataType::Trades,
            symbol: "BTC-USDT".into(),
        };
        let observed = Observed::from([(id, stats)]);
        // The range starts mid-minute: the axis is its whole minutes, 1..10.
        let range = Range {
            from_ms: 30_000,
            to_ms: 10 * MINUTE_MS,
        };
        let report = crate::evaluate(&observed, &[], range, &Criteria::default(), "t".into());
        let page = render(&report);
        // 9 columns of 106.67 px; the empty minute 4 is the 4th column (x = 320), red.
        assert!(
            page.contains(&format!(
                "<rect x=\"320.00\" y=\"0\" width=\"106.72\" height=\"20\" fill=\"{}\"/>",
                colour::EMPTY_MINUTE
            )),
            "{page}"
        );
        // The gap covers the same minute on the same axis.
        assert!(
            page.contains(&format!(
                "<rect x=\"320.00\" y=\"23\" width=\"106.67\" height=\"10\" fill=\"{}\">",
                colour::GAP
            )),
            "{page}"
        );
        assert!(page.contains("<title>marketprism data quality: FAIL</title>"));
    }

    #[test]
    fn text_is_escaped() {
        assert_eq!(esc("<a&\"b>"), "&lt;a&amp;&quot;b&gt;");
    }
}
