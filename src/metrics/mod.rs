//! metrics (STUB)
