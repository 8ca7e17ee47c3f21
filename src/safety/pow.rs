//! Proof of work: before a submission, the client finds a nonce such that
//! SHA-256(`challenge:nonce`) starts with the campaign's number of zero bits. A few seconds of a
//! phone's time for a citizen; a real cost for a program posting thousands. Nothing third-party,
//! nothing stored about the client.
//!
//! Challenges are stateless: `v2.{campaign id}.{difficulty}.{expiry, Unix seconds}.{random}.{HMAC}`,
//! signed with the server secret, so any instance can check one that another issued, and a
//! proof is worth the difficulty its challenge was issued at (a campaign under pressure asks
//! more than its own setting). Each is usable once: its random part is recorded in
//! `spent_challenges` until it expires.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use sqlx::PgExecutor;
use time::OffsetDateTime;
use utoipa::ToSchema;

use super::secret::ServerSecret;
use crate::validation::FieldError;

/// A campaign's proof-of-work setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProofOfWork {
    /// Leading zero bits required of SHA-256(`challenge:nonce`), 1 to 26 (each bit doubles the
    /// work: 16 is a fraction of a second on a phone, 22 a few seconds).
    pub difficulty: u8,
}

/// Highest difficulty a campaign may ask.
pub const MAX_DIFFICULTY: u8 = 26;

impl ProofOfWork {
    /// Problems with the setting.
    pub fn check(&self) -> Vec<FieldError> {
        if (1..=MAX_DIFFICULTY).contains(&self.difficulty) {
            Vec::new()
        } else {
            vec![FieldError::new(
                "proof_of_work.difficulty",
                format!("must be between 1 and {MAX_DIFFICULTY} (leading zero bits)"),
            )]
        }
    }
}

/// Header carrying `challenge:nonce`.
pub const PROOF_HEADER: &str = "civicmap-proof";

/// How long a challenge may be used.
pub const CHALLENGE_TTL: time::Duration = time::Duration::minutes(10);

/// A challenge as given to the client.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Challenge {
    /// Opaque ASCII text without `:`.
    pub challenge: String,
    /// Leading zero bits required.
    pub difficulty: u8,
    /// When the challenge stops being accepted.
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub expires_at: OffsetDateTime,
}

const MAC_LABEL: &str = "pow-challenge";

/// A new challenge for campaign `campaign_id`, valid until `now` + [`CHALLENGE_TTL`].
pub fn issue(
    secret: &ServerSecret,
    campaign_id: i64,
    difficulty: u8,
    now: OffsetDateTime,
) -> Challenge {
    let expires_at = (now + CHALLENGE_TTL)
        .replace_nanosecond(0)
        .unwrap_or(now + CHALLENGE_TTL);
    let random = URL_SAFE_NO_PAD.encode(rand::random::<[u8; 16]>());
    let payload = format!(
        "v2.{campaign_id}.{difficulty}.{}.{random}",
        expires_at.unix_timestamp()
    );
    let mac = URL_SAFE_NO_PAD.encode(secret.mac(MAC_LABEL, &[payload.as_bytes()]));
    Challenge {
        challenge: format!("{payload}.{mac}"),
        difficulty,
        expires_at,
    }
}

/// Why a proof is refused. Every case means the same for the client: get a new challenge,
/// solve it, send again.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProofError {
    #[error(
        "is required by this campaign: get a challenge with POST /api/v1/campaigns/{0}/challenges, find a decimal nonce such that SHA-256(challenge + \":\" + nonce) starts with the given number of zero bits, and send the header `Civicmap-Proof: <challenge>:<nonce>`"
    )]
    Missing(String),
    #[error("the Civicmap-Proof header must be `<challenge>:<nonce>` with a decimal nonce")]
    Malformed,
    #[error("the challenge was not issued by this server")]
    Forged,
    #[error("the challenge expired at {0}; get a new one")]
    Expired(String),
    #[error("the challenge was issued for another campaign; get one for this campaign")]
    OtherCampaign,
    #[error(
        "SHA-256 of challenge:nonce starts with {found} zero bits; this campaign needs {needed}"
    )]
    Insufficient { found: u32, needed: u8 },
    #[error("this challenge was already used; get a new one for each submission")]
    Spent,
    #[error(
        "is required right now: campaign `{slug}` is receiving more contributions than it can take, so each needs a proof of work of {difficulty} bits: get a challenge with POST /api/v1/campaigns/{slug}/challenges, find a decimal nonce such that SHA-256(challenge + \":\" + nonce) starts with that many zero bits, and send again with the header `Civicmap-Proof: <challenge>:<nonce>`"
    )]
    UnderPressure { slug: String, difficulty: u8 },
}

