//! The fault-replay campaign (host side). The campaign driver lands with the VM; here: the
//! per-state checks ([`state`]) and the packed sparse images of fixtures ([`sparse`]).

pub mod sparse;
pub mod state;
