//! One training step, evaluation, and the training configuration.
//!
//! The step is written so that the browser can drive it one batch at a time: no files, no
//! `Learner`, and every read of a tensor is async (a synchronous read fails on wasm).

use burn::module::{ModuleVisitor, Param};
use burn::nn::loss::{MseLoss, Reduction};
use burn::optim::{AdamConfig, GradientsParams, ModuleOptimizer};
use burn::prelude::*;

use crate::data::{IMAGE_PIXELS, MnistSet, epoch_order};
use crate::cpu_step::CpuStep;
use crate::flat_adam::FlatAdam;
use crate::model::{Autoencoder, CodeActivation, MAX_LATENT, ModelKind};
use crate::predict::Codes;
use crate::sigmoid_mse;

/// How a run trains; the seed's choices are the defaults. `TrainingConfig::new(model)` takes
/// them all, and `with_*` or struct update syntax changes one.
#[derive(Config, Debug, PartialEq)]
pub struct TrainingConfig {
    pub model: ModelKind,
    /// Images per step (the seed's 32).
    #[config(default = 32)]
    pub batch_size: usize,
    /// Adam's learning rate (the seed's 1e-3).
    #[config(default = 1e-3)]
    pub learning_rate: f64,
    /// Seeds the initial weights and each epoch's shuffle.
    #[config(default = 0)]
    pub seed: u64,
    /// Latent size (1 to [`MAX_LATENT`]); `None` keeps the seed's (3 for dense, 64 for conv).
    pub latent: Option<usize>,
    /// What follows the code layer; `None` keeps the model's default (linear for dense, the
    /// seed's ReLU for conv, which has no other).
    pub code_activation: Option<CodeActivation>,
}

impl TrainingConfig {
    /// The code activation the model gets: the one asked for, or the model's default.
    pub fn effective_code_activation(&self) -> CodeActivation {
        self.code_activation.unwrap_or(self.model.default_code_activation())
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
        match self.latent {
            Some(0) => return bad("latent size must be at least 1".into()),
            Some(latent) if latent > MAX_LATENT => {
                return bad(format!("latent size must be at most {MAX_LATENT}, not {latent}"));
            }
            _ => {}
        }
        self.model.check_code_activation(self.effective_code_activation()).map_err(TrainError::Config)
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
    optimizer: Optimizer,
    device: Device,
    order: Vec<usize>,
    epoch: usize,
    batch: usize,
    steps: usize,
}

/// Adam, as burn has it, or on the CPU in wasm as one flat pass over every parameter
/// ([`FlatAdam`]: no flush-to-zero there, and a dozen passes over memory fewer), with the
/// hand-written step ([`CpuStep`]) computing the gradients from the parameters it holds.
enum Optimizer {
    Burn(ModuleOptimizer),
    Flat(FlatAdam, Option<CpuStep>),
}

impl Optimizer {
    /// The flat Adam, and the hand-written step where the model's parameters are laid out as it
    /// expects (the seed's models always are; otherwise burn's autodiff takes the gradients).
    fn flat(model: &Autoencoder) -> Self {
        Optimizer::Flat(FlatAdam::new(model), CpuStep::for_model(model))
    }

    /// The hand-written step's loss and flat gradient for the images at `indices`, a `share` of
    /// the batch, where this optimizer has the step (the CPU in wasm); `None` elsewhere.
    fn hand_written(&mut self, data: &MnistSet, indices: &[usize], share: f32) -> Option<(f32, Vec<f32>)> {
        let Optimizer::Flat(adam, Some(step)) = self else { return None };
        Some(step.loss_and_gradient(adam.params(), &data.pixels_f32(indices.iter().copied()), share))
    }

