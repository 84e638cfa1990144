//! Partitioned reads: a transfer's query split on an integer column of its result into
//! contiguous ranges, each read over its own source connection, all feeding the one sink (so
//! the target is still written in one transaction).
//!
//! The ranges come from `SELECT min(col), max(col) FROM (<query>)`. The first range also takes
//! the column's NULLs and everything below its upper bound, the last everything from its lower
//! bound up: together they cover every value, even one that appears after the probe.

use futures_util::future::try_join_all;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::batch::{Message, Progress, SourceContext};
use super::types::{check_result_columns, Column, LogicalType};
use super::{trim_query, Carrier, ConnectSpec, EngineError, SourceReader, SourceSpec};

/// The most partitions a transfer may ask for.
pub const MAX_PARTITIONS: u32 = 32;

/// Read the query in `partitions` ranges of `column` (an integer column of its result).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Partitioning {
    pub column: String,
    pub partitions: u32,
}

/// A range of the partition column: `lo` inclusive, `hi` exclusive; `None` is unbounded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Range {
    pub lo: Option<i128>,
    pub hi: Option<i128>,
}

/// Split `[min, max]` into at most `partitions` contiguous ranges of (nearly) equal width; the
/// first is open below and the last open above. Fewer ranges when there are fewer values.
pub fn split(min: i128, max: i128, partitions: u32) -> Vec<Range> {
    let span = (max - min + 1).max(1);
    let n = i128::from(partitions.max(1)).min(span);
    let bound = |i: i128| min + span * i / n;
    (0..n)
        .map(|i| Range {
            lo: (i > 0).then(|| bound(i)),
            hi: (i < n - 1).then(|| bound(i + 1)),
        })
        .collect()
}

/// Rows per batch for each of `partitions` sources, so that the batches being built at once
/// hold about as many rows as one unpartitioned source's.
pub fn batch_rows(batch_rows: usize, partitions: usize) -> usize {
    let batch_rows = batch_rows.max(1);
    (batch_rows / partitions.max(1)).max(batch_rows.min(4096))
}

/// `SELECT * FROM (<query>) WHERE <range>`; the newline keeps a trailing `--` comment of the
/// query from swallowing the closing parenthesis.
fn range_sql(query: &str, column: &str, range: Range) -> String {
    let condition = match (range.lo, range.hi) {
        (None, None) => "TRUE".to_string(),
        (None, Some(hi)) => format!("({column} < {hi} OR {column} IS NULL)"),
        (Some(lo), Some(hi)) => format!("{column} >= {lo} AND {column} < {hi}"),
        (Some(lo), None) => format!("{column} >= {lo}"),
    };
    format!("SELECT * FROM (\n{query}\n) AS sluice_part WHERE {condition}")
}

/// The min/max probe, both as text (one reading path for every integer type and dialect).
fn bounds_sql(text: &str, query: &str, column: &str) -> String {
    format!(
        "SELECT CAST(min({column}) AS {text}) AS lo, CAST(max({column}) AS {text}) AS hi \
         FROM (\n{query}\n) AS sluice_part"
    )
}

/// The result column `wanted` names: exactly, or else ignoring case (result names are unique
/// ignoring case, see `check_columns`).
fn find_column<'a>(columns: &'a [Column], wanted: &str) -> Result<&'a Column, EngineError> {
    columns
        .iter()
        .find(|c| c.name == wanted)
        .or_else(|| {
            columns
                .iter()
                .find(|c| c.name.to_lowercase() == wanted.to_lowercase())
        })
        .ok_or_else(|| {
            let names: Vec<&str> = columns.iter().map(|c| c.name.as_str()).collect();
            EngineError::Schema(format!(
                "partitionColumn {wanted:?} is not a column of the query's result ({})",
                names.join(", ")
            ))
        })
}

async fn open_one(
    spec: &ConnectSpec,
    sql: &str,
    carrier: Carrier,
    cancel: &CancellationToken,
) -> Result<Box<dyn SourceReader>, EngineError> {
    let source = SourceSpec::Query(sql.to_string());
    tokio::select! {
        biased;
        _ = cancel.cancelled() => Err(EngineError::Cancelled),
        opened = spec.kind.connector().open_source(spec, &source, carrier) => opened,
    }
}

