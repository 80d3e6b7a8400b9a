//! Abuse of the free allocation: who gets free interviews at sign-up, and what holds them back.
//!
//! - **The ledger** (`abuse_ledger`): a keyed hash (HMAC-SHA256 under `ABUSE_LEDGER_KEY`, a
//!   secret of its own, generated once into `DATA_DIR` in development) of every canonical
//!   mailbox that has held an account, kept `ABUSE_LEDGER_DAYS` (365) after it was last
//!   recorded: at sign-up, at an e-mail change (the old mailbox and the new one) and at erasure.
//!   It has no account column, so an erasure leaves it, and the retention sweep deletes it once
//!   the period is over. Without the key a hash cannot be tied to an address. A mailbox's free
//!   interviews are granted once per period, atomically: a sign-up inserts the mailbox's row
//!   with `ON CONFLICT DO NOTHING` in its transaction and grants only if it inserted it, so any
//!   number of concurrent sign-ups of one mailbox's aliases grant one allocation between them
//!   (PostgreSQL makes a second insert of the key wait for the first transaction; SQLite runs
//!   one write transaction at a time).
//! - **Signals** ([`Signal`], stored in `abuse_signals`): a reused mailbox, a disposable domain
//!   ([`disposable`]), or more than `SIGNUPS_PER_IP_PER_DAY` sign-ups from one client address in
//!   one UTC day (counted in `signup_ip_counts` under a keyed hash of the address, an IPv6
//!   address by its /64, and swept when the day is over). A flagged account gets no free
//!   interviews until an admin decides ([`review`]).
//!
//! [`SignupRules::decide`] is the decision itself, without I/O; [`ledger`] does the writes.

pub mod disposable;
pub mod ledger;
pub mod review;

use std::net::IpAddr;

use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretString};
use sha2::Sha256;

use crate::domain::Email;

/// The key of the ledger's and the address counts' hashes.
#[derive(Clone)]
pub struct LedgerKey(SecretString);

impl std::fmt::Debug for LedgerKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LedgerKey([REDACTED])")
    }
}

/// The ledger's key for a canonical mailbox (hex of HMAC-SHA256); never the address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailboxHash(String);

impl MailboxHash {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The sign-up counts' key for a client address (hex of HMAC-SHA256); never the address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddressHash(String);

impl AddressHash {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl LedgerKey {
    pub fn new(secret: SecretString) -> Self {
        Self(secret)
    }

    /// HMAC-SHA256 of `value` under the key, in a namespace of its own (`purpose`), in hex.
    fn mac(&self, purpose: &[u8], value: &[u8]) -> String {
        // An HMAC takes a key of any length, so this never fails.
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(self.0.expose_secret().as_bytes())
            .unwrap_or_else(|_| unreachable!());
        mac.update(b"interviewcraft abuse ledger v1\0");
        mac.update(purpose);
        mac.update(b"\0");
        mac.update(value);
        hex::encode(mac.finalize().into_bytes())
    }

    /// The hash of the address's canonical mailbox (`Email::canonical`: `+tags` and Gmail dots
    /// removed), so every alias of one mailbox has one hash.
    pub fn mailbox(&self, email: &Email) -> MailboxHash {
        MailboxHash(self.mac(b"mailbox", email.canonical().as_bytes()))
    }

    /// The hash of a client address. An IPv6 client is counted by its /64: one subscriber
    /// usually gets a whole /64 and can pick any address in it. An IPv4-mapped address counts
    /// as the IPv4 address.
    pub fn address(&self, ip: IpAddr) -> AddressHash {
        let text = match ip {
            IpAddr::V4(v4) => v4.to_string(),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => v4.to_string(),
                None => {
                    let prefix = u128::from(v6) & !((1u128 << 64) - 1);
                    format!("{}/64", std::net::Ipv6Addr::from(prefix))
                }
            },
        };
        AddressHash(self.mac(b"address", text.as_bytes()))
    }
}

/// Why an account was flagged; stored in `abuse_signals.kind` as the code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    /// Its canonical mailbox is in the ledger (or held by a live account).
    MailboxReuse,
    /// Its domain is on the disposable-domain list.
    DisposableDomain,
    /// More sign-ups than allowed came from its client address that day.
    SignupBurst,
}

impl Signal {
    pub fn code(self) -> &'static str {
        match self {
            Signal::MailboxReuse => "canonical_email_reuse",
            Signal::DisposableDomain => "disposable_domain",
            Signal::SignupBurst => "signup_ip_burst",
        }
    }
}

/// What is known about a sign-up when its free interviews are decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SignupFacts {
    /// This sign-up inserted its mailbox's ledger row, and no live account holds the mailbox.
    pub mailbox_first_use: bool,
    pub disposable_domain: bool,
    /// Sign-ups from the client address this UTC day, this one included.
    pub signups_from_address_today: u32,
}

