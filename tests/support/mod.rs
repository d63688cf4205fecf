//! Shared helpers for integration tests: real servers started on free ports.
//!
//! Each test file that needs them says `mod support;`. Not every file uses every
//! helper, hence the `dead_code` allowance.
#![allow(dead_code, clippy::unwrap_used)]

pub mod servers;
