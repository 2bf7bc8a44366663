//! The planner's settings and a model's limits.

/// Every threshold of context management; each is a named setting of the deployment.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
/// Read from the environment by the app: each field's variable is on it, its default in `Default`.
#[serde(default)]
pub struct ContextSettings {
    /// Safety margin kept free in every window, as a share of the window (percent)…
    #[serde(rename = "BESTCHAT_CONTEXT_MARGIN_PERCENT")]
    pub margin_percent: u32,
    /// …and at least this many tokens: counts of tokenizers that are not public are estimates.
    #[serde(rename = "BESTCHAT_CONTEXT_MARGIN_MIN_TOKENS")]
    pub margin_min_tokens: u32,
    /// A summary of the oldest span is requested once the history passes this share of the
    /// budget (percent).
    #[serde(rename = "BESTCHAT_SUMMARIZE_AT_PERCENT")]
    pub summarize_at_percent: u32,
    /// A summary leaves the newest turns that fit in this share of the budget (percent) as they
    /// are.
    #[serde(rename = "BESTCHAT_SUMMARY_KEEPS_RECENT_PERCENT")]
    pub summary_keeps_recent_percent: u32,
    /// Most tokens one summarization covers; longer histories are summarized over several turns.
    #[serde(rename = "BESTCHAT_SUMMARY_SPAN_MAX_TOKENS")]
    pub summary_span_max_tokens: u32,
    /// A tool output longer than this is cut to an excerpt when the history does not fit…
    #[serde(rename = "BESTCHAT_TOOL_OUTPUT_MAX_TOKENS")]
    pub tool_output_max_tokens: u32,
    /// …keeping about this many tokens of its beginning.
    #[serde(rename = "BESTCHAT_TOOL_OUTPUT_KEEP_TOKENS")]
    pub tool_output_keep_tokens: u32,
    /// Content repeated later in the conversation is removed from its older copy when it is at
    /// least this long (characters).
    #[serde(rename = "BESTCHAT_DUPLICATE_MIN_CHARS")]
    pub duplicate_min_chars: usize,
}

impl Default for ContextSettings {
    fn default() -> Self {
        Self {
            margin_percent: 2,
            margin_min_tokens: 16,
            summarize_at_percent: 80,
            summary_keeps_recent_percent: 50,
            summary_span_max_tokens: 100_000,
            tool_output_max_tokens: 4_000,
            tool_output_keep_tokens: 500,
            duplicate_min_chars: 400,
        }
    }
}

/// What a model takes and gives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub window: u32,
    /// Tokens kept free for the answer.
    pub reserved_output: u32,
}

impl Limits {
    /// Tokens the prompt may use: window − reserved output − safety margin.
    pub fn budget(&self, settings: &ContextSettings) -> u32 {
        let share = percent(self.window, settings.margin_percent.min(100));
        self.window
            .saturating_sub(self.reserved_output)
            .saturating_sub(share.max(settings.margin_min_tokens))
    }
}

/// `percent` of `of`, rounded down.
pub(crate) fn percent(of: u32, percent: u32) -> u32 {
    u32::try_from(u64::from(of) * u64::from(percent) / 100).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn budget_keeps_output_and_margin_free() {
        let s = ContextSettings::default();
        let limits = Limits {
            window: 1_500,
            reserved_output: 200,
        };
        assert_eq!(limits.budget(&s), 1_500 - 200 - 30);
        let small = Limits {
            window: 100,
            reserved_output: 20,
        };
        assert_eq!(small.budget(&s), 100 - 20 - 16);
        let none = Limits {
            window: 100,
            reserved_output: 100,
        };
        assert_eq!(none.budget(&s), 0);
    }
}
