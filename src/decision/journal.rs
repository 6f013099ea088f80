//! The decision journal.
