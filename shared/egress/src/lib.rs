//! The private-address guard. Every outbound request whose address a user can influence (a
//! custom provider's base URL, a tool's fetch, an MCP server) goes through a client built here:
//!
//! - a literal IP host is checked before the request is sent ([`Guard::check_url`]): the `url`
//!   crate has already normalized every spelling of it (integer, short, hex and octal IPv4,
//!   percent-encoding, IPv4-mapped IPv6), exactly as the connection will use it;
//! - a name is resolved by the guard itself, acting as the client's resolver: every address it
//!   resolves to is checked, and the connection can only go to addresses the guard returned, so
//!   a second, different answer (DNS rebinding) is never used;
//! - redirects are not followed, or each hop is checked like the first ([`Guard::redirects`]);
//! - proxies from the environment are ignored, since a proxy would resolve names itself.

mod address;

use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use url::{Host, Url};

pub use address::is_public;

/// Where user-aimed requests may go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reach {
    /// Any address: a laptop, where a user's own Ollama listens on loopback.
    Anywhere,
    /// Public addresses only: a deployment, where loopback, the VPC and the metadata service
    /// must stay out of reach.
    PublicOnly,
}

/// Why the guard refused a request. The detail is for the log; clients get a fixed sentence.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("only http and https URLs may be fetched")]
    Scheme,
    #[error("the URL has no host")]
    NoHost,
    #[error("{0} is not a public address")]
    Address(IpAddr),
    #[error("{host} resolves to {ip}, which is not a public address")]
    Resolved { host: String, ip: IpAddr },
    #[error("{0} does not resolve to any address")]
    Unresolved(String),
    #[error("too many redirects")]
    TooManyRedirects,
}

type Lookup = Pin<Box<dyn Future<Output = std::io::Result<Vec<IpAddr>>> + Send>>;

/// How names become addresses; the system resolver, or a fixed table in tests.
pub trait Resolver: Send + Sync + 'static {
    fn lookup(&self, host: &str) -> Lookup;
}

/// The operating system's resolver (getaddrinfo, through tokio).
pub struct SystemResolver;

impl Resolver for SystemResolver {
    fn lookup(&self, host: &str) -> Lookup {
        let host = host.to_owned();
        Box::pin(async move {
            let addrs = tokio::net::lookup_host((host.as_str(), 0)).await?;
            Ok(addrs.map(|a| a.ip()).collect())
        })
    }
}

#[derive(Clone)]
pub struct Guard {
    reach: Reach,
    resolver: Arc<dyn Resolver>,
}

impl Guard {
    pub fn new(reach: Reach) -> Self {
        Self::with_resolver(reach, Arc::new(SystemResolver))
    }

    pub fn with_resolver(reach: Reach, resolver: Arc<dyn Resolver>) -> Self {
        Self { reach, resolver }
    }

    pub fn reach(&self) -> Reach {
        self.reach
    }

    /// Checks what can be checked before connecting: the scheme, and a host given as an IP.
    pub fn check_url(&self, url: &Url) -> Result<(), Refusal> {
        if !matches!(url.scheme(), "http" | "https") {
            return Err(Refusal::Scheme);
        }
        let ip = match url.host() {
            None => return Err(Refusal::NoHost),
            Some(Host::Domain(_)) => return Ok(()),
            Some(Host::Ipv4(ip)) => IpAddr::V4(ip),
            Some(Host::Ipv6(ip)) => IpAddr::V6(ip),
        };
        self.check_ip(ip).map_err(|()| Refusal::Address(ip))
    }

    /// [`Guard::check_url`], and for a name, what it resolves to now: early word for a user
    /// who sets a URL. A name that does not resolve yet is let through; every connection is
    /// checked again whatever this said.
    pub async fn check_url_now(&self, url: &Url) -> Result<(), Refusal> {
        self.check_url(url)?;
        match (self.reach, url.host()) {
            (Reach::PublicOnly, Some(Host::Domain(name))) => {
                match self.resolve_checked(name.to_owned()).await {
                    Err(refusal @ Refusal::Resolved { .. }) => Err(refusal),
                    _ => Ok(()),
                }
            }
            _ => Ok(()),
        }
    }

    fn check_ip(&self, ip: IpAddr) -> Result<(), ()> {
        match self.reach {
            Reach::Anywhere => Ok(()),
            Reach::PublicOnly if is_public(ip) => Ok(()),
            Reach::PublicOnly => Err(()),
        }
    }

    /// A client builder whose every connection goes through the guard: its resolver, no
    /// redirects, no proxies. Callers add timeouts, and must [`Guard::check_url`] each URL.
    pub fn client_builder(&self) -> reqwest::ClientBuilder {
        reqwest::Client::builder()
            .dns_resolver(Arc::new(self.clone()))
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
    }

    /// Follows up to `max` redirects, each hop's URL checked like the first (its name is
    /// resolved by the guard when the hop connects).
    pub fn redirects(&self, max: usize) -> reqwest::redirect::Policy {
        let guard = self.clone();
        reqwest::redirect::Policy::custom(move |attempt| {
            if attempt.previous().len() > max {
                return attempt.error(Refusal::TooManyRedirects);
            }
            match guard.check_url(attempt.url()) {
                Ok(()) => attempt.follow(),
                Err(refusal) => attempt.error(refusal),
            }
        })
    }