    /// Adam for `model` (already on `device`): the flat one where it pays, on the CPU in wasm.
    fn for_model(model: &Autoencoder, device: &Device) -> Self {
        if cpu_in_wasm(device) {
            Optimizer::flat(model)
        } else {
            Optimizer::Burn(AdamConfig::new().with_epsilon(1e-8).init())
        }
    }
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
        // The CPU backend's generator is one for the whole process: two trainers made at once on
        // two threads (tests, a native pool) must not interleave their draws.
        static ONE_DRAW_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());
        let model = {
            let _drawing = ONE_DRAW_AT_A_TIME.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            let host = Device::flex();
            host.seed(config.seed);
            let model = config.model.init_with(config.latent, config.effective_code_activation(), &host).map_err(TrainError::Config)?;
            draw_initial_values(&model);
            model
        };
        Ok(Self::resume(config, model, device.clone(), train_len))
    }

    /// Continues training a model that was made or loaded elsewhere.
    pub fn resume(config: TrainingConfig, model: Autoencoder, device: Device, train_len: usize) -> Self {
        let device = device.autodiff();
        let model = model.to_device(&device).train();
        let optimizer = Optimizer::for_model(&model, &device);
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

    /// Where the next batch's image indices lie in `order`.
    fn next_batch(&self) -> std::ops::Range<usize> {
        let start = self.batch * self.config.batch_size;
        start..(start + self.config.batch_size).min(self.order.len())
    }

    /// One step on the next batch: forward, MSE, backward, Adam. Returns the loss as a tensor,
    /// unread, so that several steps can be read back at once.
    pub fn step_unread(&mut self, data: &MnistSet) -> Tensor<1> {
        assert_eq!(data.len(), self.order.len(), "the training set changed under the trainer");
        let batch = &self.order[self.next_batch()];
        if let Some((loss, gradient)) = self.optimizer.hand_written(data, batch, 1.0) {
            self.apply_gradients(&gradient).expect("the step's own gradient is the model's length");
            return Tensor::from_data(TensorData::new(vec![loss], [1]), &self.device);
        }
        let model = self.model.take().expect("the model is only taken during a step");
        let (loss, grads) = match self.cores_for(batch.len()) {
            #[cfg(not(target_arch = "wasm32"))]
            cores @ 2.. => split_loss_and_gradients(&model, data, batch, cores, &self.device),
            _ => loss_and_gradients(&model, data.batch(batch, &self.device)),
        };
        self.apply(model, grads);
        loss
    }

    /// Part `part` of `parts` of the next batch's step, for a step cut over copies of this
    /// trainer (the browser's workers, one thread each): that part's share of the batch's loss and
    /// of its gradient, flattened (see [`GradientShare`]). The batch is cut as
    /// [`split_loss_and_gradients`] cuts it, so the parts' shares add up to the whole batch's.
    /// Nothing changes until [`Trainer::apply_gradients`].
    pub async fn share_gradients(&mut self, data: &MnistSet, part: usize, parts: usize) -> Result<GradientShare, TrainError> {
        if parts == 0 || part >= parts {
            return Err(TrainError::Config(format!("part {part} of {parts}: parts are numbered from 0 to {parts} - 1")));
        }
        assert_eq!(data.len(), self.order.len(), "the training set changed under the trainer");
        let batch = &self.order[self.next_batch()];
        let part_len = batch.len().div_ceil(parts);
        let indices = batch.chunks(part_len).nth(part).unwrap_or(&[]);
        if indices.is_empty() {
            // A batch smaller than the number of parts: this part adds nothing.
            return Ok(GradientShare { loss: 0.0, gradients: vec![0.0; self.model().num_params()] });
        }
        let share = indices.len() as f32 / batch.len() as f32;
        if let Some((loss, gradients)) = self.optimizer.hand_written(data, indices, share) {
            return Ok(GradientShare { loss, gradients });
        }
        let (loss, grads) = share_of_loss_and_gradients(self.model(), data.batch(indices, &self.device), share);
        // The loss goes on the end of the gradients, so that one concatenation and one read take both.
        let mut parts = gradient_parts(self.model(), grads, &self.device.clone().without_autodiff());
        parts.push(loss);
        let mut values = read_floats(Tensor::cat(parts, 0)).await?;
        let loss = values.pop().expect("the loss was read with the gradients");
        Ok(GradientShare { loss, gradients: values })
    }

    /// Takes the step whose gradient is `gradients` (the sum of every part's
    /// [`GradientShare::gradients`], in parameter order) with Adam, and moves on to the next batch.
    pub fn apply_gradients(&mut self, gradients: &[f32]) -> Result<(), TrainError> {
        let expected = self.model().num_params();
        if gradients.len() != expected {
            return Err(TrainError::Config(format!("a gradient of this model has {expected} numbers, not {}", gradients.len())));
        }
        let model = self.model.take().expect("the model is only taken during a step");
        let model = match &mut self.optimizer {
            Optimizer::Flat(adam, step) => adam.step(self.config.learning_rate, gradients, model, &self.device, step.is_none()),
            Optimizer::Burn(adam) => {
                let grads = unflatten_gradients(&model, gradients, &self.device.clone().without_autodiff());
                adam.step(self.config.learning_rate, model, grads)
            }
        };
        self.advance(model);
        Ok(())
    }

    /// Takes the step cut into `shares` (every part's [`Trainer::share_gradients`], in part
    /// order): their gradients are added in that order, so every copy of a trainer given the same
    /// shares takes the same step to the bit. Returns the batch's loss, the parts' added likewise.
    pub fn apply_shares(&mut self, shares: Vec<GradientShare>) -> Result<f32, TrainError> {
        let mut shares = shares.into_iter();
        let first = shares.next().ok_or_else(|| TrainError::Config("a step needs at least one part".into()))?;
        // The sum grows in the first part's own numbers: no copy of a gradient per step.
        let (mut gradients, mut loss) = (first.gradients, first.loss);
        for share in shares {
            if share.gradients.len() != gradients.len() {
                return Err(TrainError::Config(format!("the parts' gradients differ in length: {} and {}", gradients.len(), share.gradients.len())));
            }
            gradients.iter_mut().zip(&share.gradients).for_each(|(sum, g)| *sum += g);
            loss += share.loss;
        }
        self.apply_gradients(&gradients)?;
        Ok(loss)
    }

    /// Adam's step with `grads`, and the counters moved on to the next batch (and epoch).
    fn apply(&mut self, model: Autoencoder, grads: GradientsParams) {
        let model = match &mut self.optimizer {
            Optimizer::Burn(adam) => adam.step(self.config.learning_rate, model, grads),
            Optimizer::Flat(adam, _) => {
                // The CPU's tensors are in memory: a synchronous read is a copy.
                let flat = Tensor::cat(gradient_parts(&model, grads, &self.device.clone().without_autodiff()), 0);
                let flat = flat.into_data().try_into_vec::<f32>().expect("f32 gradients");
                adam.step(self.config.learning_rate, &flat, model, &self.device, true)
            }
        };
        self.advance(model);
    }

    /// The model after a step, and the counters moved on to the next batch (and epoch).
    fn advance(&mut self, model: Autoencoder) {
        self.model = Some(model);
        self.steps += 1;
        self.batch += 1;
        if self.batch == self.batches_per_epoch() {
            self.batch = 0;
            self.epoch += 1;
            self.order = epoch_order(self.order.len(), self.config.seed, self.epoch);
        }
    }

    /// How many CPU cores a step of `images` images is spread over (see
    /// [`split_loss_and_gradients`]): one on a GPU and in the browser (one thread); natively on
    /// the CPU, for the conv model, every core of the pool while each keeps at least 8 images.
    /// The dense model stays on one: its step is a few small products whose cost is mostly per
    /// operation, which a split pays once per part. Measured with `bench` on 2 cores: conv about
    /// 3,400 -> 4,000 images/s split, dense about 11,000 -> 7,800.
    pub fn cores_for(&self, images: usize) -> usize {
        #[cfg(not(target_arch = "wasm32"))]
        if self.config.model == ModelKind::Conv && !crate::model::on_gpu(&self.device) {
            const MIN_IMAGES_PER_CORE: usize = 8;
            return rayon::current_num_threads().min(images / MIN_IMAGES_PER_CORE).max(1);
        }
        let _ = images;
        1
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

/// One part's share of a step cut over copies of a trainer ([`Trainer::share_gradients`]).
#[derive(Debug, Clone, PartialEq)]
pub struct GradientShare {
    /// The part's images' squared error, divided by the whole batch's pixel count: the parts'
    /// losses add up to the batch's mean squared error.
    pub loss: f32,
    /// The gradient of `loss` with respect to every parameter, flattened in the order the model's
    /// visitor meets them (row-major within each): the parts' gradients add up to the batch's.
    pub gradients: Vec<f32>,
}

/// Every parameter's gradient in `grads`, flattened, one tensor each on `device` in the model's
/// visitor order (zeros for a parameter without one, so that the layout depends on the model
/// alone): concatenated, the flat gradient that [`unflatten_gradients`] undoes.
pub(crate) fn gradient_parts(model: &Autoencoder, mut grads: GradientsParams, device: &Device) -> Vec<Tensor<1>> {
    struct Flatten<'a> {
        grads: &'a mut GradientsParams,
        device: &'a Device,
        parts: Vec<Tensor<1>>,
    }
    impl ModuleVisitor for Flatten<'_> {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            let len = param.lazy_shape().num_elements();
            let grad = match self.grads.remove::<D>(param.id) {
                Some(grad) => grad.reshape([len]),
                None => Tensor::zeros([len], self.device),
            };
            self.parts.push(grad);
        }
    }
    let mut visitor = Flatten { grads: &mut grads, device, parts: Vec::new() };
    model.visit(&mut visitor);
    visitor.parts
}

