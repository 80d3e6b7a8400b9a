//! The sans-IO core of the key leaser ([`crate::actors::key_leaser`]): which interview holds
//! which keys, until when, and what revocation does. No clock (every call that cares is given
//! `now`), no database, no actor: the leaser decrypts, the book keeps.
//!
//! A lease gives an interview one [`KeyHandle`] per provider it asked for: the account's own key
//! (`byok`) where it has one, else the platform's. The handles are shared with the vendor
//! clients, so what the book does to them takes effect at the clients' next request:
//!
//! - [`LeaseBook::release`] (the interview ended) and [`LeaseBook::expire`] (its deadline
//!   passed) drop the lease and revoke every handle, which drops, so zeroizes, each key;
//! - [`LeaseBook::revoke_account`] (the key was deleted or replaced, the password changed, the
//!   account erased or disabled, the master keys rotated) swaps each of the account's own keys
//!   for the platform key of that provider, or revokes the handle when there is none. The lease
//!   stays (the interview goes on) but holds no key of the account any more;
//! - [`LeaseBook::reconcile`] does the same when the stored state of an account (read by the
//!   leaser) no longer matches what was leased: the account is gone or disabled, its password
//!   changed, or a leased key's row was deleted or re-encrypted (replaced, or `rotate-keys` run
//!   by another process). That catches the changes made by other processes and nodes.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use crate::ids::{AccountId, InterviewId};

use crate::metering::KeySource;
use crate::vendors::Vendor;
use crate::vendors::key::{ApiKey, KeyHandle};

/// The handles of one lease; `None` for a provider: no key (local implementation or fake).
#[derive(Debug, Clone, Default)]
pub struct LeasedKeys {
    pub anthropic: Option<KeyHandle>,
    pub deepgram: Option<KeyHandle>,
    pub elevenlabs: Option<KeyHandle>,
}

impl LeasedKeys {
    pub fn get(&self, provider: Vendor) -> Option<&KeyHandle> {
        match provider {
            Vendor::Anthropic => self.anthropic.as_ref(),
            Vendor::Deepgram => self.deepgram.as_ref(),
            Vendor::ElevenLabs => self.elevenlabs.as_ref(),
            Vendor::Local | Vendor::Fake => None,
        }
    }

    fn set(&mut self, provider: Vendor, handle: KeyHandle) {
        match provider {
            Vendor::Anthropic => self.anthropic = Some(handle),
            Vendor::Deepgram => self.deepgram = Some(handle),
            Vendor::ElevenLabs => self.elevenlabs = Some(handle),
            // Never leased (only `Vendor::KEYED` are): a key for them has nowhere to go.
            Vendor::Local | Vendor::Fake => {}
        }
    }
}

/// An account's own key as decrypted, with the stamp of its stored row (its nonce: new at every
/// encryption, so a replaced or re-encrypted key has a different one).
pub struct OwnKey {
    pub key: ApiKey,
    pub stamp: Vec<u8>,
}

/// An account as stored now, for [`LeaseBook::reconcile`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StoredAccount {
    /// `password_changed_at` in milliseconds.
    pub password_stamp: i64,
    pub disabled: bool,
    /// The stamp of each stored key row.
    pub keys: HashMap<Vendor, Vec<u8>>,
}

/// What was true of the account when its keys were leased.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LeasedState {
    pub password_stamp: Option<i64>,
    pub keys: HashMap<Vendor, Vec<u8>>,
}

struct Entry {
    account: AccountId,
    deadline: Instant,
    handles: Vec<(Vendor, KeyHandle)>,
    leased: LeasedState,
}

impl Entry {
    fn holds_own_key(&self) -> bool {
        self.handles
            .iter()
            .any(|(_, handle)| !handle.is_revoked() && handle.source() == KeySource::Byok)
    }

    fn revoke_all(&self) {
        for (_, handle) in &self.handles {
            handle.revoke();
        }
    }
}

/// The live leases, by interview.
pub struct LeaseBook {
    platform: HashMap<Vendor, ApiKey>,
    leases: HashMap<InterviewId, Entry>,
}

impl std::fmt::Debug for LeaseBook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LeaseBook")
            .field("live", &self.leases.len())
            .finish_non_exhaustive()
    }
}

