//! The marketprism operator: reconciles `CollectorSet`s into collector shards.
#![forbid(unsafe_code)]
