//! Every parser fed arbitrary text and mutated real frames: it returns `Ok` or a typed error, never panics.

mod common;

use common::{fixture_lines, fixtures_under, recorded_instruments};
use marketprism_model::instruments::InstrumentTable;
use marketprism_model::{Exchange, MarketType, Symbol};
use marketprism_venues::{binance, deribit, gate, mexc, okx};
use proptest::prelude::*;
use std::sync::OnceLock;

fn table(ex: Exchange) -> &'static InstrumentTable {
    static TABLES: OnceLock<Vec<(Exchange, InstrumentTable)>> = OnceLock::new();
    let all = TABLES.get_or_init(|| {
        Exchange::ALL
            .into_iter()
            .map(|e| (e, recorded_instruments(e)))
            .collect()
    });
    &all.iter().find(|(e, _)| *e == ex).unwrap().1
}

fn all_parsers(text: &str) {
    let sym = Symbol::new("BTC-USDT").unwrap();
    for ex in [Exchange::BinanceSpot, Exchange::BinanceDerivatives] {
        let _ = binance::parse::parse_frame(table(ex), ex, text, 0);
    }
    let usdm = table(Exchange::BinanceDerivatives);
    let _ = binance::parse::parse_depth_snapshot(text);
    let _ = binance::parse::parse_open_interest(usdm, text, 0);
    let _ = binance::parse::parse_long_short(
        usdm,
        text,
        binance::parse::RatioKind::TopPositions,
        "5m",
        0,
    );
    for ex in [Exchange::OkxSpot, Exchange::OkxDerivatives] {
        let _ = okx::parse::parse_frame(table(ex), ex, text, 0);
    }
    let _ = okx::parse::parse_rest_books(text);
    let _ = okx::parse::parse_rest_open_interest(table(Exchange::OkxDerivatives), text, 0);
    let _ = okx::parse::parse_rubik_ratio(
        text,
        &sym,
        MarketType::Perpetual,
        okx::parse::RatioKind::AllAccounts,
        "5m",
        0,
    );
    let _ = deribit::parse::parse_frame(table(Exchange::DeribitDerivatives), text, 0);
    for ex in [Exchange::GateSpot, Exchange::GateDerivatives] {
        let _ = gate::parse::parse_frame(table(ex), ex, text, 0);
    }
    let gate_btc = table(Exchange::GateDerivatives).by_venue("BTC_USDT");
    let _ = gate::parse::parse_rest_book(text, None);
    let _ = gate::parse::parse_rest_book(text, gate_btc.map(|i| &**i));
    let _ = mexc::parse::parse_text(text);
    let _ = mexc::parse::parse_depth_snapshot(text);
    let _ = mexc::futures::parse_frame(
        table(Exchange::MexcDerivatives),
        Exchange::MexcDerivatives,
        text,
        0,
    );
    let _ = mexc::futures::parse_depth_snapshot(text);
    all_binary_parsers(text.as_bytes());
    for ex in Exchange::ALL {
        let _ = marketprism_venues::instruments::parse_listing(ex, text);
    }
}

/// The binary (protobuf) parser: MEXC spot.
fn all_binary_parsers(bytes: &[u8]) {
    let _ = mexc::parse::parse_binary(table(Exchange::MexcSpot), Exchange::MexcSpot, bytes, 0);
    let _ = mexc::parse::channel_of(bytes);
}

/// The MEXC spot documentation examples as protobuf bytes (hex fixtures).
fn binary_seeds() -> Vec<Vec<u8>> {
    [
        "mexc/spot_depth_docexample.pb.hex",
        "mexc/spot_deals_docexample.pb.hex",
    ]
    .iter()
    .map(|f| {
        let t = common::fixture(f);
        (0..t.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&t[i..i + 2], 16).unwrap())
            .collect()
    })
    .collect()
}

/// Every recorded frame plus a few REST/control shapes, as mutation seeds.
fn seeds() -> &'static Vec<String> {
    static SEEDS: OnceLock<Vec<String>> = OnceLock::new();
    SEEDS.get_or_init(|| {
        let mut v: Vec<String> = fixtures_under("")
            .iter()
            .flat_map(|f| fixture_lines(f).into_iter().take(3))
            .filter(|l| l.len() < 20_000)
            .collect();
        v.push(r#"{"code":"0","msg":"","data":[["1701417600000","1.1739"]]}"#.into());
        v.push(r#"{"code":"0","msg":"","data":[{"asks":[["1","2","0","1"]],"bids":[],"ts":"1","seqId":5}]}"#.into());
        v.push(r#"{"result":null,"id":1}"#.into());
        v
    })
}

#[test]
fn all_real_frames_parse_without_panicking() {
    assert!(seeds().len() > 50);
    for s in seeds() {
        all_parsers(s);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn arbitrary_strings_never_panic(s in any::<String>()) {
        all_parsers(&s);
    }

    #[test]
    fn json_looking_noise_never_panics(s in r#"[\[\]{}":,0-9a-zA-Z.\-e ]{0,200}"#) {
        all_parsers(&s);
    }

    #[test]
    fn arbitrary_bytes_never_panic_the_binary_parser(b in prop::collection::vec(any::<u8>(), 0..300)) {
        all_binary_parsers(&b);
    }

    #[test]
    fn mutated_protobuf_frames_never_panic(
        seed in 0usize..2,
        edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0u8..3), 1..6),
    ) {
        let mut bytes = binary_seeds().swap_remove(seed);
        for (at, byte, op) in edits {
            if bytes.is_empty() {
                break;
            }
            let i = at.index(bytes.len());
            match op {
                0 => bytes[i] = byte,
                1 => bytes.truncate(i),
                _ => { bytes.remove(i); }
            }
        }
        all_binary_parsers(&bytes);
    }

    #[test]
    fn mutated_real_frames_never_panic(
        seed in any::<prop::sample::Index>(),
        edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0u8..3), 1..6),
    ) {
        let mut bytes = seed.get(seeds()).clone().into_bytes();
        for (at, byte, op) in edits {
            if bytes.is_empty() {
                break;
            }
            let i = at.index(bytes.len());
            match op {
                0 => bytes[i] = byte,
                1 => bytes.truncate(i),
                _ => { bytes.remove(i); }
            }
        }
        all_parsers(&String::from_utf8_lossy(&bytes));
    }
}
