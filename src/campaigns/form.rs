//! A campaign's form: the few questions it asks, and the checks every answer goes through.
//!
//! The same rules run for the API, the bulk import and (mirrored in TypeScript) the widget.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;

use super::Localized;
use crate::validation::FieldError;

/// Most fields a form may have.
pub const MAX_FIELDS: usize = 50;
/// Longest free-text answer a form may allow.
pub const MAX_TEXT_LENGTH: u32 = 10_000;
/// Largest size of any number answer: sums over millions of answers then stay exact to the
/// unit and far from overflowing, whatever bounds a form sets (or omits).
pub const MAX_NUMBER: f64 = 1e12;
/// Largest integer that a JSON number carries exactly (2^53).
const MAX_SAFE_INTEGER: f64 = 9_007_199_254_740_992.0;

/// The questions of a campaign.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Form {
    /// The fields, in the order they are shown.
    pub fields: Vec<Field>,
}

/// One question.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Field {
    /// The answer's key in a submission's `properties`: lowercase letters, digits, `_`.
    pub key: String,
    /// The question, in French and English.
    pub label: Localized,
    /// An optional hint shown under the question.
    #[serde(default)]
    pub help: Option<Localized>,
    /// Whether an answer must be given. A required boolean must be true (a box to tick,
    /// such as consent).
    #[serde(default)]
    pub required: bool,
    /// Whether the answer may appear in public figures: splits by a choice or yes/no answer,
    /// sums of a whole number between a `min` and a `max`; always as estimates
    /// (`crate::figures`). Free text never.
    #[serde(default)]
    pub public: bool,
    /// The type of answer and its constraints.
    #[serde(flatten)]
    pub kind: FieldKind,
}

/// The type of an answer, with its constraints.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum FieldKind {
    /// Free text of at most `max_length` characters.
    Text {
        /// Most characters allowed.
        max_length: u32,
    },
    /// A number, optionally bounded and whole.
    Number {
        /// Smallest value allowed.
        #[serde(default)]
        min: Option<f64>,
        /// Largest value allowed.
        #[serde(default)]
        max: Option<f64>,
        /// Whether only whole numbers are allowed.
        #[serde(default)]
        integer: bool,
    },
    /// One value out of a list.
    Choice {
        /// The allowed values and their labels.
        options: Vec<ChoiceOption>,
    },
    /// Yes or no.
    Boolean,
}

impl FieldKind {
    /// Whether answers are free text: never public, deleted at the campaign's retention
    /// (`crate::retention`). Exhaustive, so that a new kind must say.
    pub fn is_free_text(&self) -> bool {
        match self {
            FieldKind::Text { .. } => true,
            FieldKind::Number { .. } | FieldKind::Choice { .. } | FieldKind::Boolean => false,
        }
    }

    /// Whether answers fall in a few known values, so that counts can be split by them (an
    /// aggregate's `breakdown`) and may be made public.
    pub fn can_break_down(&self) -> bool {
        match self {
            FieldKind::Choice { .. } | FieldKind::Boolean => true,
            FieldKind::Text { .. } | FieldKind::Number { .. } => false,
        }
    }

    /// Whether answers are numbers that can be added up (an aggregate's `sum`).
    pub fn can_sum(&self) -> bool {
        match self {
            FieldKind::Number { .. } => true,
            FieldKind::Text { .. } | FieldKind::Choice { .. } | FieldKind::Boolean => false,
        }
    }

    /// For a number field that may be public, the range of its answers: whole numbers between
    /// a `min` and a `max` (at most [`MAX_PUBLIC_NUMBER`] away from 0). Its public sums carry
    /// noise in proportion to that range (`crate::figures::budget`), so without both bounds
    /// nothing public can be made of it.
    pub fn public_range(&self) -> Option<(i64, i64)> {
        match self {
            FieldKind::Number {
                min: Some(lo),
                max: Some(hi),
                integer: true,
            } if lo.is_finite()
                && hi.is_finite()
                && lo <= hi
                && lo.abs() <= MAX_PUBLIC_NUMBER
                && hi.abs() <= MAX_PUBLIC_NUMBER =>
            {
                Some((lo.ceil() as i64, hi.floor() as i64))
            }
            _ => None,
        }
    }
}

