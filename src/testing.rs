//! What the property tests of the parsers share: arbitrary JSON biased toward the words the
//! parsers look for, a campaign with one field of each kind, valid answers to it, and the check
//! that an error is clear (it names a field and says what is wrong).

use proptest::prelude::*;
use serde_json::{Map, Value, json};

use crate::campaigns::{Campaign, Form};
use crate::http::error::ApiError;
use crate::validation::FieldError;

/// Keys and strings the parsers give meaning to, so that arbitrary JSON reaches past the first
/// check often enough.
const WORDS: &[&str] = &[
    "type",
    "Feature",
    "FeatureCollection",
    "Point",
    "Polygon",
    "MultiPolygon",
    "LineString",
    "geometry",
    "coordinates",
    "properties",
    "features",
    "name",
    "code",
    "fields",
    "key",
    "label",
    "fr",
    "en",
    "number",
    "choice",
    "text",
    "boolean",
    "options",
    "value",
    "min",
    "max",
    "integer",
    "max_length",
    "required",
    "public",
    "households",
    "connection",
    "comment",
    "tenant",
    "adsl",
    "none",
];

fn word() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => proptest::sample::select(WORDS).prop_map(str::to_owned),
        1 => ".{0,10}",
    ]
}

/// Any JSON value: nulls, booleans, integers, finite floats (extreme ones too), strings, and
/// arrays and objects of them a few levels deep.
pub fn json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        (-1000i64..1000).prop_map(Value::from),
        any::<f64>().prop_filter_map("JSON has no NaN or infinity", |x| {
            serde_json::Number::from_f64(x).map(Value::Number)
        }),
        (-200.0f64..200.0).prop_map(|x| json!(x)),
        word().prop_map(Value::String),
    ];
    leaf.prop_recursive(5, 64, 6, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            proptest::collection::btree_map(word(), inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// A form with one field of each kind: `households` (required whole number 1 to 500),
/// `connection` (required choice `adsl` or `none`), `comment` (text of at most 10 characters),
/// `tenant` (yes/no).
pub fn form() -> Form {
    serde_json::from_value(json!({"fields": [
        {"key": "households", "type": "number", "label": {"fr": "Foyers", "en": "Households"},
         "required": true, "min": 1, "max": 500, "integer": true},
        {"key": "connection", "type": "choice", "label": {"fr": "Connexion", "en": "Connection"},
         "required": true, "public": true, "options": [
            {"value": "adsl", "label": {"fr": "ADSL", "en": "ADSL"}},
            {"value": "none", "label": {"fr": "Aucune", "en": "None"}}]},
        {"key": "comment", "type": "text", "label": {"fr": "Commentaire", "en": "Comment"},
         "max_length": 10},
        {"key": "tenant", "type": "boolean", "label": {"fr": "Locataire", "en": "Tenant"}}
    ]}))
    .expect("the test form is well made")
}

/// An open campaign asking [`form`], as read from the database.
pub fn campaign() -> Campaign {
    Campaign::unsaved("test", form())
}

/// Answers to [`form`] that it accepts as they are (already normalised).
pub fn answers() -> impl Strategy<Value = Map<String, Value>> {
    (
        1i64..=500,
        proptest::sample::select(&["adsl", "none"][..]),
        proptest::option::of("[a-zA-Z0-9éà][a-zA-Z0-9éà ,;'\"]{0,8}[a-z]"),
        proptest::option::of(any::<bool>()),
    )
        .prop_map(|(households, connection, comment, tenant)| {
            let mut answers = Map::new();
            answers.insert("households".into(), json!(households));
            answers.insert("connection".into(), json!(connection));
            if let Some(comment) = comment {
                answers.insert("comment".into(), json!(comment));
            }
            if let Some(tenant) = tenant {
                answers.insert("tenant".into(), json!(tenant));
            }
            answers
        })
}

/// A position in range, at any precision.
pub fn lon_lat() -> impl Strategy<Value = (f64, f64)> {
    (-180.0f64..=180.0, -90.0f64..=90.0)
}

/// Whether field errors are clear: at least one, each naming its field and saying what is
/// wrong.
pub fn clear_fields(errors: &[FieldError]) -> Result<(), TestCaseError> {
    prop_assert!(!errors.is_empty(), "an error without any field error");
    for e in errors {
        // Not trimmed: an unknown key made of spaces is named as it was sent.
        prop_assert!(!e.field.is_empty(), "no field named: {e:?}");
        prop_assert!(!e.detail.trim().is_empty(), "no detail: {e:?}");
    }
    Ok(())
}

/// Whether an error is a clear client error once answered over HTTP: a 4xx whose problem
/// document says what is wrong (and, for invalid fields, names each).
pub fn clear_error(error: impl Into<ApiError>) -> Result<(), TestCaseError> {
    let error: ApiError = error.into();
    let problem = error.to_problem();
    prop_assert!(
        (400..500).contains(&problem.status),
        "not a client error: {error:?}"
    );
    prop_assert!(!problem.detail.trim().is_empty(), "no detail: {error:?}");
    if let ApiError::Validation(errors) = &error {
        clear_fields(errors)?;
    }
    Ok(())
}
