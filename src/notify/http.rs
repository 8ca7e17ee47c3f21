//! The HTTP side of notices: citizens follow a campaign or district (double opt-in) and leave
//! it in one click; admins register webhooks.
//!
//! The citizens' routes are write routes (rate limits, CORS and origin guard of
//! `safety::http`). `POST …/subscriptions` answers the same whatever the address's state (new,
//! waiting, confirmed), so it tells nobody whether an address follows the campaign. Links in
//! messages open a page whose button POSTs (a link scanner's GET changes nothing); the
//! unsubscribe URL also takes the one-click POST of RFC 8058 from mail clients.

use axum::Json;
use axum::extract::{Extension, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::UtoipaMethodRouterExt;
use utoipa_axum::routes;

use super::webhooks::{self, Webhook, WebhookInput};
use super::{Purpose, mail::escape};
use crate::auth::http::{Admin, Authorized};
use crate::campaigns::{Lang, Localized, Status};
use crate::http::AppState;
use crate::http::caching::Caching::Private;
use crate::http::error::{ApiError, ApiResult, Problem};
use crate::http::extract::{JsonBody, PathParams, QueryParams};
use crate::http::routes::{ADMIN, Access::Public, Routes};
use crate::safety::ResolvedCampaign;

/// Citizens' routes (write routes): follow, confirm, unsubscribe.
pub fn routes() -> Routes {
    Routes::new()
        .add(
            Public,
            Private,
            routes!(subscribe).layer(axum::extract::DefaultBodyLimit::max(MAX_SUBSCRIPTION_BYTES)),
        )
        .add(Public, Private, routes!(confirm_page, confirm))
        .add(Public, Private, routes!(unsubscribe_page, unsubscribe))
}

/// Largest body of a subscription.
pub const MAX_SUBSCRIPTION_BYTES: usize = 4096;

/// Staff routes: a campaign's webhooks.
pub fn admin_routes() -> Routes {
    Routes::new()
        .add(ADMIN, Private, routes!(list_webhooks, create_webhook))
        .add(ADMIN, Private, routes!(delete_webhook))
}

/// A request to follow a campaign, or one of its districts.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SubscriptionInput {
    /// The address to send notices to; it gets a confirmation link first.
    pub email: String,
    /// A district's code: notices when it passes 25, 50, 75 and 100 % of its target, besides
    /// the campaign's updates and closing. Without it: the campaign's updates and closing.
    pub district: Option<String>,
    /// The notices' language (the campaign's default language without it).
    pub lang: Option<Lang>,
}

/// The answer to a subscription, the same whatever the address's state.
#[derive(Debug, Serialize, ToSchema)]
pub struct SubscriptionReceipt {
    /// What happens next, in French and English.
    pub detail: Localized,
}

/// Follows campaign `slug` (or one district): a confirmation link is sent to the address, and
/// only confirmed addresses get notices.
#[utoipa::path(post, path = "/api/v1/campaigns/{slug}/subscriptions", tag = "public",
    params(
        ("slug" = String, Path, description = "Campaign name"),
        ("Civicmap-Honeypot" = Option<String>, Header, description = "The widget's hidden `website` field; must be empty"),
        ("Civicmap-Proof" = Option<String>, Header, description = "`<challenge>:<nonce>`, required by campaigns with `proof_of_work` (see POST …/challenges)"),
    ),
    request_body = SubscriptionInput,
    responses(
        (status = 202, description = "If the address can receive notices, a confirmation link is on its way (the same answer whether or not the address already follows the campaign)", body = SubscriptionReceipt),
        (status = 400, description = "The body is not valid JSON", body = Problem),
        (status = 403, description = "Sent by a page of a site the campaign does not allow", body = Problem),
        (status = 404, description = "No such public campaign", body = Problem),
        (status = 409, description = "The campaign is closed, or this server sends no e-mail", body = Problem),
        (status = 413, description = "Body over 4 KiB", body = Problem),
        (status = 422, description = "Invalid address, district or language, each naming its field; a missing or bad proof of work (field `proof_of_work`): asked by campaigns with `proof_of_work`, and of every subscription once the campaign (or the recipient's domain) has as many unconfirmed subscriptions this hour as it takes without one", body = Problem),
        (status = 429, description = "Too many requests from this client or its network; see Retry-After", body = Problem),
        (status = 503, description = "Database unavailable; retry after Retry-After seconds", body = Problem),
    ))]
