//! Which sets and chains a listing of remote names holds, by duplicity's rules
//! (spec §6): a full set starts a chain; an incremental joins the chain whose
//! end time equals its start time, else it is an orphan; a set is complete
//! only with its manifest.

use super::names::{self, Kind};
use std::collections::BTreeMap;

/// Full or incremental, with its times.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum SetTime {
    /// A full set at a time.
    Full(i64),
    /// An incremental from the previous set's time to its own.
    Inc(i64, i64),
}

impl SetTime {
    /// When the set was taken.
    pub fn end(self) -> i64 {
        match self {
            SetTime::Full(t) | SetTime::Inc(_, t) => t,
        }
    }
}

/// The files of one set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Set {
    /// Kind and times.
    pub time: SetTime,
    /// Volume number → remote name.
    pub volumes: BTreeMap<u32, String>,
    /// The manifest's remote name: the set is complete only with one.
    pub manifest: Option<String>,
    /// The signatures' remote name (full or new signatures).
    pub signatures: Option<String>,
}

impl Set {
    fn new(time: SetTime) -> Set {
        Set { time, volumes: BTreeMap::new(), manifest: None, signatures: None }
    }

    /// Every remote name of the set, in the order to delete them: the
    /// manifest first, so a removal cut short never leaves a set that looks
    /// complete, and the signatures before the volumes, so it never leaves
    /// signatures without a set (which no listing would attach to anything).
    pub fn names(&self) -> impl Iterator<Item = &String> {
        self.manifest.iter().chain(&self.signatures).chain(self.volumes.values())
    }
}

/// A full set and the incrementals that depend on it, oldest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chain {
    /// The full set.
    pub full: Set,
    /// Its incrementals in order.
    pub incs: Vec<Set>,
}

impl Chain {
    /// Time of the newest set.
    pub fn end(&self) -> i64 {
        self.incs.last().map_or(self.full.time.end(), |s| s.time.end())
    }

    /// The sets needed to restore the state at `time`: the full set and the
    /// incrementals taken at or before it.
    pub fn sets_at(&self, time: i64) -> Vec<&Set> {
        std::iter::once(&self.full).chain(self.incs.iter().take_while(|s| s.time.end() <= time)).collect()
    }

    /// Every set, oldest first.
    pub fn sets(&self) -> impl DoubleEndedIterator<Item = &Set> {
        std::iter::once(&self.full).chain(&self.incs)
    }
}

/// Everything a listing holds.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Collection {
    /// Complete chains, oldest first.
    pub chains: Vec<Chain>,
    /// Sets without a manifest: an interrupted run's leftovers.
    pub incomplete: Vec<Set>,
    /// Complete incrementals that fit no chain.
    pub orphans: Vec<Set>,
    /// Incrementals dropped because duplicity would drop them (their
    /// signatures are missing while the rest of the chain has them).
    pub discarded: Vec<Set>,
}

