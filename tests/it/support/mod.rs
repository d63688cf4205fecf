//! Shared helpers for integration tests: real servers started on free ports, and a
//! WebDriver client for the console test.
//!
//! Each test file that needs them says `mod support;`. Not every file uses every
//! helper, hence the `dead_code` allowance.
#![allow(dead_code, clippy::unwrap_used)]

pub mod servers;
pub mod webdriver;
