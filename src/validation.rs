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

/// Some fields of an input are invalid: every one of them, each with what is wrong. The error
/// every domain module reports for bad input (HTTP answers it 422 with the fields listed).
#[derive(Debug, Clone, PartialEq)]
pub struct Invalid(pub Vec<FieldError>);

impl Invalid {
    /// One invalid field.
    pub fn field(field: impl Into<String>, detail: impl Into<String>) -> Self {
        Self(vec![FieldError::new(field, detail)])
    }

    /// `Err(Invalid)` when `errors` holds any, else `Ok(())`.
    pub fn check(errors: Vec<FieldError>) -> Result<(), Self> {
        if errors.is_empty() {
            Ok(())
        } else {
            Err(Self(errors))
        }
    }
}

impl From<Vec<FieldError>> for Invalid {
    fn from(errors: Vec<FieldError>) -> Self {
        Self(errors)
    }
}

impl std::fmt::Display for Invalid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0.as_slice() {
            [one] => write!(f, "{}: {}", one.field, one.detail),
            many => {
                write!(f, "{} fields are invalid: ", many.len())?;
                for (i, e) in many.iter().enumerate() {
                    let separator = if i == 0 { "" } else { "; " };
                    write!(f, "{separator}{}: {}", e.field, e.detail)?;
                }
                Ok(())
            }
        }
    }
}

impl std::error::Error for Invalid {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalid_names_every_field() {
        assert_eq!(
            Invalid::field("slug", "cannot be changed").to_string(),
            "slug: cannot be changed"
        );
        let two = Invalid(vec![FieldError::new("a", "x"), FieldError::new("b", "y")]);
        assert_eq!(two.to_string(), "2 fields are invalid: a: x; b: y");
        assert!(Invalid::check(Vec::new()).is_ok());
    }
}
