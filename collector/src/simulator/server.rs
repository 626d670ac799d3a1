//! The loopback listener: one port, WebSocket upgrades go to the venue's protocol, plain GETs to its REST handler.

use super::conn::{self, Venue};
use super::{Shared, rest};
use crate::model::Exchange;
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const MAX_HEAD: usize = 16 * 1024;

pub(crate) async fn serve(listener: TcpListener, shared: Arc<Shared>) {
    loop {
        let accepted = tokio::select! {
            _ = shared.shutdown.cancelled() => return,
            a = listener.accept() => a,
        };
        let Ok((stream, _)) = accepted else { continue };
        let _ = stream.set_nodelay(true);
        tokio::spawn(handle(stream, shared.clone()));
    }
}

/// Split `/<venue>/<rest>?query` into the venue and the venue-relative target.
pub(crate) fn split_venue(target: &str) -> Option<(Exchange, String)> {
    let trimmed = target.strip_prefix('/')?;
    let (first, rest) = match trimmed.find(['/', '?']) {
        Some(i) => (&trimmed[..i], &trimmed[i..]),
        None => (trimmed, ""),
    };
    let exchange = Exchange::ALL.into_iter().find(|e| e.as_str() == first)?;
    Some((exchange, rest.to_owned()))
}

async fn handle(stream: TcpStream, shared: Arc<Shared>) {
    // Peek the request head without consuming it: a WebSocket handshake must see it intact.
    let mut buf = vec![0u8; MAX_HEAD];
    let head = loop {
        let n = match stream.peek(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        if let Some(end) = find_head_end(&buf[..n]) {
            break String::from_utf8_lossy(&buf[..end]).into_owned();
        }
        if n == MAX_HEAD {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(2)).await;
    };
    let target = head.split_whitespace().nth(1).unwrap_or("/").to_owned();
    let is_upgrade = head.lines().any(|l| {
        l.to_ascii_lowercase().starts_with("upgrade:")
            && l.to_ascii_lowercase().contains("websocket")
    });
    let Some((exchange, rel)) = split_venue(&target) else {
        let _ = respond_plain(stream, 404, "unknown venue prefix").await;
        return;
    };
    if is_upgrade {
        if let Ok(ws) = tokio_tungstenite::accept_async(stream).await {
            conn::run(ws, exchange, Venue::new(exchange, &rel, &shared), shared).await;
        }
    } else {
        let mut stream = stream;
        let end = head.len();
        let mut consumed = vec![0u8; end];
        if stream.read_exact(&mut consumed).await.is_err() {
            return;
        }
        let response = rest::handle(exchange, &rel, &shared).await;
        let _ = write_response(&mut stream, response).await;
    }
}

fn find_head_end(buf: &[u8]) -> Option<usize> {
    buf.windows(4).position(|w| w == b"\r\n\r\n").map(|i| i + 4)
}

/// A REST answer: status, extra headers, JSON body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Response {
    pub fn json(status: u16, body: String) -> Response {
        Response {
            status,
            headers: Vec::new(),
            body,
        }
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        418 => "I'm a teapot",
        429 => "Too Many Requests",
        _ => "Error",
    }
}

async fn write_response(stream: &mut TcpStream, r: Response) -> std::io::Result<()> {
    let mut head = format!(
        "HTTP/1.1 {} {}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n",
        r.status,
        reason(r.status),
        r.body.len()
    );
    for (k, v) in &r.headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).await?;
    stream.write_all(r.body.as_bytes()).await?;
    stream.shutdown().await
}

async fn respond_plain(mut stream: TcpStream, status: u16, msg: &str) -> std::io::Result<()> {
    write_response(
        &mut stream,
        Response::json(status, serde_json::json!({ "msg": msg }).to_string()),
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn venue_prefix_routing() {
        assert_eq!(
            split_venue("/binance_derivatives/public/ws/btcusdt@depth"),
            Some((
                Exchange::BinanceDerivatives,
                "/public/ws/btcusdt@depth".into()
            ))
        );
        assert_eq!(
            split_venue("/binance_spot?x=1"),
            Some((Exchange::BinanceSpot, "?x=1".into()))
        );
        assert_eq!(split_venue("/nope/ws"), None);
        assert_eq!(find_head_end(b"GET / HTTP/1.1\r\n\r\nrest"), Some(18));
    }
}
