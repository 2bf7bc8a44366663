//! The cost of a call in micro-dollars. Prices are micro-dollars per million tokens; a price
//! that is not known makes the cost unknown (`None`), never zero.

use bestchat_domain::provider::ModelInfo;

use crate::types::TokenUsage;

pub fn cost_micros(model: &ModelInfo, usage: &TokenUsage) -> Option<i64> {
    let input = u128::from(model.input_price_per_mtok?);
    let output = u128::from(model.output_price_per_mtok?);
    // Without a cached-input price, cached tokens cost what other input costs.
    let cached = model.cached_input_price_per_mtok.map_or(input, u128::from);
    let cached_tokens = u128::from(usage.cached_tokens.min(usage.input_tokens));
    let fresh_tokens = u128::from(usage.input_tokens) - cached_tokens;
    let total =
        fresh_tokens * input + cached_tokens * cached + u128::from(usage.output_tokens) * output;
    // Round half up to whole micro-dollars.
    i64::try_from((total + 500_000) / 1_000_000).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use bestchat_domain::model_ref::ModelId;

    fn model(input: Option<u64>, cached: Option<u64>, output: Option<u64>) -> ModelInfo {
        ModelInfo {
            id: ModelId::parse("m").unwrap(),
            provider: None,
            context_window: 1000,
            max_output_tokens: 100,
            input_price_per_mtok: input,
            cached_input_price_per_mtok: cached,
            output_price_per_mtok: output,
            supports_tools: false,
            supports_vision: false,
            supports_reasoning: false,
        }
    }

    fn usage(input: u32, cached: u32, output: u32) -> TokenUsage {
        TokenUsage {
            input_tokens: input,
            output_tokens: output,
            cached_tokens: cached,
            reasoning_tokens: 0,
        }
    }

    #[test]
    fn prices_input_cached_and_output() {
        // gpt-4o-mini: $0.15 in, $0.075 cached, $0.60 out per million.
        let m = model(Some(150_000), Some(75_000), Some(600_000));
        // 82 prompt tokens of which 64 cached, 41 out:
        // 18 * 0.15 + 64 * 0.075 + 41 * 0.60 = 2.7 + 4.8 + 24.6 = 32.1 -> 32 micro-dollars.
        assert_eq!(cost_micros(&m, &usage(82, 64, 41)), Some(32));
        assert_eq!(
            cost_micros(&m, &usage(1_000_000, 0, 1_000_000)),
            Some(750_000)
        );
    }

    #[test]
    fn unknown_prices_give_unknown_cost() {
        assert_eq!(
            cost_micros(&model(None, None, Some(1)), &usage(10, 0, 10)),
            None
        );
        assert_eq!(
            cost_micros(&model(Some(1), None, None), &usage(10, 0, 10)),
            None
        );
        // No cached price: cached tokens are charged as input.
        assert_eq!(
            cost_micros(&model(Some(1_000_000), None, Some(0)), &usage(10, 5, 0)),
            Some(10)
        );
        // Free is a known price.
        assert_eq!(
            cost_micros(&model(Some(0), Some(0), Some(0)), &usage(10, 0, 10)),
            Some(0)
        );
    }
}
