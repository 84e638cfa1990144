//! A transfer's rows written as a SQL script for one dialect: `BEGIN`, the `CREATE TABLE` that
//! the dialect's own sink would run, multi-row `INSERT`s of at most `ROWS_PER_INSERT` rows
//! (each value a literal written by the dialect's connector, so quoting and escaping are the
//! dialect's), `COMMIT`. Run as a whole, the script loads all rows or none.

use std::io::Write;

use arrow_array::cast::AsArray;
use arrow_array::types::{
    Date32Type, Decimal128Type, Float32Type, Float64Type, Int16Type, Int32Type, Int64Type,
    Time64MicrosecondType, TimestampMicrosecondType, UInt64Type,
};
use arrow_array::Array;

use crate::engine::connector::{DbKind, Literal};
use crate::engine::query::{date_text, decimal128_text, time_text};
use crate::engine::types::{Column, LogicalType};
use crate::engine::EngineError;

/// Rows per INSERT statement (a statement also ends past `STATEMENT_BYTES`).
const ROWS_PER_INSERT: usize = 500;
const STATEMENT_BYTES: usize = 1 << 20;

fn timestamp_text(micros: i64) -> Result<String, String> {
    chrono::DateTime::from_timestamp_micros(micros)
        .map(|t| t.naive_utc().format("%Y-%m-%d %H:%M:%S%.6f").to_string())
        .ok_or_else(|| format!("{micros} µs is outside the calendar"))
}

/// One value as a literal of `dialect`, appended to `out`.
fn write_value(
    dialect: DbKind,
    array: &dyn Array,
    ty: &LogicalType,
    row: usize,
    out: &mut String,
) -> Result<(), String> {
    let connector = dialect.connector();
    if array.is_null(row) {
        return connector.write_literal(Literal::Null, out);
    }
    let owned: String;
    let literal = match ty {
        LogicalType::Boolean => Literal::Bool(array.as_boolean().value(row)),
        LogicalType::Int16 | LogicalType::Int32 | LogicalType::Int64 | LogicalType::UInt64 => {
            owned = match ty {
                LogicalType::Int16 => array.as_primitive::<Int16Type>().value(row).to_string(),
                LogicalType::Int32 => array.as_primitive::<Int32Type>().value(row).to_string(),
                LogicalType::Int64 => array.as_primitive::<Int64Type>().value(row).to_string(),
                _ => array.as_primitive::<UInt64Type>().value(row).to_string(),
            };
            Literal::Number(&owned)
        }
        LogicalType::Float32 => {
            let v = array.as_primitive::<Float32Type>().value(row);
            if v.is_finite() {
                // The shortest text that reads back as the same single-precision value.
                owned = crate::engine::values::float_text(v);
                Literal::Number(&owned)
            } else {
                Literal::Float(f64::from(v))
            }
        }
        LogicalType::Float64 => Literal::Float(array.as_primitive::<Float64Type>().value(row)),
        LogicalType::Decimal { scale, .. } => {
            owned = decimal128_text(array.as_primitive::<Decimal128Type>().value(row), *scale);
            Literal::Number(&owned)
        }
        LogicalType::BigDecimal { .. } => {
            let v = array.as_string::<i32>().value(row);
            if v.bytes().any(|b| b.is_ascii_alphabetic()) {
                Literal::Text(v)
            } else {
                Literal::Number(v)
            }
        }
        LogicalType::Text { .. }
        | LogicalType::Json
        | LogicalType::Array { .. }
        | LogicalType::Interval
        | LogicalType::Other { .. } => Literal::Text(array.as_string::<i32>().value(row)),
        LogicalType::Binary { .. } | LogicalType::PgRaw { .. } => {
            Literal::Bytes(array.as_binary::<i32>().value(row))
        }
        LogicalType::Date => {
            owned = date_text(array.as_primitive::<Date32Type>().value(row));
            Literal::Text(&owned)
        }
        LogicalType::Time => {
            owned = time_text(array.as_primitive::<Time64MicrosecondType>().value(row));
            Literal::Text(&owned)
        }
        LogicalType::Timestamp | LogicalType::TimestampTz => {
            owned = timestamp_text(array.as_primitive::<TimestampMicrosecondType>().value(row))?;
            Literal::Timestamp {
                text: &owned,
                utc: *ty == LogicalType::TimestampTz,
            }
        }
        LogicalType::Uuid => {
            let bytes = array.as_fixed_size_binary().value(row);
            owned = uuid::Uuid::from_slice(bytes)
                .map_err(|e| e.to_string())?
                .hyphenated()
                .to_string();
            Literal::Text(&owned)
        }
    };
    connector.write_literal(literal, out)
}

