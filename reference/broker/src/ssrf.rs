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

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};

/// The IPv4 address an IPv6 address carries, for the spellings that route
/// to it: IPv4-mapped (`::ffff:a.b.c.d`), IPv4-compatible (`::a.b.c.d`,
/// deprecated but still parsed), SIIT IPv4-translated (`::ffff:0:a.b.c.d`,
/// RFC 2765), NAT64 (`64:ff9b::/96`, RFC 6052; `64:ff9b:1::/48`, RFC 8215)
/// and 6to4 (`2002:AABB:CCDD::/48`, RFC 3056). Decoded before any check, so
/// `[::ffff:169.254.169.254]` is the metadata address it reaches.
pub fn embedded_v4(v6: Ipv6Addr) -> Option<Ipv4Addr> {
    let s = v6.segments();
    let tail = || {
        let [a, b] = s[6].to_be_bytes();
        let [c, d] = s[7].to_be_bytes();
        Ipv4Addr::new(a, b, c, d)
    };
    if let Some(v4) = v6.to_ipv4_mapped() {
        Some(v4)
    } else if (s[..6] == [0, 0, 0, 0, 0, 0] && !(s[6] == 0 && s[7] <= 1))
        || s[..6] == [0, 0, 0, 0, 0xffff, 0]
        || (s[0] == 0x64 && s[1] == 0xff9b && (s[2..6] == [0, 0, 0, 0] || s[2] == 1))
    {
        // IPv4-compatible (`::` and `::1` are IPv6's own), SIIT, NAT64.
        Some(tail())
    } else if s[0] == 0x2002 {
        let [a, b] = s[1].to_be_bytes();
        let [c, d] = s[2].to_be_bytes();
        Some(Ipv4Addr::new(a, b, c, d))
    } else {
        None
    }
}

/// Addresses refused even when private callbacks are allowed, because no
/// CD endpoint lives there and cloud credentials do: all IPv4 link-local
/// (169.254.0.0/16, which holds AWS, GCP and Azure IMDS at 169.254.169.254,
/// ECS task metadata at 169.254.170.2, Oracle's at 169.254.0.0/16), Alibaba's
/// 100.100.100.200, Azure's wire server 168.63.129.16, IPv6 link-local
/// (fe80::/10) and AWS's IPv6 IMDS prefix fd00:ec2::/32; also through every
/// IPv4-in-IPv6 spelling of [`embedded_v4`].
pub fn is_metadata(ip: IpAddr) -> bool {
    let v4 = match ip {
        IpAddr::V4(v4) => Some(v4),
        IpAddr::V6(v6) => embedded_v4(v6),
    };
    if let Some(v4) = v4 {
        if v4.is_link_local() || v4 == Ipv4Addr::new(100, 100, 100, 200) || v4 == Ipv4Addr::new(168, 63, 129, 16) {
            return true;
        }
    }
    match ip {
        IpAddr::V4(_) => false,
        IpAddr::V6(v6) => {
            let s = v6.segments();
            s[0] & 0xffc0 == 0xfe80 || (s[0] == 0xfd00 && s[1] == 0x0ec2)
        }
    }
}

/// Why an address may not be called back; with `allow_private`, only
/// metadata addresses are refused.
pub fn refused(ip: IpAddr, allow_private: bool) -> Option<&'static str> {
    if is_metadata(ip) {
        Some("a cloud metadata or link-local address")
    } else if allow_private {
        None
    } else {
        forbidden(ip)
    }
}

/// Why an address may not be called back.
pub fn forbidden(ip: IpAddr) -> Option<&'static str> {
    if is_metadata(ip) {
        return Some("a cloud metadata or link-local address");
    }
    match ip {
        IpAddr::V4(v4) => forbidden_v4(v4),
        IpAddr::V6(v6) => {
            if let Some(why) = embedded_v4(v6).and_then(forbidden_v4) {
                return Some(why);
            }
            let s = v6.segments();
            if v6.is_loopback() {
                Some("a loopback address")
            } else if v6.is_unspecified() {
                Some("the unspecified address")
            } else if s[0] & 0xfe00 == 0xfc00 {
                Some("a unique local (private) address")
            } else if s[0] & 0xffc0 == 0xfec0 {
                Some("a site-local address")
            } else if v6.is_multicast() {
                Some("a multicast address")
            } else if s[0] == 0x2001 && s[1] == 0x0db8 {
                Some("a documentation address")
            } else if s[0] == 0x2001 && s[1] == 0 {
                // Teredo hides its IPv4 server and client: refuse rather than guess.
                Some("a Teredo address")
            } else if s[0] == 0x0100 && s[1..4] == [0, 0, 0] {
                Some("a discard-only address")
            } else {
                None
            }
        }
    }
}