    async fn resolve_checked(&self, host: String) -> Result<Vec<SocketAddr>, Refusal> {
        let ips = self
            .resolver
            .lookup(&host)
            .await
            .map_err(|_| Refusal::Unresolved(host.clone()))?;
        if ips.is_empty() {
            return Err(Refusal::Unresolved(host));
        }
        // One private answer refuses the name: a mixed answer is how rebinding starts.
        if let Some(ip) = ips.iter().copied().find(|ip| self.check_ip(*ip).is_err()) {
            return Err(Refusal::Resolved { host, ip });
        }
        Ok(ips.into_iter().map(|ip| SocketAddr::new(ip, 0)).collect())
    }
}

impl Resolve for Guard {
    fn resolve(&self, name: Name) -> Resolving {
        let guard = self.clone();
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let addrs = guard.resolve_checked(host).await?;
            Ok(Box::new(addrs.into_iter()) as Addrs)
        })
    }
}

/// The guard's refusal behind a failed request, if that is why it failed.
pub fn refusal_of<'a>(error: &'a (dyn std::error::Error + 'static)) -> Option<&'a Refusal> {
    let mut current = Some(error);
    while let Some(e) = current {
        if let Some(refusal) = e.downcast_ref::<Refusal>() {
            return Some(refusal);
        }
        current = e.source();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    struct Table(HashMap<&'static str, Vec<IpAddr>>);

    impl Resolver for Table {
        fn lookup(&self, host: &str) -> Lookup {
            let found = self.0.get(host).cloned();
            Box::pin(async move { found.ok_or_else(|| std::io::ErrorKind::NotFound.into()) })
        }
    }

    fn guard(reach: Reach) -> Guard {
        let table = Table(HashMap::from([
            ("public.test", vec!["93.184.216.34".parse().unwrap()]),
            ("inside.test", vec!["10.0.0.7".parse().unwrap()]),
            (
                "mixed.test",
                vec![
                    "93.184.216.34".parse().unwrap(),
                    "127.0.0.1".parse().unwrap(),
                ],
            ),
            (
                "mapped.test",
                vec!["::ffff:169.254.169.254".parse().unwrap()],
            ),
            ("empty.test", vec![]),
        ]));
        Guard::with_resolver(reach, Arc::new(table))
    }

    #[test]
    fn every_spelling_of_a_private_literal_is_refused() {
        let g = guard(Reach::PublicOnly);
        for url in [
            "http://127.0.0.1/",
            "http://127.1/",
            "http://2130706433/",
            "http://0x7f000001/",
            "http://0x7f.0.0.1/",
            "http://017700000001/",
            "http://0177.0.0.1/",
            "http://0/",
            "http://0.0.0.0:8080/",
            "http://%31%32%37.0.0.1/",
            "http://[::1]/",
            "http://[::ffff:127.0.0.1]/",
            "http://[::ffff:7f00:1]/",
            "http://[0:0:0:0:0:ffff:a9fe:a9fe]/latest/meta-data/",
            "http://169.254.169.254/latest/meta-data/",
            "http://[fd00:ec2::254]/",
            "http://100.100.100.200/",
            "https://10.1.2.3:8443/v1",
        ] {
            let parsed = Url::parse(url).unwrap();
            assert!(
                matches!(g.check_url(&parsed), Err(Refusal::Address(_))),
                "{url} -> {:?}",
                parsed.host()
            );
        }
        assert_eq!(
            g.check_url(&Url::parse("file:///etc/passwd").unwrap()),
            Err(Refusal::Scheme)
        );
        assert_eq!(
            g.check_url(&Url::parse("gopher://example.com/").unwrap()),
            Err(Refusal::Scheme)
        );
        assert!(
            g.check_url(&Url::parse("https://api.openai.com/v1").unwrap())
                .is_ok()
        );
        assert!(
            g.check_url(&Url::parse("https://8.8.8.8/").unwrap())
                .is_ok()
        );
        let anywhere = guard(Reach::Anywhere);
        assert!(
            anywhere
                .check_url(&Url::parse("http://127.0.0.1:11434/v1").unwrap())
                .is_ok()
        );
    }

    #[tokio::test]
    async fn names_are_judged_by_every_address_they_resolve_to() {
        let g = guard(Reach::PublicOnly);
        assert!(g.resolve_checked("public.test".into()).await.is_ok());
        for host in ["inside.test", "mixed.test", "mapped.test"] {
            assert!(
                matches!(
                    g.resolve_checked(host.into()).await,
                    Err(Refusal::Resolved { .. })
                ),
                "{host}"
            );
        }
        for host in ["empty.test", "nowhere.test"] {
            assert!(matches!(
                g.resolve_checked(host.into()).await,
                Err(Refusal::Unresolved(_))
            ));
        }
        assert!(
            guard(Reach::Anywhere)
                .resolve_checked("inside.test".into())
                .await
                .is_ok()
        );
    }

    #[tokio::test]
    async fn a_refused_connection_is_recognised_behind_the_client_error() {
        // The system resolver, and a name every machine resolves to loopback.
        let g = Guard::new(Reach::PublicOnly);
        let client = g.client_builder().build().unwrap();
        let error = client.get("http://localhost:9/").send().await.unwrap_err();
        assert!(
            matches!(refusal_of(&error), Some(Refusal::Resolved { .. })),
            "{error:?}"
        );
    }
}
