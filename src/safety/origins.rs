//! The sites allowed to embed a campaign and to write to it: a campaign's `allowed_origins`
//! (empty: any site, "open").
//!
//! They become the iframe page's `frame-ancestors`, the origins answered by CORS for writes
//! (submissions and challenges), and a 403 for a browser write from any other site (the HTTP
//! side is in [`super::http`]). Reads stay open to every site.

use crate::validation::FieldError;

/// Most origins a campaign may list.
pub const MAX_ALLOWED_ORIGINS: usize = 50;

/// Checks and normalises a campaign's `allowed_origins`: each `scheme://host[:port]` (http or
/// https, no path, query or credentials), lower-cased, default port dropped, without repeats.
pub fn normalize(origins: &[String]) -> Result<Vec<String>, Vec<FieldError>> {
    let mut errors = Vec::new();
    let mut normalized = Vec::new();
    if origins.len() > MAX_ALLOWED_ORIGINS {
        errors.push(FieldError::new(
            "allowed_origins",
            format!("may list at most {MAX_ALLOWED_ORIGINS} origins"),
        ));
    }
    for (i, origin) in origins.iter().enumerate() {
        match normalize_one(origin) {
            Ok(o) if !normalized.contains(&o) => normalized.push(o),
            Ok(_) => {}
            Err(e) => errors.push(FieldError::new(format!("allowed_origins[{i}]"), e)),
        }
    }
    if errors.is_empty() {
        Ok(normalized)
    } else {
        Err(errors)
    }
}

fn normalize_one(origin: &str) -> Result<String, String> {
    let shape = "must be an origin such as https://www.ville.fr (scheme, host and optional port, nothing else)";
    let url = url::Url::parse(origin).map_err(|_| shape.to_owned())?;
    if !matches!(url.scheme(), "http" | "https")
        || url.host_str().is_none()
        || !url.username().is_empty()
        || url.password().is_some()
        || url.path() != "/"
        || url.query().is_some()
        || url.fragment().is_some()
    {
        return Err(shape.to_owned());
    }
    Ok(url.origin().ascii_serialization())
}

/// `frame-ancestors` of a campaign's iframe page: this server and the allowed origins, or
/// any site when the campaign is open to all.
pub fn frame_ancestors(allowed: &[String]) -> String {
    if allowed.is_empty() {
        "*".to_owned()
    } else {
        let mut sources = String::from("'self'");
        for origin in allowed {
            sources.push(' ');
            sources.push_str(origin);
        }
        sources
    }
}

/// Whether a campaign whose allowed origins are `allowed` lets `origin` write: any site when
/// it lists none.
pub fn allows(allowed: &[String], origin: &str) -> bool {
    allowed.is_empty() || allowed.iter().any(|o| o == origin)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_are_normalised_and_anything_else_refused() {
        let ok = normalize(&[
            "https://www.ville.fr".into(),
            "HTTPS://WWW.Ville.FR/".into(),
            "http://localhost:8080".into(),
            "https://ville.fr:443".into(),
        ])
        .unwrap();
        assert_eq!(
            ok,
            [
                "https://www.ville.fr",
                "http://localhost:8080",
                "https://ville.fr"
            ]
        );
        for bad in [
            "ville.fr",
            "https://ville.fr/page",
            "https://ville.fr?x=1",
            "https://user@ville.fr",
            "ftp://ville.fr",
            "*",
            "null",
            "https://ville.fr//",
        ] {
            let errors = normalize(&[bad.into()]).unwrap_err();
            assert_eq!(errors[0].field, "allowed_origins[0]", "{bad}");
        }
    }

    #[test]
    fn frame_ancestors_are_any_site_or_the_list() {
        assert_eq!(frame_ancestors(&[]), "*");
        assert_eq!(
            frame_ancestors(&["https://a.fr".into(), "https://b.fr".into()]),
            "'self' https://a.fr https://b.fr"
        );
    }
}
