//! The logical names event functions are invoked by; the environment maps each to its deployed
//! function (`CHAT_TURN_FUNCTION`, `SUMMARIZE_FUNCTION`).

pub const CHAT_TURN: &str = "chat-turn";
pub const SUMMARIZE: &str = "summarize";
