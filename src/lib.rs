//! kpipe's stages, one module each; `main.rs` only parses and runs.

pub mod app;
pub mod cli;
pub mod config;
pub mod exit;
pub mod failed;
pub mod guarantee;
pub mod input;
pub mod journal;
pub mod log;
pub mod message;
pub mod metrics;
pub mod options;
pub mod private;
pub mod progress;
pub mod reason;
pub mod room;
pub mod route;
pub mod security;
pub mod signals;
pub mod sink;
pub mod spool;
pub mod stats;
pub mod units;
pub mod wire;
