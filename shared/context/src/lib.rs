//! Context management: token counting and the planner that keeps long conversations inside each
//! model's window. Pure: no I/O, so every decision is unit-testable and fast.

mod compress;
pub mod plan;
pub mod settings;
pub mod tokens;

pub use plan::{
    Entry, Optimization, Plan, PlanError, PlanInput, Planned, SummarizeSpan, SummaryRef, plan,
};
pub use settings::{ContextSettings, Limits};
pub use tokens::Encoding;
