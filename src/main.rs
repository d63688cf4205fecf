//! smppd: an SMSC-side SMPP v3.4 server.
mod service;
mod store;

fn main() {
    println!("smppd: not yet");
}
