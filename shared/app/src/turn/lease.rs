//! A running turn's lease on its answer. The turn renews it while alive; the janitor ends only
//! answers whose lease lapsed; the turn's final write names the lease, so a turn that lost it
//! can no longer write. No age is ever guessed.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use bestchat_domain::ids::MessageId;
use bestchat_domain::ports::store::{LeaseId, TurnStore};
use bestchat_domain::time::{Timestamp, after, now};

pub struct Lease {
    id: LeaseId,
    message: MessageId,
    term: Duration,
    /// When the last renewal that succeeded was sent (the store's expiry is at least a term
    /// after it).
    renewed: Mutex<Instant>,
    lost: AtomicBool,
    /// The turn is writing its end: a renewal refused from now on means it has, not that
    /// someone else took the answer.
    ending: AtomicBool,
}

impl Lease {
    /// A lease about to be claimed: `renewed` starts before the claim is sent.
    pub fn new(message: MessageId, term: Duration) -> Self {
        Self {
            id: LeaseId::generate(),
            message,
            term,
            renewed: Mutex::new(Instant::now()),
            lost: AtomicBool::new(false),
            ending: AtomicBool::new(false),
        }
    }

    pub fn id(&self) -> LeaseId {
        self.id
    }

    /// When a lease taken or renewed at `at` expires.
    pub fn expiry(&self, at: Timestamp) -> Timestamp {
        after(at, self.term)
    }

    /// Provably still ours: renewed within two thirds of a term, which leaves a third for the
    /// clocks of this process and the janitor's to disagree.
    pub fn held(&self) -> bool {
        let renewed = self.renewed.lock().map_or(Duration::MAX, |at| at.elapsed());
        !self.lost.load(Ordering::Acquire) && renewed < self.term * 2 / 3
    }

    /// Called before the final write, which ends the lease.
    pub fn ending(&self) {
        self.ending.store(true, Ordering::Release);
    }

    /// Renews the lease every third of its term, and returns only once it is lost (someone
    /// else ended the answer). A failed renewal is retried at the next third; `held` tells
    /// whether the lease can still be counted on meanwhile. Once the turn is ending, a refused
    /// renewal is the turn's own final write, and this never returns.
    pub async fn keep(&self, store: &dyn TurnStore) {
        loop {
            tokio::time::sleep(self.term / 3).await;
            let sent = Instant::now();
            match store
                .renew_lease(self.message, self.id, self.expiry(now()))
                .await
            {
                Ok(true) => {
                    if let Ok(mut renewed) = self.renewed.lock() {
                        *renewed = sent;
                    }
                }
                Ok(false) if self.ending.load(Ordering::Acquire) => {
                    return std::future::pending().await;
                }
                Ok(false) => {
                    self.lost.store(true, Ordering::Release);
                    return;
                }
                Err(e) => {
                    tracing::warn!(error = %e, message = %self.message, lease = %self.id, "cannot renew the lease");
                }
            }
        }
    }
}
