//! E-mail notices: what each says, in French or English, as plain text and HTML, and the SMTP
//! server they are handed to (`lettre`).

use std::time::Duration;

use lettre::message::header::{ContentType, HeaderName, HeaderValue};
use lettre::message::{Mailbox, MultiPart, SinglePart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::campaigns::{Lang, Localized};

/// Longest an SMTP exchange may take before the attempt counts as failed.
pub const SMTP_TIMEOUT: Duration = Duration::from_secs(30);

/// How the connection to the SMTP server is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Security {
    /// `smtp://host` (port 25): plain SMTP, for a relay on the same machine or network (the
    /// city's MTA), which carries the message further.
    Plain,
    /// `smtp://host?tls=required` (port 587): STARTTLS, required; no message or password goes
    /// out if the server does not offer it or its certificate is not trusted.
    StartTls,
    /// `smtps://host` (port 465): TLS from the first byte.
    Tls,
}

/// Where and as whom e-mail is sent.
#[derive(Debug, Clone)]
pub struct MailConfig {
    /// `smtp://[user:password@]host[:port][?tls=required]` or `smtps://…` (see [`Security`]).
    pub smtp_url: url::Url,
    /// How the connection is protected, from the URL.
    pub security: Security,
    /// A certificate authority to trust besides the system's (`--ca-file`, PEM): the
    /// city's own, for a relay whose certificate it issued.
    pub root_pem: Option<Vec<u8>>,
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
        let usage = "--smtp-url must be smtp://[user:password@]host[:port] (plain SMTP to a \
                     relay), smtp://…?tls=required (STARTTLS) or smtps://… (TLS)";
        anyhow::ensure!(
            smtp_url.host_str().is_some_and(|h| !h.is_empty()),
            "{usage}"
        );
        let mut tls = None;
        for (key, value) in smtp_url.query_pairs() {
            anyhow::ensure!(
                key == "tls" && tls.is_none(),
                "--smtp-url: unknown parameter `{key}`; {usage}"
            );
            tls = Some(value.into_owned());
        }
        let security = match (smtp_url.scheme(), tls.as_deref()) {
            ("smtp", None) => Security::Plain,
            ("smtp", Some("required")) => Security::StartTls,
            ("smtps", None) => Security::Tls,
            ("smtp", Some(other)) => {
                anyhow::bail!("--smtp-url: tls={other} is not known (only tls=required)")
            }
            _ => anyhow::bail!("{usage}"),
        };
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
            security,
            root_pem: None,
            from,
            public_url,
        })
    }

    /// Trusts the certificate authority in `pem` too (`--ca-file`).
    pub fn trusting(mut self, pem: Vec<u8>) -> anyhow::Result<Self> {
        // lettre reads a file without any certificate as an empty list: say so instead.
        anyhow::ensure!(
            pem.windows(27).any(|w| w == b"-----BEGIN CERTIFICATE-----"),
            "--ca-file holds no PEM certificate (-----BEGIN CERTIFICATE-----)"
        );
        Certificate::from_pem(&pem)
            .map_err(|e| anyhow::anyhow!("--ca-file is not a PEM certificate: {e}"))?;
        self.root_pem = Some(pem);
        // A certificate that does not parse fails here, not in the sender.
        self.tls()
            .map_err(|e| anyhow::anyhow!("--ca-file cannot be used: {e}"))?;
        Ok(self)
    }

    /// The server's port: the URL's, else the usual one for its security.
    pub fn port(&self) -> u16 {
        self.smtp_url.port().unwrap_or(match self.security {
            Security::Plain => 25,
            Security::StartTls => 587,
            Security::Tls => 465,
        })
    }

    /// lettre's TLS settings: the server's certificate checked against the system's
    /// authorities (and `root_pem`) for the URL's host name.
    fn tls(&self) -> anyhow::Result<Tls> {
        if self.security == Security::Plain {
            return Ok(Tls::None);
        }
        let host = self.smtp_url.host_str().unwrap_or_default();
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let mut parameters = TlsParameters::builder(host.to_owned());
        if let Some(pem) = &self.root_pem {
            parameters = parameters.add_root_certificate(Certificate::from_pem(pem)?);
        }
        let parameters = parameters.build_rustls()?;
        Ok(match self.security {
            Security::StartTls => Tls::Required(parameters),
            _ => Tls::Wrapper(parameters),
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
    /// A client of `config.smtp_url`. Fails only if its TLS settings cannot be made (a
    /// certificate that [`MailConfig::trusting`] did not check).
    pub fn new(config: MailConfig) -> anyhow::Result<Self> {
        let url = &config.smtp_url;
        let host = url.host_str().unwrap_or("localhost").to_owned();
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host)
            .port(config.port())
            .tls(config.tls()?)
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
        Ok(Self {
            transport: builder.build(),
            config,
        })
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
            {
                let mut lead = vec![pick(
                    lang,
                    format!(
                        "Vous avez demandé à être prévenu·e des nouvelles de « {title} ». Confirmez en ouvrant ce lien ; sans confirmation, votre adresse sera effacée dans 7 jours. Si vous n'avez rien demandé, ignorez ce message."
                    ),
                    format!(
                        "You asked to be told about \"{title}\". Confirm by opening this link; without confirmation your address is deleted within 7 days. If you did not ask, ignore this message."
                    ),
                )];
                // Other requests of the same mailbox, sent together (one message an hour).
                for other in n.payload["others"].as_array().into_iter().flatten() {
                    let link = str_of(&other["link"])?;
                    let what = match str_of(&other["district"]) {
                        Some(d) => pick(lang, format!("Quartier {d}"), format!("District {d}")),
                        None => pick(lang, "Toute la campagne", "The whole campaign"),
                    };
                    lead.push(pick(
                        lang,
                        format!("Autre demande pour cette adresse ({what}) : {link}"),
                        format!("Another request for this address ({what}): {link}"),
                    ));
                }
                lead
            },
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
    fn the_smtp_url_says_how_the_connection_is_protected_and_bad_ones_are_named() {
        let config = |url: &str| MailConfig::new(url, "carte@ville.test", "https://carte.test");
        for (url, security, port) in [
            ("smtp://relay.ville.internal", Security::Plain, 25),
            (
                "smtp://u:p@relay.ville.internal?tls=required",
                Security::StartTls,
                587,
            ),
            (
                "smtp://relay.ville.internal:2525?tls=required",
                Security::StartTls,
                2525,
            ),
            ("smtps://mail.ville.fr", Security::Tls, 465),
        ] {
            let config = config(url).unwrap();
            assert_eq!((config.security, config.port()), (security, port), "{url}");
            Mailer::new(config).unwrap();
        }
        for (url, says) in [
            ("smtp://relay?tls=maybe", "tls=maybe is not known"),
            ("smtp://relay?timeout=3", "unknown parameter `timeout`"),
            ("smtps://relay?tls=required", "smtps://"),
            ("http://relay", "--smtp-url must be"),
            ("smtp://", "--smtp-url must be"),
        ] {
            let error = config(url).unwrap_err().to_string();
            assert!(error.contains(says), "{url}: {error}");
        }
        let error = config("smtps://relay")
            .unwrap()
            .trusting(b"not a certificate".to_vec())
            .unwrap_err()
            .to_string();
        assert!(error.contains("--ca-file"), "{error}");
        let garbled = b"-----BEGIN CERTIFICATE-----\nbm90IGRlcg==\n-----END CERTIFICATE-----\n";
        let error = config("smtps://relay")
            .unwrap()
            .trusting(garbled.to_vec())
            .unwrap_err()
            .to_string();
        assert!(error.contains("--ca-file"), "{error}");
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