/// The sign-up rules of the settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SignupRules {
    /// `FREE_INTERVIEWS`.
    pub free_interviews: i32,
    /// `SIGNUPS_PER_IP_PER_DAY`: sign-ups from one address in one UTC day before the next are
    /// flagged.
    pub signups_per_address_per_day: u32,
}

/// The free interviews of a new account and why it was flagged, if it was.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignupDecision {
    pub free_interviews: i32,
    pub signals: Vec<Signal>,
}

impl SignupRules {
    /// The allocation is granted only to an unflagged sign-up; a flagged one starts with none
    /// and waits for an admin's decision.
    pub fn decide(&self, facts: SignupFacts) -> SignupDecision {
        let mut signals = Vec::new();
        if !facts.mailbox_first_use {
            signals.push(Signal::MailboxReuse);
        }
        if facts.disposable_domain {
            signals.push(Signal::DisposableDomain);
        }
        if facts.signups_from_address_today > self.signups_per_address_per_day {
            signals.push(Signal::SignupBurst);
        }
        SignupDecision {
            free_interviews: if signals.is_empty() {
                self.free_interviews.max(0)
            } else {
                0
            },
            signals,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(secret: &str) -> LedgerKey {
        LedgerKey::new(SecretString::from(secret.to_owned()))
    }

    fn email(raw: &str) -> Email {
        Email::parse(raw).expect("valid")
    }

    #[test]
    fn every_alias_of_a_mailbox_has_one_hash_and_it_depends_on_the_key() {
        let key = key("a-ledger-key-of-at-least-32-bytes-long");
        let hash = key.mailbox(&email("Jane.Doe+one@gmail.com"));
        assert_eq!(hash, key.mailbox(&email("janedoe+two@googlemail.com")));
        assert_ne!(hash, key.mailbox(&email("john.doe@gmail.com")));
        let other = super::tests::key("another-ledger-key-of-at-least-32-bytes");
        assert_ne!(hash, other.mailbox(&email("janedoe@gmail.com")));
        assert_eq!(hash.as_str().len(), 64);
        assert!(!hash.as_str().contains("janedoe"));
        // Not the plain SHA-256 of the address.
        use sha2::Digest;
        assert_ne!(
            hash.as_str(),
            hex::encode(sha2::Sha256::digest(b"janedoe@gmail.com"))
        );
    }

    #[test]
    fn addresses_hash_apart_from_mailboxes_and_ipv6_counts_by_its_64() {
        let key = key("a-ledger-key-of-at-least-32-bytes-long");
        let ip = |text: &str| text.parse::<IpAddr>().expect("literal");
        assert_eq!(
            key.address(ip("2001:db8:1:2:aaaa::1")),
            key.address(ip("2001:db8:1:2:ffff:eeee:dddd:cccc"))
        );
        assert_ne!(
            key.address(ip("2001:db8:1:2::1")),
            key.address(ip("2001:db8:1:3::1"))
        );
        assert_eq!(
            key.address(ip("::ffff:203.0.113.7")),
            key.address(ip("203.0.113.7"))
        );
        assert_ne!(
            key.address(ip("203.0.113.7")),
            key.address(ip("203.0.113.8"))
        );
        assert!(!format!("{key:?}").contains("ledger-key"));
    }

    #[test]
    fn only_an_unflagged_sign_up_gets_the_allocation() {
        let rules = SignupRules {
            free_interviews: 3,
            signups_per_address_per_day: 2,
        };
        let clean = SignupFacts {
            mailbox_first_use: true,
            disposable_domain: false,
            signups_from_address_today: 2,
        };
        assert_eq!(
            rules.decide(clean),
            SignupDecision {
                free_interviews: 3,
                signals: vec![]
            }
        );
        let every = rules.decide(SignupFacts {
            mailbox_first_use: false,
            disposable_domain: true,
            signups_from_address_today: 3,
        });
        assert_eq!(every.free_interviews, 0);
        assert_eq!(
            every.signals,
            vec![
                Signal::MailboxReuse,
                Signal::DisposableDomain,
                Signal::SignupBurst
            ]
        );
        for facts in [
            SignupFacts {
                mailbox_first_use: false,
                ..clean
            },
            SignupFacts {
                disposable_domain: true,
                ..clean
            },
            SignupFacts {
                signups_from_address_today: 3,
                ..clean
            },
        ] {
            let decision = rules.decide(facts);
            assert_eq!(decision.free_interviews, 0, "{facts:?}");
            assert_eq!(decision.signals.len(), 1, "{facts:?}");
        }
    }
}
