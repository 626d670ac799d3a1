//! Which planned stream (data type, symbol) a frame or a refusal concerns, pure, so that a fault acts
//! on that stream alone. Frames are read tolerantly (a truncated or mistyped frame still names its
//! channel and instrument near the start); what names no planned stream is nobody's.
//!
//! | venue | channel | instrument |
//! |---|---|---|
//! | Binance | `e` (`depthUpdate`, `trade`, `aggTrade`, `markPriceUpdate`, `forceOrder`) or the combined `stream` name | `s` (`BTCUSDT`) |
//! | OKX | `arg.channel` (`books`, `trades`, `funding-rate`, `open-interest`, `liquidation-orders`) | `instId` |
//! | Deribit | `params.channel` (`book.BTC-PERPETUAL.100ms`, `trades.…`, `deribit_volatility_index.btc_usd`) | inside the channel |
//! | Gate | `channel` (`spot.order_book_update`, `futures.trades`, …) | `s`, `currency_pair` or `contract` (first found) |
//! | MEXC spot | `channel` (`spot@public.aggre.depth.v3.api.pb@100ms@BTCUSDT`; of a binary frame, its field 1) | its last `@` part |
//! | MEXC contracts | `channel` (`push.depth`, `push.deal`, `push.funding.rate`, `push.ticker`) | `symbol` (`BTC_USDT`) |
//!
//! Refusals: OKX answers a refused subscribe arg with an `error` event whose `msg` names it
//! (`Wrong URL or channel:books,instId:SOL-USDT-SWAP doesn't exist.`, code 60018, exchange-protocols.md
//! §3.2); Binance REST answers an unlisted symbol with HTTP 400 `{"code":-1121,"msg":"Invalid symbol."}`;
//! OKX REST with `{"code":"51001","msg":"Instrument ID does not exist"}`. Gate answers each refused
//! subscribe request with `error` and the request's `id` (one request per stream group, see
//! [`crate::gate::plan`]); its REST with HTTP 400 `{"label":"INVALID_CURRENCY_PAIR"}` or
//! `{"label":"CONTRACT_NOT_FOUND"}`. MEXC spot answers a refused channel with
//! `{"id":0,"code":0,"msg":"Not Subscribed successfully! [channel].  Reason： …"}`; MEXC contracts'
//! `rs.error` names no symbol: it is matched to the oldest subscribe still unanswered (replies come in
//! order).

use crate::plan::{Stream, Venue, WsPlan};
use crate::{deribit, mexc};
use marketprism_model::DataType;

/// What a frame says it is about: the venue's channel and instrument names, as sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Attribution {
    pub data_type: DataType,
    pub instrument: String,
}

/// The value of the first `"key":"value"` string field in `text`, even if the rest is broken.
fn string_field<'a>(text: &'a str, key: &str) -> Option<&'a str> {
    let needle = format!("\"{key}\"");
    let mut from = 0;
    while let Some(i) = text[from..].find(&needle) {
        let rest = text[from + i + needle.len()..].trim_start();
        from += i + needle.len();
        let Some(rest) = rest.strip_prefix(':') else {
            continue;
        };
        let Some(rest) = rest.trim_start().strip_prefix('"') else {
            continue;
        };
        return rest.find('"').map(|end| &rest[..end]);
    }
    None
}

fn binance_type(event: &str) -> Option<DataType> {
    Some(match event {
        "depthUpdate" | "depth" | "depth@100ms" | "depth@0ms" | "depth@500ms" => {
            DataType::Orderbooks
        }
        "trade" | "aggTrade" => DataType::Trades,
        "markPriceUpdate" | "markPrice" | "markPrice@1s" => DataType::FundingRates,
        "forceOrder" => DataType::Liquidations,
        _ => return None,
    })
}

fn okx_type(channel: &str) -> Option<DataType> {
    Some(match channel {
        "books" | "books5" | "books-l2-tbt" | "books50-l2-tbt" => DataType::Orderbooks,
        "trades" => DataType::Trades,
        "funding-rate" => DataType::FundingRates,
        "open-interest" => DataType::OpenInterests,
        "liquidation-orders" => DataType::Liquidations,
        _ => return None,
    })
}

