//! Steering vectors: datasets, how they are computed, stored and applied.

pub mod actadd;
pub mod apply;
pub mod builtin;
pub mod caa;
pub mod dataset;
pub mod propensity;
pub mod remote;
pub mod score;
pub mod vector;
