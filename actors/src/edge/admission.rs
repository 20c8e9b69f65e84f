//! Who may start a handshake: the edge's pre-authentication limits, as a pure decision owned by
//! the accept loop (no locks, no clock of its own — `now` is passed in, so the rules are tested
//! without a runtime).
//!
//! A connection that has not yet proved itself (TLS, then `Hello` with the token) is *pending*.
//! Pending connections have their own pool (`pending_total`), at most `pending_per_peer` per
//! peer address, and a short deadline (enforced by the connection itself). Authenticated
//! sessions are limited apart (`max_connections`, in the accept loop), so strangers can fill
//! the pending pool at worst — never a device's session slot.
//!
//! Bad tokens: `strikes` wrong or missing tokens in a row from one address ban it for `ban_min`,
//! doubling with each further ban up to `ban_max`; a good token clears its record. A banned
//! address's connections are closed at accept, before any TLS handshake. The table of offenders
//! is bounded ([`MAX_OFFENDERS`]); when it is full, records without an active ban are forgotten
//! first, and if all are banned the new offender is not recorded (its connections still count
//! against the per-peer and total pending limits).

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use crate::types::RejectReason;

/// Offender records kept at most (a record is ~64 bytes).
pub(crate) const MAX_OFFENDERS: usize = 4096;

/// The limits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AdmissionRules {
    /// Pending (un-authenticated) connections over all peers.
    pub pending_total: usize,
    /// Pending connections from one peer address.
    pub pending_per_peer: usize,
    /// Bad tokens in a row that ban an address; 0 = never ban.
    pub strikes: u32,
    /// The first ban.
    pub ban_min: Duration,
    /// The longest ban.
    pub ban_max: Duration,
}

#[derive(Clone, Copy, Debug, Default)]
struct Offender {
    /// Bad tokens since the last ban (or good token).
    strikes: u32,
    /// Bans so far (the next one lasts `ban_min · 2^bans`).
    bans: u32,
    /// Banned until then.
    until: Option<Instant>,
}

impl Offender {
    fn banned(&self, now: Instant) -> bool {
        self.until.is_some_and(|u| now < u)
    }
}

/// The pending connections per peer and the offenders; see the module docs.
#[derive(Debug)]
pub struct Admission {
    rules: AdmissionRules,
    pending: HashMap<IpAddr, usize>,
    total: usize,
    offenders: HashMap<IpAddr, Offender>,
}

impl Admission {
    /// Empty tables under `rules`.
    pub fn new(rules: AdmissionRules) -> Admission {
        Admission { rules, pending: HashMap::new(), total: 0, offenders: HashMap::new() }
    }

    /// May a connection from `ip` start its handshake now? On `Ok` it counts as pending until
    /// [`Admission::release`].
    pub fn admit(&mut self, ip: IpAddr, now: Instant) -> Result<(), RejectReason> {
        if self.offenders.get(&ip).is_some_and(|o| o.banned(now)) {
            return Err(RejectReason::Banned);
        }
        let mine = self.pending.get(&ip).copied().unwrap_or(0);
        if mine >= self.rules.pending_per_peer.max(1) {
            return Err(RejectReason::PeerLimit);
        }
        if self.total >= self.rules.pending_total.max(1) {
            return Err(RejectReason::HandshakesFull);
        }
        *self.pending.entry(ip).or_insert(0) += 1;
        self.total += 1;
        Ok(())
    }

    /// A pending connection from `ip` finished its handshake (either way).
    pub fn release(&mut self, ip: IpAddr) {
        if let Some(n) = self.pending.get_mut(&ip) {
            *n -= 1;
            self.total = self.total.saturating_sub(1);
            if *n == 0 {
                self.pending.remove(&ip);
            }
        }
    }

    /// `ip` presented a wrong or no token. `Some(length)` when this starts a ban (log it: once
    /// per ban).
    pub fn bad_token(&mut self, ip: IpAddr, now: Instant) -> Option<Duration> {
        if self.rules.strikes == 0 {
            return None;
        }
        if !self.offenders.contains_key(&ip) && self.offenders.len() >= MAX_OFFENDERS {
            self.offenders.retain(|_, o| o.banned(now));
            if self.offenders.len() >= MAX_OFFENDERS {
                return None;
            }
        }
        let o = self.offenders.entry(ip).or_default();
        o.strikes += 1;
        if o.strikes < self.rules.strikes {
            return None;
        }
        let length = self.rules.ban_min.saturating_mul(1u32 << o.bans.min(20)).min(self.rules.ban_max);
        o.strikes = 0;
        o.bans = o.bans.saturating_add(1);
        o.until = Some(now + length);
        Some(length)
    }

