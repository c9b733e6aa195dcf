//! (placeholder, written by the analysis work)
