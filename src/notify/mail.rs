//! E-mail notices: what each says, in French or English, as plain text and HTML, and the SMTP
//! server they are handed to (`lettre`).

use std::time::Duration;

use lettre::message::header::{ContentType, HeaderName, HeaderValue};
use lettre::message::{Mailbox, MultiPart, SinglePart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::campaigns::{Lang, Localized};

/// Longest an SMTP exchange may take before the attempt counts as failed.
pub const SMTP_TIMEOUT: Duration = Duration::from_secs(30);

/// Where and as whom e-mail is sent.
#[derive(Debug, Clone)]
pub struct MailConfig {
    /// `smtp://[user:password@]host[:port]` (port 25 by default). Plain SMTP, without TLS:
    /// a relay on the same machine or network (the city's MTA) carries it further.
    pub smtp_url: url::Url,
    /// The sender, e.g. `Ville de Nanterre <carte@nanterre.fr>`.
    pub from: Mailbox,
    /// This service's address as citizens reach it, for the links in messages.
    pub public_url: url::Url,
}

impl MailConfig {
    /// Checks the settings (`--smtp-url`, `--mail-from`, `--public-url`).
    pub fn new(smtp_url: &str, from: &str, public_url: &str) -> anyhow::Result<Self> {
        let smtp_url = url::Url::parse(smtp_url)
            .map_err(|e| anyhow::anyhow!("--smtp-url is not a URL: {e}"))?;
        anyhow::ensure!(
            smtp_url.scheme() == "smtp" && smtp_url.host_str().is_some_and(|h| !h.is_empty()),
            "--smtp-url must be smtp://[user:password@]host[:port] (plain SMTP to a relay)"
        );
        let from: Mailbox = from
            .parse()
            .map_err(|e| anyhow::anyhow!("--mail-from is not an address: {e}"))?;
        let public_url = url::Url::parse(public_url.trim_end_matches('/'))
            .map_err(|e| anyhow::anyhow!("--public-url is not a URL: {e}"))?;
        anyhow::ensure!(
            matches!(public_url.scheme(), "http" | "https") && public_url.host_str().is_some(),
            "--public-url must be http(s)://host[:port][/path]"
        );
        Ok(Self {
            smtp_url,
            from,
            public_url,
        })
    }

    /// `path` under the public URL.
    pub fn link(&self, path: &str) -> String {
        format!("{}{path}", self.public_url.as_str().trim_end_matches('/'))
    }
}

/// The SMTP client.
#[derive(Clone)]
pub struct Mailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    /// The settings it was made from.
    pub config: MailConfig,
}

/// Why a message was not accepted.
#[derive(Debug)]
pub struct SendError {
    /// What happened, for the outbox's `last_error`.
    pub message: String,
    /// The server refused for good (5xx): retrying would not help.
    pub permanent: bool,
}

impl Mailer {
    /// A client of `config.smtp_url`.
    pub fn new(config: MailConfig) -> Self {
        let url = &config.smtp_url;
        let host = url.host_str().unwrap_or("localhost").to_owned();
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host)
            .port(url.port().unwrap_or(25))
            .timeout(Some(SMTP_TIMEOUT));
        if !url.username().is_empty() {
            let decode = |s: &str| {
                percent_encoding::percent_decode_str(s)
                    .decode_utf8_lossy()
                    .into_owned()
            };
            builder = builder.credentials(Credentials::new(
                decode(url.username()),
                decode(url.password().unwrap_or_default()),
            ));
        }
        Self {
            transport: builder.build(),
            config,
        }
    }

    /// Hands `message` to the SMTP server; returns once the server accepted it.
    pub async fn send(&self, message: Message) -> Result<(), SendError> {
        self.transport
            .send(message)
            .await
            .map(|_| ())
            .map_err(|e| SendError {
                message: e.to_string(),
                permanent: e.is_permanent(),
            })
    }

    /// The message of notice `key` to `to`, with `unsubscribe` in its headers and body.
    pub fn message(
        &self,
        notice: &Rendered,
        to: &str,
        key: &str,
        unsubscribe: &str,
    ) -> Result<Message, String> {
        let to: Mailbox = to.parse().map_err(|e| format!("bad address: {e}"))?;
        let host = self.config.public_url.host_str().unwrap_or("localhost");
        let digest = Sha256::digest(key.as_bytes());
        let id: String = digest[..16].iter().map(|b| format!("{b:02x}")).collect();
        let header = |name: &'static str, value: String| {
            HeaderValue::new(HeaderName::new_from_ascii_str(name), value)
        };
        Message::builder()
            .from(self.config.from.clone())
            .to(to)
            .subject(notice.subject.clone())
            // Stable across retries: a copy sent again after a crash has the same id.
            .message_id(Some(format!("<{id}@{host}>")))
            .raw_header(header("Content-Language", notice.lang.into()))
            .raw_header(header("List-Unsubscribe", format!("<{unsubscribe}>")))
            .raw_header(header(
                "List-Unsubscribe-Post",
                "List-Unsubscribe=One-Click".into(),
            ))
            .raw_header(header("Auto-Submitted", "auto-generated".into()))
            .raw_header(header("X-Civicmap-Notice", notice.kind.clone()))
            .multipart(
                MultiPart::alternative()
                    .singlepart(
                        SinglePart::builder()
                            .header(ContentType::TEXT_PLAIN)
                            .body(notice.text.clone()),
                    )
                    .singlepart(
                        SinglePart::builder()
                            .header(ContentType::TEXT_HTML)
                            .body(notice.html.clone()),
                    ),
            )
            .map_err(|e| format!("cannot build the message: {e}"))
    }
}

