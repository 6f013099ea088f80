//! The leadership rule: when a leader renews its lease, how long it waits for etcd, and
//! when it stops calling itself leader. Every time follows from `lease_ttl`.

use std::time::Duration;

/// The times the campaign runs on, for one `lease_ttl`.
///
/// ```text
/// renew_every + 2 × request_timeout ≤ demote_after = lease_ttl − margin
///     ttl/6   +      2 × ttl/6      ≤    2·ttl/3   = ttl − ttl/3
/// ```
///
/// As Patroni's `loop_wait + 2 × retry_timeout ≤ ttl`, with the margin taken off the
/// TTL: a leader survives two renewals in a row that time out and still has a third
/// attempt before it demotes; once demoted, a third of the TTL remains before anyone
/// else can take the key, for a side effect fenced just before to land.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timing {
    pub lease_ttl: Duration,
    /// How often the lease is renewed and the leader key looked at (followers campaign
    /// at this pace too, so a successor takes over at most this long after the lease
    /// expires). `lease_ttl / 6`: 1.67 s for 10 s.
    pub renew_every: Duration,
    /// The longest wait for one etcd call. `lease_ttl / 6`.
    pub request_timeout: Duration,
    /// A leader whose newest acknowledged renewal was sent longer ago than this no
    /// longer leads, whatever the lease's state in etcd. `lease_ttl × 2/3`: 6.67 s for
    /// 10 s. etcd counts the lease from when it receives that renewal, which is later.
    pub demote_after: Duration,
}

impl Timing {
    pub fn new(lease_ttl: Duration) -> Self {
        Self {
            lease_ttl,
            renew_every: lease_ttl / 6,
            request_timeout: lease_ttl / 6,
            demote_after: lease_ttl * 2 / 3,
        }
    }

    /// The time left before the lease can expire once the leader has demoted itself.
    pub fn margin(&self) -> Duration {
        self.lease_ttl - self.demote_after
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rule_holds_for_every_allowed_ttl() {
        for secs in 2..=300 {
            let t = Timing::new(Duration::from_secs(secs));
            assert!(
                t.renew_every + 2 * t.request_timeout <= t.demote_after,
                "{t:?}"
            );
            assert!(t.demote_after + t.margin() == t.lease_ttl, "{t:?}");
            assert!(t.margin() >= t.renew_every, "{t:?}");
        }
    }

    #[test]
    fn the_default_ttl() {
        let t = Timing::new(Duration::from_secs(10));
        assert_eq!(t.renew_every, Duration::from_nanos(1_666_666_666));
        assert_eq!(t.demote_after, Duration::from_nanos(6_666_666_666));
        assert_eq!(t.margin(), Duration::from_nanos(3_333_333_334));
    }
}
