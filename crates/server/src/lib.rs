//! slotd, the server: the HTTP API over the store and the core, the command line, and the
//! operations endpoints. `main.rs` only parses the command line and calls into [`cli`].
//!
//! Layout: [`app`] builds the router and serves it; [`api`] has one module per resource;
//! [`extract`] and [`error`] are how requests are read and how failures are answered;
//! [`cli`] holds the subcommands (`serve`, `migrate`, `org`, `key`, `openapi`); [`demo`]
//! seeds the `serve --demo` data.

pub mod api;
pub mod app;
pub mod booking;
pub mod calendars;
pub mod cli;
pub mod delivery;
pub mod demo;
mod docs;
pub mod error;
pub mod extract;
pub mod idempotency;
pub mod key_cache;
pub mod keys;
mod pages;
pub mod rate_limit;
pub mod schedule;
pub mod sealing;
pub mod ssrf;
