//! Checks delivery as the application saw it: every cursor once, in order.

/// Counts what arrived against the feed's numbering.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DeliveryCheck {
    /// Messages delivered.
    pub delivered: u64,
    /// Cursors skipped: gaps in the numbering.
    pub lost: u64,
    /// Cursors delivered again, or out of order.
    pub duplicated: u64,
    /// Messages without a cursor.
    pub without_cursor: u64,
    last: u64,
}

impl DeliveryCheck {
    /// Records one delivered message.
    pub fn observe(&mut self, cursor: Option<u64>) {
        self.delivered += 1;
        let Some(cursor) = cursor else {
            self.without_cursor += 1;
            return;
        };
        if cursor <= self.last {
            self.duplicated += 1;
            return;
        }
        self.lost += cursor - self.last - 1;
        self.last = cursor;
    }

    /// Whether `1..=total` arrived exactly once, in order.
    pub fn is_exact(&self, total: u64) -> bool {
        self.lost == 0
            && self.duplicated == 0
            && self.without_cursor == 0
            && self.last == total
            && self.delivered == total
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gaps_and_repeats_are_counted() {
        let mut check = DeliveryCheck::default();
        for cursor in [1, 2, 4, 4, 3, 5] {
            check.observe(Some(cursor));
        }
        assert_eq!((check.lost, check.duplicated, check.delivered), (1, 2, 6));
        assert!(!check.is_exact(5));
    }

    #[test]
    fn exact_delivery_passes() {
        let mut check = DeliveryCheck::default();
        (1..=10).for_each(|cursor| check.observe(Some(cursor)));
        assert!(check.is_exact(10));
        assert!(!check.is_exact(11));
    }
}
