//! The permanent adversarial suite: BestChat tried the way an attacker and a careless client
//! would, end to end against `bestchat-local` over real HTTP and WebSocket, on both adapter sets
//! where the adapters matter. Each module is one class of attack; each test is one that once
//! got through.

mod bad_input;
mod caps;
mod cross_user;
mod dev_auth;
mod emulator;
mod faults;
mod frames;
mod secrets;
mod sizes;
mod ssrf;
mod tokens;

/// Runs each case against the embedded adapters (SQLite, in-process everything) and the
/// production ones (PostgreSQL, Redis, DynamoDB on moto, frames and turns through the AWS SDK
/// clients to the gateway's own emulation).
macro_rules! on_both_adapter_sets {
    ($env:expr; $($case:ident),* $(,)?) => {
        mod embedded {
            $( #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
               async fn $case() {
                   let r = bestchat_tests::gateway::sqlite($env).await;
                   super::$case(&r.gateway).await;
               } )*
        }
        mod production {
            $( #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
               async fn $case() {
                   let r = bestchat_tests::gateway::cloud($env).await;
                   super::$case(&r.gateway).await;
               } )*
        }
    };
}
pub(crate) use on_both_adapter_sets;
