//! Named limits on everything a client can make long or large.

/// Characters in a conversation title.
pub const TITLE_MAX_CHARS: usize = 200;
/// Characters in a conversation's system prompt.
pub const SYSTEM_PROMPT_MAX_CHARS: usize = 100_000;
/// Fallback models a conversation may list.
pub const FALLBACKS_MAX: usize = 5;
/// Characters in a provider id.
pub const PROVIDER_ID_MAX_CHARS: usize = 64;
/// Characters in a model id.
pub const MODEL_ID_MAX_CHARS: usize = 200;
/// Sampling temperature range accepted by every provider we speak to.
pub const TEMPERATURE_MAX: f64 = 2.0;
/// Upper bound on a requested output length.
pub const MAX_OUTPUT_TOKENS_MAX: u32 = 1_000_000;
/// Characters in a token subject.
pub const SUBJECT_MAX_CHARS: usize = 255;
/// List page size when the client names none.
pub const PAGE_LIMIT_DEFAULT: u32 = 50;
/// Largest list page a client may ask for.
pub const PAGE_LIMIT_MAX: u32 = 200;
/// Characters in a cursor string (anything longer is not one of ours).
pub const CURSOR_MAX_CHARS: usize = 128;
/// Characters in a provider API key.
pub const API_KEY_MAX_CHARS: usize = 4096;
/// Characters in a provider base URL.
pub const BASE_URL_MAX_CHARS: usize = 2048;
/// Models a user may declare for one provider.
pub const MODELS_PER_PROVIDER_MAX: usize = 200;
/// Characters in a WebSocket connection id.
pub const CONNECTION_ID_MAX_CHARS: usize = 128;
/// Characters in a `client_message_id`.
pub const CLIENT_MESSAGE_ID_MAX_CHARS: usize = 128;
/// Characters in one message a user sends.
pub const MESSAGE_CONTENT_MAX_CHARS: usize = 200_000;
