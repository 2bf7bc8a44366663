//! Reports what a static buffer held before this call, then writes the caller's secret into it:
//! a Store that leaked memory into the next call would show the previous secret.
use std::sync::Mutex;

static SLOT: Mutex<[u8; 64]> = Mutex::new([0; 64]);

fn main() {
    bestchat_tool_sdk::run(|args| {
        let secret = args["secret"].as_str().ok_or("secret")?;
        let mut slot = SLOT.lock().map_err(|_| "poisoned")?;
        let before: String = slot
            .iter()
            .take_while(|b| **b != 0)
            .map(|b| *b as char)
            .collect();
        let bytes = secret.as_bytes();
        slot[..bytes.len().min(64)].copy_from_slice(&bytes[..bytes.len().min(64)]);
        // Spin a little so concurrent calls overlap.
        let mut n = 0u64;
        for i in 0..2_000_000u64 {
            n = std::hint::black_box(n ^ i);
        }
        Ok(serde_json::json!({ "before": before, "secret": secret, "n": n }))
    });
}
