//! The report's HTML page in a real browser: headless Chromium (Debian's package, installed by
//! `tests/scripts/install-deps.sh`) renders the page of a dataset with known faults, and the
//! screenshot must show each chart: the heat strip's rows (blue) and its empty minute (red), the gap
//! timeline (orange) and the latency histogram (purple).

use marketprism_report::html::{colour, render};
use marketprism_report::{Criteria, Range, evaluate, source};
use marketprism_tests::report_data::{self as data, FROM, TO};
use marketprism_tests::servers::servers_required;
use std::path::{Path, PathBuf};
use std::process::Command;

fn chromium() -> Option<PathBuf> {
    let candidates = [
        std::env::var("MARKETPRISM_CHROMIUM").ok(),
        Some("/usr/bin/chromium".to_string()),
        Some("/usr/bin/chromium-browser".to_string()),
    ];
    let found = candidates
        .into_iter()
        .flatten()
        .map(PathBuf::from)
        .find(|p| p.exists());
    if found.is_none() {
        assert!(
            !servers_required(),
            "chromium is not installed: run tests/scripts/install-deps.sh apt"
        );
        eprintln!(
            "SKIPPED report_html_chromium: chromium is not installed (tests/scripts/install-deps.sh apt)"
        );
    }
    found
}

/// Chromium's headless flags on a closed network (no background requests, no sandbox as root).
fn headless(bin: &Path, profile: &Path) -> Command {
    let mut c = Command::new(bin);
    c.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--hide-scrollbars",
        "--force-device-scale-factor=1",
    ])
    .arg(format!("--user-data-dir={}", profile.display()));
    c
}

fn parse_hex(hex: &str) -> (u8, u8, u8) {
    let v = u32::from_str_radix(hex.trim_start_matches('#'), 16).unwrap();
    ((v >> 16) as u8, (v >> 8) as u8, v as u8)
}

/// Pixels within a small distance of `rgb` (anti-aliased edges excluded).
fn count(pixels: &[(u8, u8, u8)], rgb: (u8, u8, u8)) -> usize {
    let near = |a: u8, b: u8| a.abs_diff(b) <= 3;
    pixels
        .iter()
        .filter(|p| near(p.0, rgb.0) && near(p.1, rgb.1) && near(p.2, rgb.2))
        .count()
}

#[tokio::test]
async fn the_page_renders_its_charts_in_chromium() {
    let Some(bin) = chromium() else { return };
    let dir = tempfile::tempdir().unwrap();
    data::write_parquet(&dir.path().join("data"), data::events()).await;
    let range = Range {
        from_ms: FROM,
        to_ms: TO,
    };
    let scan = source::parquet::scan(&dir.path().join("data"), Some(range)).unwrap();
    let report = evaluate(
        &scan.observed,
        &[],
        range,
        &Criteria::default(),
        "test".into(),
    );
    let page = dir.path().join("report.html");
    std::fs::write(&page, render(&report)).unwrap();

    // The DOM Chromium built: two timelines and two histograms, the verdict in the title.
    let dom = headless(&bin, &dir.path().join("profile-dom"))
        .arg("--dump-dom")
        .arg(format!("file://{}", page.display()))
        .output()
        .unwrap();
    assert!(
        dom.status.success(),
        "{}",
        String::from_utf8_lossy(&dom.stderr)
    );
    let dom = String::from_utf8_lossy(&dom.stdout);
    assert!(
        dom.contains("<title>marketprism data quality: FAIL</title>"),
        "{dom:.400}"
    );
    assert_eq!(dom.matches("<figure class=\"timeline\"").count(), 2);
    assert_eq!(dom.matches("<figure class=\"histogram\"").count(), 2);

    // The pixels: each chart drawn in its colour.
    let shot = dir.path().join("report.png");
    let status = headless(&bin, &dir.path().join("profile-shot"))
        .arg("--window-size=1280,1600")
        .arg(format!("--screenshot={}", shot.display()))
        .arg(format!("file://{}", page.display()))
        .status()
        .unwrap();
    assert!(status.success());
    let decoder = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(&shot).unwrap()));
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buf).unwrap();
    let channels = info.color_type.samples();
    let pixels: Vec<(u8, u8, u8)> = buf[..info.buffer_size()]
        .chunks(channels)
        .map(|p| (p[0], p[1], p[2]))
        .collect();
    assert_eq!((info.width, info.height), (1280, 1600));
    // The trades strip: 10 minutes over 960 px, one of them empty: ~96 × 20 px of red.
    let red = count(&pixels, parse_hex(colour::EMPTY_MINUTE));
    assert!((1_500..=2_400).contains(&red), "empty-minute pixels: {red}");
    // Gaps: 60 s → 96 px and 2 s → 3.2 px, 10 px high.
    let orange = count(&pixels, parse_hex(colour::GAP));
    assert!((800..=1_200).contains(&orange), "gap pixels: {orange}");
    let purple = count(&pixels, parse_hex(colour::LATENCY));
    assert!(purple > 1_000, "latency bar pixels: {purple}");
    let darkest_blue = count(&pixels, colour::MANY_ROWS);
    assert!(darkest_blue > 1_000, "heat strip pixels: {darkest_blue}");
    if let Ok(keep) = std::env::var("MARKETPRISM_REPORT_SCREENSHOT") {
        std::fs::copy(&shot, keep).unwrap();
    }
}
