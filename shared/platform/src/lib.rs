//! Adapters to AWS services and their local twins, chosen by the app from the environment.

pub mod aead;
pub mod blobs;
pub mod connections;
pub mod emulator;
pub mod files;
pub mod hmac;
pub mod iam_token;
pub mod invoke;
pub mod keys;
pub mod publish;
pub mod secret_values;
pub mod site;
