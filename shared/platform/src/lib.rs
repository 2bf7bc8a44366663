//! Adapters to AWS services and their local twins, chosen by the app from the environment.

pub mod aead;
pub mod files;
pub mod keys;
