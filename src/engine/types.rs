//! The logical type system every source produces and every sink consumes, and how each logical
//! type travels in an Arrow batch.
//!
//! | logical            | Arrow array                              | value                                  |
//! |--------------------|------------------------------------------|----------------------------------------|
//! | Boolean            | BooleanArray                             |                                        |
//! | Int16/Int32/Int64  | Int16Array/Int32Array/Int64Array         |                                        |
//! | UInt64             | UInt64Array                              | MySQL BIGINT UNSIGNED                  |
//! | Float32/Float64    | Float32Array/Float64Array                | NaN, ±inf, -0.0 and subnormals kept    |
//! | Decimal{p,s}       | Decimal128Array (precision p, scale s)   | 1 ≤ p ≤ 38, 0 ≤ s ≤ p                  |
//! | BigDecimal         | StringArray                              | exact decimal text ("-12.3400", "NaN", "Infinity", "-Infinity") |
//! | Text               | StringArray                              |                                        |
//! | Binary             | BinaryArray                              |                                        |
//! | Date               | Date32Array                              | days since 1970-01-01                  |
//! | Time               | Time64MicrosecondArray                   | microseconds since midnight            |
//! | Timestamp          | TimestampMicrosecondArray (no zone)      | µs since 1970-01-01 00:00              |
//! | TimestampTz        | TimestampMicrosecondArray (zone "UTC")   | the instant, µs since the UTC epoch    |
//! | Uuid               | FixedSizeBinaryArray(16)                 |                                        |
//! | Json               | StringArray                              | JSON text                              |
//! | Array              | StringArray                              | the array as JSON text ([1,2,null])    |
//! | Interval           | StringArray                              | ISO 8601 duration ("P1Y2M3DT4H5M6.5S") |
//! | PgRaw              | BinaryArray                              | PostgreSQL binary wire value; only on a PostgreSQL → PostgreSQL transfer |
//! | Other              | StringArray                              | the source's text form                 |
//!
//! A source picks `PgRaw` only when the target is PostgreSQL (so arrays, intervals and other
//! built-in types are copied bit for bit); towards other targets it converts them to the text
//! forms above.

use std::collections::HashMap;
use std::sync::Arc;

use arrow_schema::{DataType, Field, Schema, SchemaRef, TimeUnit};
use serde::{Deserialize, Serialize};

/// Field metadata key holding the JSON of the column's `LogicalType`.
pub const TYPE_KEY: &str = "sluice.type";
/// Field metadata key holding the column's type as the source database named it.
pub const DB_TYPE_KEY: &str = "sluice.db_type";
/// Field metadata key holding the JSON of the column's `NativeType`, when it has one.
pub const NATIVE_KEY: &str = "sluice.native";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "camelCase")]
pub enum LogicalType {
    Boolean,
    Int16,
    Int32,
    Int64,
    UInt64,
    Float32,
    Float64,
    Decimal {
        precision: u8,
        scale: i8,
    },
    /// Unconstrained or wider than 38 digits.
    BigDecimal {
        precision: Option<u32>,
        scale: Option<u32>,
    },
    Text {
        /// Declared maximum length in characters (varchar(n) / char(n)).
        max_len: Option<u32>,
        /// char(n) rather than varchar(n).
        fixed: bool,
    },
    Binary {
        max_len: Option<u32>,
    },
    Date,
    Time,
    Timestamp,
    TimestampTz,
    Uuid,
    Json,
    /// A PostgreSQL array, towards a non-PostgreSQL target.
    Array {
        /// The source type, e.g. `integer[]`.
        db_type: String,
    },
    Interval,
    /// A PostgreSQL value passed through in binary form to a PostgreSQL target; `db_type` is
    /// the type to create the target column with (e.g. `integer[]`, `interval`).
    PgRaw {
        db_type: String,
        oid: u32,
    },
    /// Anything else, as text.
    Other {
        db_type: String,
    },
}

impl LogicalType {
    /// How values of this type travel in a batch.
    pub fn arrow_type(&self) -> DataType {
        match self {
            Self::Boolean => DataType::Boolean,
            Self::Int16 => DataType::Int16,
            Self::Int32 => DataType::Int32,
            Self::Int64 => DataType::Int64,
            Self::UInt64 => DataType::UInt64,
            Self::Float32 => DataType::Float32,
            Self::Float64 => DataType::Float64,
            Self::Decimal { precision, scale } => DataType::Decimal128(*precision, *scale),
            Self::Binary { .. } | Self::PgRaw { .. } => DataType::Binary,
            Self::Date => DataType::Date32,
            Self::Time => DataType::Time64(TimeUnit::Microsecond),
            Self::Timestamp => DataType::Timestamp(TimeUnit::Microsecond, None),
            Self::TimestampTz => DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            Self::Uuid => DataType::FixedSizeBinary(16),
            Self::BigDecimal { .. }
            | Self::Text { .. }
            | Self::Json
            | Self::Array { .. }
            | Self::Interval
            | Self::Other { .. } => DataType::Utf8,
        }
    }
}