fn gate_type(channel: &str) -> Option<DataType> {
    Some(match channel {
        "spot.order_book_update" | "futures.order_book_update" => DataType::Orderbooks,
        "spot.trades" | "futures.trades" => DataType::Trades,
        // One ticker carries funding and open interest: a broken one is counted against funding.
        "futures.tickers" => DataType::FundingRates,
        "futures.public_liquidates" => DataType::Liquidations,
        _ => return None,
    })
}

/// A MEXC spot channel → (data type, venue symbol).
fn mexc_spot_channel(channel: &str) -> Option<(DataType, &str)> {
    let data_type = if channel.starts_with("spot@public.aggre.depth.") {
        DataType::Orderbooks
    } else if channel.starts_with("spot@public.aggre.deals.") {
        DataType::Trades
    } else {
        return None;
    };
    Some((data_type, channel.rsplit('@').next()?))
}

/// What `text` is about, if it says so in a way this venue uses.
pub(crate) fn attribute(venue: Venue, text: &str) -> Option<Attribution> {
    match venue {
        Venue::Mexc(marketprism_model::Exchange::MexcSpot) => {
            let (data_type, symbol) = mexc_spot_channel(string_field(text, "channel")?)?;
            Some(Attribution {
                data_type,
                instrument: symbol.to_owned(),
            })
        }
        Venue::Mexc(_) => Some(Attribution {
            data_type: match string_field(text, "channel")? {
                "push.depth" => DataType::Orderbooks,
                "push.deal" => DataType::Trades,
                "push.funding.rate" => DataType::FundingRates,
                "push.ticker" => DataType::OpenInterests,
                _ => return None,
            },
            instrument: string_field(text, "symbol")?.to_owned(),
        }),
        Venue::Binance(_) => {
            if let Some(stream) = string_field(text, "stream") {
                let (sym, kind) = stream.split_once('@')?;
                return Some(Attribution {
                    data_type: binance_type(kind)?,
                    instrument: sym.to_ascii_uppercase(),
                });
            }
            Some(Attribution {
                data_type: binance_type(string_field(text, "e")?)?,
                instrument: string_field(text, "s")?.to_owned(),
            })
        }
        Venue::Okx(_) => Some(Attribution {
            data_type: okx_type(string_field(text, "channel")?)?,
            instrument: string_field(text, "instId")?.to_owned(),
        }),
        Venue::Gate(_) => Some(Attribution {
            data_type: gate_type(string_field(text, "channel")?)?,
            instrument: ["s", "currency_pair", "contract"]
                .into_iter()
                .find_map(|k| string_field(text, k))?
                .to_owned(),
        }),
        Venue::Deribit => {
            let channel = string_field(text, "channel")?;
            let mut parts = channel.split('.');
            let data_type = match parts.next()? {
                "book" => DataType::Orderbooks,
                "trades" => DataType::Trades,
                "deribit_volatility_index" => DataType::VolatilityIndices,
                _ => return None,
            };
            Some(Attribution {
                data_type,
                instrument: parts.next()?.to_owned(),
            })
        }
    }
}

/// Maps a planned stream to the venue's instrument name, as frames carry it.
pub(crate) type InstrumentNames<'a> = &'a dyn Fn(&Stream) -> Option<String>;

/// The venue's instrument name of a planned stream, from the plan's instrument list (the venue's
/// own); a Deribit volatility index is named by its index, not an instrument.
pub fn instrument_name(plan: &WsPlan, s: &Stream) -> Option<String> {
    match plan.venue {
        Venue::Deribit if s.data_type == DataType::VolatilityIndices => {
            Some(deribit::symbols::to_index_name(&s.symbol))
        }
        _ => plan.venue_symbol(&s.symbol),
    }
}