/// Run the min/max probe; `None` when the column holds no value (no rows, or only NULLs).
///
/// # Cancel safety
/// The probe is an ordinary source: on `cancel` its query is stopped on the server.
async fn probe(
    spec: &ConnectSpec,
    sql: &str,
    column: &str,
    cancel: &CancellationToken,
) -> Result<Option<(i128, i128)>, EngineError> {
    // Portable carriers whatever the target (no PostgreSQL raw values).
    let source = open_one(spec, sql, Carrier::Portable, cancel).await?;
    let (tx, mut rx) = mpsc::channel::<Message>(2);
    let ctx = SourceContext::new(
        tx,
        cancel.child_token(),
        std::sync::Arc::new(Progress::default()),
        16,
    );
    let reader = tokio::spawn(source.run(ctx));
    let mut values: Option<(Option<String>, Option<String>)> = None;
    while let Some(message) = rx.recv().await {
        match message {
            Message::Batch(batch) if batch.num_rows() > 0 && values.is_none() => {
                let text = |i: usize| {
                    use arrow_array::cast::AsArray;
                    use arrow_array::Array;
                    let array = batch.column(i);
                    let strings = array.as_string_opt::<i32>()?;
                    (!strings.is_null(0)).then(|| strings.value(0).to_string())
                };
                values = Some((text(0), text(1)));
            }
            Message::Batch(_) | Message::Copy(_) => {}
            Message::End => break,
        }
    }
    drop(rx);
    reader
        .await
        .unwrap_or_else(|e| Err(EngineError::Internal(format!("probe task: {e}"))))?;
    if cancel.is_cancelled() {
        return Err(EngineError::Cancelled);
    }
    let parse = |text: String| {
        text.trim().parse::<i128>().map_err(|_| {
            EngineError::Schema(format!(
                "partitionColumn {column:?} holds {text:?}, which is not an integer"
            ))
        })
    };
    match values {
        Some((Some(lo), Some(hi))) => Ok(Some((parse(lo)?, parse(hi)?))),
        _ => Ok(None),
    }
}

/// Open the sources of a partitioned transfer and the columns the sink writes (those of the
/// whole query, exactly as an unpartitioned transfer has them). One source when the column
/// holds no value or a single one.
///
/// # Cancel safety
/// Stops at `cancel`; any query it started is stopped on the server.
pub(crate) async fn open(
    spec: &ConnectSpec,
    query: &str,
    carrier: Carrier,
    partitioning: &Partitioning,
    cancel: &CancellationToken,
) -> Result<(Vec<Box<dyn SourceReader>>, Vec<Column>), EngineError> {
    let connector = spec.kind.connector();
    let whole = open_one(spec, query, carrier, cancel).await?;
    let columns = whole.columns().to_vec();
    check_result_columns(&columns)?;
    let column = find_column(&columns, &partitioning.column)?;
    if !matches!(
        column.ty,
        LogicalType::Int16 | LogicalType::Int32 | LogicalType::Int64 | LogicalType::UInt64
    ) {
        return Err(EngineError::Schema(format!(
            "partitionColumn {:?} has type {}; partitioned reads need an integer column",
            column.name, column.db_type
        )));
    }
    let name = column.name.clone();
    let quoted = connector.quote_ident(&name)?;
    let query = trim_query(query);
    let bounds = bounds_sql(connector.text_type(), query, &quoted);
    let Some((min, max)) = probe(spec, &bounds, &name, cancel).await? else {
        return Ok((vec![whole], columns));
    };
    let ranges = split(min, max, partitioning.partitions);
    if ranges.len() < 2 {
        return Ok((vec![whole], columns));
    }
    drop(whole);
    tracing::debug!(partitions = ranges.len(), %min, %max, column = %name, "Reading in partitions.");
    let sqls: Vec<String> = ranges
        .iter()
        .map(|r| range_sql(query, &quoted, *r))
        .collect();
    let mut sources =
        try_join_all(sqls.iter().map(|sql| open_one(spec, sql, carrier, cancel))).await?;
    for (i, source) in sources.iter_mut().enumerate() {
        conform(source, &columns, i + 1)?;
    }
    Ok((sources, columns))
}

