//! check (being built).
