//! Validation errors of the domain: what is wrong with an input, and where. They are
//! independent of HTTP; the edge (`http::error`) turns them into problem+json, the command line
//! into lines of text.

use serde::Serialize;
use utoipa::ToSchema;

/// One invalid field of a request: `field` is a dotted path such as `properties.households`
/// or `geometry`.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct FieldError {
    /// Where the problem is, e.g. `properties.households`.
    pub field: String,
    /// What is wrong with it, in plain English.
    pub detail: String,
}

impl FieldError {
    /// A field error at `field` saying `detail`.
    pub fn new(field: impl Into<String>, detail: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            detail: detail.into(),
        }
    }
}
