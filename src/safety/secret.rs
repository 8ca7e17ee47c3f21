//! The server's secret, shared by every instance over one database: it signs proof-of-work
//! challenges (so that they cannot be forged) and keys the hashes of client addresses (so that
//! a stored hash cannot be turned back into an address by hashing every possible address).

use hmac::{Hmac, Mac};
use sha2::Sha256;
use sqlx::PgPool;
use tokio::sync::OnceCell;

/// A 32-byte secret, loaded once per process.
#[derive(Clone)]
pub struct ServerSecret {
    key: [u8; 32],
}

impl std::fmt::Debug for ServerSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ServerSecret(…)")
    }
}

impl ServerSecret {
    /// A secret from raw bytes (tests).
    pub fn from_bytes(key: [u8; 32]) -> Self {
        Self { key }
    }

    /// HMAC-SHA-256 of `parts` under this secret, for purpose `label` (each purpose gets its
    /// own key space). Parts are length-prefixed so that no two lists give the same input.
    pub fn mac(&self, label: &str, parts: &[&[u8]]) -> [u8; 32] {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.key).expect("HMAC takes any key size");
        mac.update(label.as_bytes());
        for part in parts {
            mac.update(&(part.len() as u64).to_be_bytes());
            mac.update(part);
        }
        mac.finalize().into_bytes().into()
    }

    /// Whether `tag` is the MAC of `parts` for `label`, compared in constant time.
    pub fn verify(&self, label: &str, parts: &[&[u8]], tag: &[u8]) -> bool {
        subtle::ConstantTimeEq::ct_eq(self.mac(label, parts).as_slice(), tag).into()
    }

    /// A campaign's contributor: the keyed hash of a client's address and the campaign, so
    /// that the same client is a different contributor in each campaign. Only a contributor's
    /// first submission counts toward the campaign's k (see `migrations/*_contributors.sql`).
    pub fn contributor(
        &self,
        campaign_id: i64,
        client: &crate::http::client_ip::ClientKey,
    ) -> Vec<u8> {
        self.mac(
            "contributor",
            &[&campaign_id.to_be_bytes(), client.to_string().as_bytes()],
        )
        .to_vec()
    }

    /// The key of a client's or a network's bucket in the shared rate limits
    /// (`rate_limits.key`): a keyed hash of its text (`192.0.2.7`, `192.0.2.0/24`,
    /// `2001:db8::/64`…), of its own kind, so that it matches no other stored hash.
    pub fn rate_limit_key(&self, name: &str) -> Vec<u8> {
        self.mac("rate-limit", &[name.as_bytes()]).to_vec()
    }

    /// The keyed hash of a client's address, as stored on submissions (never the address).
    pub fn client_hash(&self, client: &crate::http::client_ip::ClientKey) -> Vec<u8> {
        self.mac("client", &[client.to_string().as_bytes()])
            .to_vec()
    }
}

/// The secret, read from (or created in) `server_secrets` on first use.
#[derive(Clone, Default)]
pub struct SecretStore {
    cell: std::sync::Arc<OnceCell<ServerSecret>>,
}

impl SecretStore {
    /// The secret, from the database the first time (generated there by the first instance
    /// that needs it; the others read the same row).
    pub async fn get(&self, db: &PgPool) -> sqlx::Result<&ServerSecret> {
        self.cell
            .get_or_try_init(|| async {
                let fresh: [u8; 32] = rand::random();
                sqlx::query!(
                    "INSERT INTO server_secrets (name, secret) VALUES ('hmac', $1)
                     ON CONFLICT (name) DO NOTHING",
                    fresh.as_slice(),
                )
                .execute(db)
                .await?;
                let stored: Vec<u8> =
                    sqlx::query_scalar!("SELECT secret FROM server_secrets WHERE name = 'hmac'")
                        .fetch_one(db)
                        .await?;
                let key: [u8; 32] = stored[..32].try_into().expect("the CHECK keeps 32 bytes");
                Ok(ServerSecret { key })
            })
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn macs_depend_on_the_label_the_parts_and_the_key() {
        let a = ServerSecret::from_bytes([1; 32]);
        let b = ServerSecret::from_bytes([2; 32]);
        let tag = a.mac("x", &[b"ab", b"c"]);
        assert!(a.verify("x", &[b"ab", b"c"], &tag));
        assert!(!a.verify("y", &[b"ab", b"c"], &tag));
        assert!(!a.verify("x", &[b"a", b"bc"], &tag));
        assert!(!b.verify("x", &[b"ab", b"c"], &tag));
    }
}
