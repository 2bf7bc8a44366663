//! Glue between AWS Lambda and the handlers in `bestchat-app`. Every HTTP function of
//! `infra/template.yaml` deploys the `http-api` binary, which `BESTCHAT_OPERATION` points at its
//! route; each other binary in `src/bin` is one function.

pub mod authorizer;
pub mod custom_resource;
pub mod event;
pub mod http;
pub mod migrate;
pub mod migrate_resource;
pub mod sign_up;
pub mod web_publish;
pub mod ws;
