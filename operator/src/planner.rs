//! The shard planner: which (venue, symbol) pairs each shard serves. Pure and deterministic.
//!
//! Moving a symbol between shards costs a reconnect and a fresh order book, so the plan is sticky:
//! a symbol stays on the shard the previous plan (from status) put it on whenever that shard still
//! exists and has room. Only symbols without a place are assigned, by rendezvous hashing with
//! bounded load (each symbol ranks shards by `hash(symbol, shard)` and takes the best one with room),
//! so even without a previous plan the result is stable for most symbols. Adding one symbol moves
//! none; removing symbols moves only those of a shard that is dropped when fewer shards are needed.

use crate::crd::{CollectorSetSpec, ShardStatus, Venue};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

/// One unit of work: a symbol on a venue.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Unit {
    pub venue: Venue,
    pub symbol: String,
}

impl Unit {
    pub fn new(venue: Venue, symbol: &str) -> Unit {
        Unit {
            venue,
            symbol: symbol.to_owned(),
        }
    }

    /// `venue/SYMBOL`, as stored in status.
    pub fn parse(s: &str) -> Option<Unit> {
        let (venue, symbol) = s.split_once('/')?;
        Some(Unit::new(Venue::parse(venue)?, symbol))
    }
}

impl fmt::Display for Unit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.venue.as_str(), self.symbol)
    }
}

/// A planned shard: its name (`s<N>` or `g-<group>`) and sorted units.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shard {
    pub name: String,
    pub units: Vec<Unit>,
}

const AUTO_PREFIX: &str = "s";
const GROUP_PREFIX: &str = "g-";

/// Plan shards for `spec`, keeping symbols where `previous` (the last status) had them.
/// Output is sorted by shard name; every declared unit appears exactly once.
pub fn plan(spec: &CollectorSetSpec, previous: &[ShardStatus]) -> Vec<Shard> {
    let declared: Vec<Unit> = spec
        .exchanges
        .iter()
        .flat_map(|e| e.symbols.iter().map(|s| Unit::new(e.venue, s)))
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let mut shards = Vec::new();
    let mut grouped = BTreeSet::new();
    for group in &spec.sharding.groups {
        let units: BTreeSet<Unit> = group
            .members
            .iter()
            .flat_map(|m| m.symbols.iter().map(|s| Unit::new(m.venue, s)))
            .filter(|u| declared.contains(u) && !grouped.contains(u))
            .collect();
        if units.is_empty() {
            continue;
        }
        grouped.extend(units.iter().cloned());
        shards.push(Shard {
            name: format!("{GROUP_PREFIX}{}", group.name),
            units: units.into_iter().collect(),
        });
    }
    let auto: Vec<Unit> = declared
        .into_iter()
        .filter(|u| !grouped.contains(u))
        .collect();
    let capacity = usize::try_from(spec.sharding.max_symbols_per_shard.max(1)).unwrap_or(1);
    shards.extend(plan_auto(&auto, capacity, previous));
    shards.sort_by(|a, b| a.name.cmp(&b.name));
    shards
}

/// Automatic shards: `ceil(units / capacity)` of them, sticky, then rendezvous with bounded load.
fn plan_auto(units: &[Unit], capacity: usize, previous: &[ShardStatus]) -> Vec<Shard> {
    let wanted = units.len().div_ceil(capacity);
    if wanted == 0 {
        return Vec::new();
    }
    let live: BTreeSet<&Unit> = units.iter().collect();
    // Previous automatic shards by index, with the units they still hold (each unit once).
    let mut claimed = BTreeSet::new();
    let mut before: BTreeMap<u32, Vec<Unit>> = BTreeMap::new();
    for shard in previous {
        let Some(index) = auto_index(&shard.name) else {
            continue;
        };
        let kept = before.entry(index).or_default();
        for unit in shard.symbols.iter().filter_map(|s| Unit::parse(s)) {
            if live.contains(&unit) && claimed.insert(unit.clone()) {
                kept.push(unit);
            }
        }
    }
    // Keep the fullest previous shards (ties: lower index), then open the lowest free indices.
    let mut ranked: Vec<(u32, usize)> = before.iter().map(|(i, u)| (*i, u.len())).collect();
    ranked.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    let mut indices: BTreeSet<u32> = ranked.iter().take(wanted).map(|(i, _)| *i).collect();
    let mut next = 0;
    while indices.len() < wanted {
        if !indices.contains(&next) {
            indices.insert(next);
        }
        next += 1;
    }
    let names: Vec<String> = indices
        .iter()
        .map(|i| format!("{AUTO_PREFIX}{i}"))
        .collect();
    let mut load: BTreeMap<&str, BTreeSet<Unit>> = names
        .iter()
        .map(|n| (n.as_str(), BTreeSet::new()))
        .collect();
    let mut placed = BTreeSet::new();
    for index in &indices {
        let name = format!("{AUTO_PREFIX}{index}");
        let mut kept = before.remove(index).unwrap_or_default();
        // If capacity shrank, keep the units that rank this shard highest.
        kept.sort_by_key(|u| std::cmp::Reverse(score(u, &name)));
        kept.truncate(capacity);
        let slot = load
            .get_mut(name.as_str())
            .expect("every kept index is named");
        for unit in kept {
            placed.insert(unit.clone());
            slot.insert(unit);
        }
    }
    for unit in units.iter().filter(|u| !placed.contains(*u)) {
        let mut ranking: Vec<&String> = names.iter().collect();
        ranking.sort_by_key(|n| std::cmp::Reverse(score(unit, n)));
        let target = ranking
            .into_iter()
            .find(|n| load[n.as_str()].len() < capacity)
            .expect("wanted shards always have room for every unit");
        load.get_mut(target.as_str())
            .expect("ranked from names")
            .insert(unit.clone());
    }
    load.into_iter()
        .map(|(name, units)| Shard {
            name: name.to_owned(),
            units: units.into_iter().collect(),
        })
        .collect()
}

/// `s<N>` → N.
fn auto_index(name: &str) -> Option<u32> {
    let digits = name.strip_prefix(AUTO_PREFIX)?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// Rendezvous weight of `unit` on `shard`: FNV-1a 64, stable across builds and platforms.
fn score(unit: &Unit, shard: &str) -> u64 {
    let key = format!("{unit}|{shard}");
    fnv1a64(key.as_bytes())
}

/// FNV-1a 64-bit; also used for the config hash annotation.
pub fn fnv1a64(bytes: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        hash ^= u64::from(*b);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    // Finalize (splitmix64) so nearby keys spread across the whole range.
    hash ^= hash >> 30;
    hash = hash.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    hash ^= hash >> 27;
    hash = hash.wrapping_mul(0x94d0_49bb_1331_11eb);
    hash ^ (hash >> 31)
}

/// Status form of a plan (keeps readiness fields empty; the reconciler fills them).
pub fn to_status(plan: &[Shard]) -> Vec<ShardStatus> {
    plan.iter()
        .map(|s| ShardStatus {
            name: s.name.clone(),
            symbols: s.units.iter().map(Unit::to_string).collect(),
            ready_replicas: 0,
            lock_holder: None,
            not_ready: Vec::new(),
        })
        .collect()
}

#[cfg(test)]
#[path = "planner_tests.rs"]
mod tests;
