//! One training step, evaluation, and the training configuration.
//!
//! The step is written so that the browser can drive it one batch at a time: no files, no
//! `Learner`, and every read of a tensor is async (a synchronous read fails on wasm).

use burn::module::{ModuleVisitor, Param};
use burn::nn::loss::{MseLoss, Reduction};
use burn::optim::{AdamConfig, GradientsParams, ModuleOptimizer};
use burn::prelude::*;
use serde::{Deserialize, Serialize};

use crate::data::{IMAGE_PIXELS, MnistSet, epoch_order};
use crate::model::{Autoencoder, ModelKind};
use crate::predict::Codes;

/// How a run trains; the seed's choices are the defaults.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainingConfig {
    pub model: ModelKind,
    /// Images per step (the seed's 32).
    pub batch_size: usize,
    /// Adam's learning rate (the seed's 1e-3).
    pub learning_rate: f64,
    /// Seeds the initial weights and each epoch's shuffle.
    pub seed: u64,
    /// Latent size; `None` keeps the seed's (3 for dense, 64 for conv).
    pub latent: Option<usize>,
}

impl TrainingConfig {
    pub fn new(model: ModelKind) -> Self {
        Self { model, batch_size: 32, learning_rate: 1e-3, seed: 0, latent: None }
    }

    /// Refuses values no run can use, saying which and why.
    pub fn validate(&self) -> Result<(), TrainError> {
        let bad = |msg: String| Err(TrainError::Config(msg));
        if self.batch_size == 0 {
            return bad("batch size must be at least 1".into());
        }
        if !(self.learning_rate.is_finite() && self.learning_rate > 0.0) {
            return bad(format!("learning rate must be a positive number, not {}", self.learning_rate));
        }
        if self.latent == Some(0) {
            return bad("latent size must be at least 1".into());
        }
        Ok(())
    }
}

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

/// A model, its optimizer and where the run stands in the data.
pub struct Trainer {
    config: TrainingConfig,
    /// `None` only while the optimizer owns it during a step.
    model: Option<Autoencoder>,
    optimizer: ModuleOptimizer,
    device: Device,
    order: Vec<usize>,
    epoch: usize,
    batch: usize,
    steps: usize,
}

/// burn draws a parameter's initial values lazily, on the device it is on when first read, from
/// that backend's generator. Reading every parameter here, where the model was made, fixes them.
fn draw_initial_values(model: &Autoencoder) {
    struct Read;
    impl ModuleVisitor for Read {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            let _ = param.val();
        }
    }
    model.visit(&mut Read);
}

impl Trainer {
    /// A fresh model (seeded) and optimizer for `train_len` images, on `device` (autodiff is
    /// added here).
    pub fn new(config: TrainingConfig, device: &Device, train_len: usize) -> Result<Self, TrainError> {
        config.validate()?;
        if train_len == 0 {
            return Err(TrainError::NoData);
        }
        // The weights are drawn on the CPU and then moved: each backend has its own random
        // generator, and one seed must give one model on every backend, so that a run on WebGPU
        // and one on the CPU can be compared step by step.
        let host = Device::flex();
        host.seed(config.seed);
        let model = config.model.init(config.latent, &host);
        draw_initial_values(&model);
        Ok(Self::resume(config, model, device.clone(), train_len))
    }

    /// Continues training a model that was made or loaded elsewhere.
    pub fn resume(config: TrainingConfig, model: Autoencoder, device: Device, train_len: usize) -> Self {
        let optimizer = AdamConfig::new().with_epsilon(1e-8).init();
        let device = device.autodiff();
        let model = model.to_device(&device).train();
        let order = epoch_order(train_len, config.seed, 0);
        Self { config, model: Some(model), optimizer, device, order, epoch: 0, batch: 0, steps: 0 }
    }

    pub fn config(&self) -> &TrainingConfig {
        &self.config
    }

    pub fn model(&self) -> &Autoencoder {
        self.model.as_ref().expect("the model is only taken during a step")
    }

    /// The model without autodiff, for evaluation and inference.
    pub fn inference_model(&self) -> Autoencoder {
        self.model().valid()
    }

    /// Images the trainer was made for; the data it steps over must keep this length.
    pub fn train_len(&self) -> usize {
        self.order.len()
    }

    /// Completed epochs.
    pub fn epoch(&self) -> usize {
        self.epoch
    }

    /// Batches done in the current epoch.
    pub fn batch(&self) -> usize {
        self.batch
    }

    /// Total steps taken.
    pub fn steps(&self) -> usize {
        self.steps
    }

    /// Batches in one epoch; the last, partial batch is kept, as PyTorch's DataLoader does.
    pub fn batches_per_epoch(&self) -> usize {
        self.order.len().div_ceil(self.config.batch_size)
    }

    /// One step on the next batch: forward, MSE, backward, Adam. Returns the loss as a tensor,
    /// unread, so that several steps can be read back at once.
    pub fn step_unread(&mut self, data: &MnistSet) -> Tensor<1> {
        assert_eq!(data.len(), self.order.len(), "the training set changed under the trainer");
        let start = self.batch * self.config.batch_size;
        let end = (start + self.config.batch_size).min(self.order.len());
        let images = data.batch(&self.order[start..end], &self.device); // [batch, 28, 28]

        let model = self.model.take().expect("the model is only taken during a step");
        let reconstructions = model.forward(images.clone());
        let loss = MseLoss::new().forward(reconstructions, images, Reduction::Mean);
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        self.model = Some(self.optimizer.step(self.config.learning_rate, model, grads));

        self.steps += 1;
        self.batch += 1;
        if self.batch == self.batches_per_epoch() {
            self.batch = 0;
            self.epoch += 1;
            self.order = epoch_order(self.order.len(), self.config.seed, self.epoch);
        }
        loss.detach()
    }

    /// Up to `max_steps` steps, never past the end of the current epoch; returns each step's loss.
    /// The losses are read back once, at the end, so the device is not stalled after every step.
    pub async fn run(&mut self, data: &MnistSet, max_steps: usize) -> Result<Vec<f32>, TrainError> {
        let left = self.batches_per_epoch() - self.batch;
        let losses: Vec<Tensor<1>> = (0..max_steps.min(left)).map(|_| self.step_unread(data)).collect();
        if losses.is_empty() {
            return Ok(Vec::new());
        }
        read_floats(Tensor::cat(losses, 0)).await
    }
}

/// Mean squared error per pixel of `model`'s reconstructions of every image in `set`, computed in
/// batches of `batch_size`.
pub async fn evaluate(model: &Autoencoder, set: &MnistSet, batch_size: usize, device: &Device) -> Result<f32, TrainError> {
    if set.is_empty() {
        return Err(TrainError::NoData);
    }
    let sums = in_batches(set, batch_size, device)
        .map(|images| (model.forward(images.clone()) - images).square().sum()) // [1] each
        .collect();
    let total: f32 = read_floats(Tensor::cat(sums, 0)).await?.iter().sum();
    Ok(total / (set.len() * IMAGE_PIXELS) as f32)
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
/// `batch_size`.
pub async fn encode_set(model: &Autoencoder, set: &MnistSet, batch_size: usize, device: &Device) -> Result<Codes, TrainError> {
    if set.is_empty() {
        return Err(TrainError::NoData);
    }
    let codes = in_batches(set, batch_size, device).map(|images| model.encode(images)).collect();
    let values = read_floats(Tensor::cat(codes, 0)).await?;
    Codes::new(model.latent_size(), values, set.labels().to_vec()).map_err(|e| TrainError::Device(e.to_string()))
}
