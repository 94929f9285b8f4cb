//! The SSRF rule for callback URLs (DESIGN.md §6): "refuse callback URLs
//! that resolve to loopback, private, link-local or metadata addresses
//! unless the operator allows them (checked at subscribe time and at connect
//! time)".
//!
//! At connect time the check lives in the HTTP client's DNS resolver
//! ([`FilteringResolver`]): the addresses checked are the addresses
//! connected to, so DNS rebinding between check and use has no gap. URLs
//! with a literal IP never reach a resolver and are checked by
//! [`check_literal`].

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};

/// Cloud metadata endpoints: refused even when private callbacks are
/// allowed, because no CD endpoint lives there and credentials do.
pub fn is_metadata(ip: IpAddr) -> bool {
    let v4 = match ip {
        IpAddr::V4(v4) => Some(v4),
        IpAddr::V6(v6) => v6.to_ipv4_mapped(),
    };
    match v4 {
        Some(v4) => v4 == Ipv4Addr::new(169, 254, 169, 254) || v4 == Ipv4Addr::new(100, 100, 100, 200),
        None => ip == IpAddr::V6(Ipv6Addr::new(0xfd00, 0x0ec2, 0, 0, 0, 0, 0, 0x0254)),
    }
}

/// Why an address may not be called back; with `allow_private`, only
/// metadata addresses are refused.
pub fn refused(ip: IpAddr, allow_private: bool) -> Option<&'static str> {
    if is_metadata(ip) {
        Some("a cloud metadata address")
    } else if allow_private {
        None
    } else {
        forbidden(ip)
    }
}

/// Why an address may not be called back.
pub fn forbidden(ip: IpAddr) -> Option<&'static str> {
    if is_metadata(ip) {
        return Some("a cloud metadata address");
    }
    match ip {
        IpAddr::V4(v4) => forbidden_v4(v4),
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return forbidden_v4(v4);
            }
            let s = v6.segments();
            // NAT64 (64:ff9b::/96) embeds an IPv4 address.
            if s[0] == 0x64 && s[1] == 0xff9b && s[2..6] == [0, 0, 0, 0] {
                let [a, b] = s[6].to_be_bytes();
                let [c, d] = s[7].to_be_bytes();
                return forbidden_v4(Ipv4Addr::new(a, b, c, d)).or(Some("a NAT64 address"));
            }
            if v6.is_loopback() {
                Some("a loopback address")
            } else if v6.is_unspecified() {
                Some("the unspecified address")
            } else if s[0] & 0xffc0 == 0xfe80 {
                Some("a link-local address")
            } else if s[0] & 0xfe00 == 0xfc00 {
                Some("a unique local (private) address")
            } else if s[0] & 0xffc0 == 0xfec0 {
                Some("a site-local address")
            } else if v6.is_multicast() {
                Some("a multicast address")
            } else if s[0] == 0x2001 && s[1] == 0x0db8 {
                Some("a documentation address")
            } else if v6 == Ipv6Addr::new(0, 0, 0, 0, 0, 0, 0, 0) {
                Some("the unspecified address")
            } else {
                None
            }
        }
    }
}

fn forbidden_v4(ip: Ipv4Addr) -> Option<&'static str> {
    let [a, b, c, _] = ip.octets();
    if ip == Ipv4Addr::new(169, 254, 169, 254) || ip == Ipv4Addr::new(100, 100, 100, 200) {
        Some("a cloud metadata address")
    } else if ip.is_loopback() {
        Some("a loopback address")
    } else if ip.is_private() {
        Some("a private address")
    } else if ip.is_link_local() {
        Some("a link-local address")
    } else if a == 0 {
        Some("an address of 0.0.0.0/8")
    } else if a == 100 && (64..128).contains(&b) {
        Some("a shared (CGNAT) address")
    } else if a == 192 && b == 0 && c == 0 {
        Some("an IETF protocol assignment address")
    } else if a == 198 && (b == 18 || b == 19) {
        Some("a benchmarking address")
    } else if ip.is_documentation() {
        Some("a documentation address")
    } else if ip.is_multicast() {
        Some("a multicast address")
    } else if a >= 240 {
        Some("a reserved or broadcast address")
    } else {
        None
    }
}

/// A refused callback URL.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    /// Not an absolute http(s) URL with a host.
    #[error("callbackUrl {url:?} is not an absolute http or https URL with a host")]
    Invalid {
        /// The URL.
        url: String,
    },
    /// It names or resolves to a forbidden address.
    #[error(
        "callbackUrl {url:?} resolves to {ip}, {why}; the broker refuses such callbacks (metadata addresses always, loopback, private and link-local ones unless started with --allow-private-callbacks)"
    )]
    Address {
        /// The URL.
        url: String,
        /// The address.
        ip: IpAddr,
        /// What kind of address it is.
        why: &'static str,
    },
}

