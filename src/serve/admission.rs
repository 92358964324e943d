//! Admission by work: a bound on the request bytes in flight (read, parsed, featurised,
//! queued, scored, answered), so memory stays bounded whatever arrives and overload is
//! refused at once instead of slowing everyone down.
//!
//! A request asks for as many permits as its body has bytes (its `Content-Length`, before a
//! byte of the body is read; a body of unknown length grows its [`Ticket`] as it streams)
//! and keeps them until its answer is sent. Permits come from two pools: the *shared* pool,
//! which every request draws on, and a *reserve* only small requests may use once the
//! shared pool is taken, so a few big batches can never shut single listings out.

use super::error::ServeError;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, TryAcquireError};

/// What callers wait before retrying after a refusal: long enough for a few 1,000-listing
/// batches to finish, short enough not to starve a pipeline.
pub const ADMISSION_RETRY_AFTER_SECS: u64 = 1;

/// The bounds of admission, in request-body bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AdmissionOptions {
    /// Bytes of request bodies in flight at once, reserve included.
    pub max_inflight_bytes: usize,
    /// A request of at most this many bytes is small: it may use the reserve.
    pub small_request_bytes: usize,
    /// Bytes of the bound kept for small requests.
    pub small_reserve_bytes: usize,
    /// How long a request that does not fit may wait for room before it is refused
    /// (zero: refused at once).
    pub max_wait: Duration,
}

/// Request bytes in flight, bounded.
#[derive(Debug)]
pub struct Admission {
    shared: Arc<Semaphore>,
    reserve: Arc<Semaphore>,
    options: AdmissionOptions,
}

/// Permits held by one request; returned when dropped (after its answer is sent).
#[derive(Debug)]
pub struct Ticket {
    permits: Vec<OwnedSemaphorePermit>,
    bytes: usize,
}

impl Ticket {
    /// Bytes this ticket holds permits for.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Marks the ticket as still needed (for closures that must own it until they end).
    pub fn hold(&self) {}
}

impl Admission {
    /// A bound as configured; the options are checked by the configuration layer
    /// (`max_inflight_bytes` > `small_reserve_bytes` >= `small_request_bytes` > 0).
    pub fn new(options: AdmissionOptions) -> Self {
        let reserve = options.small_reserve_bytes.min(options.max_inflight_bytes);
        Admission {
            shared: Arc::new(Semaphore::new(options.max_inflight_bytes - reserve)),
            reserve: Arc::new(Semaphore::new(reserve)),
            options,
        }
    }

    pub fn options(&self) -> AdmissionOptions {
        self.options
    }

    /// Bytes of requests in flight now.
    pub fn in_flight(&self) -> usize {
        let free = self.shared.available_permits() + self.reserve.available_permits();
        self.options.max_inflight_bytes.saturating_sub(free)
    }

    /// Admits a request of `bytes` (its declared length; 0 when unknown) now, or refuses it
    /// with [`ServeError::Overloaded`]. Never waits.
    pub fn try_admit(&self, bytes: usize) -> Result<Ticket, ServeError> {
        let mut ticket = Ticket {
            permits: Vec::new(),
            bytes: 0,
        };
        self.grow(&mut ticket, bytes)?;
        Ok(ticket)
    }

    /// Adds `more` bytes to a ticket whose body turned out longer than declared (or had no
    /// declared length), or refuses with [`ServeError::Overloaded`]; the ticket keeps what
    /// it had either way. The shared pool first; the reserve while the ticket stays small.
    pub fn grow(&self, ticket: &mut Ticket, more: usize) -> Result<(), ServeError> {
        if self.take(&self.shared, more, ticket).is_ok() {
            return Ok(());
        }
        let small = ticket.bytes.saturating_add(more) <= self.options.small_request_bytes;
        if small && self.take(&self.reserve, more, ticket).is_ok() {
            return Ok(());
        }
        Err(self.overloaded())
    }

    /// Like [`Admission::try_admit`], but a request that does not fit now may wait up to
    /// `wait` for room in the shared pool (first come, first served) before it is refused.
    /// Small requests that fit the reserve never wait.
    pub async fn admit(&self, bytes: usize, wait: Duration) -> Result<Ticket, ServeError> {
        let refused = match self.try_admit(bytes) {
            Ok(ticket) => return Ok(ticket),
            Err(e) => e,
        };
        let Ok(n) = u32::try_from(bytes) else {
            return Err(refused);
        };
        if wait.is_zero() || bytes > self.options.max_inflight_bytes {
            return Err(refused);
        }
        let acquire = Arc::clone(&self.shared).acquire_many_owned(n);
        match tokio::time::timeout(wait, acquire).await {
            Ok(Ok(permit)) => Ok(Ticket {
                permits: vec![permit],
                bytes,
            }),
            _ => Err(refused),
        }
    }

