//! Which messages of a chat one socket has already been sent, by `seq`, so that a resume and
//! the live stream meet without a duplicate. Kept as ranges: a socket that hears a chat in
//! order holds one range however long it lives.

use std::collections::BTreeMap;

/// A set of `seq`s, as disjoint, non-adjacent inclusive ranges keyed by their start.
#[derive(Debug, Default)]
pub struct SeqSet {
    ranges: BTreeMap<i64, i64>,
}

impl SeqSet {
    /// Whether `seq` is in the set.
    pub fn contains(&self, seq: i64) -> bool {
        self.ranges
            .range(..=seq)
            .next_back()
            .is_some_and(|(_, end)| seq <= *end)
    }

    /// Adds `start..=end`, merging with the ranges it overlaps or touches.
    pub fn insert_range(&mut self, mut start: i64, mut end: i64) {
        if start > end {
            return;
        }
        if let Some((&s, &e)) = self.ranges.range(..=start).next_back()
            && e >= start - 1
        {
            start = s;
            end = end.max(e);
        }
        let absorbed: Vec<i64> = self
            .ranges
            .range(start..=end.saturating_add(1))
            .map(|(s, _)| *s)
            .collect();
        for s in absorbed {
            if let Some(e) = self.ranges.remove(&s) {
                end = end.max(e);
            }
        }
        self.ranges.insert(start, end);
    }

    /// Adds one `seq`; true when it was not there yet.
    pub fn insert(&mut self, seq: i64) -> bool {
        if self.contains(seq) {
            return false;
        }
        self.insert_range(seq, seq);
        true
    }

    /// How many ranges are kept.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.ranges.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn in_order_seqs_stay_one_range_and_gaps_are_remembered() {
        let mut s = SeqSet::default();
        s.insert_range(1, 5);
        for seq in 6..=100 {
            assert!(s.insert(seq));
        }
        assert_eq!(s.len(), 1);
        assert!(!s.insert(50), "a duplicate is known");
        assert!(s.insert(102));
        assert!(!s.contains(101));
        assert_eq!(s.len(), 2);
        assert!(s.insert(101), "filling the gap merges");
        assert_eq!(s.len(), 1);
        assert!(s.contains(1) && s.contains(102) && !s.contains(0) && !s.contains(103));
        s.insert_range(200, 300);
        s.insert_range(150, 250);
        assert_eq!(s.len(), 2);
        assert!(s.contains(150) && s.contains(300) && !s.contains(149));
    }
}