pub async fn subscribe(
    State(state): State<AppState>,
    PathParams(_slug): PathParams<String>,
    Extension(ResolvedCampaign(campaign)): Extension<ResolvedCampaign>,
    headers: HeaderMap,
    JsonBody(input): JsonBody<SubscriptionInput>,
) -> ApiResult<Response> {
    if !state.config.email_notices {
        return Err(ApiError::Conflict(
            "this server sends no e-mail (no --smtp-url): notices cannot be followed".into(),
        ));
    }
    if campaign.status == Status::Closed {
        return Err(ApiError::Conflict(format!(
            "campaign `{}` is closed: there is nothing more to follow",
            campaign.slug
        )));
    }
    crate::safety::http::check_form_signals(0, &headers)?;
    let mut errors = Vec::new();
    let email = super::parse_email(&input.email);
    if email.is_none() {
        errors.push(crate::validation::FieldError::new(
            "email",
            "must be an e-mail address such as nom@exemple.fr",
        ));
    }
    if let Some(code) = &input.district {
        let known = sqlx::query_scalar!(
            "SELECT id FROM districts WHERE campaign_id = $1 AND code = $2",
            campaign.id,
            code
        )
        .fetch_optional(&state.db)
        .await?;
        if known.is_none() {
            errors.push(crate::validation::FieldError::new(
                "district",
                format!("is not a district of campaign `{}`", campaign.slug),
            ));
        }
    }
    let (Some(email), true) = (email, errors.is_empty()) else {
        return Err(ApiError::Validation(errors));
    };
    let lang = input.lang.unwrap_or(campaign.default_lang);
    // A campaign that asks a proof of work of its submissions asks it of subscriptions too;
    // once the hour's unconfirmed subscriptions reach their cap, every subscription needs one
    // (the campaign's, or the difficulty `POST …/challenges` issues when it asks none).
    let own = campaign.proof_of_work.map(|p| p.difficulty);
    let needed = own.unwrap_or(crate::safety::limits::PRESSURE_BASE);
    let now = time::OffsetDateTime::now_utc();
    let proven = match own {
        Some(difficulty) => {
            crate::safety::http::check_proof(&state, &headers, &campaign, difficulty, now).await?;
            true
        }
        None if headers.contains_key(crate::safety::pow::PROOF_HEADER) => {
            match crate::safety::http::check_proof(&state, &headers, &campaign, needed, now).await {
                Ok(_) => true,
                Err(ApiError::ProofOfWork(_)) => false,
                Err(other) => return Err(other),
            }
        }
        None => false,
    };
    if let Err(capped) = super::subscribe(
        &state.db,
        campaign.id,
        &email,
        lang,
        input.district.as_deref(),
        state.config.unconfirmed_per_hour,
        proven,
    )
    .await?
    {
        return Err(ApiError::ProofOfWork(format!(
            "is required right now: {capped}; get a challenge with POST /api/v1/campaigns/{slug}/challenges, find a decimal nonce such that SHA-256(challenge + \":\" + nonce) starts with {needed} zero bits, and send again with the header `Civicmap-Proof: <challenge>:<nonce>`",
            slug = campaign.slug
        )));
    }
    Ok((
        StatusCode::ACCEPTED,
        Json(SubscriptionReceipt {
            detail: Localized {
                fr: "Si cette adresse peut recevoir nos messages, un lien de confirmation vient d'y être envoyé. Ouvrez-le pour recevoir les nouvelles.".into(),
                en: "If this address can receive our messages, a confirmation link was just sent to it. Open it to receive the news.".into(),
            },
        }),
    )
        .into_response())
}

/// The token of a link in a message.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct TokenQuery {
    /// The token from the link.
    token: String,
}

