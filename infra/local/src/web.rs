//! The web client, embedded at build time (see `build.rs`), and its runtime `config.json`.
//! In AWS the same files sit in S3 behind CloudFront with a `config.json` the deploy writes.

use axum::Router;
use axum::body::Body;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use http::{HeaderValue, StatusCode, header};
use serde::Serialize;

mod embedded {
    include!(concat!(env!("OUT_DIR"), "/web_files.rs"));
}

/// Paths of the client's own routes, answered with `index.html`.
const APP_ROUTES: &[&str] = &["/", "/auth/callback"];

/// How users sign in, as the client reads it from `/config.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "mode", rename_all = "snake_case")]
pub enum WebAuth {
    /// `POST /dev/token` with a name.
    Dev,
    /// Authorization code with PKCE against an OpenID provider.
    Oidc {
        issuer: String,
        client_id: String,
        scope: String,
    },
    /// Neither is configured: the client says so instead of offering a form that cannot work.
    None,
}

#[derive(Serialize)]
struct RuntimeConfig<'a> {
    /// Empty: the API is on the client's own origin.
    api_base: &'a str,
    /// Empty: `/ws` on the client's own origin.
    ws_url: &'a str,
    auth: &'a WebAuth,
}

/// Whether the build embedded a client (npm was there).
pub fn embedded() -> bool {
    !embedded::FILES.is_empty()
}

pub fn router(auth: WebAuth) -> Router {
    let config = serde_json::to_vec(&RuntimeConfig {
        api_base: "",
        ws_url: "",
        auth: &auth,
    })
    .map(axum::body::Bytes::from)
    .unwrap_or_default();
    let csp = content_security_policy(&auth);
    let mut app = Router::new().route(
        "/config.json",
        get(move || {
            let body = config.clone();
            async move { file_response(Body::from(body), "application/json", "no-store") }
        }),
    );
    for route in APP_ROUTES {
        let csp = csp.clone();
        app = app.route(route, get(move || async move { index(&csp) }));
    }
    for (path, bytes) in embedded::FILES.iter().filter(|(p, _)| *p != "/index.html") {
        let cache = if path.starts_with("/assets/") {
            // Vite names these by content hash: a new build gets new names.
            "public, max-age=31536000, immutable"
        } else {
            "no-cache"
        };
        app = app.route(
            path,
            get(
                move || async move { file_response(Body::from(*bytes), content_type(path), cache) },
            ),
        );
    }
    app
}

fn index(csp: &str) -> Response {
    let Some((_, bytes)) = embedded::FILES.iter().find(|(p, _)| *p == "/index.html") else {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            "The web client was not built: install Node.js 20 and npm, then rebuild \
             (cargo run --release -p bestchat-local). The API works without it.\n",
        )
            .into_response();
    };
    let mut response = file_response(Body::from(*bytes), "text/html; charset=utf-8", "no-cache");
    if let Ok(value) = HeaderValue::from_str(csp) {
        response
            .headers_mut()
            .insert(header::CONTENT_SECURITY_POLICY, value);
    }
    response
}

/// Scripts and styles only from this origin (no inline script: markdown from a model can
/// never run), connections to this origin and the identity provider.
fn content_security_policy(auth: &WebAuth) -> String {
    let issuer = match auth {
        WebAuth::Oidc { issuer, .. } => format!(" {}", origin(issuer)),
        _ => String::new(),
    };
    format!(
        "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
         img-src 'self' data:; connect-src 'self'{issuer}; frame-ancestors 'none'; \
         base-uri 'none'; form-action 'self'{issuer}"
    )
}

/// `https://host[:port]` of a URL: what CSP source lists name.
fn origin(url: &str) -> &str {
    let after_scheme = url.find("://").map_or(0, |i| i + 3);
    match url[after_scheme..].find('/') {
        Some(end) => &url[..after_scheme + end],
        None => url,
    }
}

/// Embedded files are served from the binary's own bytes, never copied.
fn file_response(body: Body, content_type: &str, cache: &'static str) -> Response {
    let mut response = Response::new(body);
    let headers = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(content_type) {
        headers.insert(header::CONTENT_TYPE, value);
    }
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    response
}

fn content_type(path: &str) -> &'static str {
    match path.rsplit('.').next() {
        Some("html") => "text/html; charset=utf-8",
        Some("js" | "mjs") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("json" | "map") => "application/json",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("ico") => "image/x-icon",
        Some("woff2") => "font/woff2",
        Some("txt") => "text/plain; charset=utf-8",
        Some("webmanifest") => "application/manifest+json",
        _ => "application/octet-stream",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_identity_provider_is_the_only_other_origin_allowed() {
        let oidc = WebAuth::Oidc {
            issuer: "https://login.example.com/tenant/v2".into(),
            client_id: "c".into(),
            scope: "openid".into(),
        };
        let csp = content_security_policy(&oidc);
        assert!(
            csp.contains("connect-src 'self' https://login.example.com;"),
            "{csp}"
        );
        assert!(!content_security_policy(&WebAuth::Dev).contains("https://"));
        assert!(csp.contains("script-src 'self';"));
    }

    #[test]
    fn origins_drop_the_path() {
        assert_eq!(
            origin("https://a.example:8443/x/y"),
            "https://a.example:8443"
        );
        assert_eq!(origin("https://a.example"), "https://a.example");
    }

    #[test]
    fn config_names_the_sign_in_mode() {
        let body = serde_json::to_value(RuntimeConfig {
            api_base: "",
            ws_url: "",
            auth: &WebAuth::Dev,
        })
        .unwrap();
        assert_eq!(body["auth"]["mode"], "dev");
    }
}