/// A checked proof, not yet spent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// The challenge's random part: what makes it single-use.
    pub id: String,
    /// When it expires (it may be forgotten then).
    pub expires_at: OffsetDateTime,
    /// The difficulty its challenge was issued at, which the nonce meets.
    pub difficulty: u8,
}

/// Checks the `Civicmap-Proof` header value against campaign `campaign_id`: a challenge of ours
/// issued at `difficulty` bits or more, whose nonce meets the difficulty it was issued at.
pub fn verify(
    secret: &ServerSecret,
    header: &str,
    campaign_id: i64,
    difficulty: u8,
    now: OffsetDateTime,
) -> Result<Verified, ProofError> {
    let (challenge, nonce) = header
        .trim()
        .rsplit_once(':')
        .ok_or(ProofError::Malformed)?;
    if nonce.is_empty() || nonce.len() > 20 || !nonce.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ProofError::Malformed);
    }
    let parts: Vec<&str> = challenge.split('.').collect();
    let [version, campaign, issued_at, expires, random, mac] = parts[..] else {
        return Err(ProofError::Forged);
    };
    let payload = &challenge[..challenge.len() - mac.len() - 1];
    let mac = URL_SAFE_NO_PAD
        .decode(mac)
        .map_err(|_| ProofError::Forged)?;
    if version != "v2" || !secret.verify(MAC_LABEL, &[payload.as_bytes()], &mac) {
        return Err(ProofError::Forged);
    }
    // Signed by us: the fields are ours.
    let expires_at = expires
        .parse::<i64>()
        .ok()
        .and_then(|t| OffsetDateTime::from_unix_timestamp(t).ok())
        .ok_or(ProofError::Forged)?;
    let issued_at: u8 = issued_at.parse().map_err(|_| ProofError::Forged)?;
    if campaign.parse::<i64>().ok() != Some(campaign_id) {
        return Err(ProofError::OtherCampaign);
    }
    if expires_at <= now {
        let at = expires_at
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default();
        return Err(ProofError::Expired(at));
    }
    let found = leading_zero_bits(&Sha256::digest(format!("{challenge}:{nonce}")));
    let needed = issued_at.max(difficulty);
    if found < u32::from(needed) {
        return Err(ProofError::Insufficient { found, needed });
    }
    Ok(Verified {
        id: random.to_owned(),
        expires_at,
        difficulty: issued_at,
    })
}

/// Marks a verified challenge as used; `Ok(Err(ProofError::Spent))` for one used already.
pub async fn spend(
    db: impl PgExecutor<'_>,
    proof: &Verified,
) -> sqlx::Result<Result<(), ProofError>> {
    let inserted = sqlx::query!(
        "INSERT INTO spent_challenges (challenge, expires_at) VALUES ($1, $2)
         ON CONFLICT (challenge) DO NOTHING",
        proof.id,
        proof.expires_at,
    )
    .execute(db)
    .await?
    .rows_affected();
    Ok(if inserted == 0 {
        Err(ProofError::Spent)
    } else {
        Ok(())
    })
}

/// Forgets spent challenges that have expired (they cannot be used again anyway).
pub async fn purge_spent(db: impl PgExecutor<'_>) -> sqlx::Result<u64> {
    Ok(
        sqlx::query!("DELETE FROM spent_challenges WHERE expires_at < now()")
            .execute(db)
            .await?
            .rows_affected(),
    )
}

/// Number of leading zero bits of `bytes`.
pub fn leading_zero_bits(bytes: &[u8]) -> u32 {
    let mut bits = 0;
    for byte in bytes {
        bits += byte.leading_zeros();
        if *byte != 0 {
            break;
        }
    }
    bits
}

#[cfg(test)]
mod tests {
    use super::*;

    fn solve(challenge: &str, difficulty: u8) -> u64 {
        (0..)
            .find(|n| {
                leading_zero_bits(&Sha256::digest(format!("{challenge}:{n}")))
                    >= u32::from(difficulty)
            })
            .unwrap()
    }

