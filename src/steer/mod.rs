//! Steering vectors: how they are stored and applied.

pub mod apply;
pub mod vector;