/// The concatenated [`gradient_parts`] undone: `flat` cut into the model's parameters' shapes,
/// on `device`.
fn unflatten_gradients(model: &Autoencoder, flat: &[f32], device: &Device) -> GradientsParams {
    struct Unflatten<'a> {
        flat: &'a [f32],
        device: &'a Device,
        grads: GradientsParams,
    }
    impl ModuleVisitor for Unflatten<'_> {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            let shape = param.lazy_shape();
            let (values, rest) = self.flat.split_at(shape.num_elements());
            self.flat = rest;
            self.grads.register(param.id, Tensor::<D>::from_data(TensorData::new(values.to_vec(), shape), self.device));
        }
    }
    let mut visitor = Unflatten { flat, device, grads: GradientsParams::new() };
    model.visit(&mut visitor);
    visitor.grads
}

/// Forward, mean squared error and backward over one batch: the loss (detached) and the
/// gradient of every parameter.
fn loss_and_gradients(model: &Autoencoder, images: Tensor<3>) -> (Tensor<1>, GradientsParams) {
    share_of_loss_and_gradients(model, images, 1.0)
}

/// [`loss_and_gradients`] of a part of a batch holding `share` of its images, both scaled by that
/// share, so that the parts' results add up to the batch's.
fn share_of_loss_and_gradients(model: &Autoencoder, images: Tensor<3>, share: f32) -> (Tensor<1>, GradientsParams) {
    if cpu_in_wasm(&images.device()) {
        fused_share_of_loss_and_gradients(model, images, share)
    } else {
        burns_share_of_loss_and_gradients(model, images, share)
    }
}