/// Make a partition's source produce batches of the whole query's columns. Names must agree;
/// a PostgreSQL partition must also describe the same types (its decoders come from its own
/// description), while the MySQL and SQLite readers convert each value into the given type.
fn conform(
    source: &mut Box<dyn SourceReader>,
    columns: &[Column],
    number: usize,
) -> Result<(), EngineError> {
    let own = source.columns();
    let mismatch = |what: String| {
        EngineError::Schema(format!(
            "partition {number} of the query describes {what}; the whole query does not"
        ))
    };
    if own.len() != columns.len() {
        return Err(mismatch(format!("{} columns", own.len())));
    }
    for (mine, theirs) in own.iter().zip(columns) {
        if mine.name != theirs.name {
            return Err(mismatch(format!("a column {:?}", mine.name)));
        }
        if source.fixed_types() && mine.ty != theirs.ty {
            return Err(mismatch(format!(
                "column {:?} as {}",
                mine.name, mine.db_type
            )));
        }
    }
    source.set_columns(columns.to_vec());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn covered(ranges: &[Range], v: i128) -> usize {
        ranges
            .iter()
            .filter(|r| r.lo.is_none_or(|lo| v >= lo) && r.hi.is_none_or(|hi| v < hi))
            .count()
    }

    #[test]
    fn ranges_are_contiguous_cover_every_value_once_and_are_even() {
        let ranges = split(-7, 100, 4);
        assert_eq!(ranges.len(), 4);
        assert_eq!(ranges[0].lo, None);
        assert_eq!(ranges[3].hi, None);
        for pair in ranges.windows(2) {
            assert_eq!(pair[0].hi, pair[1].lo);
        }
        for v in -100..200 {
            assert_eq!(covered(&ranges, v), 1, "{v}");
        }
        let widths: Vec<i128> = ranges[1..3]
            .iter()
            .map(|r| r.hi.unwrap() - r.lo.unwrap())
            .collect();
        assert_eq!(widths, vec![27, 27]);
    }

    #[test]
    fn fewer_values_than_partitions_give_fewer_ranges() {
        assert_eq!(split(5, 5, 8).len(), 1);
        let three = split(1, 3, 8);
        assert_eq!(three.len(), 3);
        for v in 1..=3 {
            assert_eq!(covered(&three, v), 1);
        }
    }

    #[test]
    fn the_extremes_of_64_bit_integers_split_without_overflow() {
        let ranges = split(i128::from(i64::MIN), i128::from(i64::MAX), 32);
        assert_eq!(ranges.len(), 32);
        assert_eq!(covered(&ranges, i128::from(i64::MIN)), 1);
        assert_eq!(covered(&ranges, i128::from(i64::MAX)), 1);
        let unsigned = split(0, i128::from(u64::MAX), 3);
        assert_eq!(covered(&unsigned, i128::from(u64::MAX)), 1);
    }

    #[test]
    fn range_queries_wrap_the_query_and_send_nulls_to_the_first_range() {
        let ranges = split(1, 10, 2);
        assert_eq!(
            range_sql("SELECT 1 -- note", "\"id\"", ranges[0]),
            "SELECT * FROM (\nSELECT 1 -- note\n) AS sluice_part \
             WHERE (\"id\" < 6 OR \"id\" IS NULL)"
        );
        assert!(range_sql("q", "`id`", ranges[1]).ends_with("WHERE `id` >= 6"));
    }

    #[test]
    fn per_partition_batches_shrink_but_not_below_a_floor() {
        assert_eq!(batch_rows(65_536, 4), 16_384);
        assert_eq!(batch_rows(65_536, 32), 4096);
        assert_eq!(batch_rows(1000, 4), 1000);
    }
}