/// The planned stream an attribution names, if any.
pub(crate) fn stream_of<'a>(
    a: &Attribution,
    streams: &'a [Stream],
    names: InstrumentNames<'_>,
) -> Option<&'a Stream> {
    streams.iter().find(|s| {
        s.data_type == a.data_type
            && names(s).is_some_and(|n| n.eq_ignore_ascii_case(&a.instrument))
    })
}

/// A refused subscribe arg: the ack key it would have had and the planned streams it carried.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Refusal {
    pub ack: String,
    pub streams: Vec<Stream>,
}

/// The subscribe arg an OKX `error` event refuses, read from its `msg` (`channel:X,instId:Y` or
/// `channel:X,instType:Y`), with the planned streams it carried; `None` when it names none of them.
pub(crate) fn refused_arg(
    venue: Venue,
    msg: &str,
    streams: &[Stream],
    names: InstrumentNames<'_>,
) -> Option<Refusal> {
    if venue == Venue::Mexc(marketprism_model::Exchange::MexcSpot) {
        return mexc::parse::refused_channels(msg)
            .into_iter()
            .find_map(|ch| {
                let (data_type, symbol) = mexc_spot_channel(ch)?;
                let matched: Vec<Stream> = streams
                    .iter()
                    .filter(|s| s.data_type == data_type && names(s).as_deref() == Some(symbol))
                    .cloned()
                    .collect();
                (!matched.is_empty()).then(|| Refusal {
                    ack: ch.to_owned(),
                    streams: matched,
                })
            });
    }
    let Venue::Okx(_) = venue else {
        return None;
    };
    let rest = &msg[msg.find("channel:")? + "channel:".len()..];
    let (channel, rest) = rest.split_once(',')?;
    let data_type = okx_type(channel)?;
    let (field, rest) = rest.split_once(':')?;
    let key: &str = rest.split([' ', ',', '"']).next()?;
    let matched: Vec<Stream> = match field {
        "instType" => streams
            .iter()
            .filter(|s| s.data_type == data_type)
            .cloned()
            .collect(),
        "instId" => streams
            .iter()
            .filter(|s| s.data_type == data_type && names(s).as_deref() == Some(key))
            .cloned()
            .collect(),
        _ => return None,
    };
    (!matched.is_empty()).then(|| Refusal {
        ack: format!("{channel}:{key}"),
        streams: matched,
    })
}

/// The request an `error` echoing its ack `id` answers (Gate), and the planned streams it alone
/// carries ([`crate::plan::Request::streams`]); `None` without an id, or for an id that names no such
/// request or several (MEXC contracts ack per method: `rs.sub.deal` for every symbol).
pub(crate) fn refused_request(plan: &WsPlan, id: Option<&str>) -> Option<Refusal> {
    let id = id?;
    let mut named = plan
        .requests
        .iter()
        .filter(|r| !r.streams.is_empty() && r.acks.iter().any(|a| a == id));
    let req = named.next()?;
    if named.next().is_some() {
        return None;
    }
    Some(Refusal {
        ack: id.to_owned(),
        streams: req.streams.clone(),
    })
}

/// The planned streams request `i` of the plan alone subscribes (MEXC contracts: one method and
/// symbol per request); empty for batch requests.
pub(crate) fn request_streams(plan: &WsPlan, i: usize) -> Vec<Stream> {
    plan.requests
        .get(i)
        .map(|r| r.streams.clone())
        .unwrap_or_default()
}

/// The planned streams a Deribit `public/subscribe` (request `id` of the plan) asked for but whose
/// channel the venue left out of its `result`: those are refused, the rest of the batch goes on.
/// Other venues and requests outside the plan (a book's resubscribe) confirm nothing here.
pub(crate) fn unconfirmed(plan: &WsPlan, id: &str, subscribed: &[String]) -> Vec<Stream> {
    let Venue::Deribit = plan.venue else {
        return Vec::new();
    };
    let Some(request) = plan
        .requests
        .iter()
        .find(|r| r.acks.iter().any(|a| a == id))
    else {
        return Vec::new();
    };
    plan.streams
        .iter()
        .filter(|s| {
            let venue_symbol = plan.venue_symbol(&s.symbol);
            deribit::plan::channel(s.data_type, &s.symbol, venue_symbol.as_deref()).is_some_and(
                |c| request.frame.contains(&format!("\"{c}\"")) && !subscribed.contains(&c),
            )
        })
        .cloned()
        .collect()
}

