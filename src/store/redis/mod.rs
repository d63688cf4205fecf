//! The store's side of Redis: the connection to one server or a cluster
//! ([`connection`], [`topology`]), the partitions and their hash tags ([`partition`],
//! which also reads the partition out of each message_id format),
//! the Lua scripts as typed functions ([`scripts`], `lua/`), the server's clock
//! ([`clock`]), the layout version ([`layout`]) and reading script replies ([`value`]).

pub(crate) mod clock;
pub mod connection;
pub mod layout;
pub mod partition;
/// Public only for the contract tests (`tests/it/store_scripts.rs`), which call each
/// script's typed function directly; not an API.
#[doc(hidden)]
pub mod scripts;
pub(crate) mod topology;
pub(crate) mod value;
