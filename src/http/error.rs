//! The one error type of the HTTP edge and its `application/problem+json` body (RFC 9457).
//!
//! Every 4xx names what was wrong, with the offending field for validation errors. A 5xx body
//! is generic: the cause goes to the log, never to the client.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

use crate::validation::{FieldError, Invalid};

/// The body of every error response.
#[derive(Debug, Serialize, ToSchema)]
pub struct Problem {
    /// A stable identifier of the kind of problem, e.g. `urn:civicmap:problem:validation`.
    #[serde(rename = "type")]
    pub kind: String,
    /// A short summary of the kind of problem.
    pub title: String,
    /// The HTTP status code.
    pub status: u16,
    /// What went wrong with this request, in plain English.
    pub detail: String,
    /// The first offending field, for validation problems.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// Every offending field, for validation problems.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldError>,
}

/// Everything a handler can fail with.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ApiError {
    /// The request is malformed (bad JSON, bad query string, bad header).
    #[error("{0}")]
    BadRequest(String),
    /// The request is well-formed but some fields are invalid.
    #[error("invalid request: {0:?}")]
    Validation(Vec<FieldError>),
    /// No such resource.
    #[error("{0}")]
    NotFound(String),
    /// No valid credentials were given.
    #[error("{0}")]
    Unauthorized(String),
    /// The credentials do not allow this.
    #[error("{0}")]
    Forbidden(String),
    /// The request conflicts with the resource's state (campaign closed, slug taken...).
    #[error("{0}")]
    Conflict(String),
    /// The resource existed and was erased.
    #[error("{0}")]
    Gone(String),
    /// The body is larger than this route allows.
    #[error("{0}")]
    PayloadTooLarge(String),
    /// The body is not of a media type this route reads.
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// The method is not allowed on this route.
    #[error("{0}")]
    MethodNotAllowed(String),
    /// A proof of work is missing or not good enough (422, field `proof_of_work`): the client
    /// should get a new challenge, solve it and send again.
    #[error("proof_of_work: {0}")]
    ProofOfWork(String),
    /// Too many requests from this client or to this campaign.
    #[error("{detail}")]
    RateLimited {
        /// Which limit, and how long to wait.
        detail: String,
        /// Seconds before a retry can succeed.
        retry_after: u64,
    },
    /// The database cannot be reached; the client should retry.
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// This instance is doing as much of this work as it takes at once; the client should
    /// retry (503 with `Retry-After`).
    #[error("{0}")]
    Busy(String),
    /// The service is up but cannot serve yet (readiness probe); the reason is shown.
    #[error("not ready: {0}")]
    NotReady(String),
    /// A bug or an unexpected failure; the cause is logged, the client gets a generic message.
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

/// Handlers' result type.
pub type ApiResult<T> = Result<T, ApiError>;

impl ApiError {
    /// The same error for another caller, from the copy a shared computation (a cache that
    /// coalesces concurrent requests) handed out. An internal error keeps its message for
    /// the log; the client still gets the generic 500.
    pub fn shared(&self) -> Self {
        match self {
            Self::BadRequest(m) => Self::BadRequest(m.clone()),
            Self::Validation(errors) => Self::Validation(errors.clone()),
            Self::NotFound(m) => Self::NotFound(m.clone()),
            Self::Unauthorized(m) => Self::Unauthorized(m.clone()),
            Self::Forbidden(m) => Self::Forbidden(m.clone()),
            Self::Conflict(m) => Self::Conflict(m.clone()),
            Self::Gone(m) => Self::Gone(m.clone()),
            Self::PayloadTooLarge(m) => Self::PayloadTooLarge(m.clone()),
            Self::UnsupportedMediaType(m) => Self::UnsupportedMediaType(m.clone()),
            Self::MethodNotAllowed(m) => Self::MethodNotAllowed(m.clone()),
            Self::ProofOfWork(m) => Self::ProofOfWork(m.clone()),
            Self::RateLimited {
                detail,
                retry_after,
            } => Self::RateLimited {
                detail: detail.clone(),
                retry_after: *retry_after,
            },
            Self::Unavailable(m) => Self::Unavailable(m.clone()),
            Self::Busy(m) => Self::Busy(m.clone()),
            Self::NotReady(m) => Self::NotReady(m.clone()),
            Self::Internal(e) => Self::Internal(anyhow::anyhow!("{e:#}")),
        }
    }

    /// A validation error on a single field.
    pub fn field(field: impl Into<String>, detail: impl Into<String>) -> Self {
        Self::Validation(vec![FieldError::new(field, detail)])
    }