fn forbidden_v4(ip: Ipv4Addr) -> Option<&'static str> {
    let [a, b, c, _] = ip.octets();
    if ip.is_loopback() {
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
    #[error("{url:?} is not an absolute http or https URL with a host")]
    Invalid {
        /// The URL.
        url: String,
    },
    /// Plain `http` to a host that is not a literal loopback or private
    /// address, without `--allow-http-callbacks`.
    #[error(
        "{url:?} is a plain http URL; the broker calls such URLs only when started with --allow-http-callbacks (or, for a literal loopback or private address or localhost, --allow-private-callbacks)"
    )]
    Http {
        /// The URL.
        url: String,
    },
    /// It names or resolves to a forbidden address.
    #[error(
        "{url:?} resolves to {ip}, {why}; the broker refuses such URLs (metadata addresses always, loopback, private and link-local ones unless started with --allow-private-callbacks)"
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

/// Which outbound URLs the operator allows beyond public `https`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Policy {
    /// `--allow-private-callbacks`: loopback and private addresses (never
    /// link-local or metadata ones), and plain http to literal such addresses.
    pub allow_private: bool,
    /// `--allow-http-callbacks`: plain http to any host.
    pub allow_http: bool,
}

/// The scheme rule: `https`, or `http` when the operator allows it — any
/// host with `allow_http`; with only `allow_private`, a literal loopback or
/// private address or `localhost`, whose traffic does not cross the
/// internet.
///
/// # Errors
///
/// [`Refused::Http`] or [`Refused::Invalid`].
pub fn check_scheme(url: &str, policy: Policy) -> Result<(), Refused> {
    let parsed = host_of(url)?;
    if parsed.scheme() == "https" || policy.allow_http {
        return Ok(());
    }
    let local = match parsed.host() {
        Some(url::Host::Ipv4(v4)) => forbidden(IpAddr::V4(v4)).is_some(),
        Some(url::Host::Ipv6(v6)) => forbidden(IpAddr::V6(v6)).is_some(),
        Some(url::Host::Domain(domain)) => domain.eq_ignore_ascii_case("localhost"),
        None => false,
    };
    if policy.allow_private && local {
        Ok(())
    } else {
        Err(Refused::Http { url: url.to_owned() })
    }
}

/// The connect-time check of a stored URL: the scheme rule and, for a
/// literal address, the address rule (a name is checked by the resolver).
///
/// # Errors
///
/// [`Refused`] naming the URL and the rule.
pub fn check_url(url: &str, policy: Policy) -> Result<(), Refused> {
    check_scheme(url, policy)?;
    check_literal(url, policy.allow_private)
}

/// Fixed addresses for host names, consulted before the system resolver
/// (like curl's `--resolve`), by the subscribe-time check and by the
/// filtering resolver alike. Tests use it to make a name resolve to
/// loopback, or to change its answer between subscribe and connect time
/// (DNS rebinding), without touching the machine's resolver. Empty unless
/// set through [`crate::Config::hosts`]; there is no flag for it.
#[derive(Debug, Clone, Default)]
pub struct Hosts(Arc<RwLock<HashMap<String, Vec<IpAddr>>>>);

impl PartialEq for Hosts {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
            || *self.0.read().expect("not poisoned") == *other.0.read().expect("not poisoned")
    }
}

impl Hosts {
    /// Makes `name` resolve to `addresses` from now on (replacing any earlier answer).
    pub fn set(&self, name: &str, addresses: Vec<IpAddr>) {
        self.0
            .write()
            .expect("not poisoned")
            .insert(name.to_ascii_lowercase(), addresses);
    }

    /// The addresses of `host`: the fixed ones, else the system resolver's.
    ///
    /// # Errors
    ///
    /// The system resolver's error.
    pub async fn lookup(&self, host: &str, port: u16) -> std::io::Result<Vec<SocketAddr>> {
        let fixed = self
            .0
            .read()
            .expect("not poisoned")
            .get(&host.to_ascii_lowercase())
            .cloned();
        match fixed {
            Some(addresses) => Ok(addresses.into_iter().map(|ip| SocketAddr::new(ip, port)).collect()),
            None => Ok(tokio::net::lookup_host((host, port)).await?.collect()),
        }
    }
}