/// Writes a SQL script of `table` in `dialect` into `out`, a batch at a time.
pub struct SqlOut<W: Write> {
    out: W,
    dialect: DbKind,
    columns: Vec<Column>,
    /// `INSERT INTO "t" ("a", "b") VALUES`
    insert: String,
    statement: String,
    rows_in_statement: usize,
    rows: u64,
}

fn io_error(e: std::io::Error) -> EngineError {
    EngineError::Internal(format!("writing the SQL script: {e}"))
}

impl<W: Write> SqlOut<W> {
    /// Begin the script: `BEGIN;` and the table's `CREATE TABLE`.
    pub fn new(
        mut out: W,
        dialect: DbKind,
        table: &str,
        columns: Vec<Column>,
    ) -> Result<Self, EngineError> {
        let connector = dialect.connector();
        let create = connector.create_table_sql(table, &columns)?;
        let names: Vec<String> = columns
            .iter()
            .map(|c| connector.quote_ident(&c.name))
            .collect::<Result<_, _>>()?;
        let insert = format!(
            "INSERT INTO {} ({}) VALUES\n",
            connector.quote_ident(table)?,
            names.join(", ")
        );
        writeln!(out, "BEGIN;\n{create};").map_err(io_error)?;
        Ok(Self {
            out,
            dialect,
            columns,
            insert,
            statement: String::new(),
            rows_in_statement: 0,
            rows: 0,
        })
    }

    pub fn write(&mut self, batch: &arrow_array::RecordBatch) -> Result<(), EngineError> {
        for row in 0..batch.num_rows() {
            self.rows += 1;
            self.statement.push_str(if self.rows_in_statement == 0 {
                &self.insert
            } else {
                ",\n"
            });
            self.statement.push('(');
            for (i, (column, array)) in self.columns.iter().zip(batch.columns()).enumerate() {
                if i > 0 {
                    self.statement.push_str(", ");
                }
                write_value(
                    self.dialect,
                    array.as_ref(),
                    &column.ty,
                    row,
                    &mut self.statement,
                )
                .map_err(|message| EngineError::Value {
                    column: column.name.clone(),
                    row: self.rows,
                    message,
                })?;
            }
            self.statement.push(')');
            self.rows_in_statement += 1;
            if self.rows_in_statement >= ROWS_PER_INSERT || self.statement.len() >= STATEMENT_BYTES
            {
                self.end_statement()?;
            }
        }
        Ok(())
    }

    fn end_statement(&mut self) -> Result<(), EngineError> {
        if self.rows_in_statement > 0 {
            self.statement.push_str(";\n");
            self.out
                .write_all(self.statement.as_bytes())
                .map_err(io_error)?;
            self.statement.clear();
            self.rows_in_statement = 0;
        }
        Ok(())
    }

    /// End the script (`COMMIT;`); the rows written.
    pub fn finish(mut self) -> Result<u64, EngineError> {
        self.end_statement()?;
        self.out.write_all(b"COMMIT;\n").map_err(io_error)?;
        self.out.flush().map_err(io_error)?;
        Ok(self.rows)
    }
}
