//! SMPP v3.4 protocol codec. Pure library: no I/O, no async runtime.