/// The subscribe-time check: the URL's host, literal or resolved, must not
/// be a forbidden address. A host that does not resolve now is accepted
/// (DNS may not be set up yet); the connect-time check still applies.
///
/// # Errors
///
/// [`Refused`] naming the URL, the address and the rule.
pub async fn check_callback_url(url: &str, policy: Policy, hosts: &Hosts) -> Result<(), Refused> {
    let allow_private = policy.allow_private;
    check_url(url, policy)?;
    let parsed = host_of(url)?;
    let Some(url::Host::Domain(domain)) = parsed.host() else {
        return Ok(());
    };
    let port = parsed.port_or_known_default().unwrap_or(443);
    let lookup = tokio::time::timeout(Duration::from_secs(3), hosts.lookup(domain, port)).await;
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
#[derive(Debug, Clone, Default)]
pub struct FilteringResolver {
    /// Allow private addresses (metadata addresses stay refused).
    pub allow_private: bool,
    /// Fixed answers consulted before the system resolver.
    pub hosts: Hosts,
}

impl Resolve for FilteringResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let allow_private = self.allow_private;
        let hosts = self.hosts.clone();
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let resolved: Vec<SocketAddr> = hosts.lookup(&host, 0).await?;
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
    fn metadata_stays_refused_when_private_callbacks_are_allowed() {
        for ip in [
            "169.254.169.254",
            "169.254.170.2",
            "169.254.0.1",
            "168.63.129.16",
            "100.100.100.200",
            "fe80::1",
            "febf::1",
            "fd00:ec2::254",
            "fd00:ec2:0:1::1",
            "::ffff:169.254.169.254",
            "::169.254.169.254",
            "::ffff:0:169.254.169.254",
            "64:ff9b::a9fe:a9fe",
            "64:ff9b:1::a9fe:a9fe",
            "2002:a9fe:a9fe::1",
            "::ffff:168.63.129.16",
        ] {
            assert!(refused(ip.parse().unwrap(), true).is_some(), "{ip} must stay refused");
        }
        for ip in ["127.0.0.1", "10.0.0.1", "::1", "fd12::1", "::ffff:10.0.0.1"] {
            assert_eq!(refused(ip.parse().unwrap(), true), None, "{ip} is allowed as private");
        }
    }

    #[test]
    fn ipv4_in_ipv6_spellings_are_decoded() {
        for ip in [
            "::127.0.0.1",
            "::ffff:0:127.0.0.1",
            "::ffff:0:a00:1",
            "64:ff9b::7f00:1",
            "64:ff9b:1::c0a8:1",
            "2002:7f00:1::",
            "2002:c0a8:101::1",
            "::a00:1",
            "::5",
            "2001::1",
        ] {
            assert!(refused(ip.parse().unwrap(), false).is_some(), "{ip} must be refused");
        }
        // Public IPv4 behind the same spellings is public.
        for ip in ["::ffff:8.8.8.8", "64:ff9b::808:808", "2002:808:808::1"] {
            assert_eq!(refused(ip.parse().unwrap(), false), None, "{ip} is public");
        }
    }

    #[test]
    fn plain_http_needs_its_own_flag() {
        let private = Policy {
            allow_private: true,
            allow_http: false,
        };
        assert!(check_scheme("http://127.0.0.1:8080/", private).is_ok());
        assert!(check_scheme("http://[::1]:8080/", private).is_ok());
        assert!(check_scheme("http://localhost:8080/", private).is_ok());
        assert!(check_scheme("http://10.1.2.3/", private).is_ok());
        let err = check_scheme("http://cd.example.org/", private).unwrap_err();
        assert!(err.to_string().contains("--allow-http-callbacks"), "{err}");
        assert!(check_scheme("http://127.0.0.1/", Policy::default()).is_err());
        let http = Policy {
            allow_private: false,
            allow_http: true,
        };
        assert!(check_scheme("http://cd.example.org/", http).is_ok());
        assert!(
            check_url("http://127.0.0.1/", http).is_err(),
            "http does not allow private"
        );
    }

    #[test]
    fn literal_urls() {
        assert!(check_literal("https://cd.example.org/hook", false).is_ok());
        let err = check_literal("http://169.254.169.254/latest/meta-data", false).unwrap_err();
        assert!(err.to_string().contains("a cloud metadata"), "{err}");
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
        let public = Policy::default();
        let private = Policy {
            allow_private: true,
            allow_http: false,
        };
        let err = check_callback_url("https://localhost:9/hook", public, &Hosts::default())
            .await
            .unwrap_err();
        assert!(err.to_string().contains("loopback"), "{err}");
        assert!(
            check_callback_url("http://localhost:9/hook", private, &Hosts::default())
                .await
                .is_ok()
        );
    }
}
