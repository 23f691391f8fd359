//! The CNN.