    fn status(&self) -> StatusCode {
        match self {
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::Validation(_) | Self::ProofOfWork(_) => StatusCode::UNPROCESSABLE_ENTITY,
            Self::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            Self::Forbidden(_) => StatusCode::FORBIDDEN,
            Self::Conflict(_) => StatusCode::CONFLICT,
            Self::Gone(_) => StatusCode::GONE,
            Self::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            Self::Unavailable(_) | Self::Busy(_) | Self::NotReady(_) => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn kind(&self) -> &'static str {
        match self {
            Self::BadRequest(_) => "bad-request",
            Self::Validation(_) => "validation",
            Self::ProofOfWork(_) => "proof-of-work-needed",
            Self::RateLimited { .. } => "rate-limited",
            Self::NotFound(_) => "not-found",
            Self::Unauthorized(_) => "unauthorized",
            Self::Forbidden(_) => "forbidden",
            Self::Conflict(_) => "conflict",
            Self::Gone(_) => "gone",
            Self::PayloadTooLarge(_) => "payload-too-large",
            Self::UnsupportedMediaType(_) => "unsupported-media-type",
            Self::MethodNotAllowed(_) => "method-not-allowed",
            Self::Unavailable(_) => "unavailable",
            Self::Busy(_) => "busy",
            Self::NotReady(_) => "not-ready",
            Self::Internal(_) => "internal",
        }
    }

    /// The problem document sent to the client. Never contains the cause of a 5xx.
    pub fn to_problem(&self) -> Problem {
        let status = self.status();
        let (detail, errors) = match self {
            Self::Validation(errors) => {
                let detail = match errors.as_slice() {
                    [one] => format!("{}: {}", one.field, one.detail),
                    many => format!("{} fields are invalid", many.len()),
                };
                (detail, errors.clone())
            }
            Self::ProofOfWork(detail) => {
                let error = FieldError::new("proof_of_work", detail.clone());
                (format!("proof_of_work: {detail}"), vec![error])
            }
            Self::Unavailable(_) => (
                "the database is unavailable; please retry in a few seconds".to_owned(),
                Vec::new(),
            ),
            Self::Internal(_) => (
                "an unexpected error occurred; it has been logged".to_owned(),
                Vec::new(),
            ),
            other => (other.to_string(), Vec::new()),
        };
        Problem {
            kind: format!("urn:civicmap:problem:{}", self.kind()),
            title: status.canonical_reason().unwrap_or("Error").to_owned(),
            status: status.as_u16(),
            detail,
            field: errors.first().map(|e| e.field.clone()),
            errors,
        }
    }
}

/// Seconds a client is told to wait when the database is down.
pub const RETRY_AFTER_SECONDS: u32 = 2;

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        match &self {
            Self::Internal(cause) => tracing::error!(error = ?cause, "internal error"),
            Self::Unavailable(cause) => tracing::warn!(%cause, "database unavailable"),
            _ => tracing::debug!(error = %self, "request refused"),
        }
        let problem = self.to_problem();
        let status = self.status();
        let body = serde_json::to_vec(&problem).unwrap_or_default();
        let mut response = (status, body).into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        if status == StatusCode::SERVICE_UNAVAILABLE {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(RETRY_AFTER_SECONDS));
        }
        if let Self::RateLimited { retry_after, .. } = self {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(retry_after));
        }
        response
    }
}

impl From<Invalid> for ApiError {
    fn from(Invalid(errors): Invalid) -> Self {
        Self::Validation(errors)
    }
}

impl From<sqlx::Error> for ApiError {
    fn from(error: sqlx::Error) -> Self {
        if crate::database::is_unavailable(&error) {
            return Self::Unavailable(error.to_string());
        }
        // Data exceptions that only a client's input can cause.
        let code = error
            .as_database_error()
            .and_then(|e| e.code())
            .unwrap_or_default();
        match code.as_ref() {
            "22021" | "22P05" => {
                Self::BadRequest("text must not contain NUL (\\u0000) characters".into())
            }
            "22003" => Self::BadRequest("a number is out of the range this field can store".into()),
            _ => Self::Internal(anyhow::Error::new(error)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_validation_problem_names_its_field() {
        let problem = ApiError::field("properties.households", "must be at most 500").to_problem();
        assert_eq!(problem.status, 422);
        assert_eq!(problem.field.as_deref(), Some("properties.households"));
        assert_eq!(problem.detail, "properties.households: must be at most 500");
        assert_eq!(problem.kind, "urn:civicmap:problem:validation");
    }

    #[test]
    fn proof_of_work_and_rate_limit_problems_have_their_own_types() {
        let problem = ApiError::ProofOfWork("the challenge expired".into()).to_problem();
        assert_eq!(problem.status, 422);
        assert_eq!(problem.kind, "urn:civicmap:problem:proof-of-work-needed");
        assert_eq!(problem.field.as_deref(), Some("proof_of_work"));
        let response = ApiError::RateLimited {
            detail: "at most 1 per minute".into(),
            retry_after: 7,
        }
        .into_response();
        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(response.headers()[header::RETRY_AFTER], "7");
    }

    #[test]
    fn an_internal_problem_hides_its_cause() {
        let problem = ApiError::Internal(anyhow::anyhow!("password=hunter2 leaked")).to_problem();
        assert_eq!(problem.status, 500);
        assert!(!problem.detail.contains("hunter2"));
    }
}
