//! What every kind of job shares in the store: its id and kind, its typed status, and the
//! status transitions (start, cancel while queued, resume after a restart). Each kind's own
//! columns (a transfer's counters, a query's result) stay in its module.

use chrono::{DateTime, Utc};
use entities::{query, run, transfer};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ColumnTrait, DbErr, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect, Select,
};

pub use entities::job_status::JobStatus;

use super::{order, JobFilter, ListParams, Store};

/// The kinds of job.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum JobKind {
    // A new kind: a value here, in `ALL`, `as_str`, and `JobId` (below).
    Transfer,
    Query,
    Run,
}

impl JobKind {
    pub const ALL: [JobKind; 3] = [JobKind::Transfer, JobKind::Query, JobKind::Run];

    /// Its place in `ALL` (for per-kind tallies).
    pub fn index(self) -> usize {
        Self::ALL.iter().position(|k| *k == self).unwrap_or(0)
    }

    /// `transfer`, `query`, `run`: the word in messages, metrics and live events.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Transfer => "transfer",
            Self::Query => "query",
            Self::Run => "run",
        }
    }
}

/// A job, by kind and id in its table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum JobId {
    Transfer(i32),
    Query(i32),
    Run(i32),
}

impl JobId {
    pub fn new(kind: JobKind, id: i32) -> Self {
        match kind {
            JobKind::Transfer => Self::Transfer(id),
            JobKind::Query => Self::Query(id),
            JobKind::Run => Self::Run(id),
        }
    }

    pub fn kind(self) -> JobKind {
        match self {
            Self::Transfer(_) => JobKind::Transfer,
            Self::Query(_) => JobKind::Query,
            Self::Run(_) => JobKind::Run,
        }
    }

    /// The id in its kind's table.
    pub fn id(self) -> i32 {
        match self {
            Self::Transfer(id) | Self::Query(id) | Self::Run(id) => id,
        }
    }
}

/// The columns of a job table that every list reads.
pub(crate) struct ListColumns<C> {
    pub id: C,
    pub created_at: C,
    pub created_by: C,
    pub status: C,
}

impl Store {
    /// A page of one kind's jobs: `select` (narrowed already by what only that kind has, such
    /// as its connections) for the filter's owner and statuses, counted and ordered.
    pub(crate) async fn list_jobs<E, C>(
        &self,
        mut select: Select<E>,
        filter: &JobFilter,
        params: &ListParams,
        columns: ListColumns<C>,
    ) -> Result<(Vec<E::Model>, u64), DbErr>
    where
        E: EntityTrait,
        E::Model: Send + Sync,
        C: ColumnTrait,
    {
        if let Some(owner) = filter.owner {
            select = select.filter(columns.created_by.eq(owner));
        }
        if !filter.statuses.is_empty() {
            select = select.filter(columns.status.is_in(filter.statuses.clone()));
        }
        let total = select.clone().count(self.db()).await?;
        let rows = order(select, params, columns.id, columns.created_at)
            .all(self.db())
            .await?;
        Ok((rows, total))
    }
}

/// Run `$body` with `$entity` and `$column` naming the job's table, and `$id` its id: the
/// job tables share the status columns.
macro_rules! on_job_table {
    ($job:expr, |$entity:ident, $column:ident, $id:ident| $body:expr) => {
        match $job {
            JobId::Transfer($id) => {
                use transfer::{Column as $column, Entity as $entity};
                $body
            }
            JobId::Query($id) => {
                use query::{Column as $column, Entity as $entity};
                $body
            }
            JobId::Run($id) => {
                use run::{Column as $column, Entity as $entity};
                $body
            }
        }
    };
}

impl Store {
    /// An attempt starts: `running`, the attempt counted, `started_at` set on the first one,
    /// the error of an earlier attempt cleared.
    pub async fn mark_job_running(&self, job: JobId, attempts: i32) -> Result<(), DbErr> {
        let now = Utc::now();
        on_job_table!(job, |Table, Col, id| {
            Table::update_many()
                .col_expr(Col::Status, Expr::value(JobStatus::Running))
                .col_expr(Col::Attempts, Expr::value(attempts))
                .col_expr(Col::StartedAt, Expr::col(Col::StartedAt).if_null(now))
                .col_expr(Col::Error, Expr::value(Option::<String>::None))
                .col_expr(Col::ErrorCode, Expr::value(Option::<String>::None))
                .filter(Col::Id.eq(id))
                .exec(self.db())
                .await?
        });
        Ok(())
    }

    /// Cancel a job that has not started: only if it is still `queued`.
    pub async fn cancel_queued_job(&self, job: JobId) -> Result<bool, DbErr> {
        let now = Utc::now();
        let result = on_job_table!(job, |Table, Col, id| {
            Table::update_many()
                .col_expr(Col::Status, Expr::value(JobStatus::Cancelled))
                .col_expr(Col::StoppedAt, Expr::value(now))
                .filter(Col::Id.eq(id))
                .filter(Col::Status.eq(JobStatus::Queued))
                .exec(self.db())
                .await?
        });
        Ok(result.rows_affected > 0)
    }

    /// The job's status now (`None`: it does not exist).
    pub async fn job_status(&self, job: JobId) -> Result<Option<JobStatus>, DbErr> {
        on_job_table!(job, |Table, Col, id| {
            Table::find_by_id(id)
                .select_only()
                .column(Col::Status)
                .into_tuple::<JobStatus>()
                .one(self.db())
                .await
        })
    }

    /// Delete a job's record (and what it kept: a query's result).
    pub async fn delete_job(&self, job: JobId) -> Result<bool, DbErr> {
        match job {
            JobId::Transfer(id) => self.delete_transfer(id).await,
            JobId::Query(id) => self.delete_query(id).await,
            JobId::Run(id) => self.delete_run(id).await,
        }
    }

    /// Jobs a crash or restart left `queued` or `running`, oldest first; those found running
    /// are queued again.
    pub async fn jobs_to_resume(&self) -> Result<Vec<JobId>, DbErr> {
        let mut jobs: Vec<(DateTime<Utc>, JobId)> = Vec::new();
        for kind in JobKind::ALL {
            let found: Vec<(i32, DateTime<Utc>)> =
                on_job_table!(JobId::new(kind, 0), |Table, Col, _id| {
                    Table::update_many()
                        .col_expr(Col::Status, Expr::value(JobStatus::Queued))
                        .filter(Col::Status.eq(JobStatus::Running))
                        .exec(self.db())
                        .await?;
                    Table::find()
                        .select_only()
                        .column(Col::Id)
                        .column(Col::CreatedAt)
                        .filter(Col::Status.eq(JobStatus::Queued))
                        .order_by_asc(Col::Id)
                        .into_tuple()
                        .all(self.db())
                        .await?
                });
            jobs.extend(found.into_iter().map(|(id, at)| (at, JobId::new(kind, id))));
        }
        jobs.sort_by_key(|(at, _)| *at);
        Ok(jobs.into_iter().map(|(_, job)| job).collect())
    }
}
