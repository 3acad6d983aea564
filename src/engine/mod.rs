//! engine (STUB)
