//! CLI (STUB)
