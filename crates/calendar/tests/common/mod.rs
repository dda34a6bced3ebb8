//! Helpers shared by the calendar crate's integration tests.

pub mod radicale;