impl Collection {
    /// Build the collection from remote names; names that are not duplicity's
    /// (and `.part` names, which only a local cache has) are ignored.
    pub fn from_names<'a>(listing: impl IntoIterator<Item = &'a str>) -> Collection {
        let mut sets: BTreeMap<SetTime, Set> = BTreeMap::new();
        let mut sigs: BTreeMap<SetTime, String> = BTreeMap::new();
        for name in listing {
            let Some(parsed) = names::parse(name).filter(|p| !p.partial) else { continue };
            let name = name.to_string();
            match parsed.kind {
                Kind::FullVolume { time, volume } => {
                    sets.entry(SetTime::Full(time))
                        .or_insert_with(|| Set::new(SetTime::Full(time)))
                        .volumes
                        .insert(volume, name);
                }
                Kind::IncVolume { start, end, volume } => {
                    let t = SetTime::Inc(start, end);
                    sets.entry(t).or_insert_with(|| Set::new(t)).volumes.insert(volume, name);
                }
                Kind::FullManifest { time } => {
                    sets.entry(SetTime::Full(time)).or_insert_with(|| Set::new(SetTime::Full(time))).manifest =
                        Some(name);
                }
                Kind::IncManifest { start, end } => {
                    let t = SetTime::Inc(start, end);
                    sets.entry(t).or_insert_with(|| Set::new(t)).manifest = Some(name);
                }
                Kind::FullSignatures { time } => {
                    sigs.insert(SetTime::Full(time), name);
                }
                Kind::NewSignatures { start, end } => {
                    sigs.insert(SetTime::Inc(start, end), name);
                }
            }
        }
        // Signatures without volumes or manifest are an interrupted run's
        // too: they make an incomplete set, so the next run removes them.
        for (time, name) in sigs {
            sets.entry(time).or_insert_with(|| Set::new(time)).signatures = Some(name);
        }
        let mut ordered: Vec<Set> = sets.into_values().collect();
        ordered.sort_by_key(|s| (s.time.end(), matches!(s.time, SetTime::Inc(..))));
        let mut c = Collection::default();
        for set in ordered {
            if set.manifest.is_none() {
                c.incomplete.push(set);
                continue;
            }
            match set.time {
                SetTime::Full(_) => c.chains.push(Chain { full: set, incs: Vec::new() }),
                SetTime::Inc(start, _) => match c.chains.iter_mut().find(|ch| ch.end() == start) {
                    Some(chain) => chain.incs.push(set),
                    None => c.orphans.push(set),
                },
            }
        }
        for chain in &mut c.chains {
            let others_signed = chain.sets().rev().skip(1).all(|s| s.signatures.is_some());
            let last_unsigned = chain.incs.last().is_some_and(|s| s.signatures.is_none());
            if last_unsigned && others_signed && chain.incs.len() >= 2 {
                c.discarded.extend(chain.incs.pop());
            }
        }
        c
    }

    /// The chain to restore from at `time`: the newest whose full set is at or
    /// before it.
    pub fn chain_at(&self, time: i64) -> Option<&Chain> {
        self.chains.iter().rev().find(|c| c.full.time.end() <= time)
    }

    /// The newest chain.
    pub fn latest(&self) -> Option<&Chain> {
        self.chains.last()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::names::{Encoding, name};

    const T0: i64 = 1_795_345_878;

    fn set_names(time: SetTime, volumes: u32, manifest: bool, sigs: bool) -> Vec<String> {
        let mut v = Vec::new();
        for volume in 1..=volumes {
            v.push(match time {
                SetTime::Full(t) => name(&Kind::FullVolume { time: t, volume }, Encoding::Gpg),
                SetTime::Inc(s, e) => name(&Kind::IncVolume { start: s, end: e, volume }, Encoding::Gpg),
            });
        }
        if manifest {
            v.push(match time {
                SetTime::Full(t) => name(&Kind::FullManifest { time: t }, Encoding::Gpg),
                SetTime::Inc(s, e) => name(&Kind::IncManifest { start: s, end: e }, Encoding::Gpg),
            });
        }
        if sigs {
            v.push(match time {
                SetTime::Full(t) => name(&Kind::FullSignatures { time: t }, Encoding::Gpg),
                SetTime::Inc(s, e) => name(&Kind::NewSignatures { start: s, end: e }, Encoding::Gpg),
            });
        }
        v
    }

    fn collect(parts: &[Vec<String>]) -> Collection {
        let all: Vec<String> = parts.concat();
        Collection::from_names(all.iter().map(String::as_str).chain(["README", "other.file"]))
    }

    #[test]
    fn chains_incrementals_orphans_and_leftovers() {
        let (t1, t2, t3) = (T0 + 100, T0 + 200, T0 + 300);
        let c = collect(&[
            set_names(SetTime::Full(T0), 2, true, true),
            set_names(SetTime::Inc(T0, t1), 1, true, true),
            set_names(SetTime::Inc(t1, t2), 1, true, true),
            set_names(SetTime::Inc(T0 + 5, T0 + 6), 1, true, true), // fits nothing
            set_names(SetTime::Full(t3), 3, false, false),          // killed run
            set_names(SetTime::Full(t3 + 50), 0, false, true),      // killed while removing it
        ]);
        assert_eq!(c.chains.len(), 1);
        let chain = &c.chains[0];
        assert_eq!(chain.full.volumes.len(), 2);
        assert_eq!(
            chain.incs.iter().map(|s| s.time).collect::<Vec<_>>(),
            vec![SetTime::Inc(T0, t1), SetTime::Inc(t1, t2)]
        );
        assert_eq!(chain.end(), t2);
        assert_eq!(chain.sets_at(t1).len(), 2);
        assert_eq!(chain.sets_at(T0).len(), 1);
        assert_eq!(c.orphans.len(), 1);
        assert_eq!(c.incomplete.len(), 2);
        assert_eq!(c.incomplete[0].volumes.len(), 3);
        assert!(c.incomplete[1].volumes.is_empty() && c.incomplete[1].signatures.is_some());
        assert_eq!(c.chain_at(t2 + 1).unwrap().full.time, SetTime::Full(T0));
        assert!(c.chain_at(T0 - 1).is_none());
    }

    #[test]
    fn newest_chain_wins_and_missing_last_signatures_drop_the_last_inc() {
        let (t1, t2, t5) = (T0 + 100, T0 + 200, T0 + 500);
        let c = collect(&[
            set_names(SetTime::Full(T0), 1, true, true),
            set_names(SetTime::Inc(T0, t1), 1, true, true),
            set_names(SetTime::Inc(t1, t2), 1, true, false),
            set_names(SetTime::Full(t5), 1, true, true),
        ]);
        assert_eq!(c.chains.len(), 2);
        assert_eq!(c.chains[0].incs.len(), 1, "the unsigned last inc is dropped, as duplicity does");
        assert_eq!(c.discarded.len(), 1);
        assert_eq!(c.latest().unwrap().full.time, SetTime::Full(t5));
        assert_eq!(c.chain_at(t2).unwrap().full.time, SetTime::Full(T0));
        // Without any signatures nothing is dropped: restore needs none.
        let c = collect(&[
            set_names(SetTime::Full(T0), 1, true, false),
            set_names(SetTime::Inc(T0, t1), 1, true, false),
            set_names(SetTime::Inc(t1, t2), 1, true, false),
        ]);
        assert_eq!(c.chains[0].incs.len(), 2);
    }
}
