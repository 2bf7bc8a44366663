//! One module per table (or per group of tables written together): its statements, written once,
//! and how each store binds them. A new table is one module here and one migration.

pub(crate) mod audit;
pub(crate) mod billing;
pub(crate) mod budgets;
pub(crate) mod context;
pub(crate) mod conversations;
pub(crate) mod executions;
pub(crate) mod files;
pub(crate) mod mcp;
pub(crate) mod messages;
pub(crate) mod provider_configs;
pub(crate) mod settings;
pub(crate) mod tools;
pub(crate) mod turns;
pub(crate) mod usage;
pub(crate) mod users;
