//! The JSON Schema of the JSON report, `schemas/conformance-report.schema.json`.
//!
//! Generated like the contract's schemas (`tagcast_spec::schema`); `tagcast
//! schema export` writes it and a test fails when the checked-in file drifts.

use tagcast_spec::schema::{Document, document};

use crate::report::Report;

/// The file name of the report schema in `schemas/`.
pub const REPORT_SCHEMA_FILE: &str = "conformance-report.schema.json";

/// Every schema document of this crate, in file-name order.
pub fn documents() -> Vec<Document> {
    vec![document::<Report>(REPORT_SCHEMA_FILE, "tagcast conformance report")]
}
