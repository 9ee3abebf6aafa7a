//! oracle (being built).
