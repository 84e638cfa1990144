//! Messages between the HTTP handlers, the `JobRegistry` and the job actors.

use actix::Message;

pub use crate::store::jobs::JobId;

/// Queue a job that the store holds as `queued`; it starts when a slot is free.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct Submit(pub JobId);

/// Cancel a job. A queued job is cancelled at once; a running one is signalled and writes
/// `cancelled` itself once its source query is stopped and its target rolled back.
#[derive(Debug, Message)]
#[rtype(result = "CancelOutcome")]
pub struct Cancel(pub JobId);

#[derive(Debug, Clone, Copy, PartialEq, Eq, actix::MessageResponse)]
pub enum CancelOutcome {
    /// It was waiting; it is now `cancelled`.
    Dequeued,
    /// It was running; it stops shortly.
    Signalled,
    /// The registry does not hold it (finished, or unknown).
    NotActive,
}

/// A job actor has ended for good (final status written).
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct Finished(pub JobId);

/// How many jobs run and wait now.
#[derive(Debug, Message)]
#[rtype(result = "Load")]
pub struct GetLoad;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Load {
    pub running: usize,
    pub queued: usize,
}

/// The service is stopping: cancel running jobs without marking them, so that they are resumed
/// at the next start; drop the queue (it is rebuilt from the store at start).
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct Shutdown;