/// [`share_of_loss_and_gradients`] with burn's sigmoid and `MseLoss`: natively and on a GPU.
fn burns_share_of_loss_and_gradients(model: &Autoencoder, images: Tensor<3>, share: f32) -> (Tensor<1>, GradientsParams) {
    let reconstructions = model.forward(images.clone());
    let loss = MseLoss::new().forward(reconstructions, images, Reduction::Mean);
    // Scaling the loss, one number, scales every gradient on the way back for free.
    let loss = if share == 1.0 { loss } else { loss.mul_scalar(share) };
    let grads = GradientsParams::from_grads(loss.backward(), model);
    (loss.detach(), grads)
}

/// [`share_of_loss_and_gradients`] with the output sigmoid and the MSE as one pass over the
/// logits ([`sigmoid_mse`]), its gradient handed to burn's backward pass at the logits.
fn fused_share_of_loss_and_gradients(model: &Autoencoder, images: Tensor<3>, share: f32) -> (Tensor<1>, GradientsParams) {
    let [batch, _, _] = images.dims();
    let targets = images.clone().reshape([batch, IMAGE_PIXELS]);
    let (loss, surrogate) = sigmoid_mse::loss_and_surrogate(model.logits(images), targets, share);
    (loss, GradientsParams::from_grads(surrogate.backward(), model))
}

