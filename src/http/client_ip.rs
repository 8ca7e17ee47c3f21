//! Who is asking: the client's IP address, from the TCP peer or, only when the server is told
//! to trust a reverse proxy, from the header that proxy sets.

use std::net::{IpAddr, Ipv6Addr, SocketAddr};

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::{HeaderMap, HeaderName, request::Parts};
use ipnet::IpNet;

use super::AppState;

/// Where the client's address comes from.
#[derive(Debug, Clone, Default)]
pub struct ClientIpConfig {
    /// The header a trusted reverse proxy sets (`X-Forwarded-For`, `X-Real-IP`...); `None`: the
    /// TCP peer is the client.
    pub trusted_header: Option<HeaderName>,
    /// Peers whose header is believed; empty: none (a header is never believed from a peer
    /// that is not listed, so an attacker cannot choose their own address).
    pub trusted_proxies: Vec<IpNet>,
}

impl ClientIpConfig {
    /// The client's address for a request from `peer` with `headers`.
    ///
    /// The header is read only when one is configured and `peer` is a listed proxy; its
    /// right-most entry is the one the nearest proxy wrote (entries to its left come from the
    /// client and may be forged). A missing or unreadable header falls back to the peer.
    pub fn client_ip(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        let Some(name) = &self.trusted_header else {
            return peer;
        };
        let peer = canonical(peer);
        if !self.trusted_proxies.iter().any(|n| n.contains(&peer)) {
            return peer;
        }
        headers
            .get_all(name)
            .iter()
            .next_back()
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.rsplit(',').next())
            .and_then(parse_entry)
            .map(canonical)
            .unwrap_or(peer)
    }

    /// The client's address for a request (unspecified when served without connection info).
    pub fn of_request(&self, parts: &Parts) -> IpAddr {
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0.ip())
            .unwrap_or(IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED));
        self.client_ip(peer, &parts.headers)
    }
}

impl ClientIpConfig {
    /// Whether the request came over HTTPS: only a trusted proxy (a peer listed in
    /// `trusted_proxies`) can say so, with `X-Forwarded-Proto: https` (its right-most entry);
    /// civicmap itself serves plain HTTP.
    pub fn forwarded_https(&self, parts: &Parts) -> bool {
        let Some(peer) = parts.extensions.get::<ConnectInfo<SocketAddr>>() else {
            return false;
        };
        let peer = canonical(peer.0.ip());
        self.trusted_proxies.iter().any(|n| n.contains(&peer))
            && parts
                .headers
                .get_all("x-forwarded-proto")
                .iter()
                .next_back()
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.rsplit(',').next())
                .is_some_and(|proto| proto.trim().eq_ignore_ascii_case("https"))
    }
}

/// Whether the request came over HTTPS, as [`ClientIpConfig::forwarded_https`] tells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Https(pub bool);

impl FromRequestParts<AppState> for Https {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        Ok(Https(state.config.client_ip.forwarded_https(parts)))
    }
}

/// The client's address of a request, as [`ClientIpConfig::client_ip`] tells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientAddr(pub IpAddr);

impl FromRequestParts<AppState> for ClientAddr {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        Ok(ClientAddr(state.config.client_ip.of_request(parts)))
    }
}

/// `1.2.3.4`, `1.2.3.4:5678`, `2001:db8::1`, `[2001:db8::1]:443`.
fn parse_entry(entry: &str) -> Option<IpAddr> {
    let entry = entry.trim();
    entry
        .parse::<IpAddr>()
        .ok()
        .or_else(|| entry.parse::<SocketAddr>().ok().map(|s| s.ip()))
}

/// IPv4-mapped IPv6 addresses (`::ffff:1.2.3.4`) as the IPv4 address they are.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// What identifies one client for rate limits and duplicates: its IPv4 address, or the /64
/// network of its IPv6 address (one household or phone gets a whole /64).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ClientKey(IpAddr);

