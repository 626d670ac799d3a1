//! MEXC REST endpoints (besides the instrument lists, [`super::instruments`]): order-book snapshots
//! and server time, in the venue's documented shapes.
//!
//! - Spot `GET /api/v3/depth?symbol=BTCUSDT&limit=N` (limit 1..=5000, default 100):
//!   `{"lastUpdateId":n,"bids":[["price","qty"]],"asks":[…],"timestamp":ms}`; an unknown symbol
//!   answers HTTP 400 `{"code":-1121,"msg":"Invalid symbol."}` (MEXC spot error codes mirror Binance's).
//! - Spot `GET /api/v3/time`: `{"serverTime":ms}`.
//! - Contracts `GET /api/v1/contract/depth/{symbol}[?limit=N]`:
//!   `{"success":true,"code":0,"data":{"asks":[[price,contracts,orders]],"bids":[…],"version":n,"timestamp":ms}}`
//!   (bare numbers); an unknown contract `{"success":false,"code":1001,"message":"Contract does not exist"}`.
//! - Contracts `GET /api/v1/contract/ping`: `{"success":true,"code":0,"data":ms}`.

use super::book::{fmt_fixed, fmt_trimmed};
use super::server::Response;
use super::{Shared, lock, now_ms};
use marketprism_model::Exchange;
use serde_json::json;
use std::collections::HashMap;
use std::sync::Arc;

fn contract_err(code: i64, message: &str) -> Response {
    Response::json(
        200,
        json!({"success": false, "code": code, "message": message}).to_string(),
    )
}

pub(crate) fn handle(
    exchange: Exchange,
    path: &str,
    q: &HashMap<String, String>,
    shared: &Arc<Shared>,
) -> Response {
    let limit: Option<usize> = q.get("limit").and_then(|l| l.parse().ok());
    match (exchange, path) {
        (Exchange::MexcSpot, "/api/v3/time") => Response::json(
            200,
            json!({"serverTime": super::server_time_ms(&shared.config)}).to_string(),
        ),
        (Exchange::MexcDerivatives, "/api/v1/contract/ping") => Response::json(
            200,
            json!({"success": true, "code": 0, "data": super::server_time_ms(&shared.config)})
                .to_string(),
        ),
        (Exchange::MexcSpot, "/api/v3/depth") => {
            let symbol = q.get("symbol").cloned().unwrap_or_default();
            let valid = !symbol.is_empty()
                && symbol
                    .chars()
                    .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
                && !shared.is_delisted(exchange, &symbol);
            if !valid {
                return Response::json(
                    400,
                    json!({"code": -1121, "msg": "Invalid symbol."}).to_string(),
                );
            }
            let limit = limit.unwrap_or(100);
            if !(1..=5000).contains(&limit) {
                return Response::json(
                    400,
                    json!({"code": -1100, "msg": "Illegal characters found in parameter 'limit'."})
                        .to_string(),
                );
            }
            let m = shared.market(exchange, &symbol);
            let (snap, scale) = {
                let mut m = lock(&m);
                (m.rest_snapshot(limit, now_ms()), m.scale)
            };
            let side = |v: &[(i64, i64)]| -> Vec<[String; 2]> {
                v.iter()
                    .map(|(p, q)| {
                        [
                            fmt_fixed(*p, scale.price_decimals),
                            fmt_fixed(*q, scale.qty_decimals),
                        ]
                    })
                    .collect()
            };
            Response::json(
                200,
                json!({"lastUpdateId": snap.last_id, "bids": side(&snap.bids), "asks": side(&snap.asks),
                       "timestamp": snap.ts_ms})
                .to_string(),
            )
        }
        (Exchange::MexcDerivatives, p) if p.starts_with("/api/v1/contract/depth/") => {
            let symbol = &p["/api/v1/contract/depth/".len()..];
            if !symbol.contains('_') || shared.is_delisted(exchange, symbol) {
                return contract_err(1001, "Contract does not exist");
            }
            let m = shared.market(exchange, symbol);
            let (snap, scale) = {
                let mut m = lock(&m);
                (
                    m.rest_snapshot(limit.unwrap_or(usize::MAX), now_ms()),
                    m.scale,
                )
            };
            let side = |v: &[(i64, i64)]| {
                v.iter()
                    .map(|(p, q)| {
                        format!(
                            "[{},{},{}]",
                            fmt_trimmed(*p, scale.price_decimals),
                            fmt_trimmed(*q, scale.qty_decimals),
                            q % 7 + 1
                        )
                    })
                    .collect::<Vec<_>>()
                    .join(",")
            };
            Response::json(
                200,
                format!(
                    r#"{{"success":true,"code":0,"data":{{"asks":[{}],"bids":[{}],"version":{},"timestamp":{}}}}}"#,
                    side(&snap.asks),
                    side(&snap.bids),
                    snap.last_id,
                    snap.ts_ms
                ),
            )
        }
        _ => Response::json(
            404,
            json!({"code": 404, "msg": format!("unknown path {path}")}).to_string(),
        ),
    }
}