/// The subscription named by `token` for `purpose`, in campaign `campaign_id`; 404 for a
/// token that is not genuine (or of another campaign).
async fn subscription_of(
    state: &AppState,
    campaign_id: i64,
    purpose: Purpose,
    token: &str,
) -> ApiResult<(uuid::Uuid, Option<(Lang, bool)>)> {
    let invalid = || {
        ApiError::NotFound(
            "this link is not valid: copy the whole link from the message (ce lien n'est pas valide : copiez le lien entier depuis le message)"
                .into(),
        )
    };
    let secret = state.secret.get(&state.db).await?;
    let id = super::check_token(secret, purpose, token).ok_or_else(invalid)?;
    match super::subscription(&state.db, id).await? {
        Some((campaign, lang, confirmed)) if campaign == campaign_id => {
            Ok((id, Some((lang, confirmed))))
        }
        Some(_) => Err(invalid()),
        None => Ok((id, None)),
    }
}

/// A small page in `lang`: a heading, a paragraph, and a button that POSTs, if any.
fn page(lang: Lang, heading: &str, text: &str, button: Option<&str>) -> Response {
    let form = button.map_or(String::new(), |label| {
        format!(
            "<form method=\"post\"><button type=\"submit\">{}</button></form>\n",
            escape(label)
        )
    });
    let code = match lang {
        Lang::Fr => "fr",
        Lang::En => "en",
    };
    let html = format!(
        "<!doctype html>\n<html lang=\"{code}\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{h}</title></head>\n<body>\n<main>\n<h1>{h}</h1>\n<p>{t}</p>\n{form}</main>\n</body></html>\n",
        h = escape(heading),
        t = escape(text),
    );
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (
                header::CONTENT_SECURITY_POLICY,
                "default-src 'none'; form-action 'self'; frame-ancestors 'none'",
            ),
        ],
        html,
    )
        .into_response()
}

fn says(lang: Lang, fr: &'static str, en: &'static str) -> &'static str {
    match lang {
        Lang::Fr => fr,
        Lang::En => en,
    }
}

/// The page a confirmation link opens: a button that confirms (nothing is changed by opening
/// it, so a mail scanner following links confirms nothing).
#[utoipa::path(get, path = "/api/v1/campaigns/{slug}/subscriptions/confirm", tag = "public",
    params(("slug" = String, Path, description = "Campaign name"), TokenQuery),
    responses(
        (status = 200, description = "A page with the button that confirms", content_type = "text/html", body = String),
        (status = 400, description = "No token in the query", body = Problem),
        (status = 404, description = "No such campaign, or a token that is not genuine", body = Problem),
        (status = 503, description = "Database unavailable", body = Problem),
    ))]
pub async fn confirm_page(
    State(state): State<AppState>,
    PathParams(_slug): PathParams<String>,
    Extension(ResolvedCampaign(campaign)): Extension<ResolvedCampaign>,
    QueryParams(query): QueryParams<TokenQuery>,
) -> ApiResult<Response> {
    let (_, found) = subscription_of(&state, campaign.id, Purpose::Confirm, &query.token).await?;
    Ok(match found {
        Some((lang, false)) => page(
            lang,
            says(lang, "Confirmer l'abonnement", "Confirm your subscription"),
            says(
                lang,
                "Vous recevrez les nouvelles de cette campagne par e-mail, et pourrez vous désabonner depuis chaque message.",
                "You will receive this campaign's news by e-mail, and can unsubscribe from every message.",
            ),
            Some(says(lang, "Confirmer", "Confirm")),
        ),
        Some((lang, true)) => confirmed_page(lang),
        None => gone_page(campaign.default_lang),
    })
}

fn confirmed_page(lang: Lang) -> Response {
    page(
        lang,
        says(lang, "Abonnement confirmé", "Subscription confirmed"),
        says(
            lang,
            "Merci : vous recevrez les nouvelles de cette campagne.",
            "Thank you: you will receive this campaign's news.",
        ),
        None,
    )
}

fn gone_page(lang: Lang) -> Response {
    page(
        lang,
        says(lang, "Aucun abonnement", "No subscription"),
        says(
            lang,
            "Cette adresse ne suit pas (ou plus) cette campagne.",
            "This address does not follow this campaign (any more).",
        ),
        None,
    )
}