impl From<IpAddr> for ClientKey {
    fn from(ip: IpAddr) -> Self {
        match canonical(ip) {
            IpAddr::V6(v6) => {
                let bits = u128::from(v6) & !((1u128 << 64) - 1);
                ClientKey(IpAddr::V6(Ipv6Addr::from(bits)))
            }
            v4 => ClientKey(v4),
        }
    }
}

/// A network a client belongs to, for the limits that one owner of many addresses cannot
/// spread thin: the client itself, and the prefixes an operator or a proxy pool hands out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Network {
    /// The client's own key (IPv4 address or IPv6 /64).
    Client,
    /// Its IPv4 /24.
    V4Slash24,
    /// Its IPv6 /56 (what many providers give one customer).
    V6Slash56,
    /// Its IPv6 /48 (a site, or a rented block).
    V6Slash48,
}

impl Network {
    /// The label of the bucket scope (`client`, `24`, `56`, `48`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Client => "client",
            Self::V4Slash24 => "24",
            Self::V6Slash56 => "56",
            Self::V6Slash48 => "48",
        }
    }
}

impl ClientKey {
    /// The networks of this client, narrowest first, each with its text (`192.0.2.7`,
    /// `192.0.2.0/24`, `2001:db8:1:2::/64`, `2001:db8:1::/56`, `2001:db8:1::/48`).
    pub fn networks(&self) -> Vec<(Network, String)> {
        match self.0 {
            IpAddr::V4(v4) => {
                let [a, b, c, _] = v4.octets();
                vec![
                    (Network::Client, self.to_string()),
                    (Network::V4Slash24, format!("{a}.{b}.{c}.0/24")),
                ]
            }
            IpAddr::V6(v6) => {
                let bits = u128::from(v6);
                let prefix = |len: u32| Ipv6Addr::from(bits & !((1u128 << (128 - len)) - 1));
                vec![
                    (Network::Client, self.to_string()),
                    (Network::V6Slash56, format!("{}/56", prefix(56))),
                    (Network::V6Slash48, format!("{}/48", prefix(48))),
                ]
            }
        }
    }
}

