//! The web client (embedded by `bestchat-web`) and its runtime `config.json`. In AWS the same
//! files sit in S3 behind CloudFront with a `config.json` the web-publish function writes.

use axum::Router;
use axum::body::Body;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
pub use bestchat_web::WebAuth;
use bestchat_web::{FILES, INDEX, RuntimeConfig, cache_control, content_type};
use http::{HeaderValue, StatusCode, header};

/// Paths of the client's own routes, answered with `index.html`.
const APP_ROUTES: &[&str] = &["/", "/auth/callback"];

/// Whether the build embedded a client (npm was there).
pub fn embedded() -> bool {
    !FILES.is_empty()
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
    for (path, bytes) in FILES.iter().filter(|(p, _)| *p != INDEX) {
        let cache = cache_control(path);
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
    let Some((_, bytes)) = FILES.iter().find(|(p, _)| *p == INDEX) else {
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
         img-src 'self' data: blob:; connect-src 'self'{issuer}; frame-ancestors 'none'; \
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
}