/// Whether `device` is the CPU backend in wasm, where training takes its own Adam ([`FlatAdam`])
/// and its own loss ([`sigmoid_mse`]): there burn's elementwise operations are scalar passes over
/// memory (its sigmoid's `exp` is libm's) and subnormal numbers cannot be flushed. Natively the
/// platform's `exp` is vectorised and FTZ/DAZ is set, and on a GPU the work stays on the device.
fn cpu_in_wasm(device: &Device) -> bool {
    cfg!(target_arch = "wasm32") && !crate::model::on_gpu(device)
}

/// The same loss and gradients as [`loss_and_gradients`] on the whole batch, computed on `cores`
/// threads at once. At the seed's batch of 32 no single operation of these models is big enough
/// for burn's CPU backend to spread over cores, so one step would use one core; cut into parts,
/// the batch uses them all. Each part runs on its own fork of the model (the same weights, its
/// own autodiff graph, so the backward passes do not contend for one graph's lock); the batch's
/// mean loss and its gradient are the sums of the parts', each weighted by its share of the images.
#[cfg(not(target_arch = "wasm32"))]
fn split_loss_and_gradients(
    model: &Autoencoder,
    data: &MnistSet,
    batch: &[usize],
    cores: usize,
    device: &Device,
) -> (Tensor<1>, GradientsParams) {
    use rayon::prelude::*;
    let part_len = batch.len().div_ceil(cores);
    let (losses, grads): (Vec<Tensor<1>>, Vec<GradientsParams>) = batch
        .par_chunks(part_len)
        .map(|part| {
            let share = part.len() as f32 / batch.len() as f32;
            share_of_loss_and_gradients(&model.clone().fork(device), data.batch(part, device), share)
        })
        .unzip();
    let loss = losses.into_iter().reduce(|a, b| a + b).expect("a batch has at least one image");
    (loss, sum_gradients(model, grads))
}

/// The sum of the parts' gradients, parameter by parameter.
#[cfg(not(target_arch = "wasm32"))]
fn sum_gradients(model: &Autoencoder, mut parts: Vec<GradientsParams>) -> GradientsParams {
    struct Sum<'a> {
        parts: &'a mut [GradientsParams],
        sum: GradientsParams,
    }
    impl ModuleVisitor for Sum<'_> {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            let sum = self.parts.iter_mut().filter_map(|grads| grads.remove::<D>(param.id)).reduce(|a, b| a + b);
            if let Some(sum) = sum {
                self.sum.register(param.id, sum);
            }
        }
    }
    let mut visitor = Sum { parts: &mut parts, sum: GradientsParams::new() };
    model.visit(&mut visitor);
    visitor.sum
}

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

