//! PostgreSQL types as Sluice carries them: the built-in OIDs it knows, and for each result
//! column the logical type, how its binary COPY value is decoded and what the COPY selects
//! (`map_type`), and the declaration that recreates it on another PostgreSQL server
//! (`native_type`).

use crate::engine::types::{Family, LogicalType, NativeType};
use crate::engine::Carrier;

/// First OID of objects created after initdb: below it, types are built in.
pub(super) const FIRST_NORMAL_OID: u32 = 16_384;

pub(super) mod oid {
    pub const BOOL: u32 = 16;
    pub const BYTEA: u32 = 17;
    pub const NAME: u32 = 19;
    pub const INT8: u32 = 20;
    pub const INT2: u32 = 21;
    pub const INT4: u32 = 23;
    pub const TEXT: u32 = 25;
    pub const OID: u32 = 26;
    pub const JSON: u32 = 114;
    pub const FLOAT4: u32 = 700;
    pub const FLOAT8: u32 = 701;
    pub const BPCHAR: u32 = 1042;
    pub const VARCHAR: u32 = 1043;
    pub const DATE: u32 = 1082;
    pub const TIME: u32 = 1083;
    pub const TIMESTAMP: u32 = 1114;
    pub const TIMESTAMPTZ: u32 = 1184;
    pub const INTERVAL: u32 = 1186;
    pub const NUMERIC: u32 = 1700;
    pub const UUID: u32 = 2950;
    pub const JSONB: u32 = 3802;
    pub const REGPROC: u32 = 24;
    pub const REGPROCEDURE: u32 = 2202;
    pub const REGOPER: u32 = 2203;
    pub const REGOPERATOR: u32 = 2204;
    pub const REGCLASS: u32 = 2205;
    pub const REGTYPE: u32 = 2206;
    pub const REGCONFIG: u32 = 3734;
    pub const REGDICTIONARY: u32 = 3769;
    pub const REGNAMESPACE: u32 = 4089;
    pub const REGROLE: u32 = 4096;
    pub const REGCOLLATION: u32 = 4191;
}

/// How a wire value becomes an Arrow value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum Decode {
    Bool,
    I16,
    I32,
    I64,
    Oid,
    F32,
    F64,
    Decimal {
        precision: u8,
        scale: i8,
    },
    NumericText,
    Text,
    Jsonb,
    Bytes,
    Date,
    Time,
    Timestamp,
    TimestampTz,
    Uuid,
    IntervalIso,
    /// An array of a common element type, as JSON text.
    ArrayJson,
}

/// What the COPY selects for a column.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum Select {
    Plain,
    /// `col::text`: the type's own text form.
    TextCast,
    /// `to_json(col)::text`: arrays of element types not decoded here.
    ToJson,
}

/// What the catalog says of a result column's type.
pub(super) struct TypeInfo {
    pub(super) oid: u32,
    pub(super) typmod: i32,
    /// `format_type(oid, typmod)`.
    pub(super) format: String,
    /// `pg_type.typcategory` ("A" for arrays, "S" for strings, ...).
    pub(super) category: String,
    /// `pg_type.typtype` ("b" base, "e" enum, "p" pseudo, ...).
    pub(super) typtype: String,
    /// The element type of an array; 0 otherwise.
    pub(super) elem: u32,
}

impl TypeInfo {
    /// Created by initdb (the same OID and binary form on every server), not a pseudo-type.
    pub(super) fn is_builtin(&self) -> bool {
        self.oid < FIRST_NORMAL_OID && self.typtype != "p"
    }
}

/// Element types whose arrays are decoded here (others go through `to_json`).
fn decodable_element(elem: u32) -> bool {
    matches!(
        elem,
        oid::BOOL
            | oid::INT2
            | oid::INT4
            | oid::INT8
            | oid::FLOAT4
            | oid::FLOAT8
            | oid::NUMERIC
            | oid::TEXT
            | oid::VARCHAR
            | oid::BPCHAR
            | oid::NAME
            | oid::DATE
            | oid::TIMESTAMP
            | oid::TIMESTAMPTZ
            | oid::UUID
            | oid::JSON
            | oid::JSONB
    )
}

/// `regclass`, `regtype` and the other OID aliases: their binary form is the object's OID.
fn is_reg_type(oid: u32) -> bool {
    matches!(
        oid,
        oid::REGPROC
            | oid::REGPROCEDURE
            | oid::REGOPER
            | oid::REGOPERATOR
            | oid::REGCLASS
            | oid::REGTYPE
            | oid::REGCONFIG
            | oid::REGDICTIONARY
            | oid::REGNAMESPACE
            | oid::REGROLE
            | oid::REGCOLLATION
    )
}

fn text_len(typmod: i32) -> Option<u32> {
    (typmod >= 4).then(|| (typmod - 4) as u32)
}

/// The declaration that creates the same column on another PostgreSQL server: every built-in
/// type as `format_type()` prints it (typmods included), and an enum where the target has one
/// of the same name (a domain, likewise: see `describe`; elsewhere its base type, which is how
/// the result describes it). Object references (`regclass`, …) are not carried: their OIDs
/// mean nothing elsewhere.
pub(super) fn native_type(t: &TypeInfo) -> Option<NativeType> {
    if is_reg_type(t.oid) || is_reg_type(t.elem) {
        return None;
    }
    let user_defined = if t.is_builtin() {
        false
    } else if t.typtype == "e" {
        true
    } else {
        return None;
    };
    Some(NativeType {
        family: Family::Postgres,
        ddl: t.format.clone(),
        user_defined,
    })
}