/// The largest bound a public number field may have (its sums' noise grows with it).
pub const MAX_PUBLIC_NUMBER: f64 = 1_000_000.0;

/// One allowed value of a choice field.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ChoiceOption {
    /// The value stored in answers.
    pub value: String,
    /// What the citizen sees.
    pub label: Localized,
}

fn is_valid_key(key: &str) -> bool {
    let mut chars = key.chars();
    matches!(chars.next(), Some('a'..='z'))
        && key.len() <= 40
        && chars.all(|c| matches!(c, 'a'..='z' | '0'..='9' | '_'))
}

impl Form {
    /// Checks that the form itself is well made (unique keys, sane bounds, options present).
    /// Errors name the field as `form.fields[i]...`.
    pub fn check(&self) -> Result<(), Vec<FieldError>> {
        let mut errors = Vec::new();
        if self.fields.len() > MAX_FIELDS {
            errors.push(FieldError::new(
                "form.fields",
                format!("at most {MAX_FIELDS} fields"),
            ));
        }
        for (i, field) in self.fields.iter().enumerate() {
            let at = |what: &str| format!("form.fields[{i}]{what}");
            if !is_valid_key(&field.key) {
                errors.push(FieldError::new(
                    at(".key"),
                    "must start with a lowercase letter and contain only a-z, 0-9 and _ (at most 40 characters)",
                ));
            }
            if self.fields[..i].iter().any(|f| f.key == field.key) {
                errors.push(FieldError::new(
                    at(".key"),
                    format!("duplicate key `{}`", field.key),
                ));
            }
            if field.public && !field.kind.can_break_down() && field.kind.public_range().is_none() {
                let why = if field.kind.is_free_text() {
                    "free-text answers can never be public"
                } else if field.kind.can_sum() {
                    "a public number field needs whole numbers (`integer`) between a `min` and a `max` (within a million of 0): its public sums carry noise in proportion to that range"
                } else {
                    "only choice, yes/no and bounded whole-number answers can be public"
                };
                errors.push(FieldError::new(at(".public"), why));
            }
            match &field.kind {
                FieldKind::Text { max_length } => {
                    if *max_length == 0 || *max_length > MAX_TEXT_LENGTH {
                        errors.push(FieldError::new(
                            at(".max_length"),
                            format!("must be between 1 and {MAX_TEXT_LENGTH}"),
                        ));
                    }
                }
                FieldKind::Number { min, max, .. } => {
                    if min.is_some_and(|m| !m.is_finite()) || max.is_some_and(|m| !m.is_finite()) {
                        errors.push(FieldError::new(at(""), "min and max must be finite"));
                    } else if let (Some(lo), Some(hi)) = (min, max)
                        && lo > hi
                    {
                        errors.push(FieldError::new(at(".min"), "must not be greater than max"));
                    }
                }
                FieldKind::Choice { options } => {
                    if options.is_empty() {
                        errors.push(FieldError::new(at(".options"), "needs at least one option"));
                    }
                    for (j, option) in options.iter().enumerate() {
                        if option.value.is_empty() || option.value.len() > 100 {
                            errors.push(FieldError::new(
                                at(&format!(".options[{j}].value")),
                                "must be 1 to 100 bytes",
                            ));
                        }
                        if options[..j].iter().any(|o| o.value == option.value) {
                            errors.push(FieldError::new(
                                at(&format!(".options[{j}].value")),
                                format!("duplicate option `{}`", option.value),
                            ));
                        }
                    }
                }
                FieldKind::Boolean => {}
            }
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors)
        }
    }

    /// Checks a submission's answers against the form and returns them normalised (text
    /// trimmed, absent optional answers left out). Every problem is reported, each naming its
    /// field as `properties.KEY`.
    pub fn validate_answers(
        &self,
        answers: &Map<String, Value>,
    ) -> Result<Map<String, Value>, Vec<FieldError>> {
        let mut errors = Vec::new();
        let mut clean = Map::new();
        for key in answers.keys() {
            if !self.fields.iter().any(|f| &f.key == key) {
                let known: Vec<&str> = self.fields.iter().map(|f| f.key.as_str()).collect();
                errors.push(FieldError::new(
                    format!("properties.{key}"),
                    format!(
                        "unknown field; this campaign asks for: {}",
                        known.join(", ")
                    ),
                ));
            }
        }
        for field in &self.fields {
            let at = format!("properties.{}", field.key);
            let value = match answers.get(&field.key) {
                None | Some(Value::Null) => {
                    if field.required {
                        errors.push(FieldError::new(at, "is required"));
                    }
                    continue;
                }
                Some(value) => value,
            };
            match field.check_value(value) {
                Ok(Some(value)) => {
                    clean.insert(field.key.clone(), value);
                }
                Ok(None) if field.required => errors.push(FieldError::new(at, "is required")),
                Ok(None) => {}
                Err(detail) => errors.push(FieldError::new(at, detail)),
            }
        }
        if errors.is_empty() {
            Ok(clean)
        } else {
            Err(errors)
        }
    }
}

