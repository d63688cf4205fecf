//! `smppd pdu decode <HEX|->` — placeholder; the lead replaces this file.

/// Arguments of `smppd pdu`.
#[derive(Debug, clap::Args)]
pub struct PduArgs {
    #[command(subcommand)]
    pub command: PduCommand,
}

#[derive(Debug, clap::Subcommand)]
pub enum PduCommand {
    /// Print a PDU (or a stream of them) given as hex, or `-` for stdin, as JSON.
    Decode {
        /// Hex bytes (whitespace allowed) or `-` to read stdin.
        input: String,
    },
}

/// Runs `smppd pdu ...`.
pub fn run(_args: PduArgs) -> anyhow::Result<()> {
    anyhow::bail!("smppd pdu: unimplemented")
}
