//! SMPP v3.4 protocol codec. Pure library: no I/O, no async runtime.

pub mod gsm7;
pub mod receipt;
pub mod text;
pub mod time;
pub mod udh;
