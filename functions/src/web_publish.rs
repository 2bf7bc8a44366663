//! The `web-publish` function: a CloudFormation custom resource that writes the web client
//! built into this binary to the site bucket, then the `config.json` that points it at this
//! stack's APIs and user pool. Files are written before `config.json`, and hashed assets before
//! the page that names them, so a visitor never loads a page whose files are missing.

use bestchat_platform::site::{S3Site, SiteError, SiteFile};
use bestchat_web::{FILES, INDEX, RuntimeConfig, WebAuth, cache_control, content_type};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::custom_resource::{self, ResourceError};

/// The custom resource's properties.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Site {
    pub bucket: String,
    pub api_base: String,
    pub ws_url: String,
    pub issuer: String,
    pub client_id: String,
    pub scope: String,
}

/// Why the site could not be published: the reason the stack event shows.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    #[error("the WebClient resource's properties: {0}")]
    Properties(serde_json::Error),
    #[error("this build has no web client (npm was missing when it was built)")]
    NoWebClient,
    #[error(transparent)]
    Write(#[from] SiteError),
    #[error("config.json: {0}")]
    Config(serde_json::Error),
}

/// Answers the request in `event` within `budget`; `client` is the S3 client to write with
/// (`None`: the environment's).
pub async fn handle(
    event: Value,
    budget: std::time::Duration,
    client: Option<aws_sdk_s3::Client>,
) -> Result<Value, ResourceError> {
    let request = serde_json::from_value(event).map_err(ResourceError::NotARequest)?;
    custom_resource::handle(request, budget, |_, properties| async move {
        let site: Site = serde_json::from_value(properties).map_err(PublishError::Properties)?;
        let target = match client {
            Some(client) => S3Site::with_client(site.bucket.clone(), client),
            None => S3Site::new(site.bucket.clone()),
        };
        let written = publish(&target, &site).await?;
        Ok::<_, PublishError>(json!({ "Files": written.to_string() }))
    })
    .await?;
    Ok(json!({}))
}

/// Writes every file, then `config.json`; returns how many objects were written.
pub async fn publish(target: &S3Site, site: &Site) -> Result<usize, PublishError> {
    if FILES.is_empty() {
        return Err(PublishError::NoWebClient);
    }
    let (pages, assets): (Vec<_>, Vec<_>) = FILES.iter().partition(|(path, _)| *path == INDEX);
    for (path, bytes) in assets.iter().chain(pages.iter()) {
        target
            .put(&SiteFile {
                key: path.trim_start_matches('/'),
                bytes,
                content_type: content_type(path),
                cache_control: cache_control(path),
            })
            .await?;
    }
    let auth = WebAuth::Oidc {
        issuer: site.issuer.clone(),
        client_id: site.client_id.clone(),
        scope: site.scope.clone(),
    };
    let config = serde_json::to_vec(&RuntimeConfig {
        api_base: &site.api_base,
        ws_url: &site.ws_url,
        auth: &auth,
    })
    .map_err(PublishError::Config)?;
    target
        .put(&SiteFile {
            key: "config.json",
            bytes: &config,
            content_type: "application/json",
            cache_control: "no-store",
        })
        .await?;
    Ok(FILES.len() + 1)
}
