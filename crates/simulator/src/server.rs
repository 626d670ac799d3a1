//! The loopback listener: one port, WebSocket upgrades go to the venue's protocol, plain GETs to its REST handler.

use super::conn::{self, Venue};
use super::{Shared, rest};
use marketprism_model::Exchange;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpListener;

const MAX_HEAD: usize = 16 * 1024;

/// A byte stream the simulator serves: plain TCP or TLS over it.
pub(crate) trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}
pub(crate) type BoxIo = Box<dyn Io>;

pub(crate) async fn serve(
    listener: TcpListener,
    tls: Option<tokio_rustls::TlsAcceptor>,
    shared: Arc<Shared>,
) {
    loop {
        let accepted = tokio::select! {
            _ = shared.shutdown.cancelled() => return,
            a = listener.accept() => a,
        };
        let Ok((stream, _)) = accepted else { continue };
        let _ = stream.set_nodelay(true);
        let shared = shared.clone();
        let tls = tls.clone();
        tokio::spawn(async move {
            let io: BoxIo = match tls {
                None => Box::new(stream),
                // A failed handshake (a client that does not trust our CA) just ends this connection.
                Some(acceptor) => match acceptor.accept(stream).await {
                    Ok(s) => Box::new(s),
                    Err(_) => return,
                },
            };
            handle(io, shared).await;
        });
    }
}

/// A stream whose first bytes were already read (the request head) and are replayed to the next reader,
/// so the WebSocket handshake sees the request intact.
struct Rewind {
    prefix: Vec<u8>,
    pos: usize,
    inner: BoxIo,
}

impl AsyncRead for Rewind {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        if self.pos < self.prefix.len() {
            let n = (self.prefix.len() - self.pos).min(buf.remaining());
            let start = self.pos;
            buf.put_slice(&self.prefix[start..start + n]);
            self.pos += n;
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for Rewind {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
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

async fn handle(mut stream: BoxIo, shared: Arc<Shared>) {
    // Read up to the end of the request head; the bytes after it (if any) stay with the request.
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    let end = loop {
        let n = match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        buf.extend_from_slice(&chunk[..n]);
        if let Some(end) = find_head_end(&buf) {
            break end;
        }
        if buf.len() >= MAX_HEAD {
            return;
        }
    };
    let head = String::from_utf8_lossy(&buf[..end]).into_owned();
    let target = head.split_whitespace().nth(1).unwrap_or("/").to_owned();
    let is_upgrade = head.lines().any(|l| {
        l.to_ascii_lowercase().starts_with("upgrade:")
            && l.to_ascii_lowercase().contains("websocket")
    });
    let Some((exchange, rel)) = split_venue(&target) else {
        let _ = respond_plain(stream, 404, "unknown venue prefix").await;
        return;
    };
    let refused = super::lock(&shared.refuse_until)
        .get(&exchange)
        .is_some_and(|t| std::time::Instant::now() < *t);
    if is_upgrade && refused {
        let _ = respond_plain(stream, 503, "maintenance").await;
    } else if is_upgrade {
        let replay: BoxIo = Box::new(Rewind {
            prefix: buf,
            pos: 0,
            inner: stream,
        });
        if let Ok(ws) = tokio_tungstenite::accept_async(replay).await {
            conn::run(ws, exchange, Venue::new(exchange, &rel, &shared), shared).await;
        }
    } else {
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

async fn write_response(stream: &mut BoxIo, r: Response) -> std::io::Result<()> {
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

async fn respond_plain(mut stream: BoxIo, status: u16, msg: &str) -> std::io::Result<()> {
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