impl LeaseBook {
    /// A book that fails over to these platform keys.
    pub fn new(platform: HashMap<Vendor, ApiKey>) -> Self {
        Self {
            platform,
            leases: HashMap::new(),
        }
    }

    /// Leases keys for `providers` to `interview` until `deadline`: the account's own key
    /// from `own` where there is one, else the platform's. A second lease for the same
    /// interview replaces (and revokes) the first.
    ///
    /// `password_stamp` is the account's `password_changed_at` (milliseconds) as read with
    /// the keys, for [`LeaseBook::reconcile`].
    pub fn lease(
        &mut self,
        interview: InterviewId,
        account: AccountId,
        providers: &[Vendor],
        own: HashMap<Vendor, OwnKey>,
        password_stamp: Option<i64>,
        deadline: Instant,
    ) -> LeasedKeys {
        self.release(interview);
        let mut own = own;
        let mut keys = LeasedKeys::default();
        let mut handles = Vec::new();
        let mut leased = LeasedState {
            password_stamp,
            keys: HashMap::new(),
        };
        for &provider in providers {
            let handle = match own.remove(&provider) {
                Some(OwnKey { key, stamp }) => {
                    leased.keys.insert(provider, stamp);
                    KeyHandle::new(key, KeySource::Byok)
                }
                None => match self.platform.get(&provider) {
                    Some(key) => KeyHandle::new(key.clone(), KeySource::Platform),
                    None => continue,
                },
            };
            keys.set(provider, handle.clone());
            handles.push((provider, handle));
        }
        // Keys of providers not asked for are dropped (zeroized) here.
        drop(own);
        self.leases.insert(
            interview,
            Entry {
                account,
                deadline,
                handles,
                leased,
            },
        );
        keys
    }

    /// The interview ended: its keys are revoked and dropped. `false` if it held no lease.
    pub fn release(&mut self, interview: InterviewId) -> bool {
        match self.leases.remove(&interview) {
            Some(entry) => {
                entry.revoke_all();
                true
            }
            None => false,
        }
    }

    /// Releases every lease (the leaser stops).
    pub fn release_all(&mut self) {
        for (_, entry) in self.leases.drain() {
            entry.revoke_all();
        }
    }

    /// Revokes every own key the account's live leases hold: the platform key takes its place
    /// where there is one, else the handle is revoked. Returns the leases that held one.
    pub fn revoke_account(&mut self, account: AccountId) -> usize {
        let mut revoked = 0;
        for entry in self
            .leases
            .values()
            .filter(|entry| entry.account == account)
        {
            let mut held = false;
            for (provider, handle) in &entry.handles {
                if handle.is_revoked() || handle.source() != KeySource::Byok {
                    continue;
                }
                held = true;
                match self.platform.get(provider) {
                    Some(key) => handle.replace(key.clone(), KeySource::Platform),
                    None => handle.revoke(),
                }
            }
            revoked += usize::from(held);
        }
        revoked
    }

    /// Accounts whose live leases still hold one of their own keys (the ones to reconcile).
    pub fn accounts_holding_own_keys(&self) -> Vec<AccountId> {
        let mut accounts: Vec<AccountId> = self
            .leases
            .values()
            .filter(|entry| entry.holds_own_key())
            .map(|entry| entry.account)
            .collect();
        accounts.sort_unstable();
        accounts.dedup();
        accounts
    }

    /// Compares the account's leases with its stored state (`None`: the account is gone) and
    /// revokes its own keys ([`LeaseBook::revoke_account`]) if anything they were leased under
    /// changed. Returns the leases revoked.
    pub fn reconcile(&mut self, account: AccountId, stored: Option<&StoredAccount>) -> usize {
        let stale = self
            .leases
            .values()
            .filter(|entry| entry.account == account && entry.holds_own_key())
            .any(|entry| match stored {
                None => true,
                Some(stored) => {
                    stored.disabled
                        || entry
                            .leased
                            .password_stamp
                            .is_some_and(|stamp| stamp != stored.password_stamp)
                        || entry.handles.iter().any(|(provider, handle)| {
                            handle.source() == KeySource::Byok
                                && !handle.is_revoked()
                                && entry.leased.keys.get(provider) != stored.keys.get(provider)
                        })
                }
            });
        if stale {
            self.revoke_account(account)
        } else {
            0
        }
    }

