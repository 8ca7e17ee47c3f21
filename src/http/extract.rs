//! Request extractors that turn every malformed input into the app's problem+json errors.

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::header::CONTENT_TYPE;
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use super::error::{ApiError, FieldError};

/// A JSON body (`application/json`, `application/geo+json` or any `+json`), read within the
/// route's body limit and deserialized with errors that name the offending field.
pub struct JsonBody<T>(pub T);

fn is_json(content_type: &str) -> bool {
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
}

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, ApiError> {
        let content_type = request
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        if !is_json(content_type) {
            return Err(ApiError::UnsupportedMediaType(format!(
                "the body must be JSON with `Content-Type: application/json` (got {})",
                if content_type.is_empty() {
                    "no Content-Type".to_owned()
                } else {
                    format!("`{content_type}`")
                }
            )));
        }
        let bytes =
            Bytes::from_request(request, state)
                .await
                .map_err(|rejection| match rejection {
                    BytesRejection::FailedToBufferBody(e)
                        if e.body_text().contains("length limit") =>
                    {
                        ApiError::PayloadTooLarge(
                            "the body is larger than this route accepts".into(),
                        )
                    }
                    other => {
                        ApiError::BadRequest(format!("cannot read the body: {}", other.body_text()))
                    }
                })?;
        parse_json(&bytes).map(JsonBody)
    }
}

/// Parses JSON bytes into `T`: a syntax error is a 400 naming line and column, a value of the
/// wrong shape a 422 naming its path.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let deserializer = &mut serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(deserializer).map_err(|error| {
        let path = error.path().to_string();
        let inner = error.into_inner();
        if inner.is_data() {
            let field = if path == "." { "body".to_owned() } else { path };
            ApiError::Validation(vec![FieldError::new(
                field,
                strip_position(&inner.to_string()),
            )])
        } else if inner.is_eof() {
            ApiError::BadRequest("the body is not valid JSON: it ends too early".into())
        } else {
            ApiError::BadRequest(format!("the body is not valid JSON: {inner}"))
        }
    })
}

fn strip_position(message: &str) -> String {
    match message.find(" at line ") {
        Some(i) => message[..i].to_owned(),
        None => message.to_owned(),
    }
}

/// Path parameters, with a clear 400 (or 404) when they do not parse.
pub struct PathParams<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for PathParams<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|p| PathParams(p.0))
            .map_err(|rejection: PathRejection| {
                ApiError::NotFound(format!("no such resource: {}", rejection.body_text()))
            })
    }
}

/// A query string, with a clear 400 naming what did not parse.
pub struct QueryParams<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for QueryParams<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|q| QueryParams(q.0))
            .map_err(|rejection: QueryRejection| ApiError::BadRequest(rejection.body_text()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    #[test]
    fn json_media_types() {
        assert!(is_json("application/json"));
        assert!(is_json("application/json; charset=utf-8"));
        assert!(is_json("application/geo+json"));
        assert!(!is_json("text/plain"));
        assert!(!is_json(""));
    }

    #[test]
    fn malformed_bodies_are_client_errors() {
        for body in [
            "{",
            "NaN",
            "{\"a\": NaN}",
            "[1e999]",
            &"[".repeat(200),
            "{'a': 1}",
        ] {
            match parse_json::<Value>(body.as_bytes()) {
                Err(ApiError::BadRequest(detail)) => {
                    assert!(detail.starts_with("the body is not valid JSON"), "{detail}")
                }
                other => panic!("{body}: {other:?}"),
            }
        }
    }
}
