//! Token counting. OpenAI-family models are counted with their own BPE (tiktoken-rs), each
//! encoder loaded once per process and only when a model that needs it is counted; every other
//! model gets a calibrated estimate, since its tokenizer is not public.

use tiktoken_rs::CoreBPE;

/// Tokens a chat format adds around every message (role markers, separators).
pub const MESSAGE_OVERHEAD_TOKENS: u32 = 4;
/// Tokens a request adds once (the assistant reply's priming).
pub const REQUEST_OVERHEAD_TOKENS: u32 = 3;

/// How a model's text is counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    /// GPT-4o, GPT-4.1, GPT-5, the o-series, gpt-oss.
    O200kBase,
    /// GPT-4 and GPT-3.5.
    Cl100kBase,
    /// Everything else: see [`estimate`].
    Estimate,
}

/// Model-name prefixes by encoding; the first match wins, so longer prefixes come first.
const FAMILIES: &[(&str, Encoding)] = &[
    ("gpt-4o", Encoding::O200kBase),
    ("chatgpt-4o", Encoding::O200kBase),
    ("gpt-4.1", Encoding::O200kBase),
    ("gpt-4.5", Encoding::O200kBase),
    ("gpt-5", Encoding::O200kBase),
    ("gpt-oss", Encoding::O200kBase),
    ("o1", Encoding::O200kBase),
    ("o3", Encoding::O200kBase),
    ("o4", Encoding::O200kBase),
    ("codex-", Encoding::O200kBase),
    ("gpt-4", Encoding::Cl100kBase),
    ("gpt-3.5", Encoding::Cl100kBase),
    ("gpt-35", Encoding::Cl100kBase),
];

impl Encoding {
    /// The encoding of a model id as providers spell it; a routing prefix such as
    /// `openai/gpt-4o` (OpenRouter, Groq) is looked through.
    pub fn for_model(model: &str) -> Self {
        let name = model
            .rsplit('/')
            .next()
            .unwrap_or(model)
            .to_ascii_lowercase();
        FAMILIES
            .iter()
            .find(|(prefix, _)| name.starts_with(prefix))
            .map_or(Self::Estimate, |(_, encoding)| *encoding)
    }

    pub fn count(self, text: &str) -> u32 {
        match self.bpe() {
            Some(bpe) => saturate(bpe.encode_ordinary(text).len()),
            None => estimate(text),
        }
    }

    /// Loads the encoder now (it is otherwise loaded on first use); a no-op for the estimate.
    pub fn load(self) {
        let _ = self.bpe();
    }

    fn bpe(self) -> Option<&'static CoreBPE> {
        match self {
            Self::O200kBase => Some(tiktoken_rs::o200k_base_singleton()),
            Self::Cl100kBase => Some(tiktoken_rs::cl100k_base_singleton()),
            Self::Estimate => None,
        }
    }
}

/// Counts `text` as `model` would.
pub fn count(model: &str, text: &str) -> u32 {
    Encoding::for_model(model).count(text)
}

/// Estimated tokens, in hundredths, per character class. Calibrated against cl100k_base and
/// o200k_base on prose, source code, JSON, SQL and eight scripts (see the `calibration` test and
/// BENCHMARKS.md): the estimate stays above both encodings, with room for tokenizers that are
/// less efficient than OpenAI's (Claude's, Llama's); the planner's safety margin covers the rest.
const LETTER: u32 = 29;
/// OpenAI's encoders split numbers into groups of at most three digits.
const DIGIT: u32 = 70;
const SPACE: u32 = 10;
const NEWLINE: u32 = 60;
const PUNCTUATION: u32 = 75;
/// Accented Latin letters.
const LATIN_EXTENDED: u32 = 60;
/// Greek, Cyrillic, Armenian, Hebrew, Arabic.
const ALPHABETIC: u32 = 85;
/// Chinese, Japanese and Korean characters: about one token each, sometimes more.
const CJK: u32 = 130;
/// Symbols and emoji: often two or three tokens.
const SYMBOL: u32 = 250;
/// Every other script (Indic, Thai, …): about one token per character.
const OTHER: u32 = 120;

/// A tokenizer-free estimate that errs high.
pub fn estimate(text: &str) -> u32 {
    let hundredths: u64 = text.chars().map(|c| u64::from(weight(c))).sum();
    saturate(usize::try_from(hundredths.div_ceil(100)).unwrap_or(usize::MAX))
}