/// The logical type, decoder and COPY selection of a result column of type `t`.
pub(super) fn map_type(t: &TypeInfo, carrier: Carrier) -> (LogicalType, Decode, Select) {
    let to_pg = carrier == Carrier::PostgresBinary;
    let plain = |ty, decode| (ty, decode, Select::Plain);
    match t.oid {
        oid::BOOL => plain(LogicalType::Boolean, Decode::Bool),
        oid::INT2 => plain(LogicalType::Int16, Decode::I16),
        oid::INT4 => plain(LogicalType::Int32, Decode::I32),
        oid::INT8 => plain(LogicalType::Int64, Decode::I64),
        oid::OID => plain(LogicalType::Int64, Decode::Oid),
        oid::FLOAT4 => plain(LogicalType::Float32, Decode::F32),
        oid::FLOAT8 => plain(LogicalType::Float64, Decode::F64),
        oid::NUMERIC => {
            let (ty, decode) = numeric_type(t.typmod);
            plain(ty, decode)
        }
        oid::TEXT | oid::NAME => plain(
            LogicalType::Text {
                max_len: None,
                fixed: false,
            },
            Decode::Text,
        ),
        oid::VARCHAR => plain(
            LogicalType::Text {
                max_len: text_len(t.typmod),
                fixed: false,
            },
            Decode::Text,
        ),
        oid::BPCHAR => plain(
            LogicalType::Text {
                max_len: text_len(t.typmod),
                fixed: true,
            },
            Decode::Text,
        ),
        oid::BYTEA => plain(LogicalType::Binary { max_len: None }, Decode::Bytes),
        oid::DATE => plain(LogicalType::Date, Decode::Date),
        oid::TIME => plain(LogicalType::Time, Decode::Time),
        oid::TIMESTAMP => plain(LogicalType::Timestamp, Decode::Timestamp),
        oid::TIMESTAMPTZ => plain(LogicalType::TimestampTz, Decode::TimestampTz),
        oid::UUID => plain(LogicalType::Uuid, Decode::Uuid),
        // `json` keeps its exact text and type towards PostgreSQL (jsonb would reformat it).
        oid::JSON if to_pg => plain(
            LogicalType::PgRaw {
                db_type: "json".into(),
                oid: oid::JSON,
            },
            Decode::Bytes,
        ),
        oid::JSON => plain(LogicalType::Json, Decode::Text),
        oid::JSONB => plain(LogicalType::Json, Decode::Jsonb),
        oid::INTERVAL if !to_pg => plain(LogicalType::Interval, Decode::IntervalIso),
        // An object's OID means nothing on another server: carry its name.
        _ if is_reg_type(t.oid) || is_reg_type(t.elem) => (
            LogicalType::Other {
                db_type: t.format.clone(),
            },
            Decode::Text,
            Select::TextCast,
        ),
        _ => other_type(t, to_pg),
    }
}

/// `numeric(p, s)`: an Arrow decimal when it fits in 38 digits, its text otherwise (and for
/// a bare `numeric`, or a negative scale).
fn numeric_type(typmod: i32) -> (LogicalType, Decode) {
    let unbounded = (
        LogicalType::BigDecimal {
            precision: None,
            scale: None,
        },
        Decode::NumericText,
    );
    if typmod < 4 {
        return unbounded;
    }
    let tm = typmod - 4;
    let precision = ((tm >> 16) & 0xffff) as u32;
    let scale = (((tm & 0x7ff) ^ 1024) - 1024) as i64;
    if scale < 0 || scale > precision as i64 {
        return unbounded;
    }
    if (1..=38).contains(&precision) {
        let (precision, scale) = (precision as u8, scale as i8);
        (
            LogicalType::Decimal { precision, scale },
            Decode::Decimal { precision, scale },
        )
    } else {
        (
            LogicalType::BigDecimal {
                precision: Some(precision),
                scale: Some(scale as u32),
            },
            Decode::NumericText,
        )
    }
}

/// Every other type: its own bytes towards PostgreSQL when built in; arrays as JSON and the
/// rest as their text elsewhere.
fn other_type(t: &TypeInfo, to_pg: bool) -> (LogicalType, Decode, Select) {
    let is_array = t.category == "A" && t.elem != 0;
    if to_pg && t.is_builtin() {
        let ty = LogicalType::PgRaw {
            db_type: t.format.clone(),
            oid: t.oid,
        };
        (ty, Decode::Bytes, Select::Plain)
    } else if !to_pg && is_array {
        let ty = LogicalType::Array {
            db_type: t.format.clone(),
        };
        if decodable_element(t.elem) {
            (ty, Decode::ArrayJson, Select::Plain)
        } else {
            (ty, Decode::Text, Select::ToJson)
        }
    } else {
        let ty = LogicalType::Other {
            db_type: t.format.clone(),
        };
        (ty, Decode::Text, Select::TextCast)
    }
}