fn host_of(url: &str) -> Result<url::Url, Refused> {
    let parsed = url::Url::parse(url).map_err(|_| Refused::Invalid { url: url.to_owned() })?;
    if !matches!(parsed.scheme(), "http" | "https") || parsed.host().is_none() {
        return Err(Refused::Invalid { url: url.to_owned() });
    }
    Ok(parsed)
}

/// The connect-time check of a URL whose host is a literal IP address,
/// which no resolver sees.
///
/// # Errors
///
/// [`Refused`] for an invalid URL or a forbidden literal address.
pub fn check_literal(url: &str, allow_private: bool) -> Result<(), Refused> {
    let parsed = host_of(url)?;
    let ip = match parsed.host() {
        Some(url::Host::Ipv4(v4)) => IpAddr::V4(v4),
        Some(url::Host::Ipv6(v6)) => IpAddr::V6(v6),
        _ => return Ok(()),
    };
    match refused(ip, allow_private) {
        Some(why) => Err(Refused::Address {
            url: url.to_owned(),
            ip,
            why,
        }),
        None => Ok(()),
    }
}

/// The subscribe-time check: the URL's host, literal or resolved, must not
/// be a forbidden address. A host that does not resolve now is accepted
/// (DNS may not be set up yet); the connect-time check still applies.
///
/// # Errors
///
/// [`Refused`] naming the URL, the address and the rule.
pub async fn check_callback_url(url: &str, allow_private: bool) -> Result<(), Refused> {
    check_literal(url, allow_private)?;
    let parsed = host_of(url)?;
    let Some(url::Host::Domain(domain)) = parsed.host() else {
        return Ok(());
    };
    let port = parsed.port_or_known_default().unwrap_or(443);
    let lookup = tokio::time::timeout(Duration::from_secs(3), tokio::net::lookup_host((domain, port))).await;
    if let Ok(Ok(addrs)) = lookup {
        for addr in addrs {
            if let Some(why) = refused(addr.ip(), allow_private) {
                return Err(Refused::Address {
                    url: url.to_owned(),
                    ip: addr.ip(),
                    why,
                });
            }
        }
    }
    Ok(())
}

/// A DNS resolver for the delivery client that drops forbidden addresses,
/// so a host that resolves only to such addresses cannot be connected to.
#[derive(Debug, Clone, Copy, Default)]
pub struct FilteringResolver {
    /// Allow private addresses (metadata addresses stay refused).
    pub allow_private: bool,
}

impl Resolve for FilteringResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let allow_private = self.allow_private;
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let resolved: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let mut dropped = None;
            let allowed: Vec<SocketAddr> = resolved
                .into_iter()
                .filter(|addr| match refused(addr.ip(), allow_private) {
                    Some(why) => {
                        dropped = Some((addr.ip(), why));
                        false
                    }
                    None => true,
                })
                .collect();
            if allowed.is_empty() {
                let detail = match dropped {
                    Some((ip, why)) => format!("{host} resolves to {ip}, {why}: refused (--allow-private-callbacks)"),
                    None => format!("{host} does not resolve"),
                };
                return Err(detail.into());
            }
            Ok(Box::new(allowed.into_iter()) as Addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forbidden_addresses() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "169.254.1.1",
            "100.64.0.1",
            "0.0.0.0",
            "255.255.255.255",
            "::1",
            "::",
            "fe80::1",
            "fd00:ec2::254",
            "::ffff:127.0.0.1",
            "64:ff9b::a00:1",
        ] {
            assert!(forbidden(ip.parse().unwrap()).is_some(), "{ip} must be refused");
        }
        for ip in ["93.184.215.14", "2606:2800:21f:cb07:6820:80da:af6b:8b2c", "8.8.8.8"] {
            assert_eq!(forbidden(ip.parse().unwrap()), None, "{ip} is public");
        }
    }

    #[test]
    fn literal_urls() {
        assert!(check_literal("https://cd.example.org/hook", false).is_ok());
        let err = check_literal("http://169.254.169.254/latest/meta-data", false).unwrap_err();
        assert!(err.to_string().contains("a cloud metadata address"), "{err}");
        assert!(check_literal("http://[::1]:8080/", false).is_err());
        assert!(matches!(
            check_literal("ftp://x.example/", false),
            Err(Refused::Invalid { .. })
        ));
        // Allowing private callbacks never allows the metadata endpoint.
        assert!(check_literal("http://127.0.0.1:8080/", true).is_ok());
        assert!(check_literal("http://169.254.169.254/", true).is_err());
        assert!(check_literal("http://[::ffff:169.254.169.254]/", true).is_err());
    }

    #[tokio::test]
    async fn localhost_resolves_to_loopback() {
        let err = check_callback_url("http://localhost:9/hook", false).await.unwrap_err();
        assert!(err.to_string().contains("loopback"), "{err}");
        assert!(check_callback_url("http://localhost:9/hook", true).await.is_ok());
    }
}