    fn now() -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap()
    }

    #[test]
    fn leading_zero_bits_counts_across_bytes() {
        assert_eq!(leading_zero_bits(&[0x80]), 0);
        assert_eq!(leading_zero_bits(&[0x01]), 7);
        assert_eq!(leading_zero_bits(&[0, 0, 0x10, 0xff]), 19);
        assert_eq!(leading_zero_bits(&[0, 0]), 16);
    }

    #[test]
    fn a_solved_challenge_verifies_once_signed_by_us_for_this_campaign() {
        let secret = ServerSecret::from_bytes([7; 32]);
        let issued = issue(&secret, 42, 8, now());
        assert!(!issued.challenge.contains(':'));
        assert!(issued.challenge.is_ascii());
        assert_eq!(issued.expires_at, now() + CHALLENGE_TTL);
        let nonce = solve(&issued.challenge, 8);
        let header = format!("{}:{nonce}", issued.challenge);
        let verified = verify(&secret, &header, 42, 8, now()).unwrap();
        assert_eq!(verified.expires_at, issued.expires_at);
        assert_eq!(verified.difficulty, 8);
        // Enough for less than its challenge's difficulty; for more, only a nonce that meets
        // more (finding one is that much work).
        assert!(verify(&secret, &header, 42, 4, now()).is_ok());
        let just_eight = (0..)
            .find(|n| leading_zero_bits(&Sha256::digest(format!("{}:{n}", issued.challenge))) == 8)
            .unwrap();
        let header = format!("{}:{just_eight}", issued.challenge);
        assert!(verify(&secret, &header, 42, 8, now()).is_ok());
        assert_eq!(
            verify(&secret, &header, 42, 9, now()),
            Err(ProofError::Insufficient {
                found: 8,
                needed: 9
            })
        );
        assert!(issued.challenge.contains(&verified.id));
    }

    #[test]
    fn every_bad_proof_is_refused_with_its_reason() {
        let secret = ServerSecret::from_bytes([7; 32]);
        let issued = issue(&secret, 42, 8, now());
        let nonce = solve(&issued.challenge, 8);
        let good = format!("{}:{nonce}", issued.challenge);
        // Another campaign, too late, another server's secret.
        assert_eq!(
            verify(&secret, &good, 43, 8, now()),
            Err(ProofError::OtherCampaign)
        );
        assert!(matches!(
            verify(&secret, &good, 42, 8, now() + CHALLENGE_TTL),
            Err(ProofError::Expired(_))
        ));
        let other = ServerSecret::from_bytes([8; 32]);
        assert_eq!(verify(&other, &good, 42, 8, now()), Err(ProofError::Forged));
        // A challenge edited to name another campaign or a later expiry.
        let forged = good.replacen("v2.42.", "v2.43.", 1);
        assert_eq!(
            verify(&secret, &forged, 43, 8, now()),
            Err(ProofError::Forged)
        );
        // Not enough work: a nonce whose hash has fewer than 20 zero bits.
        let weak = (0..)
            .find(|n| leading_zero_bits(&Sha256::digest(format!("{}:{n}", issued.challenge))) < 20)
            .unwrap();
        assert!(matches!(
            verify(
                &secret,
                &format!("{}:{weak}", issued.challenge),
                42,
                20,
                now()
            ),
            Err(ProofError::Insufficient { needed: 20, .. })
        ));
        for malformed in [
            issued.challenge.clone(),
            format!("{}:", issued.challenge),
            format!("{}:-1", issued.challenge),
            format!("{}:1e3", issued.challenge),
            format!("{}:{}", issued.challenge, "9".repeat(21)),
        ] {
            assert_eq!(
                verify(&secret, &malformed, 42, 8, now()),
                Err(ProofError::Malformed),
                "{malformed}"
            );
        }
        // A challenge issued at 8 bits, edited to claim 20.
        let raised = good.replacen("v2.42.8.", "v2.42.20.", 1);
        assert_eq!(
            verify(&secret, &raised, 42, 8, now()),
            Err(ProofError::Forged)
        );
        for garbage in [
            "x:1",
            "v2.42:1",
            "v2.42.1.2.3.%%%:1",
            "a.b.c.d.e.f:1",
            "v1.42.1.2.3:1",
        ] {
            assert_eq!(
                verify(&secret, garbage, 42, 8, now()),
                Err(ProofError::Forged),
                "{garbage}"
            );
        }
    }
}
