//! UID sets for `UID FETCH`, written as compact ranges (`1:500,502,510:520`).

use std::ops::RangeInclusive;

/// A set of message UIDs. UID 0 does not exist in IMAP and is never included.
///
/// The wire form never uses `*`: `n:*` matches the highest UID even when it
/// is below `n`, which would hand back a message nobody asked for.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct UidSet {
    /// Sorted, disjoint, non-adjacent ranges.
    ranges: Vec<RangeInclusive<u32>>,
}

impl UidSet {
    pub fn is_empty(&self) -> bool {
        self.ranges.is_empty()
    }

    pub fn contains(&self, uid: u32) -> bool {
        let i = self.ranges.partition_point(|r| *r.end() < uid);
        self.ranges.get(i).is_some_and(|r| r.contains(&uid))
    }

    /// The IMAP `sequence-set` form.
    pub fn to_imap(&self) -> String {
        let parts: Vec<String> = self
            .ranges
            .iter()
            .map(|r| if r.start() == r.end() { r.start().to_string() } else { format!("{}:{}", r.start(), r.end()) })
            .collect();
        parts.join(",")
    }
}

impl From<RangeInclusive<u32>> for UidSet {
    fn from(range: RangeInclusive<u32>) -> UidSet {
        let (start, end) = ((*range.start()).max(1), *range.end());
        UidSet { ranges: if start <= end { vec![start..=end] } else { Vec::new() } }
    }
}

impl From<&[u32]> for UidSet {
    fn from(uids: &[u32]) -> UidSet {
        let mut sorted: Vec<u32> = uids.iter().copied().filter(|&u| u != 0).collect();
        sorted.sort_unstable();
        sorted.dedup();
        let mut ranges: Vec<RangeInclusive<u32>> = Vec::new();
        for uid in sorted {
            match ranges.last_mut() {
                Some(last) if last.end().checked_add(1) == Some(uid) => *last = *last.start()..=uid,
                _ => ranges.push(uid..=uid),
            }
        }
        UidSet { ranges }
    }
}

impl From<&Vec<u32>> for UidSet {
    fn from(uids: &Vec<u32>) -> UidSet {
        UidSet::from(uids.as_slice())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slices_become_ranges() {
        let set = UidSet::from(&[7, 1, 2, 3, 5, 3, 0, 8, u32::MAX][..]);
        assert_eq!(set.to_imap(), "1:3,5,7:8,4294967295");
        assert!(set.contains(2) && set.contains(8) && set.contains(u32::MAX));
        assert!(!set.contains(4) && !set.contains(0) && !set.contains(9));
    }

    #[test]
    fn ranges_never_use_a_star_or_zero() {
        assert_eq!(UidSet::from(0..=10).to_imap(), "1:10");
        let (high, low) = (5, 4);
        assert!(UidSet::from(high..=low).is_empty());
        assert_eq!(UidSet::from(3..=3).to_imap(), "3");
        assert!(UidSet::from(&[][..]).is_empty());
    }
}