#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::data::Mnist;

    impl Trainer {
        /// This trainer on the flat Adam and the hand-written step the browser's CPU backend
        /// uses, wherever it runs.
        fn with_flat_adam(mut self) -> Self {
            self.optimizer = Optimizer::flat(self.model());
            self
        }
    }

    /// The flat Adam takes burn's Adam's steps: the same losses over 50 steps (two epochs and a
    /// half of 70 images), both models, by the whole batch and by shares.
    #[test]
    fn the_flat_adam_steps_as_burns_adam() {
        let data = Mnist::load(Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/data/mnist"))).unwrap().test.take(70);
        let device = Device::flex();
        let read = |t: Tensor<1>| t.into_data().try_into_vec::<f32>().unwrap()[0];
        for kind in ModelKind::ALL {
            let config = || TrainingConfig::new(kind).with_seed(5).with_learning_rate(3e-3);
            let mut burns = Trainer::new(config(), &device, data.len()).unwrap();
            // The same weights, copied: a second seeded draw could interleave with another test's.
            let copy = || Trainer::resume(config(), burns.inference_model(), device.clone(), data.len()).with_flat_adam();
            let (mut flat, mut shared) = (copy(), copy());
            let mut first = None;
            for step in 0..50 {
                let expected = read(burns.step_unread(&data));
                first.get_or_insert(expected);
                let got = read(flat.step_unread(&data));
                let shares: Vec<GradientShare> = (0..2).map(|p| pollster::block_on(shared.share_gradients(&data, p, 2)).unwrap()).collect();
                let in_shares = shared.apply_shares(shares).unwrap();
                for (name, loss) in [("flat", got), ("flat, in shares", in_shares)] {
                    assert!((loss - expected).abs() <= 1e-3 * expected, "{kind} step {step}: burn's Adam {expected}, {name} {loss}");
                }
            }
            let (first, last) = (first.unwrap(), read(flat.step_unread(&data)));
            assert!(last < 0.7 * first, "{kind}: the flat Adam trains: {first} -> {last}");
        }
    }

    /// A step cut into parts, as the browser's workers take it: the parts' losses and flat
    /// gradients add up to the whole batch's, the same part gives the same numbers twice, and a
    /// trainer stepped with the summed gradients follows one stepped whole.
    #[test]
    fn a_step_taken_in_shares_is_the_step_taken_whole() {
        let data = Mnist::load(Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/data/mnist"))).unwrap().test.take(70);
        let device = Device::flex();
        let read = |t: Tensor<1>| t.into_data().try_into_vec::<f32>().unwrap()[0];
        let share = |t: &mut Trainer, part, parts| pollster::block_on(t.share_gradients(&data, part, parts)).unwrap();
        for kind in ModelKind::ALL {
            let mut whole = Trainer::new(TrainingConfig::new(kind).with_seed(3), &device, data.len()).unwrap();
            // The same weights, copied: a second seeded draw could interleave with another test's.
            let mut cut = Trainer::resume(TrainingConfig::new(kind).with_seed(3), whole.inference_model(), device.clone(), data.len());
            // Three steps: two full batches of 32 and the epoch's last, of 6 images, which leaves
            // one of the four parts empty.
            for step in 0..3 {
                let one = share(&mut cut, 0, 1);
                let parts = 4;
                let shares: Vec<GradientShare> = (0..parts).map(|p| share(&mut cut, p, parts)).collect();
                assert_eq!(share(&mut cut, 1, parts), shares[1], "{kind} step {step}: a part's share differs the second time");
                let loss: f32 = shares.iter().map(|s| s.loss).sum();
                assert!((loss - one.loss).abs() <= 1e-4 * one.loss, "{kind} step {step}: loss {} whole vs {loss} in parts", one.loss);
                let mut sum = vec![0f32; one.gradients.len()];
                for s in &shares {
                    assert_eq!(s.gradients.len(), sum.len());
                    sum.iter_mut().zip(&s.gradients).for_each(|(t, g)| *t += g);
                }
                let scale = one.gradients.iter().fold(0f32, |m, g| m.max(g.abs()));
                let worst = one.gradients.iter().zip(&sum).fold(0f32, |m, (a, b)| m.max((a - b).abs()));
                assert!(scale > 0.0 && worst <= 1e-3 * scale, "{kind} step {step}: gradients differ by {worst} (largest {scale})");

                // The step from the shares: the loss is theirs added in part order, bit for bit.
                assert_eq!(cut.apply_shares(shares).unwrap(), loss);
                let whole_loss = read(whole.step_unread(&data));
                assert!((whole_loss - one.loss).abs() <= 1e-4 * one.loss, "{kind} step {step}: {whole_loss} vs {}", one.loss);
                assert_eq!((cut.epoch(), cut.batch(), cut.steps()), (whole.epoch(), whole.batch(), whole.steps()));
            }
            assert_eq!(cut.epoch(), 1, "{kind}: 70 images in batches of 32 are one epoch of 3 steps");
            let next = share(&mut cut, 0, 1).loss;
            let whole_next = read(whole.step_unread(&data));
            assert!((next - whole_next).abs() <= 1e-3 * whole_next, "{kind}: after 3 steps {next} vs {whole_next}");

            let err = cut.apply_gradients(&[0.0; 5]).unwrap_err().to_string();
            assert!(err.contains("not 5"), "{kind}: {err}");
            let short = GradientShare { loss: 0.0, gradients: vec![0.0; 5] };
            let first = share(&mut cut, 0, 2);
            assert!(cut.apply_shares(vec![first, short]).is_err(), "{kind}: parts of unequal length are refused");
            assert!(cut.apply_shares(Vec::new()).is_err(), "{kind}: a step of no parts is refused");
            assert_eq!(cut.steps(), 3, "{kind}: a refused step changes nothing");
            assert!(pollster::block_on(cut.share_gradients(&data, 2, 2)).is_err(), "{kind}: part 2 of 2 is refused");
        }
    }

    /// The fused sigmoid and MSE that the CPU trains with in the browser gives every parameter
    /// the gradient, and the batch the loss, of burn's own sigmoid and `MseLoss`.
    #[test]
    fn the_fused_loss_has_the_loss_and_gradients_of_burns() {
        let data = Mnist::load(Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/data/mnist"))).unwrap().test.take(32);
        let batch: Vec<usize> = (0..32).collect();
        let device = Device::flex().autodiff();
        let loss = |t: Tensor<1>| t.into_data().try_into_vec::<f32>().unwrap()[0];
        for kind in ModelKind::ALL {
            let host = Device::flex();
            host.seed(11);
            let model = kind.init(None, &host).to_device(&device).train();
            for share in [1.0, 0.25] {
                let images = || data.batch(&batch, &device);
                let (burns_loss, burns) = burns_share_of_loss_and_gradients(&model, images(), share);
                let burns_loss = loss(burns_loss);
                let (fused_loss, fused) = fused_share_of_loss_and_gradients(&model, images(), share);
                let fused_loss = loss(fused_loss);
                assert!((burns_loss - fused_loss).abs() <= 1e-5 * burns_loss, "{kind}: loss {burns_loss} vs fused {fused_loss}");
                assert_same_gradients(&model, &burns, &fused, 1e-4);
            }
        }
    }

    /// Every weight and bias of `model` has the same gradient in `a` and `b`, within `tolerance`
    /// of the largest.
    fn assert_same_gradients(model: &Autoencoder, a: &GradientsParams, b: &GradientsParams, tolerance: f32) {
        struct Compare<'a>(&'a GradientsParams, &'a GradientsParams, f32, usize);
        impl ModuleVisitor for Compare<'_> {
            fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
                let values = |grads: &GradientsParams| grads.get::<D>(param.id).unwrap().into_data().try_into_vec::<f32>().unwrap();
                let (a, b) = (values(self.0), values(self.1));
                let scale = a.iter().fold(0f32, |m, g| m.max(g.abs()));
                let worst = a.iter().zip(&b).fold(0f32, |m, (x, y)| m.max((x - y).abs()));
                assert!(worst <= self.2 * scale, "gradient of {:?} differs by {worst} (largest {scale})", param.id);
                self.3 += 1;
            }
        }
        let mut compare = Compare(a, b, tolerance, 0);
        model.visit(&mut compare);
        assert!(compare.3 >= 12, "{}: every weight and bias compared, {} were", model.kind(), compare.3);
    }

    /// Cutting a batch over cores changes the order of some sums and nothing else: the loss and
    /// every parameter's gradient are those of the whole batch, also for parts of unequal size.
    #[test]
    fn a_batch_cut_over_cores_has_the_loss_and_gradients_of_the_whole() {
        let data = Mnist::load(Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/data/mnist"))).unwrap().test.take(37);
        let batch: Vec<usize> = (0..37).collect();
        let device = Device::flex().autodiff();
        for kind in ModelKind::ALL {
            let host = Device::flex();
            host.seed(7);
            let model = kind.init(None, &host).to_device(&device).train();
            let (whole_loss, whole) = loss_and_gradients(&model, data.batch(&batch, &device));
            let (split_loss, split) = split_loss_and_gradients(&model, &data, &batch, 3, &device);
            let loss = |t: Tensor<1>| t.into_data().try_into_vec::<f32>().unwrap()[0];
            let (whole_loss, split_loss) = (loss(whole_loss), loss(split_loss));
            // f32 sums over ~29,000 pixels in another order differ by about 1e-5 relative; a
            // part weighted wrongly would be off by a tenth or more.
            assert!((whole_loss - split_loss).abs() <= 1e-4 * whole_loss, "{kind}: loss {whole_loss} vs {split_loss}");

            assert_same_gradients(&model, &whole, &split, 1e-3);
        }
    }
}