/// Confirms a subscription (the page's button).
#[utoipa::path(post, path = "/api/v1/campaigns/{slug}/subscriptions/confirm", tag = "public",
    params(("slug" = String, Path, description = "Campaign name"), TokenQuery),
    responses(
        (status = 200, description = "Confirmed (or already confirmed); a page saying so", content_type = "text/html", body = String),
        (status = 400, description = "No token in the query", body = Problem),
        (status = 403, description = "Sent by a page of a site the campaign does not allow", body = Problem),
        (status = 404, description = "No such campaign, or a token that is not genuine", body = Problem),
        (status = 429, description = "Too many requests; see Retry-After", body = Problem),
        (status = 503, description = "Database unavailable", body = Problem),
    ))]
pub async fn confirm(
    State(state): State<AppState>,
    PathParams(_slug): PathParams<String>,
    Extension(ResolvedCampaign(campaign)): Extension<ResolvedCampaign>,
    QueryParams(query): QueryParams<TokenQuery>,
) -> ApiResult<Response> {
    let (id, found) = subscription_of(&state, campaign.id, Purpose::Confirm, &query.token).await?;
    Ok(match found {
        Some((lang, _)) if super::confirm(&state.db, id).await? => confirmed_page(lang),
        _ => gone_page(campaign.default_lang),
    })
}

/// The page an unsubscribe link opens: a button that unsubscribes.
#[utoipa::path(get, path = "/api/v1/campaigns/{slug}/subscriptions/unsubscribe", tag = "public",
    params(("slug" = String, Path, description = "Campaign name"), TokenQuery),
    responses(
        (status = 200, description = "A page with the button that unsubscribes", content_type = "text/html", body = String),
        (status = 400, description = "No token in the query", body = Problem),
        (status = 404, description = "No such campaign, or a token that is not genuine", body = Problem),
        (status = 503, description = "Database unavailable", body = Problem),
    ))]
pub async fn unsubscribe_page(
    State(state): State<AppState>,
    PathParams(_slug): PathParams<String>,
    Extension(ResolvedCampaign(campaign)): Extension<ResolvedCampaign>,
    QueryParams(query): QueryParams<TokenQuery>,
) -> ApiResult<Response> {
    let (_, found) =
        subscription_of(&state, campaign.id, Purpose::Unsubscribe, &query.token).await?;
    Ok(match found {
        Some((lang, _)) => page(
            lang,
            says(lang, "Se désabonner", "Unsubscribe"),
            says(
                lang,
                "Vous ne recevrez plus de nouvelles de cette campagne, et votre adresse sera effacée.",
                "You will receive no more news of this campaign, and your address will be deleted.",
            ),
            Some(says(lang, "Se désabonner", "Unsubscribe")),
        ),
        None => gone_page(campaign.default_lang),
    })
}

/// Unsubscribes and deletes the address: the page's button, or a mail client's one-click
/// POST (`List-Unsubscribe=One-Click`, RFC 8058). Doing it twice is not an error.
#[utoipa::path(post, path = "/api/v1/campaigns/{slug}/subscriptions/unsubscribe", tag = "public",
    params(("slug" = String, Path, description = "Campaign name"), TokenQuery),
    responses(
        (status = 200, description = "Unsubscribed and deleted (or already gone); a page saying so", content_type = "text/html", body = String),
        (status = 400, description = "No token in the query", body = Problem),
        (status = 403, description = "Sent by a page of a site the campaign does not allow", body = Problem),
        (status = 404, description = "No such campaign, or a token that is not genuine", body = Problem),
        (status = 429, description = "Too many requests; see Retry-After", body = Problem),
        (status = 503, description = "Database unavailable", body = Problem),
    ))]