impl std::fmt::Display for ClientKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            IpAddr::V6(v6) => write!(f, "{v6}/64"),
            v4 => write!(f, "{v4}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(
                HeaderName::from_bytes(name.as_bytes()).unwrap(),
                value.parse().unwrap(),
            );
        }
        map
    }

    const PEER: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, 2));

    #[test]
    fn without_a_trusted_header_the_peer_is_the_client() {
        let config = ClientIpConfig::default();
        let h = headers(&[("x-forwarded-for", "203.0.113.9")]);
        assert_eq!(config.client_ip(PEER, &h), PEER);
    }

    #[test]
    fn the_right_most_forwarded_entry_is_the_client() {
        let config = ClientIpConfig {
            trusted_header: Some(HeaderName::from_static("x-forwarded-for")),
            trusted_proxies: vec!["10.0.0.0/8".parse().unwrap()],
        };
        let h = headers(&[("x-forwarded-for", "6.6.6.6, 203.0.113.9")]);
        assert_eq!(
            config.client_ip(PEER, &h),
            "203.0.113.9".parse::<IpAddr>().unwrap()
        );
        let h = headers(&[
            ("x-forwarded-for", "6.6.6.6"),
            ("x-forwarded-for", "[2001:db8::5]:443"),
        ]);
        assert_eq!(
            config.client_ip(PEER, &h),
            "2001:db8::5".parse::<IpAddr>().unwrap()
        );
        // Missing or garbage: the peer.
        assert_eq!(config.client_ip(PEER, &headers(&[])), PEER);
        let h = headers(&[("x-forwarded-for", "unknown")]);
        assert_eq!(config.client_ip(PEER, &h), PEER);
    }

    #[test]
    fn the_header_of_an_untrusted_peer_is_ignored() {
        let config = ClientIpConfig {
            trusted_header: Some(HeaderName::from_static("x-real-ip")),
            trusted_proxies: vec!["10.0.0.0/24".parse().unwrap()],
        };
        let h = headers(&[("x-real-ip", "203.0.113.9")]);
        assert_eq!(
            config.client_ip(PEER, &h),
            "203.0.113.9".parse::<IpAddr>().unwrap()
        );
        let outsider: IpAddr = "192.0.2.1".parse().unwrap();
        assert_eq!(config.client_ip(outsider, &h), outsider);
    }

    #[test]
    fn a_header_without_listed_proxies_is_never_believed() {
        let config = ClientIpConfig {
            trusted_header: Some(HeaderName::from_static("x-forwarded-for")),
            trusted_proxies: Vec::new(),
        };
        let h = headers(&[("x-forwarded-for", "203.0.113.9")]);
        assert_eq!(config.client_ip(PEER, &h), PEER);
    }

    fn ip() -> impl proptest::strategy::Strategy<Value = IpAddr> {
        use proptest::prelude::*;
        prop_oneof![
            any::<[u8; 4]>().prop_map(IpAddr::from),
            any::<[u8; 16]>().prop_map(IpAddr::from),
            any::<[u8; 4]>().prop_map(|b| IpAddr::V6(std::net::Ipv4Addr::from(b).to_ipv6_mapped())),
        ]
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(1024))]

        /// Every way a proxy writes an address is read back: bare, with a port, IPv6 in
        /// brackets with a port, with spaces around.
        #[test]
        fn every_written_address_is_read_back(ip in ip(), port: u16, spaces in "[ \t]{0,2}") {
            proptest::prop_assert_eq!(parse_entry(&format!("{spaces}{ip}{spaces}")), Some(ip));
            let with_port = SocketAddr::new(ip, port).to_string();
            proptest::prop_assert_eq!(parse_entry(&with_port), Some(ip));
        }

        /// Whatever a trusted proxy's header holds, the client is the address in its
        /// right-most entry (IPv4-mapped addresses as IPv4), or the proxy itself: never a panic.
        #[test]
        fn any_header_gives_an_address(value in proptest::prop_oneof![
            "[ -~]{0,40}",
            "([0-9a-f:.\\[\\] ]{0,20},){0,3}[0-9a-f:.\\[\\] ]{0,20}",
        ]) {
            let config = ClientIpConfig {
                trusted_header: Some(HeaderName::from_static("x-forwarded-for")),
                trusted_proxies: vec!["10.0.0.0/8".parse().unwrap()],
            };
            let client = config.client_ip(PEER, &headers(&[("x-forwarded-for", &value)]));
            let last = value.rsplit(',').next().unwrap_or_default();
            match parse_entry(last) {
                Some(ip) => proptest::prop_assert_eq!(client, canonical(ip)),
                None => proptest::prop_assert_eq!(client, PEER),
            }
        }
    }

    #[test]
    fn ipv6_clients_are_grouped_by_64_bit_prefix() {
        let a = ClientKey::from("2001:db8:1:2:aaaa::1".parse::<IpAddr>().unwrap());
        let b = ClientKey::from("2001:db8:1:2:bbbb::2".parse::<IpAddr>().unwrap());
        let c = ClientKey::from("2001:db8:1:3::1".parse::<IpAddr>().unwrap());
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert_eq!(a.to_string(), "2001:db8:1:2::/64");
        let mapped = ClientKey::from("::ffff:192.0.2.7".parse::<IpAddr>().unwrap());
        assert_eq!(mapped.to_string(), "192.0.2.7");
    }

    #[test]
    fn a_client_belongs_to_its_prefixes() {
        let v4 = ClientKey::from("192.0.2.7".parse::<IpAddr>().unwrap());
        let names: Vec<String> = v4.networks().into_iter().map(|(_, n)| n).collect();
        assert_eq!(names, ["192.0.2.7", "192.0.2.0/24"]);
        let v6 = ClientKey::from("2001:db8:1:2ff:aaaa::1".parse::<IpAddr>().unwrap());
        let names: Vec<String> = v6.networks().into_iter().map(|(_, n)| n).collect();
        assert_eq!(
            names,
            [
                "2001:db8:1:2ff::/64",
                "2001:db8:1:200::/56",
                "2001:db8:1::/48"
            ]
        );
    }
}
