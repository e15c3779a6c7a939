//! Measuring a model on a set of images: its reconstruction error ([`evaluate`], [`psnr`]) and
//! its latent codes ([`encode_set`]), both in one pass ([`test_pass`]).

use burn::prelude::*;

use crate::data::{IMAGE_PIXELS, MnistSet};
use crate::model::Autoencoder;
use crate::predict::Codes;
use crate::train::{TrainError, read_floats};

/// What one pass of a model over a test set measures.
#[derive(Debug)]
pub struct TestPass {
    /// Mean squared error per pixel of the model's reconstructions.
    pub mse: f32,
    /// Every image's latent code, with its label: [`crate::predict::dead_code_units`] counts the
    /// code numbers that are 0 for all.
    pub codes: Codes,
}

/// `model`'s reconstruction error and codes for every image in `set`, in batches of
/// `batch_size`: one pass, since a reconstruction is the decoding of the code.
pub async fn test_pass(model: &Autoencoder, set: &MnistSet, batch_size: usize, device: &Device) -> Result<TestPass, TrainError> {
    if set.is_empty() {
        return Err(TrainError::NoData);
    }
    let (mut sums, mut codes) = (Vec::new(), Vec::new());
    for images in in_batches(set, batch_size, device) {
        let code = model.encode(images.clone());
        sums.push((model.decode(code.clone()) - images).square().sum()); // [1]
        codes.push(code);
    }
    let total: f32 = read_floats(Tensor::cat(sums, 0)).await?.iter().sum();
    let codes = labelled_codes(model, set, read_floats(Tensor::cat(codes, 0)).await?)?;
    Ok(TestPass { mse: total / (set.len() * IMAGE_PIXELS) as f32, codes })
}

/// Mean squared error per pixel of `model`'s reconstructions of every image in `set`, computed in
/// batches of `batch_size` ([`test_pass`]'s figure alone).
pub async fn evaluate(model: &Autoencoder, set: &MnistSet, batch_size: usize, device: &Device) -> Result<f32, TrainError> {
    Ok(test_pass(model, set, batch_size, device).await?.mse)
}

/// Every image of `set` in order, as `[batch, 28, 28]` tensors of at most `batch_size` images.
fn in_batches<'a>(set: &'a MnistSet, batch_size: usize, device: &'a Device) -> impl Iterator<Item = Tensor<3>> + 'a {
    (0..set.len()).step_by(batch_size.max(1)).map(move |start| {
        let indices: Vec<usize> = (start..(start + batch_size).min(set.len())).collect();
        set.batch(&indices, device)
    })
}

/// Peak signal-to-noise ratio in dB of a mean squared error on pixels in [0, 1].
pub fn psnr(mse: f32) -> f32 {
    10.0 * (1.0 / mse.max(f32::MIN_POSITIVE)).log10()
}

/// The latent codes of every image in `set`, with their labels, computed in batches of
/// `batch_size`. [`crate::predict::dead_code_units`] counts the code numbers that are 0 for all.
pub async fn encode_set(model: &Autoencoder, set: &MnistSet, batch_size: usize, device: &Device) -> Result<Codes, TrainError> {
    if set.is_empty() {
        return Err(TrainError::NoData);
    }
    let codes = in_batches(set, batch_size, device).map(|images| model.encode(images)).collect();
    labelled_codes(model, set, read_floats(Tensor::cat(codes, 0)).await?)
}

/// `values` (read back from `model`'s codes of every image of `set`, in order) with their labels.
fn labelled_codes(model: &Autoencoder, set: &MnistSet, values: Vec<f32>) -> Result<Codes, TrainError> {
    Codes::new(model.latent_size(), values, set.labels().to_vec()).map_err(|e| TrainError::Device(e.to_string()))
}
