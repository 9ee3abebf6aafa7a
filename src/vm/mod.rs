//! vm (being built).
