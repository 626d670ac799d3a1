//! `bench collector --floor`: the cost of only *receiving* the collector's frames on this machine.
//!
//! The child process runs this reader instead of `run`, on the same config, simulator and runtime
//! (`collector.worker_threads`): per product line it loads the venue's instrument list, plans the same
//! WebSocket connections ([`marketprism_venues::plan::ws_plans`]), opens them and sends the same
//! subscribe frames through the sessions' own [`socket`] functions,
//! keeps them alive by the same rules (pings, Deribit `test_request` answers), and counts every
//! frame in `marketprism_exchange_frames_received_total{channel="floor"}` — without parsing it,
//! keeping books, de-duplicating or writing anything. Its CPU per frame is the floor under any
//! collector built on tokio + tungstenite here: kernel (TCP receive, `epoll`, scheduling), WebSocket
//! decoding, UTF-8 validation and the runtime. The collector's figure minus this one is the work
//! the collector adds per frame.

use futures::{SinkExt, StreamExt};
use marketprism_config::{Config, ExchangeConfig};
use marketprism_model::instruments::Instruments;
use marketprism_venues::connection::socket;
use marketprism_venues::keepalive::{KeepAlive, KeepAliveAction};
use marketprism_venues::plan::WsPlan;
use metrics::Counter;
use tokio::task::JoinSet;
use tokio::time::{Instant, sleep_until};
use tokio_tungstenite::tungstenite::Message;
use tokio_util::sync::CancellationToken;

/// Read every planned connection of `config` until `shutdown`. Errors: a product line whose
/// instrument list cannot be fetched (the reader has no retries: the simulator always answers).
/// A connection that ends is logged and not reopened; its frames stop counting.
pub async fn read_floor(config: Config, shutdown: CancellationToken) -> anyhow::Result<()> {
    let http = marketprism_venues::rest_client(&config.tls.client);
    let mut tasks = JoinSet::new();
    for line in &config.exchanges {
        for plan in plans(line, &http).await? {
            let (tls, stop) = (config.tls.client.clone(), shutdown.clone());
            tasks.spawn(async move {
                if let Err(e) = read_connection(plan, &tls, stop).await {
                    tracing::warn!(error = %e, "floor reader: a connection ended");
                }
            });
        }
    }
    while tasks.join_next().await.is_some() {}
    Ok(())
}

/// The WebSocket plans of one product line, from its instrument list as the venue serves it.
async fn plans(
    line: &ExchangeConfig,
    http: &marketprism_venues::RestClient,
) -> anyhow::Result<Vec<WsPlan>> {
    let limiter = marketprism_venues::rest_limiter(line.exchange);
    let table = marketprism_venues::instruments::fetch(line, http, &limiter)
        .await
        .map_err(|(url, status, body)| {
            anyhow::anyhow!("instrument list {url}: status {status:?}: {body}")
        })?;
    let listed = Instruments::new(line.exchange, table);
    Ok(marketprism_venues::plan::ws_plans(line, &listed))
}

/// One connection: connect as the collector does, subscribe, then count frames until `stop`.
async fn read_connection(
    plan: WsPlan,
    tls: &marketprism_config::tls::ClientTls,
    stop: CancellationToken,
) -> anyhow::Result<()> {
    let mut ws = socket::connect(&plan, tls).await?;
    socket::subscribe(&mut ws, &plan).await?;
    let frames: Counter = metrics::counter!(
        "marketprism_exchange_frames_received_total",
        "exchange" => plan.venue.exchange().as_str(),
        "channel" => "floor"
    );
    let mut keepalive = KeepAlive::new(plan.keepalive, Instant::now());
    let mut rpc_id = 1_000;
    loop {
        let check = keepalive.next_check();
        tokio::select! {
            _ = stop.cancelled() => return Ok(()),
            frame = ws.next() => {
                keepalive.on_inbound(Instant::now());
                match frame {
                    None => anyhow::bail!("{}: stream ended", plan.name),
                    Some(Err(e)) => anyhow::bail!("{}: read: {e}", plan.name),
                    Some(Ok(Message::Close(_))) => anyhow::bail!("{}: closed by the venue", plan.name),
                    Some(Ok(Message::Text(text))) => {
                        frames.increment(1);
                        // Deribit's heartbeat asks for an answer within seconds (see `Control::TestRequest`).
                        if text.as_str().contains("\"test_request\"") {
                            rpc_id += 1;
                            ws.send(Message::text(plan.venue.test_reply(rpc_id))).await?;
                        }
                    }
                    Some(Ok(Message::Binary(_))) => frames.increment(1),
                    Some(Ok(_)) => {}
                }
            }
            () = sleep_until(check) => {
                match keepalive.poll(Instant::now()) {
                    KeepAliveAction::SendPing => ws.send(Message::text(plan.venue.ping_frame())).await?,
                    KeepAliveAction::Dead => anyhow::bail!("{}: keep-alive: venue silent", plan.name),
                    KeepAliveAction::Wait => {}
                }
            }
        }
    }
}