impl Field {
    /// The normalised answer, `None` for an empty text, or why the value is refused.
    fn check_value(&self, value: &Value) -> Result<Option<Value>, String> {
        match &self.kind {
            FieldKind::Text { max_length } => {
                let text = value.as_str().ok_or("must be a string")?.trim();
                let length = text.chars().count();
                if length > *max_length as usize {
                    return Err(format!(
                        "must be at most {max_length} characters (got {length})"
                    ));
                }
                if text
                    .chars()
                    .any(|c| c.is_control() && c != '\n' && c != '\t' && c != '\r')
                {
                    return Err("must not contain control characters".to_owned());
                }
                Ok((!text.is_empty()).then(|| Value::String(text.to_owned())))
            }
            FieldKind::Number { min, max, integer } => {
                let number = value
                    .as_f64()
                    .filter(|_| value.is_number())
                    .ok_or("must be a number")?;
                if !number.is_finite() {
                    return Err("must be a finite number".to_owned());
                }
                if number.abs() > MAX_NUMBER {
                    return Err(format!(
                        "must be between -{MAX_NUMBER:e} and {MAX_NUMBER:e}, whatever the form's bounds"
                    ));
                }
                if *integer && (number.fract() != 0.0 || number.abs() > MAX_SAFE_INTEGER) {
                    return Err("must be a whole number".to_owned());
                }
                if let Some(min) = min
                    && number < *min
                {
                    return Err(format!("must be at least {min}"));
                }
                if let Some(max) = max
                    && number > *max
                {
                    return Err(format!("must be at most {max}"));
                }
                Ok(Some(value.clone()))
            }
            FieldKind::Choice { options } => {
                let choice = value
                    .as_str()
                    .ok_or("must be a string naming one of the options")?;
                if options.iter().any(|o| o.value == choice) {
                    Ok(Some(value.clone()))
                } else {
                    let allowed: Vec<&str> = options.iter().map(|o| o.value.as_str()).collect();
                    Err(format!("must be one of: {}", allowed.join(", ")))
                }
            }
            FieldKind::Boolean => match value {
                Value::Bool(false) if self.required => Err("must be checked".to_owned()),
                Value::Bool(_) => Ok(Some(value.clone())),
                _ => Err("must be true or false".to_owned()),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{clear_error, clear_fields, json};
    use proptest::prelude::*;
    use serde_json::json;

    fn form() -> Form {
        serde_json::from_value(json!({"fields": [
            {"key": "households", "type": "number", "label": {"fr": "Foyers", "en": "Households"},
             "required": true, "min": 1, "max": 500, "integer": true},
            {"key": "connection", "type": "choice", "label": {"fr": "Connexion", "en": "Connection"},
             "required": true, "options": [
                {"value": "adsl", "label": {"fr": "ADSL", "en": "ADSL"}},
                {"value": "none", "label": {"fr": "Aucune", "en": "None"}}]},
            {"key": "comment", "type": "text", "label": {"fr": "Commentaire", "en": "Comment"},
             "max_length": 10},
            {"key": "tenant", "type": "boolean", "label": {"fr": "Locataire", "en": "Tenant"}}
        ]}))
        .unwrap()
    }

    fn errors(answers: Value) -> Vec<FieldError> {
        form()
            .validate_answers(answers.as_object().unwrap())
            .unwrap_err()
    }

    #[test]
    fn valid_answers_come_back_normalised() {
        let clean = form()
            .validate_answers(
                json!({"households": 3, "connection": "adsl", "comment": "  hi  ", "tenant": null})
                    .as_object()
                    .unwrap(),
            )
            .unwrap();
        assert_eq!(
            Value::Object(clean),
            json!({"households": 3, "connection": "adsl", "comment": "hi"})
        );
    }

    #[test]
    fn each_kind_of_bad_answer_names_its_field() {
        let cases = [
            (
                json!({"connection": "adsl"}),
                "properties.households",
                "is required",
            ),
            (
                json!({"households": 0, "connection": "adsl"}),
                "properties.households",
                "must be at least 1",
            ),
            (
                json!({"households": 501, "connection": "adsl"}),
                "properties.households",
                "must be at most 500",
            ),
            (
                json!({"households": 2.5, "connection": "adsl"}),
                "properties.households",
                "must be a whole number",
            ),
            (
                json!({"households": "3", "connection": "adsl"}),
                "properties.households",
                "must be a number",
            ),
            (
                json!({"households": 1, "connection": "fibre"}),
                "properties.connection",
                "must be one of: adsl, none",
            ),
            (
                json!({"households": 1, "connection": "adsl", "comment": "12345678901"}),
                "properties.comment",
                "must be at most 10 characters (got 11)",
            ),
            (
                json!({"households": 1, "connection": "adsl", "tenant": "yes"}),
                "properties.tenant",
                "must be true or false",
            ),
            (
                json!({"households": 1, "connection": "adsl", "colour": "red"}),
                "properties.colour",
                "unknown field; this campaign asks for: households, connection, comment, tenant",
            ),
        ];
        for (answers, field, detail) in cases {
            let errors = errors(answers.clone());
            assert_eq!(
                errors,
                vec![FieldError::new(field, detail)],
                "answers: {answers}"
            );
        }
    }

    #[test]
    fn a_required_box_must_be_ticked() {
        let consent: Form = serde_json::from_value(json!({"fields": [
            {"key": "consent", "type": "boolean", "label": {"fr": "J'accepte", "en": "I agree"}, "required": true}
        ]}))
        .unwrap();
        let check = |v: Value| consent.validate_answers(v.as_object().unwrap());
        assert!(check(json!({"consent": true})).is_ok());
        assert_eq!(
            check(json!({"consent": false})).unwrap_err(),
            vec![FieldError::new("properties.consent", "must be checked")]
        );
        assert_eq!(
            check(json!({})).unwrap_err(),
            vec![FieldError::new("properties.consent", "is required")]
        );
    }

    #[test]
    fn all_problems_are_reported_at_once() {
        assert_eq!(errors(json!({"extra": 1})).len(), 3);
    }

    /// A well-made field: a valid key (made unique by its index) of any kind.
    fn field(i: usize) -> impl Strategy<Value = Value> {
        let kind = prop_oneof![
            (1u32..=MAX_TEXT_LENGTH).prop_map(|n| json!({"type": "text", "max_length": n})),
            (
                proptest::option::of(-1e9f64..1e9),
                proptest::option::of(0.0f64..1e9),
                any::<bool>()
            )
                .prop_map(|(min, max, integer)| {
                    let (min, max) = match (min, max) {
                        (Some(lo), Some(hi)) if lo > hi => (Some(hi), Some(lo)),
                        other => other,
                    };
                    json!({"type": "number", "min": min, "max": max, "integer": integer})
                }),
            (
                proptest::collection::btree_set("[^\\u{0}]{1,20}", 1..5),
                any::<bool>()
            )
                .prop_map(|(values, public)| {
                    let options: Vec<Value> = values
                        .into_iter()
                        .map(|v| json!({"value": v, "label": {"fr": v, "en": v}}))
                        .collect();
                    json!({"type": "choice", "options": options, "public": public})
                }),
            any::<bool>().prop_map(|public| json!({"type": "boolean", "public": public})),
        ];
        ("[a-z][a-z0-9_]{0,30}", kind, any::<bool>()).prop_map(move |(key, mut kind, required)| {
            kind["key"] = json!(format!("{key}_{i}"));
            kind["label"] = json!({"fr": "Question", "en": "Question"});
            kind["required"] = json!(required);
            kind
        })
    }

    fn valid_form() -> impl Strategy<Value = Value> {
        (0..MAX_FIELDS).prop_flat_map(|n| {
            (0..n.min(8))
                .map(field)
                .collect::<Vec<_>>()
                .prop_map(|fields| json!({"fields": fields}))
        })
    }

    /// A form that is nearly right: valid fields with one part replaced by anything.
    fn form_like() -> impl Strategy<Value = Value> {
        (valid_form(), word(), json()).prop_map(|(mut form, key, value)| {
            if let Some(first) = form["fields"].get_mut(0) {
                first[key] = value;
            } else {
                form["fields"] = json!([value]);
            }
            form
        })
    }

    fn word() -> impl Strategy<Value = String> {
        proptest::sample::select(
            &[
                "key",
                "type",
                "label",
                "required",
                "public",
                "min",
                "max",
                "integer",
                "max_length",
                "options",
            ][..],
        )
        .prop_map(str::to_owned)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        /// Any JSON sent as a form is read or refused without panicking: refused by the JSON
        /// reader with the path of the part of the wrong shape, or by `check` naming each
        /// field; a form that passes both has unique valid keys.
        #[test]
        fn any_form_is_read_or_refused_clearly(form in prop_oneof![json(), form_like(), valid_form()]) {
            let bytes = serde_json::to_vec(&form).unwrap();
            match crate::http::extract::parse_json::<Form>(&bytes) {
                Err(error) => clear_error(error)?,
                Ok(form) => match form.check() {
                    Err(errors) => clear_fields(&errors)?,
                    Ok(()) => {
                        prop_assert!(form.fields.len() <= MAX_FIELDS);
                        for (i, f) in form.fields.iter().enumerate() {
                            prop_assert!(is_valid_key(&f.key));
                            prop_assert!(form.fields[..i].iter().all(|g| g.key != f.key));
                        }
                    }
                },
            }
        }

        /// A well-made form is accepted, and reads back the same once stored as JSON.
        #[test]
        fn a_valid_form_is_accepted(form in valid_form()) {
            let parsed: Form = serde_json::from_value(form).unwrap();
            prop_assert_eq!(parsed.check(), Ok(()));
            let stored = serde_json::to_value(&parsed).unwrap();
            prop_assert_eq!(serde_json::from_value::<Form>(stored).unwrap(), parsed);
        }

        /// Any answers are checked against a form without panicking; every refusal names the
        /// answer (`properties.KEY`) and says why; accepted answers are the form's own keys.
        #[test]
        fn any_answers_are_checked_clearly(
            answers in proptest::collection::btree_map(
                prop_oneof![Just("other".to_owned()), "[a-z]{1,12}",
                            proptest::sample::select(&["households", "connection", "comment", "tenant"][..]).prop_map(str::to_owned)],
                crate::testing::json(), 0..6),
        ) {
            let answers: Map<String, Value> = answers.into_iter().collect();
            match form().validate_answers(&answers) {
                Ok(clean) => {
                    for key in clean.keys() {
                        prop_assert!(form().fields.iter().any(|f| &f.key == key));
                    }
                }
                Err(errors) => {
                    clear_fields(&errors)?;
                    for e in &errors {
                        prop_assert!(e.field.starts_with("properties."), "{e:?}");
                    }
                }
            }
        }

        /// Valid answers come back unchanged.
        #[test]
        fn valid_answers_are_kept(answers in crate::testing::answers()) {
            prop_assert_eq!(crate::testing::form().validate_answers(&answers), Ok(answers));
        }
    }

    #[test]
    fn a_badly_made_form_is_refused() {
        let bad: Form = serde_json::from_value(json!({"fields": [
            {"key": "Bad Key", "type": "text", "label": {"fr": "a", "en": "a"}, "max_length": 0},
            {"key": "n", "type": "number", "label": {"fr": "a", "en": "a"}, "min": 5, "max": 1},
            {"key": "n", "type": "choice", "label": {"fr": "a", "en": "a"}, "options": []}
        ]}))
        .unwrap();
        let fields: Vec<String> = bad
            .check()
            .unwrap_err()
            .into_iter()
            .map(|e| e.field)
            .collect();
        assert_eq!(
            fields,
            [
                "form.fields[0].key",
                "form.fields[0].max_length",
                "form.fields[1].min",
                "form.fields[2].key",
                "form.fields[2].options"
            ]
        );
        assert!(form().check().is_ok());
    }
}