/// A column of a transfer's result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Column {
    pub name: String,
    pub ty: LogicalType,
    /// False only when the source guarantees no NULL (a NOT NULL table column).
    pub nullable: bool,
    /// The type as the source database names it (for messages and `Other`).
    pub db_type: String,
    /// The column's declared type, for a target of the same kind: there the created column
    /// gets exactly this type (the logical type only carries the values).
    #[serde(default)]
    pub native: Option<NativeType>,
}

/// Database kinds that share one type system (MySQL and MariaDB are one).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Family {
    Postgres,
    MySql,
}

/// A source column's type exactly as its database declares it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NativeType {
    pub family: Family,
    /// The declaration, as `format_type()` (PostgreSQL) or `COLUMN_TYPE` (MySQL/MariaDB)
    /// prints it: `character varying`, `timestamp(3) with time zone`, `int(10) unsigned`,
    /// `enum('a','b')`.
    pub ddl: String,
    /// A type of the source database's own making (a PostgreSQL enum): used only where the
    /// target has a type of that name; elsewhere the logical type's mapping applies.
    pub user_defined: bool,
}

#[cfg(test)]
impl Column {
    /// A nullable column of `ty` with no database type, as unit tests make them.
    pub fn of(name: &str, ty: LogicalType) -> Self {
        Column {
            name: name.into(),
            ty,
            nullable: true,
            db_type: String::new(),
            native: None,
        }
    }
}

impl Column {
    /// The declaration to create this column with on a target of `family`, when it is the
    /// source's own family.
    pub fn native_for(&self, family: Family) -> Option<&NativeType> {
        self.native.as_ref().filter(|n| n.family == family)
    }
}

/// The Arrow schema of a column list; each field carries its logical and database type.
pub fn arrow_schema(columns: &[Column]) -> SchemaRef {
    let fields: Vec<Field> = columns
        .iter()
        .map(|c| {
            let mut metadata = HashMap::from([
                (
                    TYPE_KEY.to_string(),
                    serde_json::to_string(&c.ty).expect("logical types serialize"),
                ),
                (DB_TYPE_KEY.to_string(), c.db_type.clone()),
            ]);
            if let Some(native) = &c.native {
                metadata.insert(
                    NATIVE_KEY.to_string(),
                    serde_json::to_string(native).expect("native types serialize"),
                );
            }
            Field::new(&c.name, c.ty.arrow_type(), c.nullable).with_metadata(metadata)
        })
        .collect();
    Arc::new(Schema::new(fields))
}

/// The column list back from an Arrow schema made by `arrow_schema`.
pub fn columns_of(schema: &Schema) -> Vec<Column> {
    schema
        .fields()
        .iter()
        .map(|f| Column {
            name: f.name().clone(),
            ty: f
                .metadata()
                .get(TYPE_KEY)
                .and_then(|t| serde_json::from_str(t).ok())
                .unwrap_or(LogicalType::Other {
                    db_type: "unknown".into(),
                }),
            nullable: f.is_nullable(),
            db_type: f.metadata().get(DB_TYPE_KEY).cloned().unwrap_or_default(),
            native: f
                .metadata()
                .get(NATIVE_KEY)
                .and_then(|t| serde_json::from_str(t).ok()),
        })
        .collect()
}

/// A transfer's result must have named columns, distinct ignoring case.
pub fn check_result_columns(columns: &[Column]) -> Result<(), super::EngineError> {
    if columns.is_empty() {
        return Err(super::EngineError::Schema(
            "the query returns no columns; a transfer needs a query that returns rows".into(),
        ));
    }
    let mut seen = std::collections::HashSet::new();
    for c in columns {
        if c.name.is_empty() {
            return Err(super::EngineError::Schema(
                "a result column has no name; give it one with AS".into(),
            ));
        }
        if !seen.insert(c.name.to_lowercase()) {
            return Err(super::EngineError::Schema(format!(
                "the result has two columns named {:?}; give them distinct names with AS",
                c.name
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_schema_round_trips_its_logical_types() {
        let columns = vec![
            Column {
                name: "amount".into(),
                ty: LogicalType::Decimal {
                    precision: 38,
                    scale: 10,
                },
                nullable: false,
                db_type: "numeric(38,10)".into(),
                native: None,
            },
            Column {
                name: "tags".into(),
                ty: LogicalType::Array {
                    db_type: "text[]".into(),
                },
                nullable: true,
                db_type: "text[]".into(),
                native: Some(NativeType {
                    family: Family::Postgres,
                    ddl: "text[]".into(),
                    user_defined: false,
                }),
            },
        ];
        let schema = arrow_schema(&columns);
        assert_eq!(schema.field(0).data_type(), &DataType::Decimal128(38, 10));
        assert_eq!(columns_of(&schema), columns);
    }
}
