//! Request extractors that turn every malformed input into the app's problem+json errors.

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::Uri;
use axum::http::header::CONTENT_TYPE;
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use super::error::ApiError;
use crate::validation::FieldError;

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

/// Parses JSON bytes into `T`: a syntax error (or anything but whitespace after the value) is
/// a 400 naming line and column, a value of the wrong shape a 422 naming its path.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let deserializer = &mut serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut *deserializer).map_err(|error| {
        let path = error.path().to_string();
        let inner = error.into_inner();
        if inner.is_data() {
            // The root is `.`; an unknown key that is empty (`{"": 1}`) has an empty path.
            let field = if path == "." || path.is_empty() {
                "body".to_owned()
            } else {
                path
            };
            ApiError::Validation(vec![FieldError::new(
                field,
                strip_position(&inner.to_string()),
            )])
        } else if inner.is_eof() {
            ApiError::BadRequest("the body is not valid JSON: it ends too early".into())
        } else {
            ApiError::BadRequest(format!("the body is not valid JSON: {inner}"))
        }
    })?;
    deserializer
        .end()
        .map_err(|e| ApiError::BadRequest(format!("the body is not valid JSON: {e}")))?;
    Ok(value)
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

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        parse_query(&parts.uri).map(QueryParams)
    }
}

/// The query string of `uri` as `T`, or a 400 naming what did not parse.
pub fn parse_query<T: DeserializeOwned>(uri: &Uri) -> Result<T, ApiError> {
    axum::extract::Query::<T>::try_from_uri(uri)
        .map(|q| q.0)
        .map_err(|rejection: QueryRejection| ApiError::BadRequest(rejection.body_text()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::strategy::Strategy;
    use serde_json::Value;

    #[test]
    fn json_media_types() {
        assert!(is_json("application/json"));
        assert!(is_json("application/json; charset=utf-8"));
        assert!(is_json("application/geo+json"));
        assert!(!is_json("text/plain"));
        assert!(!is_json(""));
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(1024))]

        /// Any bytes are JSON or a clear 400 (not JSON) or 422 (JSON of another shape, with
        /// the path of the part that is wrong), never a panic.
        #[test]
        fn any_body_is_read_or_refused_clearly(bytes in proptest::prop_oneof![
            proptest::collection::vec(proptest::prelude::any::<u8>(), 0..64),
            crate::testing::json().prop_map(|v| serde_json::to_vec(&v).unwrap()),
            (crate::testing::json(), 0usize..64).prop_map(|(v, cut)| {
                let mut bytes = serde_json::to_vec(&v).unwrap();
                bytes.truncate(cut);
                bytes
            }),
        ]) {
            match parse_json::<Value>(&bytes) {
                Ok(value) => proptest::prop_assert_eq!(serde_json::from_slice::<Value>(&bytes).ok(), Some(value)),
                Err(error) => {
                    crate::testing::clear_error(error.shared())?;
                    proptest::prop_assert!(matches!(error, ApiError::BadRequest(_)), "{error:?}");
                }
            }
            // A typed body: the same bytes read as a token to issue.
            if let Err(error) = parse_json::<crate::auth::tokens::NewToken>(&bytes) {
                crate::testing::clear_error(error)?;
            }
        }

        /// Any query string is read or a clear 400, and a read aggregate query is checked
        /// against the campaign with every problem named: the path from the browser to
        /// `AggregateQuery::check`.
        #[test]
        fn any_query_string_is_read_or_refused_clearly(
            pairs in proptest::collection::vec((
                proptest::prop_oneof![
                    proptest::sample::select(&["by", "breakdown", "sum", "from", "to", "excel", "other"][..]).prop_map(str::to_owned),
                    ".{0,6}",
                ],
                proptest::prop_oneof![
                    proptest::sample::select(&["district", "h3:6", "h3:10", "h3:11", "connection", "households", "tenant", "comment",
                                               "2026-01-01", "2026-02-30", "2026-01-01T00:00:00Z", "1", "0", "yes", ""][..]).prop_map(str::to_owned),
                    ".{0,12}",
                ],
            ), 0..5),
            staff: bool,
        ) {
            let mut query = String::new();
            for (key, value) in &pairs {
                let encode = |t: &str| t.bytes().map(|b| format!("%{b:02X}")).collect::<String>();
                query.push_str(&format!("{}={}&", encode(key), encode(value)));
            }
            let uri: Uri = format!("/a?{query}").parse().unwrap();
            let campaign = crate::testing::campaign();
            match parse_query::<crate::exports::AggregateQuery>(&uri) {
                Err(error) => crate::testing::clear_error(error)?,
                Ok(aggregate) => match aggregate.check(&campaign, staff) {
                    Err(error) => crate::testing::clear_error(error)?,
                    Ok(request) => {
                        proptest::prop_assert!(staff || (request.from.is_none() && request.to.is_none()));
                    }
                },
            }
            match parse_query::<crate::exports::timeseries::TimeseriesQuery>(&uri) {
                Err(error) => crate::testing::clear_error(error)?,
                Ok(series) => if let Err(error) = series.check(&campaign, staff) {
                    crate::testing::clear_error(error)?;
                },
            }
            match parse_query::<crate::exports::raw::RawQuery>(&uri) {
                Err(error) => crate::testing::clear_error(error)?,
                Ok(raw) => if let Err(error) = raw.check() {
                    crate::testing::clear_error(error)?;
                },
            }
        }
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
            // Found by the property test: a value followed by anything used to be accepted.
            "{} {}",
            "0f",
            "{\"type\": \"Feature\"}]",
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