    fn take(
        &self,
        pool: &Arc<Semaphore>,
        bytes: usize,
        ticket: &mut Ticket,
    ) -> Result<(), TryAcquireError> {
        if bytes == 0 {
            return Ok(());
        }
        // Larger than any pool can hold (a request over the body limit never gets here).
        let n = u32::try_from(bytes).map_err(|_| TryAcquireError::NoPermits)?;
        let permit = Arc::clone(pool).try_acquire_many_owned(n)?;
        ticket.permits.push(permit);
        ticket.bytes += bytes;
        Ok(())
    }

    fn overloaded(&self) -> ServeError {
        ServeError::Overloaded {
            max_inflight_bytes: self.options.max_inflight_bytes,
            retry_after_secs: ADMISSION_RETRY_AFTER_SECS,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn admission() -> Admission {
        Admission::new(AdmissionOptions {
            max_inflight_bytes: 1000,
            small_request_bytes: 10,
            small_reserve_bytes: 100,
            max_wait: Duration::ZERO,
        })
    }

    #[test]
    fn big_requests_fill_the_shared_pool_and_small_ones_still_pass() {
        let admission = admission();
        let big = admission.try_admit(900).unwrap();
        assert_eq!(admission.in_flight(), 900);
        // Nothing more fits a big request.
        assert!(matches!(
            admission.try_admit(11),
            Err(ServeError::Overloaded { .. })
        ));
        // Small requests take the reserve, until it is gone too.
        let small: Vec<Ticket> = (0..10).map(|_| admission.try_admit(10).unwrap()).collect();
        assert_eq!(admission.in_flight(), 1000);
        assert!(admission.try_admit(1).is_err());
        drop(small);
        drop(big);
        assert_eq!(admission.in_flight(), 0);
        assert_eq!(admission.try_admit(900).unwrap().bytes(), 900);
    }

    #[test]
    fn tickets_grow_while_there_is_room_and_keep_what_they_had() {
        let admission = admission();
        let mut ticket = admission.try_admit(0).unwrap();
        admission.grow(&mut ticket, 800).unwrap();
        assert_eq!(ticket.bytes(), 800);
        assert!(admission.grow(&mut ticket, 200).is_err());
        assert_eq!(ticket.bytes(), 800);
        assert_eq!(admission.in_flight(), 800);
        drop(ticket);
        assert_eq!(admission.in_flight(), 0);
    }

    #[test]
    fn a_ticket_grows_into_the_reserve_only_while_small() {
        let admission = admission();
        let _big = admission.try_admit(900).unwrap();
        let mut small = admission.try_admit(0).unwrap();
        admission.grow(&mut small, 5).unwrap();
        admission.grow(&mut small, 5).unwrap();
        assert!(admission.grow(&mut small, 1).is_err());
        assert_eq!(small.bytes(), 10);
    }

    #[tokio::test]
    async fn a_request_may_wait_for_room_and_is_refused_when_none_comes() {
        let admission = Arc::new(admission());
        let big = admission.try_admit(900).unwrap();
        let wait = Duration::from_secs(30);
        let waiting = tokio::spawn({
            let admission = Arc::clone(&admission);
            async move { admission.admit(500, wait).await.map(|t| t.bytes()) }
        });
        // Room comes: the waiter gets it.
        tokio::task::yield_now().await;
        drop(big);
        assert_eq!(waiting.await.unwrap().unwrap(), 500);
        // No room comes: refused after the wait (paused time: no real waiting).
        let _held = admission.try_admit(900).unwrap();
        tokio::time::pause();
        assert!(admission
            .admit(500, Duration::from_millis(50))
            .await
            .is_err());
        assert!(admission.admit(500, Duration::ZERO).await.is_err());
        // A small one takes the reserve at once.
        assert_eq!(admission.admit(10, wait).await.unwrap().bytes(), 10);
    }

    #[test]
    fn a_request_larger_than_any_pool_is_refused() {
        let admission = admission();
        assert!(admission.try_admit(1001).is_err());
        assert!(admission.try_admit(usize::MAX).is_err());
        assert_eq!(admission.in_flight(), 0);
    }
}