/// A REST answer saying the venue does not list the instrument (permanent: retrying cannot help).
pub(crate) fn rest_refusal(venue: Venue, status: u16, body: &str) -> Option<String> {
    let v: serde_json::Value = serde_json::from_str(body).ok()?;
    let code = &v["code"];
    let refused = match venue {
        Venue::Binance(_) => status == 400 && code.as_i64() == Some(-1121),
        Venue::Okx(_) => code.as_str() == Some("51001"),
        Venue::Deribit => false,
        Venue::Gate(_) => {
            matches!(
                v["label"].as_str(),
                Some("INVALID_CURRENCY_PAIR" | "CONTRACT_NOT_FOUND")
            )
        }
        // Spot mirrors Binance's `-1121 Invalid symbol.`; contracts: 1001 "Contract does not exist"
        // (MEXC Futures docs, error codes).
        Venue::Mexc(marketprism_model::Exchange::MexcSpot) => {
            status == 400 && code.as_i64() == Some(-1121)
        }
        Venue::Mexc(_) => code.as_i64() == Some(1001),
    };
    refused.then(|| {
        format!(
            "venue does not list the instrument: HTTP {status} code {code} {}",
            v["msg"]
                .as_str()
                .or(v["label"].as_str())
                .or(v["message"].as_str())
                .unwrap_or_default()
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use marketprism_model::{Exchange, MarketType, Symbol};

    /// The names the venues' lists give these test symbols.
    fn names(venue: Venue) -> impl Fn(&Stream) -> Option<String> {
        move |s: &Stream| {
            let sym = s.symbol.as_str();
            Some(match venue {
                Venue::Binance(_) => sym.replace('-', ""),
                Venue::Okx(Exchange::OkxDerivatives) => format!("{sym}-SWAP"),
                Venue::Okx(_) => sym.to_owned(),
                Venue::Deribit => format!("{}-PERPETUAL", &sym[..3]),
                Venue::Gate(_) => sym.replace('-', "_"),
                Venue::Mexc(Exchange::MexcSpot) => sym.replace('-', ""),
                Venue::Mexc(_) => sym.replace('-', "_"),
            })
        }
    }

    fn stream(dt: DataType, sym: &str) -> Stream {
        Stream {
            data_type: dt,
            symbol: Symbol::new(sym).unwrap(),
            market_type: MarketType::Perpetual,
            max_silence: None,
        }
    }

    #[test]
    fn broken_frames_still_name_their_stream() {
        let b = Venue::Binance(Exchange::BinanceDerivatives);
        let half = r#"{"e":"aggTrade","E":123456789,"s":"BTCUSDT","a":5933014,"p":"0.0"#;
        let a = attribute(b, half).unwrap();
        assert_eq!(
            (a.data_type, a.instrument.as_str()),
            (DataType::Trades, "BTCUSDT")
        );
        let streams = [
            stream(DataType::Trades, "BTC-USDT"),
            stream(DataType::Trades, "ETH-USDT"),
        ];
        assert_eq!(stream_of(&a, &streams, &names(b)), Some(&streams[0]));
        let foreign = attribute(b, r#"{"e":"trade","s":"XRPUSDT","t":1}"#).unwrap();
        assert_eq!(
            stream_of(&foreign, &streams, &names(b)),
            None,
            "not subscribed"
        );
        assert_eq!(attribute(b, "{\"e\":depthUpdate,{'e':'tra"), None);
        let combined = r#"{"stream":"ethusdt@aggTrade","data":{"e":true"#;
        assert_eq!(
            stream_of(&attribute(b, combined).unwrap(), &streams, &names(b)),
            Some(&streams[1])
        );

        let o = Venue::Okx(Exchange::OkxDerivatives);
        let okx =
            r#"{"arg":{"channel":"trades","instId":"ETH-USDT-SWAP"},"data":[{"instId":"ETH-US"#;
        assert_eq!(
            stream_of(&attribute(o, okx).unwrap(), &streams, &names(o)),
            Some(&streams[1])
        );
        let liq = r#"{"arg":{"channel":"liquidation-orders","instType":"SWAP"},"data":[{"details":[],"instId":"BTC-USDT-SWAP""#;
        assert_eq!(attribute(o, liq).unwrap().data_type, DataType::Liquidations);

        let d = Venue::Deribit;
        let book = r#"{"jsonrpc":"2.0","method":"subscription","params":{"channel":"book.BTC-PERPETUAL.100ms","data":{"#;
        let books = [stream(DataType::Orderbooks, "BTC-USD")];
        assert_eq!(
            stream_of(&attribute(d, book).unwrap(), &books, &names(d)),
            Some(&books[0])
        );
    }

    #[test]
    fn mexc_frames_and_refusals_name_their_stream() {
        let s = Venue::Mexc(Exchange::MexcSpot);
        let streams = [
            stream(DataType::Orderbooks, "BTC-USDT"),
            stream(DataType::Trades, "BTC-USDT"),
            stream(DataType::Trades, "ETH-USDT"),
        ];
        let a = attribute(
            s,
            r#"{"channel":"spot@public.aggre.deals.v3.api.pb@100ms@ETHUSDT"}"#,
        )
        .unwrap();
        assert_eq!(stream_of(&a, &streams, &names(s)), Some(&streams[2]));
        let msg = "Not Subscribed successfully! [spot@public.aggre.depth.v3.api.pb@100ms@BTCUSDT].  Reason： Blocked! ";
        let r = refused_arg(s, msg, &streams, &names(s)).unwrap();
        assert_eq!(r.ack, "spot@public.aggre.depth.v3.api.pb@100ms@BTCUSDT");
        assert_eq!(r.streams, vec![streams[0].clone()]);
        assert_eq!(
            refused_arg(s, "Not Subscribed successfully! [x]", &streams, &names(s)),
            None
        );

        let c = Venue::Mexc(Exchange::MexcDerivatives);
        let half = r#"{"channel":"push.depth","data":{"asks":[[6859.5,32"#;
        assert_eq!(attribute(c, half), None, "the symbol comes after data");
        let a = attribute(
            c,
            r#"{"symbol":"BTC_USDT","channel":"push.depth","data":{"asks":[[6"#,
        )
        .unwrap();
        assert_eq!(stream_of(&a, &streams, &names(c)), Some(&streams[0]));
        assert_eq!(
            refused_arg(c, "Contract doesn't exist!", &streams, &names(c)),
            None,
            "rs.error names no symbol"
        );
        assert!(rest_refusal(s, 400, r#"{"code":-1121,"msg":"Invalid symbol."}"#).is_some());
        assert!(
            rest_refusal(
                c,
                200,
                r#"{"success":false,"code":1001,"message":"Contract does not exist"}"#
            )
            .is_some()
        );
        assert!(rest_refusal(c, 200, r#"{"success":false,"code":510,"message":"busy"}"#).is_none());
    }

    #[test]
    fn a_mexc_contract_request_names_its_streams() {
        let c = marketprism_config::Config::from_yaml(
            "exchanges:\n  - exchange: mexc_derivatives\n    symbols: [BTC-USDT, ETH-USDT]\n    data_types: [trades, orderbooks]\n",
        )
        .unwrap()
        .exchanges
        .remove(0);
        let plan =
            crate::plan::ws_plans(&c, &crate::test_support::simulator_instruments(c.exchange))
                .remove(0);
        let i = plan
            .requests
            .iter()
            .position(|r| r.frame.contains("sub.depth") && r.frame.contains("ETH_USDT"))
            .unwrap();
        let got = request_streams(&plan, i);
        assert_eq!(got.len(), 1);
        assert_eq!(
            (got[0].data_type, got[0].symbol.as_str()),
            (DataType::Orderbooks, "ETH-USDT")
        );
        assert!(request_streams(&plan, 99).is_empty());
        assert!(plan.venue.replies_in_order());
    }

    #[test]
    fn okx_refusals_name_the_arg_and_its_streams() {
        let o = Venue::Okx(Exchange::OkxDerivatives);
        let streams = [
            stream(DataType::Orderbooks, "BTC-USDT"),
            stream(DataType::Orderbooks, "SOL-USDT"),
            stream(DataType::Liquidations, "BTC-USDT"),
            stream(DataType::Liquidations, "SOL-USDT"),
        ];
        let msg = "Wrong URL or channel:books,instId:SOL-USDT-SWAP doesn't exist. Please use the correct URL, channel and parameters referring to API document.";
        let r = refused_arg(o, msg, &streams, &names(o)).unwrap();
        assert_eq!(r.ack, "books:SOL-USDT-SWAP");
        assert_eq!(r.streams, vec![streams[1].clone()]);
        let r = refused_arg(
            o,
            "Wrong URL or channel:liquidation-orders,instType:SWAP doesn't exist.",
            &streams,
            &names(o),
        )
        .unwrap();
        assert_eq!(r.streams.len(), 2);
        assert_eq!(
            refused_arg(
                o,
                "Invalid request: {\"op\": \"subscribe\"}",
                &streams,
                &names(o)
            ),
            None
        );
        assert_eq!(
            refused_arg(
                o,
                "Wrong URL or channel:books,instId:XRP-USDT-SWAP doesn't exist.",
                &streams,
                &names(o)
            ),
            None
        );
    }

    #[test]
    fn gate_frames_name_their_stream_even_broken() {
        let g = Venue::Gate(Exchange::GateDerivatives);
        let streams = [
            stream(DataType::Orderbooks, "BTC-USDT"),
            stream(DataType::Trades, "ETH-USDT"),
        ];
        let book = r#"{"time":1,"channel":"futures.order_book_update","event":"update","result":{"t":1615366381417,"s":"BTC_USDT","U":2517661101,"u":25"#;
        assert_eq!(
            stream_of(&attribute(g, book).unwrap(), &streams, &names(g)),
            Some(&streams[0])
        );
        let trade = r#"{"channel":"futures.trades","event":"update","result":[{"size":-108,"id":27753479,"contract":"ETH_USDT","price":"#;
        assert_eq!(
            stream_of(&attribute(g, trade).unwrap(), &streams, &names(g)),
            Some(&streams[1])
        );
        let spot = r#"{"time":1,"channel":"spot.trades","event":"update","result":{"id":1,"currency_pair":"BTC_USDT""#;
        assert_eq!(attribute(g, spot).unwrap().instrument, "BTC_USDT");
        assert_eq!(
            attribute(
                g,
                r#"{"channel":"spot.candlesticks","result":{"n":"1m_BTC_USDT"}}"#
            ),
            None
        );
        assert!(
            rest_refusal(
                g,
                400,
                r#"{"label":"CONTRACT_NOT_FOUND","message":"Contract not found"}"#
            )
            .is_some_and(|m| m.contains("CONTRACT_NOT_FOUND"))
        );
        assert_eq!(
            rest_refusal(g, 429, r#"{"label":"TOO_MANY_REQUESTS"}"#),
            None
        );
    }

    #[test]
    fn rest_refusals_are_only_unlisted_instruments() {
        let b = Venue::Binance(Exchange::BinanceSpot);
        assert!(rest_refusal(b, 400, r#"{"code":-1121,"msg":"Invalid symbol."}"#).is_some());
        assert_eq!(
            rest_refusal(b, 429, r#"{"code":-1003,"msg":"Too many requests"}"#),
            None
        );
        let o = Venue::Okx(Exchange::OkxSpot);
        assert!(
            rest_refusal(
                o,
                200,
                r#"{"code":"51001","msg":"Instrument ID does not exist","data":[]}"#
            )
            .is_some()
        );
        assert_eq!(rest_refusal(o, 200, r#"{"code":"0","data":[]}"#), None);
    }
}
