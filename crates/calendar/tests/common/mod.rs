//! Helpers shared by the calendar crate's integration tests (the Google fake is also used by the
//! server's tests).

#![allow(dead_code)] // each test file uses only some of them

pub mod google_fake;
pub mod radicale;
