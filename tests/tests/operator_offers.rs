//! The operator's table of what each venue offers (`marketprism_operator::crd::offers`, which the
//! CRD's CEL rules and the reconciler use) is exactly what the collector's plans can serve.

use marketprism_config::ExchangeConfig;
use marketprism_operator::crd::DataTypeName;
use marketprism_operator::crd::offers::OFFERS;
use marketprism_venues::plan::unsupported;
use std::collections::BTreeSet;

#[test]
fn the_operator_offers_table_matches_the_collector_plans() {
    let all: Vec<&str> = DataTypeName::ALL.iter().map(|d| d.as_str()).collect();
    assert_eq!(
        OFFERS.len(),
        marketprism_model::Exchange::ALL.len(),
        "every venue the collector has is one of the CRD"
    );
    for (venue, offered) in OFFERS {
        // A symbol the venue's plans accept for every data type (Deribit quotes in USD).
        let symbol = if venue.as_str().starts_with("deribit") {
            "BTC-USD"
        } else {
            "BTC-USDT"
        };
        let yaml = format!(
            "exchange: {}\nsymbols: [{symbol}]\ndata_types: [{}]\n",
            venue.as_str(),
            all.join(", ")
        );
        let config: ExchangeConfig =
            serde_yaml::from_str(&yaml).unwrap_or_else(|e| panic!("{yaml}: {e}"));
        let refused: BTreeSet<String> = unsupported(&config)
            .into_iter()
            .map(|d| {
                serde_json::to_value(d)
                    .unwrap()
                    .as_str()
                    .unwrap()
                    .to_owned()
            })
            .collect();
        let served: BTreeSet<String> = all
            .iter()
            .map(|d| (*d).to_owned())
            .filter(|d| !refused.contains(d))
            .collect();
        let table: BTreeSet<String> = offered.iter().map(|d| d.as_str().to_owned()).collect();
        assert_eq!(
            table,
            served,
            "{}: operator table vs collector plans",
            venue.as_str()
        );
    }
}
