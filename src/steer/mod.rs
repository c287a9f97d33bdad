//! Steering vectors: datasets, how they are computed, stored and applied.

#[cfg(feature = "engine")]
pub mod actadd;
#[cfg(feature = "engine")]
pub mod apply;
pub mod builtin;
#[cfg(feature = "engine")]
pub mod caa;
pub mod dataset;
pub mod propensity;
pub mod remote;
pub mod score;
pub mod vector;
