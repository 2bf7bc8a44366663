//! The one thing a network tool may ask of the host: GET a URL on a granted host, through the
//! core's private-address guard, redirects followed by hand so each hop is checked for the
//! grant and by the guard like the first, the body cut at a limit, the whole fetch under a
//! deadline. A refused host or address ends the call with that failure; anything else the
//! network does (a timeout, a 404, a reset) is an answer the tool reads.

use std::time::Duration;

use bestchat_egress::{Guard, refusal_of};
use serde_json::{Value, json};
use url::Url;

use crate::manifest::host_allowed;

/// Why a fetch ended the call.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FetchRefusal {
    #[error("{0} is not among the tool's allowed hosts")]
    HostNotAllowed(String),
    #[error("{0}")]
    BlockedAddress(String),
    #[error("the tool made more than {0} fetches")]
    TooManyCalls(u32),
}

#[derive(Debug, Clone)]
pub struct FetchSettings {
    pub max_bytes: u64,
    pub timeout: Duration,
    pub max_redirects: u32,
    pub max_calls: u32,
}

impl FetchSettings {
    /// The deployment's fetch limits.
    pub fn within(ceilings: &crate::Ceilings) -> Self {
        Self {
            max_bytes: ceilings.fetch_max_bytes,
            timeout: ceilings.fetch_timeout,
            max_redirects: ceilings.fetch_max_redirects,
            max_calls: ceilings.fetch_max_calls,
        }
    }
}

pub struct Fetcher {
    client: reqwest::Client,
    guard: Guard,
    pub settings: FetchSettings,
}

impl Fetcher {
    pub fn new(guard: Guard, settings: FetchSettings) -> Result<Self, reqwest::Error> {
        let client = guard
            .client_builder()
            .connect_timeout(settings.timeout)
            .user_agent(concat!("BestChat-tools/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Self {
            client,
            guard,
            settings,
        })
    }

    /// The answer the tool reads (JSON), or the refusal that ends the call.
    pub async fn get(&self, hosts: &[String], url: &str) -> Result<Value, FetchRefusal> {
        match tokio::time::timeout(self.settings.timeout, self.follow(hosts, url)).await {
            Ok(answer) => answer,
            Err(_) => Ok(json!({ "error": "the fetch timed out" })),
        }
    }

    async fn follow(&self, hosts: &[String], url: &str) -> Result<Value, FetchRefusal> {
        let Ok(mut url) = Url::parse(url) else {
            return Ok(json!({ "error": "not a valid URL" }));
        };
        for _ in 0..=self.settings.max_redirects {
            self.check(hosts, &url)?;
            let response = match self.client.get(url.clone()).send().await {
                Ok(response) => response,
                Err(e) => {
                    if let Some(refusal) = refusal_of(&e) {
                        return Err(FetchRefusal::BlockedAddress(refusal.to_string()));
                    }
                    tracing::info!(%url, error = %e, "tool fetch failed");
                    return Ok(json!({ "error": "could not connect" }));
                }
            };
            let location = response
                .headers()
                .get(reqwest::header::LOCATION)
                .and_then(|v| v.to_str().ok());
            match (response.status().is_redirection(), location) {
                (true, Some(location)) => match url.join(location) {
                    Ok(next) => url = next,
                    Err(_) => {
                        return Ok(json!({ "error": "the redirect's location is not a URL" }));
                    }
                },
                _ => return Ok(self.read(response).await),
            }
        }
        Ok(json!({ "error": "too many redirects" }))
    }

    /// The grant first (a host the tool may not name), then the guard (an address nobody may
    /// reach); the guard checks again at connection, after resolving.
    fn check(&self, hosts: &[String], url: &Url) -> Result<(), FetchRefusal> {
        let host = url.host_str().unwrap_or_default();
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        if !host_allowed(hosts, bare) {
            return Err(FetchRefusal::HostNotAllowed(host.to_owned()));
        }
        self.guard
            .check_url(url)
            .map_err(|refusal| FetchRefusal::BlockedAddress(refusal.to_string()))
    }

    async fn read(&self, mut response: reqwest::Response) -> Value {
        let status = response.status().as_u16();
        let content_type = response
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let limit = usize::try_from(self.settings.max_bytes).unwrap_or(usize::MAX);
        let mut body = Vec::new();
        let mut truncated = false;
        loop {
            match response.chunk().await {
                Ok(Some(chunk)) => {
                    let room = limit - body.len();
                    if chunk.len() > room {
                        body.extend_from_slice(&chunk[..room]);
                        truncated = true;
                        break;
                    }
                    body.extend_from_slice(&chunk);
                }
                Ok(None) => break,
                Err(_) => return json!({ "error": "the connection failed while reading" }),
            }
        }
        json!({
            "status": status,
            "content_type": content_type,
            "body": String::from_utf8_lossy(&body),
            "truncated": truncated,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bestchat_egress::Reach;

    fn fetcher() -> Fetcher {
        let settings = FetchSettings {
            max_bytes: 1024,
            timeout: Duration::from_secs(2),
            max_redirects: 2,
            max_calls: 2,
        };
        Fetcher::new(Guard::new(Reach::PublicOnly), settings).unwrap()
    }

    #[test]
    fn a_host_outside_the_grant_is_refused_before_the_guard() {
        let f = fetcher();
        let hosts = vec![
            "example.com".to_owned(),
            "127.0.0.1".to_owned(),
            "::1".to_owned(),
        ];
        let refused = |u: &str| f.check(&hosts, &Url::parse(u).unwrap());
        assert_eq!(
            refused("https://evil.example/x"),
            Err(FetchRefusal::HostNotAllowed("evil.example".into()))
        );
        assert!(refused("https://example.com/x").is_ok());
        // Granted, but private: the guard refuses whatever the grant says.
        for private in [
            "http://127.0.0.1/",
            "http://[::1]/",
            "http://2130706433/",
            "http://0x7f.1/",
        ] {
            assert!(
                matches!(refused(private), Err(FetchRefusal::BlockedAddress(_))),
                "{private}"
            );
        }
    }

    #[tokio::test]
    async fn a_redirect_hop_is_checked_like_the_first() {
        // Every hop goes through `check`; a Location naming the metadata service is refused
        // by the grant, and by the guard if granted.
        let f = fetcher();
        let hosts = vec!["169.254.169.254".to_owned()];
        let hop = Url::parse("https://example.com/a")
            .unwrap()
            .join("http://169.254.169.254/latest/")
            .unwrap();
        assert!(matches!(
            f.check(&hosts, &hop),
            Err(FetchRefusal::BlockedAddress(_))
        ));
        assert!(matches!(
            f.check(&[], &hop),
            Err(FetchRefusal::HostNotAllowed(_))
        ));
    }
}
