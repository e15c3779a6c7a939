//! Training: a model, its optimizer and one step at a time, so that the browser can drive it one
//! batch at a time: no files, no `Learner`, and every read of a tensor is async (a synchronous
//! read fails on wasm).
//!
//! - [`config`]: [`TrainingConfig`], how a run trains, and the checks of its values;
//! - [`trainer`]: the [`Trainer`] and its optimizer (burn's Adam, or on the CPU in wasm the
//!   flat one of [`crate::cpu_step`]), a step taken whole or cut into [`GradientShare`]s;
//! - [`loss`]: forward, the MSE and backward over a batch, burn's loss or the fused one, and
//!   natively a batch cut over the CPU's cores.
//!
//! Measuring a model on a test set is [`crate::evaluate`]'s.

pub mod config;
mod loss;
pub mod trainer;

use burn::prelude::*;

pub use config::TrainingConfig;
pub use trainer::{GradientShare, Trainer};

#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    #[error("{0}")]
    Config(String),
    #[error("no training images are loaded")]
    NoData,
    #[error("the device failed while reading a result: {0}")]
    Device(String),
}

/// Reads a float tensor back to the host; async because that is the only way on WebGPU in a
/// browser.
pub async fn read_floats<const D: usize>(tensor: Tensor<D>) -> Result<Vec<f32>, TrainError> {
    let data = tensor.into_data_async().await.map_err(|e| TrainError::Device(e.to_string()))?;
    data.try_into_vec::<f32>().map_err(|e| TrainError::Device(format!("{e:?}")))
}
