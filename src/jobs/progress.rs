//! Live progress of running jobs, shared with the HTTP handlers (read without a round trip to
//! the registry).

use std::sync::Arc;

use dashmap::DashMap;

use super::JobId;
use crate::engine::batch::Progress;

pub type ProgressMap = Arc<DashMap<JobId, Arc<Progress>>>;

pub fn new_map() -> ProgressMap {
    Arc::new(DashMap::new())
}