pub async fn unsubscribe(
    State(state): State<AppState>,
    PathParams(_slug): PathParams<String>,
    Extension(ResolvedCampaign(campaign)): Extension<ResolvedCampaign>,
    QueryParams(query): QueryParams<TokenQuery>,
) -> ApiResult<Response> {
    let (id, found) =
        subscription_of(&state, campaign.id, Purpose::Unsubscribe, &query.token).await?;
    let lang = found.map_or(campaign.default_lang, |(lang, _)| lang);
    super::unsubscribe(&state.db, id).await?;
    Ok(page(
        lang,
        says(lang, "Désabonnement fait", "Unsubscribed"),
        says(
            lang,
            "Vous ne recevrez plus de nouvelles de cette campagne ; votre adresse est effacée.",
            "You will receive no more news of this campaign; your address is deleted.",
        ),
        None,
    ))
}

/// The webhooks of campaign `slug`, without their secrets.
#[utoipa::path(get, path = "/api/v1/admin/campaigns/{slug}/webhooks", tag = "admin",
    security(("bearer" = [])),
    params(("slug" = String, Path, description = "Campaign name")),
    responses(
        (status = 200, description = "The campaign's endpoints", body = [Webhook]),
        (status = 404, description = "No such campaign", body = Problem),
    ))]
pub async fn list_webhooks(
    State(state): State<AppState>,
    PathParams(slug): PathParams<String>,
) -> ApiResult<Json<Vec<Webhook>>> {
    let campaign = crate::campaigns::get(&state.db, &slug).await?;
    Ok(Json(webhooks::list(&state.db, campaign.id).await?))
}

/// Registers an endpoint of the city's systems for campaign `slug`. Its signing secret is in
/// this answer only (given, or made here).
#[utoipa::path(post, path = "/api/v1/admin/campaigns/{slug}/webhooks", tag = "admin",
    security(("bearer" = [])),
    params(("slug" = String, Path, description = "Campaign name")),
    request_body = WebhookInput,
    responses(
        (status = 201, description = "Registered; `secret` is shown this once", body = Webhook),
        (status = 400, description = "The body is not valid JSON", body = Problem),
        (status = 404, description = "No such campaign", body = Problem),
        (status = 422, description = "Invalid URL (http or https only), events or secret, each naming its field", body = Problem),
    ))]
pub async fn create_webhook(
    admin: Authorized<Admin>,
    State(state): State<AppState>,
    PathParams(slug): PathParams<String>,
    JsonBody(input): JsonBody<WebhookInput>,
) -> ApiResult<Response> {
    let campaign = crate::campaigns::get(&state.db, &slug).await?;
    let url = webhooks::check(&input).map_err(ApiError::Validation)?;
    let created = webhooks::create(&state.db, campaign.id, &url, &input).await?;
    crate::audit::record(
        &state.db,
        crate::audit::Entry {
            actor: crate::audit::Actor::Staff(&admin.0),
            action: "webhook.create",
            campaign_id: Some(campaign.id),
            subject: Some(created.id.to_string()),
            reason: None,
            details: serde_json::json!({"url": created.url, "events": created.events,
                                        "internal": created.internal}),
        },
    )
    .await?;
    Ok((StatusCode::CREATED, Json(created)).into_response())
}

/// Deletes an endpoint and the events it had not received yet.
#[utoipa::path(delete, path = "/api/v1/admin/campaigns/{slug}/webhooks/{id}", tag = "admin",
    security(("bearer" = [])),
    params(("slug" = String, Path, description = "Campaign name"), ("id" = i64, Path, description = "The endpoint's id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 400, description = "The id is not a number", body = Problem),
        (status = 404, description = "No such campaign or endpoint", body = Problem),
    ))]
pub async fn delete_webhook(
    admin: Authorized<Admin>,
    State(state): State<AppState>,
    PathParams((slug, id)): PathParams<(String, i64)>,
) -> ApiResult<StatusCode> {
    let campaign = crate::campaigns::get(&state.db, &slug).await?;
    if webhooks::delete(&state.db, campaign.id, id).await? {
        crate::audit::record(
            &state.db,
            crate::audit::Entry {
                actor: crate::audit::Actor::Staff(&admin.0),
                action: "webhook.delete",
                campaign_id: Some(campaign.id),
                subject: Some(id.to_string()),
                reason: None,
                details: serde_json::json!({}),
            },
        )
        .await?;
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::NotFound(format!(
            "campaign `{slug}` has no webhook {id}"
        )))
    }
}