/// A notice written out: subject and bodies, in one language.
#[derive(Debug, Clone, PartialEq)]
pub struct Rendered {
    /// `confirm`, `threshold`, `update` or `closed`.
    pub kind: String,
    /// `fr` or `en`.
    pub lang: &'static str,
    pub subject: String,
    pub text: String,
    pub html: String,
}

/// What a notice is about, as the outbox holds it.
pub struct Notice<'a> {
    /// `confirm`, `threshold`, `update` or `closed`.
    pub kind: &'a str,
    /// Its payload (district and threshold, update...).
    pub payload: &'a Value,
    /// The campaign's title.
    pub title: &'a Localized,
    /// The subscriber's language.
    pub lang: Lang,
    /// The link that confirms (confirmation) or the campaign's page (other notices).
    pub action: &'a str,
    /// The unsubscribe page.
    pub unsubscribe: &'a str,
}

/// Escapes text for HTML.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn pick(lang: Lang, fr: impl Into<String>, en: impl Into<String>) -> String {
    match lang {
        Lang::Fr => fr.into(),
        Lang::En => en.into(),
    }
}

/// Writes notice `n` in its subscriber's language; `None` for a kind or payload it does not
/// know (the row is then given up).
pub fn render(n: &Notice) -> Option<Rendered> {
    let lang = n.lang;
    let title = pick(lang, n.title.fr.clone(), n.title.en.clone());
    let str_of = |v: &Value| v.as_str().map(str::to_owned);
    let (subject, lead, button): (String, Vec<String>, String) = match n.kind {
        "confirm" => (
            pick(
                lang,
                format!("Confirmez votre abonnement : {title}"),
                format!("Confirm your subscription: {title}"),
            ),
            vec![pick(
                lang,
                format!(
                    "Vous avez demandé à être prévenu·e des nouvelles de « {title} ». Confirmez en ouvrant ce lien ; sans confirmation, votre adresse sera effacée dans 7 jours. Si vous n'avez rien demandé, ignorez ce message."
                ),
                format!(
                    "You asked to be told about \"{title}\". Confirm by opening this link; without confirmation your address is deleted within 7 days. If you did not ask, ignore this message."
                ),
            )],
            pick(lang, "Confirmer", "Confirm"),
        ),
        "threshold" => {
            let district = str_of(&n.payload["district"]["name"])?;
            let threshold = n.payload["threshold"].as_i64()?;
            let count = n.payload["count"].as_i64()?;
            let target = n.payload["target"].as_i64()?;
            (
                pick(
                    lang,
                    format!("{district} a atteint {threshold} % de son objectif"),
                    format!("{district} reached {threshold}% of its target"),
                ),
                vec![pick(
                    lang,
                    format!(
                        "« {title} » : le quartier {district} compte {count} contributions pour un objectif de {target}, soit {threshold} % ou plus."
                    ),
                    format!(
                        "\"{title}\": the district {district} has {count} contributions towards a target of {target}, that is {threshold}% or more."
                    ),
                )],
                pick(lang, "Voir la carte", "See the map"),
            )
        }
        "closed" => (
            pick(
                lang,
                format!("La campagne « {title} » est close"),
                format!("The campaign \"{title}\" has closed"),
            ),
            vec![pick(
                lang,
                "La campagne ne reçoit plus de contributions. Merci de votre participation ; ses résultats restent consultables.",
                "The campaign takes no more contributions. Thank you for taking part; its results can still be seen.",
            )],
            pick(lang, "Voir les résultats", "See the results"),
        ),
        "update" => {
            let localized = |v: &Value| match lang {
                Lang::Fr => str_of(&v["fr"]),
                Lang::En => str_of(&v["en"]),
            };
            let heading = localized(&n.payload["title"])?;
            let mut lead = vec![localized(&n.payload["text"]).unwrap_or_default()];
            if let Some(link) = str_of(&n.payload["link"]) {
                lead.push(link);
            }
            (
                pick(
                    lang,
                    format!("{title} : {heading}"),
                    format!("{title}: {heading}"),
                ),
                lead,
                pick(lang, "Voir la campagne", "See the campaign"),
            )
        }
        _ => return None,
    };
    let footer = pick(
        lang,
        "Vous recevez ce message parce que vous suivez cette campagne. Se désabonner :",
        "You receive this message because you follow this campaign. Unsubscribe:",
    );
    let text = format!(
        "{}\n\n{button} : {}\n\n-- \n{footer} {}\n",
        lead.join("\n\n"),
        n.action,
        n.unsubscribe
    );
    let paragraphs: String = lead
        .iter()
        .map(|p| format!("<p>{}</p>\n", escape(p)))
        .collect();
    let html = format!(
        "<!doctype html>\n<html lang=\"{code}\"><head><meta charset=\"utf-8\"><title>{subject_html}</title></head>\n<body>\n{paragraphs}<p><a href=\"{action}\">{button_html}</a></p>\n<hr>\n<p><small>{footer_html} <a href=\"{unsubscribe}\">{unsubscribe_label}</a></small></p>\n</body></html>\n",
        code = lang_code(lang),
        subject_html = escape(&subject),
        action = escape(n.action),
        button_html = escape(&button),
        footer_html = escape(&footer),
        unsubscribe = escape(n.unsubscribe),
        unsubscribe_label = escape(&pick(lang, "se désabonner", "unsubscribe")),
    );
    Some(Rendered {
        kind: n.kind.to_owned(),
        lang: lang_code(lang),
        subject,
        text,
        html,
    })
}

