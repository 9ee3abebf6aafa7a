//! replay (being built).
