//! CSV files (and their TSV, `;` and `|` cousins): reading their encoding and dialect, and the
//! schema of their columns.

pub mod detect;

pub use detect::detect;
