//! Glue between AWS Lambda and the handlers in `bestchat-app`. Each binary in `src/bin` is one
//! function of `infra/template.yaml`.

pub mod authorizer;
pub mod custom_resource;
pub mod event;
pub mod http;
pub mod migrate;
pub mod migrate_resource;
pub mod sign_up;
pub mod web_publish;
pub mod ws;
