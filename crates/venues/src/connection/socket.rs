//! Opening a connection's WebSocket and subscribing, the same way for every session (and for
//! `bench collector --floor`, which measures exactly this path without the work after it).

use crate::plan::WsPlan;
use futures::SinkExt;
use marketprism_config::tls::ClientTls;
use tokio_tungstenite::tungstenite::{self, Message};

/// A venue WebSocket, `ws://` or `wss://`.
pub type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Frames are read into a 16 KiB buffer, not tungstenite's default 128 KiB: it zeroes the free part
/// of its buffer before every read, which cost 6 % of the CPU at 10k frames/s. A longer frame still
/// arrives whole (the buffer grows to the frame); message and frame limits stay tungstenite's
/// (64 MiB, 16 MiB).
fn ws_config() -> tungstenite::protocol::WebSocketConfig {
    tungstenite::protocol::WebSocketConfig::default().read_buffer_size(16 * 1024)
}

/// Open `plan.url` (`wss://` trusted by `tls`: public roots plus `tls.ca_file`), Nagle off.
pub async fn connect(plan: &WsPlan, tls: &ClientTls) -> Result<Ws, tungstenite::Error> {
    let (ws, _) = tokio_tungstenite::connect_async_tls_with_config(
        plan.url.as_str(),
        Some(ws_config()),
        true,
        Some(tokio_tungstenite::Connector::Rustls(tls.rustls())),
    )
    .await?;
    Ok(ws)
}

/// Send `plan`'s subscribe frames in order, `request_spacing` apart (Binance counts inbound
/// control frames: 5/s on spot).
pub async fn subscribe(ws: &mut Ws, plan: &WsPlan) -> Result<(), tungstenite::Error> {
    for (i, req) in plan.requests.iter().enumerate() {
        if i > 0 && !plan.request_spacing.is_zero() {
            tokio::time::sleep(plan.request_spacing).await;
        }
        ws.send(Message::text(plan.venue.stamp_request(&req.frame)))
            .await?;
    }
    Ok(())
}
