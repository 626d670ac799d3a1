//! Which data types each venue offers, as data, and the CEL rules that refuse the rest.
//!
//! The collector decides this in `marketprism_venues::plan::unsupported` (what its
//! WebSocket and REST plans can serve); the operator does not link the collector, so the table is
//! repeated here and `tests/tests/operator_offers.rs` compares the two for every venue and type.
//! A data type a venue does not offer would be accepted, get a shard, and collect nothing.

use super::spec::{DataTypeName, Venue};
use kube::core::Rule;

/// `(venue, the data types it offers)` for every venue, in the CRD's order.
pub const OFFERS: [(Venue, &[DataTypeName]); 9] = {
    use DataTypeName::*;
    const DERIVATIVES: &[DataTypeName] = &[
        Orderbooks,
        Trades,
        FundingRates,
        OpenInterests,
        Liquidations,
        LsrTopPositions,
        LsrAllAccounts,
    ];
    [
        (Venue::BinanceSpot, &[Orderbooks, Trades]),
        (Venue::BinanceDerivatives, DERIVATIVES),
        (Venue::OkxSpot, &[Orderbooks, Trades]),
        (Venue::OkxDerivatives, DERIVATIVES),
        (
            Venue::DeribitDerivatives,
            &[Orderbooks, Trades, VolatilityIndices],
        ),
        (Venue::GateSpot, &[Orderbooks, Trades]),
        // No long/short ratio stream.
        (
            Venue::GateDerivatives,
            &[
                Orderbooks,
                Trades,
                FundingRates,
                OpenInterests,
                Liquidations,
            ],
        ),
        (Venue::MexcSpot, &[Orderbooks, Trades]),
        // No public liquidations, no long/short ratio.
        (
            Venue::MexcDerivatives,
            &[Orderbooks, Trades, FundingRates, OpenInterests],
        ),
    ]
};

impl Venue {
    /// The data types this venue can deliver.
    pub fn offers(self) -> &'static [DataTypeName] {
        OFFERS
            .iter()
            .find(|(v, _)| *v == self)
            .map_or(&[], |(_, d)| d)
    }
}

/// What to tell a user who asked `venue` for more than it offers (CEL rule and status alike).
pub fn offers_message(venue: Venue) -> String {
    let names: Vec<&str> = venue.offers().iter().map(|d| d.as_str()).collect();
    format!(
        "{} offers only [{}]: remove the other data types from dataTypes",
        venue.as_str(),
        names.join(", ")
    )
}

/// The `ExchangeSpec` rule for `venue`: every listed data type is one it offers. One rule per
/// venue so the message names the venue and its types; each costs at most 8 × 8 comparisons.
pub fn data_types_rule(venue: Venue) -> Rule {
    let offered: Vec<String> = venue
        .offers()
        .iter()
        .map(|d| format!("'{}'", d.as_str()))
        .collect();
    Rule::new(format!(
        "self.venue != '{}' || self.dataTypes.all(d, d in [{}])",
        venue.as_str(),
        offered.join(", ")
    ))
    .message(kube::core::Message::Message(offers_message(venue)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_venue_has_an_entry_and_spot_venues_offer_no_derivatives_data() {
        for (venue, offered) in OFFERS {
            assert!(offered.contains(&DataTypeName::Trades), "{venue:?}");
        }
        assert_eq!(
            Venue::BinanceSpot.offers(),
            [DataTypeName::Orderbooks, DataTypeName::Trades]
        );
        let rule = serde_json::to_value(data_types_rule(Venue::BinanceSpot)).unwrap();
        assert_eq!(
            rule["rule"],
            "self.venue != 'binance_spot' || self.dataTypes.all(d, d in ['orderbooks', 'trades'])"
        );
        assert_eq!(
            rule["message"],
            "binance_spot offers only [orderbooks, trades]: remove the other data types from dataTypes"
        );
    }
}
