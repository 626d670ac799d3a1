//! A minimal protobuf wire-format writer for MEXC spot pushes, written from the protobuf encoding
//! spec and MEXC's published schema (github.com/mexcdevelop/websocket-proto), independent of the
//! collector's decoder:
//!
//! - key = `field_number << 3 | wire_type`, as a varint; wire type 0 = varint, 2 = length-delimited;
//! - varints: 7 bits per byte, least significant group first, high bit set on all but the last;
//! - `PushDataV3ApiWrapper`: channel = 1 (string), symbol = 3 (string), sendTime = 6 (int64),
//!   oneof body: publicAggreDepths = 313, publicAggreDeals = 314 (messages);
//! - `PublicAggreDepthsV3Api`: asks = 1, bids = 2 (repeated `{price = 1, quantity = 2}`), eventType = 3,
//!   fromVersion = 4, toVersion = 5 (strings);
//! - `PublicAggreDealsV3Api`: deals = 1 (repeated `{price = 1, quantity = 2, tradeType = 3 (int32),
//!   time = 4 (int64)}`), eventType = 2.

use crate::faults::Malformation;

const VARINT: u64 = 0;
const LEN: u64 = 2;

fn varint(mut n: u64, out: &mut Vec<u8>) {
    while n >= 0x80 {
        out.push((n & 0x7f) as u8 | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

fn key(field: u64, wire: u64, out: &mut Vec<u8>) {
    varint(field << 3 | wire, out);
}

fn bytes_field(field: u64, bytes: &[u8], out: &mut Vec<u8>) {
    key(field, LEN, out);
    varint(bytes.len() as u64, out);
    out.extend_from_slice(bytes);
}

fn string_field(field: u64, s: &str, out: &mut Vec<u8>) {
    bytes_field(field, s.as_bytes(), out);
}

/// An `int32`/`int64` field (negative values as 10-byte two's complement, as protobuf does).
fn int_field(field: u64, n: i64, out: &mut Vec<u8>) {
    key(field, VARINT, out);
    varint(n as u64, out);
}

/// One price level, as text.
pub(crate) struct PbLevel {
    pub price: String,
    pub quantity: String,
}

/// One deal, as text.
pub(crate) struct PbDeal {
    pub price: String,
    pub quantity: String,
    /// 1 buy, 2 sell.
    pub trade_type: i64,
    pub time_ms: i64,
}

fn envelope(channel: &str, symbol: &str, send_time: i64, body_tag: u64, body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len() + channel.len() + 32);
    string_field(1, channel, &mut out);
    bytes_field(body_tag, body, &mut out);
    string_field(3, symbol, &mut out);
    int_field(6, send_time, &mut out);
    out
}

/// A `spot@public.aggre.depth` push covering versions `from..=to`.
pub(crate) fn depth_push(
    channel: &str,
    symbol: &str,
    send_time: i64,
    (from, to): (u64, u64),
    asks: &[PbLevel],
    bids: &[PbLevel],
) -> Vec<u8> {
    let mut body = Vec::new();
    for (field, side) in [(1, asks), (2, bids)] {
        for l in side {
            let mut item = Vec::new();
            string_field(1, &l.price, &mut item);
            string_field(2, &l.quantity, &mut item);
            bytes_field(field, &item, &mut body);
        }
    }
    let event_type = channel.rsplit_once('@').map_or(channel, |(e, _)| e);
    string_field(3, event_type, &mut body);
    string_field(4, &from.to_string(), &mut body);
    string_field(5, &to.to_string(), &mut body);
    envelope(channel, symbol, send_time, 313, &body)
}

/// A `spot@public.aggre.deals` push.
pub(crate) fn deals_push(channel: &str, symbol: &str, send_time: i64, deals: &[PbDeal]) -> Vec<u8> {
    let mut body = Vec::new();
    for d in deals {
        let mut item = Vec::new();
        string_field(1, &d.price, &mut item);
        string_field(2, &d.quantity, &mut item);
        int_field(3, d.trade_type, &mut item);
        int_field(4, d.time_ms, &mut item);
        bytes_field(1, &item, &mut body);
    }
    let event_type = channel.rsplit_once('@').map_or(channel, |(e, _)| e);
    string_field(2, event_type, &mut body);
    envelope(channel, symbol, send_time, 314, &body)
}

/// The length of the leading channel field (field 1), so a broken frame can keep it readable.
fn channel_len(frame: &[u8]) -> usize {
    if frame.first() != Some(&0x0a) {
        return 0;
    }
    let mut len = 0usize;
    for (i, &b) in frame.iter().skip(1).enumerate().take(3) {
        len |= usize::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            return (2 + i + len).min(frame.len());
        }
    }
    0
}

/// Break a binary push the way `kind` says (pure): `InvalidJson` → bytes that are no protobuf
/// message at all (an unterminated varint key); `Truncated` → the first half; `WrongTypes` → the
/// channel kept, then the body's key with wire type varint instead of length-delimited.
pub(crate) fn malform(frame: &[u8], kind: Malformation) -> Vec<u8> {
    match kind {
        Malformation::InvalidJson => vec![0xff; 12],
        Malformation::Truncated => {
            // Keep the channel readable and cut inside the body.
            let keep = channel_len(frame);
            let cut = keep + (frame.len() - keep) / 2;
            frame[..cut.max(keep + 1).min(frame.len())].to_vec()
        }
        Malformation::WrongTypes => {
            let keep = channel_len(frame);
            let mut out = frame[..keep].to_vec();
            // Body tags 313/314 as varints (wire type 0) carrying a number, then garbage of the
            // old length-delimited body: a message field with the wrong wire type.
            key(314, VARINT, &mut out);
            varint(5, &mut out);
            key(314, LEN, &mut out);
            varint(1_000, &mut out);
            out
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_and_keys_follow_the_spec() {
        let mut v = Vec::new();
        varint(300, &mut v);
        assert_eq!(v, [0xac, 0x02], "the spec's own example");
        let mut k = Vec::new();
        key(313, LEN, &mut k);
        assert_eq!(k, [0xca, 0x13]);
        let mut neg = Vec::new();
        int_field(3, -1, &mut neg);
        assert_eq!(neg.len(), 11, "negative ints take ten bytes");
    }

    #[test]
    fn a_depth_push_is_laid_out_field_by_field() {
        let push = depth_push(
            "spot@public.aggre.depth.v3.api.pb@100ms@BTCUSDT",
            "BTCUSDT",
            1,
            (5, 6),
            &[],
            &[PbLevel {
                price: "1".into(),
                quantity: "2".into(),
            }],
        );
        assert_eq!(&push[..2], [0x0a, 47]);
        assert_eq!(
            &push[49..51],
            [0xca, 0x13],
            "body tag 313 after the channel"
        );
        assert!(push.ends_with(&[0x1a, 7, b'B', b'T', b'C', b'U', b'S', b'D', b'T', 0x30, 1]));
        assert_eq!(channel_len(&push), 49);
        let broken = malform(&push, Malformation::Truncated);
        assert!(broken.len() < push.len() && broken.starts_with(&push[..49]));
        assert!(malform(&push, Malformation::WrongTypes).starts_with(&push[..49]));
    }
}
