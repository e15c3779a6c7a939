//! Dense and convolutional MNIST autoencoders in Burn, trained in a browser tab on WebGPU or
//! natively from the command line.
//!
//! The same library serves both: [`web`] is the page's typed boundary (wasm32 only), and
//! `src/main.rs` is the native command line.

pub mod checkpoint;
pub mod cpu_step;
pub mod data;
pub mod digit;
pub mod flat_adam;
pub mod model;
pub mod predict;
pub mod pytorch;
pub mod rng;
pub mod sigmoid_mse;
pub mod train;

#[cfg(target_arch = "wasm32")]
pub mod web;
