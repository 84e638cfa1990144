//! The kinds of job, each mapped to its runner: a new kind is its module (implementing
//! `outcome::JobRunner`) and one line here.

use super::outcome::JobRunner;
use super::{query, run, transfer};
use crate::store::jobs::JobKind;

/// The runner of a kind of job.
pub fn runner(kind: JobKind) -> &'static dyn JobRunner {
    match kind {
        JobKind::Transfer => &transfer::TransferJob,
        JobKind::Query => &query::QueryJob,
        JobKind::Run => &run::RunJob,
    }
}
