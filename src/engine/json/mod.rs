//! JSON files: an array of records, or JSON Lines (one record per line); reading their schema.

pub mod detect;
pub mod path;

pub use detect::detect;