fn weight(c: char) -> u32 {
    match u32::from(c) {
        0x61..=0x7A | 0x41..=0x5A => LETTER,
        0x30..=0x39 => DIGIT,
        0x20 | 0x09 => SPACE,
        0x0A | 0x0D => NEWLINE,
        0x00..=0x7F => PUNCTUATION,
        0xC0..=0x24F => LATIN_EXTENDED,
        0x370..=0x6FF => ALPHABETIC,
        0x3040..=0x30FF | 0x3400..=0x4DBF | 0x4E00..=0x9FFF | 0xAC00..=0xD7AF | 0xF900..=0xFAFF => {
            CJK
        }
        0x2000..=0x2BFF | 0x1F000..=0x1FAFF => SYMBOL,
        0x20000..=0x2FFFF => CJK,
        _ => OTHER,
    }
}

fn saturate(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn models_map_to_their_encoding() {
        for (model, want) in [
            ("gpt-4o-mini", Encoding::O200kBase),
            ("gpt-5-nano", Encoding::O200kBase),
            ("o3-mini", Encoding::O200kBase),
            ("openai/gpt-4o-mini", Encoding::O200kBase),
            ("openai/gpt-oss-120b", Encoding::O200kBase),
            ("gpt-4-turbo", Encoding::Cl100kBase),
            ("gpt-3.5-turbo", Encoding::Cl100kBase),
            ("claude-sonnet-4-5", Encoding::Estimate),
            ("gemini-2.5-flash", Encoding::Estimate),
            ("llama-3.3-70b-versatile", Encoding::Estimate),
        ] {
            assert_eq!(Encoding::for_model(model), want, "{model}");
        }
    }

    #[test]
    fn encoders_count_known_strings() {
        // Reference counts from OpenAI's tiktoken.
        assert_eq!(Encoding::Cl100kBase.count("hello world"), 2);
        assert_eq!(Encoding::O200kBase.count("hello world"), 2);
        assert_eq!(Encoding::O200kBase.count(""), 0);
        assert_eq!(count("gpt-4o", "tiktoken is great!"), 6);
    }

    /// The calibration holds: on every sample the estimate is at least what either OpenAI
    /// encoding counts, and not wildly more.
    #[test]
    fn calibration() {
        for (name, text) in calibration::SAMPLES {
            let estimated = estimate(text);
            let o200k = Encoding::O200kBase.count(text);
            let cl100k = Encoding::Cl100kBase.count(text);
            let reference = o200k.max(cl100k);
            assert!(
                estimated >= reference,
                "{name}: estimate {estimated} < {reference} (o200k {o200k}, cl100k {cl100k})"
            );
            assert!(
                f64::from(estimated) <= f64::from(reference) * 1.8,
                "{name}: estimate {estimated} is far above {reference}"
            );
        }
    }

    pub(super) mod calibration {
        pub const SAMPLES: &[(&str, &str)] = &[
            (
                "english prose",
                "The quick brown fox jumps over the lazy dog. Long conversations need careful \
                 handling: a model only sees what fits in its window, so older turns are \
                 summarized, duplicated tool output is removed, and the oldest turns are dropped \
                 when nothing else helps. Users expect the assistant to remember what matters.",
            ),
            (
                "rust code",
                "fn main() {\n    let mut total: u64 = 0;\n    for (i, line) in std::io::stdin().lines().enumerate() {\n        let line = line.expect(\"read\");\n        total += line.len() as u64 * (i as u64 + 1);\n    }\n    println!(\"{total}\");\n}\n",
            ),
            (
                "json",
                r#"{"id":"chatcmpl-9","object":"chat.completion.chunk","created":1730000000,"model":"gpt-4o-mini","choices":[{"index":0,"delta":{"content":"Hello"},"finish_reason":null}],"usage":{"prompt_tokens":12,"completion_tokens":1}}"#,
            ),
            (
                "german",
                "Größere Unterhaltungen müssen in das Kontextfenster des Modells passen; ältere \
                 Abschnitte werden zusammengefasst und doppelte Inhalte entfernt.",
            ),
            (
                "russian",
                "Длинные разговоры должны помещаться в окно модели: старые части кратко \
                 пересказываются, повторы удаляются.",
            ),
            (
                "chinese",
                "长对话必须放进模型的上下文窗口：较早的部分会被总结，重复的内容会被删除，最旧的轮次会被丢弃。",
            ),
            (
                "japanese",
                "長い会話はモデルのコンテキストウィンドウに収める必要があります。古い部分は要約されます。",
            ),
            (
                "numbers",
                "3.14159 2.71828 1.41421 1.73205 42 1024 65536 4294967296",
            ),
            ("emoji", "🎉🎉 great job 👍 ✅ done"),
            ("arabic", "المحادثات الطويلة يجب أن تتسع في نافذة النموذج"),
            ("hindi", "लंबी बातचीत को मॉडल की विंडो में फिट होना चाहिए"),
            (
                "markdown",
                "## Results\n\n| strategy | before | after |\n|---|---|---|\n| truncation | 1,200 | 800 |\n\n- item one\n- item two\n",
            ),
        ];
    }
}
