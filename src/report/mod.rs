//! report (STUB)
