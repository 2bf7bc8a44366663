//! Token counts stored with each message. Until the context crate counts with the model's
//! tokenizer, a conservative estimate: about four characters per token.

pub fn estimate_tokens(text: &str) -> u32 {
    u32::try_from(text.chars().count().div_ceil(4)).unwrap_or(u32::MAX)
}