fn lang_code(lang: Lang) -> &'static str {
    match lang {
        Lang::Fr => "fr",
        Lang::En => "en",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn title() -> Localized {
        Localized {
            fr: "Fibre <pour> tous".into(),
            en: "Fibre for all".into(),
        }
    }

    #[test]
    fn a_threshold_notice_is_written_in_the_subscribers_language_and_escaped() {
        let payload = json!({"district": {"code": "w", "name": "Les Fontenelles"},
                             "threshold": 50, "count": 12, "target": 24});
        let title = title();
        let notice = |lang| Notice {
            kind: "threshold",
            payload: &payload,
            title: &title,
            lang,
            action: "https://carte.example/embed/fibre",
            unsubscribe: "https://carte.example/u?token=a&b",
        };
        let fr = render(&notice(Lang::Fr)).unwrap();
        assert_eq!(fr.subject, "Les Fontenelles a atteint 50 % de son objectif");
        assert!(
            fr.text.contains("12 contributions pour un objectif de 24"),
            "{}",
            fr.text
        );
        assert!(fr.html.contains("Fibre &lt;pour&gt; tous"), "{}", fr.html);
        assert!(fr.html.contains("token=a&amp;b"), "{}", fr.html);
        assert!(fr.text.contains("https://carte.example/u?token=a&b"));
        let en = render(&notice(Lang::En)).unwrap();
        assert_eq!(en.subject, "Les Fontenelles reached 50% of its target");
        assert_eq!(en.lang, "en");
    }

    #[test]
    fn every_kind_renders_and_unknown_ones_do_not() {
        let title = title();
        let update = json!({"id": "7", "title": {"fr": "Réunion", "en": "Meeting"},
                            "text": {"fr": "Mardi", "en": "Tuesday"}, "link": "https://x.example/r"});
        for (kind, payload) in [
            ("confirm", json!({})),
            ("closed", json!({})),
            ("update", update),
        ] {
            let n = Notice {
                kind,
                payload: &payload,
                title: &title,
                lang: Lang::En,
                action: "https://a.example/",
                unsubscribe: "https://a.example/u",
            };
            let r = render(&n).unwrap_or_else(|| panic!("{kind}"));
            assert!(r.text.contains("https://a.example/u"), "{kind}");
            assert!(r.html.contains("https://a.example/u"), "{kind}");
        }
        let n = Notice {
            kind: "threshold",
            payload: &json!({}),
            title: &title,
            lang: Lang::Fr,
            action: "",
            unsubscribe: "",
        };
        assert_eq!(render(&n), None);
    }
}
