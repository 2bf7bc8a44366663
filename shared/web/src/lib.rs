//! The web client's files, embedded at build time (see `build.rs`), how each is served, and the
//! runtime `config.json` that tells one build where its API and identity provider are.

use serde::Serialize;

mod embedded {
    include!(concat!(env!("OUT_DIR"), "/web_files.rs"));
}

/// Every file of the build with the URL path it is served at; empty when npm was missing.
pub static FILES: &[(&str, &[u8])] = embedded::FILES;

/// The page every client route answers with.
pub const INDEX: &str = "/index.html";

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

/// `/config.json`.
#[derive(Debug, Serialize)]
pub struct RuntimeConfig<'a> {
    /// Empty: the API is on the client's own origin.
    pub api_base: &'a str,
    /// Empty: `/ws` on the client's own origin.
    pub ws_url: &'a str,
    pub auth: &'a WebAuth,
}

pub fn content_type(path: &str) -> &'static str {
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

pub fn cache_control(path: &str) -> &'static str {
    if path.starts_with("/assets/") {
        // Vite names these by content hash: a new build gets new names.
        "public, max-age=31536000, immutable"
    } else {
        "no-cache"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn hashed_assets_are_cached_forever_and_the_rest_revalidated() {
        assert_eq!(
            cache_control("/assets/index-3f2a.js"),
            "public, max-age=31536000, immutable"
        );
        assert_eq!(cache_control(INDEX), "no-cache");
        assert_eq!(content_type("/assets/a.css"), "text/css; charset=utf-8");
        assert_eq!(content_type("/x.unknown"), "application/octet-stream");
    }
}
