//! Model lists from the provider itself (`GET /models`), for servers whose models the catalog
//! cannot know: Ollama, LM Studio, vLLM, llama.cpp, custom endpoints.

use bestchat_domain::provider::Protocol;
use serde::Deserialize;

use crate::client::{Endpoint, Providers, apply_auth, read_bounded, transport_error};
use crate::types::{ErrorKind, ProviderError};

/// Most model ids kept from one listing.
pub const DISCOVERED_MODELS_MAX: usize = 500;

#[derive(Deserialize)]
struct OpenAiList {
    #[serde(default)]
    data: Vec<Named>,
}

#[derive(Deserialize)]
struct GeminiList {
    #[serde(default)]
    models: Vec<GeminiModel>,
}

#[derive(Deserialize)]
struct Named {
    id: String,
}

#[derive(Deserialize)]
struct GeminiModel {
    name: String,
}

pub async fn list_models(
    providers: &Providers,
    endpoint: &Endpoint,
) -> Result<Vec<String>, ProviderError> {
    let base = endpoint.base_url.trim_end_matches('/');
    let url = match endpoint.protocol {
        Protocol::OpenAi | Protocol::OpenAiResponses => format!("{base}/models"),
        Protocol::Anthropic => format!("{base}/v1/models"),
        Protocol::Gemini => format!("{base}/v1beta/models"),
        Protocol::Bedrock | Protocol::Echo => return Ok(Vec::new()),
    };
    let mut request = apply_auth(
        providers.request(reqwest::Method::GET, &url)?,
        &endpoint.auth,
    );
    if endpoint.protocol == Protocol::Anthropic {
        request = request.header("anthropic-version", crate::protocol::anthropic::API_VERSION);
    }
    let settings = providers.settings();
    let timeout = settings.first_byte_timeout;
    let response = tokio::time::timeout(timeout, request.send())
        .await
        .map_err(|_| ProviderError::new(ErrorKind::Timeout, "the model list did not arrive"))?
        .map_err(transport_error)?;
    if !response.status().is_success() {
        return Err(providers.refusal(response).await);
    }
    let body = read_bounded(response, settings.max_model_list_bytes, timeout).await?;
    let mut ids: Vec<String> = match endpoint.protocol {
        Protocol::Gemini => serde_json::from_slice::<GeminiList>(&body)
            .map_err(ProviderError::protocol)?
            .models
            .into_iter()
            .map(|m| m.name.trim_start_matches("models/").to_owned())
            .collect(),
        _ => serde_json::from_slice::<OpenAiList>(&body)
            .map_err(ProviderError::protocol)?
            .data
            .into_iter()
            .map(|m| m.id)
            .collect(),
    };
    ids.truncate(DISCOVERED_MODELS_MAX);
    Ok(ids)
}
