//! The page's parts: the bridge to the engine worker and the lab's shared state, then one file per view.

pub mod actadd;
pub mod bridge;
pub mod dashboard;
pub mod decompose;
pub mod export;
pub mod features;
pub mod gpu;
pub mod helper;
pub mod lessons;
pub mod models;
pub mod population;
pub mod remote;
pub mod score;
pub mod steer;
pub mod widgets;