    /// `ip` presented the right token: its record is cleared.
    pub fn authenticated(&mut self, ip: IpAddr) {
        self.offenders.remove(&ip);
    }

    /// Pending connections now (all peers).
    pub fn pending(&self) -> usize {
        self.total
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules() -> AdmissionRules {
        AdmissionRules {
            pending_total: 5,
            pending_per_peer: 2,
            strikes: 3,
            ban_min: Duration::from_secs(1),
            ban_max: Duration::from_secs(3),
        }
    }

    fn ip(last: u8) -> IpAddr {
        IpAddr::from([127, 0, 0, last])
    }

    #[test]
    fn one_peer_cannot_take_more_than_its_share_of_the_pending_pool() {
        let now = Instant::now();
        let mut a = Admission::new(rules());
        assert_eq!(a.admit(ip(2), now), Ok(()));
        assert_eq!(a.admit(ip(2), now), Ok(()));
        assert_eq!(a.admit(ip(2), now), Err(RejectReason::PeerLimit));
        // Others still get in, up to the total.
        assert_eq!(a.admit(ip(3), now), Ok(()));
        assert_eq!(a.admit(ip(4), now), Ok(()));
        assert_eq!(a.admit(ip(5), now), Ok(()));
        assert_eq!(a.admit(ip(6), now), Err(RejectReason::HandshakesFull));
        assert_eq!(a.pending(), 5);
        // A finished handshake frees its place, for its own peer too.
        a.release(ip(2));
        assert_eq!(a.admit(ip(2), now), Ok(()));
        a.release(ip(3));
        a.release(ip(3)); // a stray release changes nothing
        assert_eq!(a.pending(), 4);
        assert_eq!(a.admit(ip(6), now), Ok(()));
    }

    #[test]
    fn bad_tokens_ban_with_exponential_backoff_and_a_good_token_clears_the_record() {
        let t0 = Instant::now();
        let mut a = Admission::new(rules());
        assert_eq!(a.bad_token(ip(9), t0), None);
        assert_eq!(a.bad_token(ip(9), t0), None);
        assert_eq!(a.bad_token(ip(9), t0), Some(Duration::from_secs(1)));
        assert_eq!(a.admit(ip(9), t0), Err(RejectReason::Banned));
        assert_eq!(a.admit(ip(8), t0), Ok(()), "other peers are not affected");
        let t1 = t0 + Duration::from_secs(1);
        assert_eq!(a.admit(ip(9), t1), Ok(()), "the ban ends");
        a.release(ip(9));
        // The next ban is twice as long, the one after capped at ban_max.
        assert_eq!(a.bad_token(ip(9), t1), None);
        assert_eq!(a.bad_token(ip(9), t1), None);
        assert_eq!(a.bad_token(ip(9), t1), Some(Duration::from_secs(2)));
        assert_eq!(a.admit(ip(9), t1 + Duration::from_millis(1999)), Err(RejectReason::Banned));
        let t2 = t1 + Duration::from_secs(2);
        for _ in 0..2 {
            assert_eq!(a.bad_token(ip(9), t2), None);
        }
        assert_eq!(a.bad_token(ip(9), t2), Some(Duration::from_secs(3)));
        // A good token (after the ban) clears the record: three more strikes before a ban.
        a.authenticated(ip(9));
        assert_eq!(a.admit(ip(9), t2), Ok(()));
        assert_eq!(a.bad_token(ip(9), t2), None);
        assert_eq!(a.bad_token(ip(9), t2), None);
        assert_eq!(a.bad_token(ip(9), t2), Some(Duration::from_secs(1)));
    }

    #[test]
    fn zero_strikes_never_ban_and_the_offender_table_is_bounded() {
        let now = Instant::now();
        let mut a = Admission::new(AdmissionRules { strikes: 0, ..rules() });
        for _ in 0..100 {
            assert_eq!(a.bad_token(ip(9), now), None);
        }
        assert_eq!(a.admit(ip(9), now), Ok(()));

        let mut a = Admission::new(AdmissionRules { strikes: 1, ..rules() });
        for i in 0..MAX_OFFENDERS as u32 {
            assert!(a.bad_token(IpAddr::V4(std::net::Ipv4Addr::from((10u32 << 24) | i)), now).is_some());
        }
        // Full of active bans: a new offender is not recorded…
        assert_eq!(a.bad_token(ip(1), now), None);
        assert!(a.offenders.len() <= MAX_OFFENDERS);
        // …until bans expire and make room.
        let later = now + Duration::from_secs(2);
        assert!(a.bad_token(ip(1), later).is_some());
        assert!(a.offenders.len() <= MAX_OFFENDERS);
    }
}