    /// Ends every lease whose deadline is at or before `now` (revoking its keys, as a release
    /// does); returns their interviews.
    pub fn expire(&mut self, now: Instant) -> Vec<InterviewId> {
        let due: Vec<InterviewId> = self
            .leases
            .iter()
            .filter(|(_, entry)| entry.deadline <= now)
            .map(|(id, _)| *id)
            .collect();
        for id in &due {
            self.release(*id);
        }
        due
    }

    /// The earliest deadline of a live lease.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.leases.values().map(|entry| entry.deadline).min()
    }

    /// Live leases.
    pub fn live(&self) -> usize {
        self.leases.len()
    }

    /// Live leases that hold at least one of their account's own keys.
    pub fn live_with_own_keys(&self) -> usize {
        self.leases
            .values()
            .filter(|entry| entry.holds_own_key())
            .count()
    }

    /// Whether the account has a live lease.
    pub fn has_live_lease(&self, account: AccountId) -> bool {
        self.leases.values().any(|entry| entry.account == account)
    }

    /// Whether the account has a live lease holding one of its own keys.
    pub fn holds_own_key(&self, account: AccountId) -> bool {
        self.leases
            .values()
            .any(|entry| entry.account == account && entry.holds_own_key())
    }
}

/// A lease's deadline: the interview's planned length plus `grace`.
pub fn deadline(now: Instant, planned: Duration, grace: Duration) -> Instant {
    now + planned.saturating_add(grace)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vendors::{ErrorCategory, Vendor};

    const OWN: &str = "sk-ant-own-key-of-the-user-OWN1";
    const PLATFORM: &str = "sk-ant-platform-key-000-PLAT";

    fn own(providers: &[Vendor]) -> HashMap<Vendor, OwnKey> {
        providers
            .iter()
            .map(|p| {
                (
                    *p,
                    OwnKey {
                        key: ApiKey::new(format!("{OWN}-{}", p.as_str())),
                        stamp: p.as_str().as_bytes().to_vec(),
                    },
                )
            })
            .collect()
    }

    fn book(platform: &[Vendor]) -> LeaseBook {
        LeaseBook::new(
            platform
                .iter()
                .map(|p| (*p, ApiKey::new(format!("{PLATFORM}-{}", p.as_str()))))
                .collect(),
        )
    }

    fn key_of(handle: &KeyHandle) -> String {
        handle
            .current(Vendor::Anthropic)
            .expect("an active key")
            .expose_secret()
            .to_owned()
    }

    #[test]
    fn own_keys_win_then_the_platform_then_nothing() {
        let mut book = book(&[Vendor::Anthropic, Vendor::Deepgram]);
        let t0 = Instant::now();
        let keys = book.lease(
            InterviewId::now_v7(),
            AccountId::now_v7(),
            &Vendor::KEYED,
            own(&[Vendor::Anthropic]),
            None,
            t0 + Duration::from_secs(60),
        );
        let anthropic = keys.anthropic.as_ref().unwrap();
        assert_eq!(anthropic.source(), KeySource::Byok);
        assert_eq!(key_of(anthropic), format!("{OWN}-anthropic"));
        let deepgram = keys.deepgram.as_ref().unwrap();
        assert_eq!(deepgram.source(), KeySource::Platform);
        assert!(keys.elevenlabs.is_none());
        assert_eq!(book.live(), 1);
        assert_eq!(book.live_with_own_keys(), 1);
    }

    #[test]
    fn release_revokes_every_handle_and_ends_the_lease() {
        let mut book = book(&[Vendor::Deepgram]);
        let (interview, account) = (InterviewId::now_v7(), AccountId::now_v7());
        let t0 = Instant::now();
        let keys = book.lease(
            interview,
            account,
            &Vendor::KEYED,
            own(&[Vendor::Anthropic]),
            None,
            t0 + Duration::from_secs(60),
        );
        assert!(book.has_live_lease(account));
        assert!(book.release(interview));
        assert!(!book.release(interview), "a second release is a no-op");
        for handle in [&keys.anthropic, &keys.deepgram] {
            let handle = handle.as_ref().unwrap();
            assert!(handle.is_revoked());
            let error = handle.current(Vendor::Deepgram).unwrap_err();
            assert_eq!(error.category, ErrorCategory::KeyRevoked);
        }
        assert!(!book.has_live_lease(account));
        assert_eq!(book.live(), 0);
    }

    #[test]
    fn zeroize_the_released_key_is_dropped_from_every_holder() {
        // The handles are the only holders of a leased key; once revoked, no clone of the
        // handle can reach the key any more, and its buffer (a `SecretString`) was dropped,
        // which zeroizes it.
        let mut book = book(&[]);
        let interview = InterviewId::now_v7();
        let keys = book.lease(
            interview,
            AccountId::now_v7(),
            &[Vendor::Anthropic],
            own(&[Vendor::Anthropic, Vendor::Deepgram]),
            None,
            Instant::now() + Duration::from_secs(60),
        );
        let client = keys.anthropic.clone().unwrap();
        let before = format!("{client:?}");
        assert!(
            !before.contains("own-key"),
            "at most the last four: {before}"
        );
        assert!(before.contains("opic"), "the last four: {before}");
        book.release(interview);
        assert!(client.current(Vendor::Anthropic).is_err());
        let shown = format!("{client:?}");
        assert!(shown.contains("revoked"), "{shown}");
        assert!(!shown.contains("own-key"), "{shown}");
        assert!(keys.deepgram.is_none(), "an unrequested key is not leased");
    }

    #[test]
    fn expiry_revokes_at_the_deadline_even_without_a_release() {
        let mut book = book(&[Vendor::Anthropic]);
        let t0 = Instant::now();
        let (early, late) = (InterviewId::now_v7(), InterviewId::now_v7());
        let planned = Duration::from_secs(20 * 60);
        let grace = Duration::from_secs(5 * 60);
        let early_keys = book.lease(
            early,
            AccountId::now_v7(),
            &[Vendor::Anthropic],
            own(&[Vendor::Anthropic]),
            None,
            deadline(t0, planned, grace),
        );
        let late_keys = book.lease(
            late,
            AccountId::now_v7(),
            &[Vendor::Anthropic],
            own(&[Vendor::Anthropic]),
            None,
            deadline(t0 + Duration::from_secs(60), planned, grace),
        );
        assert_eq!(book.next_deadline(), Some(t0 + planned + grace));
        // Just before the deadline nothing expires.
        assert!(
            book.expire(t0 + planned + grace - Duration::from_millis(1))
                .is_empty()
        );
        assert!(!early_keys.anthropic.as_ref().unwrap().is_revoked());
        // At it, the first lease does, and only it.
        assert_eq!(book.expire(t0 + planned + grace), vec![early]);
        assert!(early_keys.anthropic.as_ref().unwrap().is_revoked());
        assert!(!late_keys.anthropic.as_ref().unwrap().is_revoked());
        assert_eq!(book.live(), 1);
        assert_eq!(
            book.next_deadline(),
            Some(t0 + Duration::from_secs(60) + planned + grace)
        );
        assert_eq!(
            book.expire(t0 + Duration::from_secs(3600)),
            vec![late],
            "and the second at its own"
        );
        assert_eq!(book.next_deadline(), None);
    }

    #[test]
    fn revoking_an_account_fails_over_to_the_platform_key_or_revokes() {
        let mut book = book(&[Vendor::Anthropic]);
        let (alice, bob) = (AccountId::now_v7(), AccountId::now_v7());
        let t0 = Instant::now();
        let deadline = t0 + Duration::from_secs(600);
        let both = [Vendor::Anthropic, Vendor::Deepgram];
        let alice_keys = book.lease(
            InterviewId::now_v7(),
            alice,
            &both,
            own(&both),
            None,
            deadline,
        );
        let bob_keys = book.lease(
            InterviewId::now_v7(),
            bob,
            &both,
            own(&both),
            None,
            deadline,
        );
        assert!(book.holds_own_key(alice));

        assert_eq!(book.revoke_account(alice), 1);
        // Anthropic has a platform key: the interview continues on it, counted as platform.
        let anthropic = alice_keys.anthropic.as_ref().unwrap();
        assert_eq!(anthropic.source(), KeySource::Platform);
        assert_eq!(key_of(anthropic), format!("{PLATFORM}-anthropic"));
        // Deepgram has none: its next request fails with KeyRevoked.
        let deepgram = alice_keys.deepgram.as_ref().unwrap();
        assert_eq!(
            deepgram.current(Vendor::Deepgram).unwrap_err().category,
            ErrorCategory::KeyRevoked
        );
        // The lease goes on, without any of Alice's own keys; Bob's is untouched.
        assert!(book.has_live_lease(alice));
        assert!(!book.holds_own_key(alice));
        assert_eq!(book.live_with_own_keys(), 1);
        assert_eq!(
            bob_keys.anthropic.as_ref().unwrap().source(),
            KeySource::Byok
        );
        assert_eq!(
            key_of(bob_keys.deepgram.as_ref().unwrap()),
            format!("{OWN}-deepgram")
        );
        // Nothing is left to revoke.
        assert_eq!(book.revoke_account(alice), 0);
        assert_eq!(book.revoke_account(AccountId::now_v7()), 0);
    }

    #[test]
    fn a_second_lease_for_the_same_interview_replaces_the_first() {
        let mut book = book(&[]);
        let interview = InterviewId::now_v7();
        let deadline = Instant::now() + Duration::from_secs(60);
        let first = book.lease(
            interview,
            AccountId::now_v7(),
            &[Vendor::Anthropic],
            own(&[Vendor::Anthropic]),
            None,
            deadline,
        );
        let second = book.lease(
            interview,
            AccountId::now_v7(),
            &[Vendor::Anthropic],
            own(&[Vendor::Anthropic]),
            None,
            deadline,
        );
        assert!(first.anthropic.as_ref().unwrap().is_revoked());
        assert!(!second.anthropic.as_ref().unwrap().is_revoked());
        assert_eq!(book.live(), 1);
    }

    #[test]
    fn reconciling_revokes_when_the_stored_account_or_key_changed() {
        let t0 = Instant::now();
        let deadline = t0 + Duration::from_secs(600);
        let both = [Vendor::Anthropic, Vendor::Deepgram];
        let stored = StoredAccount {
            password_stamp: 42,
            disabled: false,
            keys: both
                .iter()
                .map(|p| (*p, p.as_str().as_bytes().to_vec()))
                .collect(),
        };
        type Change = Box<dyn Fn(&mut StoredAccount)>;
        let changes: [(&str, Change, bool); 6] = [
            ("unchanged", Box::new(|_| {}), false),
            (
                "password changed",
                Box::new(|s| s.password_stamp = 43),
                true,
            ),
            ("disabled", Box::new(|s| s.disabled = true), true),
            (
                "key deleted",
                Box::new(|s| {
                    s.keys.remove(&Vendor::Deepgram);
                }),
                true,
            ),
            (
                "key re-encrypted (replaced or rotated)",
                Box::new(|s| {
                    s.keys.insert(Vendor::Anthropic, b"new nonce".to_vec());
                }),
                true,
            ),
            (
                "a key added that was not leased",
                Box::new(|s| {
                    s.keys.insert(Vendor::ElevenLabs, b"x".to_vec());
                }),
                false,
            ),
        ];
        for (what, change, revoked) in changes {
            let mut book = book(&[]);
            let account = AccountId::now_v7();
            let keys = book.lease(
                InterviewId::now_v7(),
                account,
                &both,
                own(&both),
                Some(42),
                deadline,
            );
            assert_eq!(book.accounts_holding_own_keys(), vec![account], "{what}");
            let mut now = stored.clone();
            change(&mut now);
            assert_eq!(
                book.reconcile(account, Some(&now)),
                usize::from(revoked),
                "{what}"
            );
            assert_eq!(
                keys.anthropic.as_ref().unwrap().is_revoked(),
                revoked,
                "{what}"
            );
            assert_eq!(book.holds_own_key(account), !revoked, "{what}");
        }
        // An erased account (no row any more) is revoked too.
        let mut book = book(&[Vendor::Anthropic]);
        let account = AccountId::now_v7();
        let keys = book.lease(
            InterviewId::now_v7(),
            account,
            &both,
            own(&both),
            Some(42),
            deadline,
        );
        assert_eq!(book.reconcile(account, None), 1);
        assert_eq!(
            keys.anthropic.as_ref().unwrap().source(),
            KeySource::Platform
        );
        assert!(keys.deepgram.as_ref().unwrap().is_revoked());
        assert!(book.accounts_holding_own_keys().is_empty());
    }
}
