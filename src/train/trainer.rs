//! The [`Trainer`]: a model, its optimizer and where the run stands in the data; a step taken
//! whole on one device, or cut into shares over copies of the trainer (the page's workers) and
//! taken from their summed gradients. Which step runs is the optimizer's ([`Optimizer`]): burn's
//! autodiff and Adam, the CPU's hand-written step in wasm, or the GPU's hand-written step for
//! either model on wgpu (the page's WebGPU, and `--device wgpu` natively).

use burn::module::{ModuleVisitor, Param};
use burn::optim::{AdamConfig, GradientsParams, ModuleOptimizer};
use burn::prelude::*;

use super::loss::{cpu_in_wasm, loss_and_gradients, share_of_loss_and_gradients};
#[cfg(not(target_arch = "wasm32"))]
use super::loss::split_loss_and_gradients;
use super::{TrainError, TrainingConfig, read_floats};
use crate::cpu_step::CpuStep;
use crate::cpu_step::flat_adam::FlatAdam;
use crate::data::{MnistSet, epoch_order};
use crate::model::Autoencoder;
#[cfg(not(target_arch = "wasm32"))]
use crate::model::ModelKind;
#[cfg(feature = "webgpu")]
use crate::gpu_step::GpuStep;
#[cfg(feature = "webgpu")]
use crate::model::on_gpu;
#[cfg(feature = "webgpu")]
use crate::params::{flat_params, param_parts};
use crate::params::{gradient_parts, unflatten_gradients};

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
///
/// Or, for either model on a wgpu device, the hand-written GPU step ([`GpuStep`]), which holds
/// the parameters and Adam's moments on the GPU: burn's model is then only the architecture until
/// [`Trainer::inference_model`] writes the step's parameters back into a copy. Its first
/// parameters are the model's: read on the CPU where the model came from there (a fresh one
/// always does), or else at the first [`Trainer::run`], since a browser can read them from the
/// GPU only asynchronously.
enum Optimizer {
    Burn(ModuleOptimizer),
    Flat(FlatAdam, Option<CpuStep>),
    #[cfg(feature = "webgpu")]
    Gpu(Option<Box<GpuStep>>),
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

    /// Adam for `model` (already on `device`): the flat one where it pays, on the CPU in wasm;
    /// the GPU step's on a wgpu device; burn's elsewhere (natively on the CPU, and on other
    /// GPU backends).
    fn for_model(model: &Autoencoder, device: &Device) -> Self {
        if cpu_in_wasm(device) {
            return Optimizer::flat(model);
        }
        #[cfg(feature = "webgpu")]
        if GpuStep::covers(model, device) {
            return Optimizer::Gpu(None);
        }
        Optimizer::Burn(AdamConfig::new().with_epsilon(1e-8).init())
    }

    /// Whether the GPU step takes this trainer's steps.
    fn on_gpu_step(&self) -> bool {
        #[cfg(feature = "webgpu")]
        if let Optimizer::Gpu(_) = self {
            return true;
        }
        false
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
        // The GPU step's first parameters, read while the model is on the CPU: read from the GPU
        // at the first step, they would cost a round trip and, in a browser, the compiling of
        // burn's kernels to gather them (a few hundred ms on a software adapter).
        #[cfg(feature = "webgpu")]
        let host_params = (GpuStep::covers(&model, &device) && !model.devices().iter().any(on_gpu)).then(|| flat_params(&model));
        let model = model.to_device(&device).train();
        #[allow(unused_mut)] // without the `webgpu` feature nothing changes it
        let mut optimizer = Optimizer::for_model(&model, &device);
        #[cfg(feature = "webgpu")]
        if let (Optimizer::Gpu(step @ None), Some(params)) = (&mut optimizer, host_params) {
            *step = GpuStep::new(&model, &params, &device).map(Box::new);
        }
        let order = epoch_order(train_len, config.seed, 0);
        Self { config, model: Some(model), optimizer, device, order, epoch: 0, batch: 0, steps: 0 }
    }

    pub fn config(&self) -> &TrainingConfig {
        &self.config
    }

    /// The model's architecture, and its parameters as of the last step except where the GPU
    /// step takes the steps (it holds them on the GPU): [`Self::inference_model`] has them always.
    pub fn model(&self) -> &Autoencoder {
        self.model.as_ref().expect("the model is only taken during a step")
    }

    /// The model as of the last step, without autodiff, for evaluation, inference and saving.
    /// Where the GPU step takes the steps, its parameters are read back (the one read of them,
    /// hence async) and written into a copy of burn's model.
    pub async fn inference_model(&self) -> Result<Autoencoder, TrainError> {
        #[cfg(feature = "webgpu")]
        if let Optimizer::Gpu(Some(step)) = &self.optimizer {
            let device = self.device.clone().without_autodiff();
            return step.write_into(self.model().valid(), &device, false).await.map_err(TrainError::Device);
        }
        Ok(self.model().valid())
    }

    /// Compiles the next of the GPU step's kernels for this trainer's batches, running nothing
    /// ([`GpuStep::compile_next`]): whether there was one left; `false` without the GPU step.
    #[cfg(feature = "webgpu")]
    pub fn compile_next_kernel(&mut self) -> bool {
        let batch = self.config.batch_size;
        match &mut self.optimizer {
            Optimizer::Gpu(Some(step)) => step.compile_next(batch),
            _ => false,
        }
    }

    /// The training images changed on the host (the page cleared them or loaded more): the GPU
    /// step lets go of the copy it holds and takes the images anew at its next call, as the other
    /// steps read them at every step.
    pub fn training_set_changed(&mut self) {
        #[cfg(feature = "webgpu")]
        if let Optimizer::Gpu(Some(step)) = &mut self.optimizer {
            step.release_set();
        }
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

    /// One step on the next batch by burn's or the CPU's step (the GPU step's are taken in
    /// [`Self::run_gpu_steps`]): forward, MSE, backward, Adam. Returns the loss as a tensor,
    /// unread, so that several steps can be read back at once.
    fn step_unread(&mut self, data: &MnistSet) -> Tensor<1> {
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
        self.refuse_shares_on_gpu_step()?;
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
        self.refuse_shares_on_gpu_step()?;
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
            #[cfg(feature = "webgpu")]
            Optimizer::Gpu(_) => unreachable!("refused above"),
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
            #[cfg(feature = "webgpu")]
            Optimizer::Gpu(_) => unreachable!("the GPU step's steps are taken in run_gpu_steps"),
        };
        self.advance(model);
    }

    /// A step cut over copies of the trainer is the page's CPU workers' way; the GPU step takes
    /// a batch whole and keeps its parameters on the GPU.
    fn refuse_shares_on_gpu_step(&self) -> Result<(), TrainError> {
        if self.optimizer.on_gpu_step() {
            return Err(TrainError::Config("a step cut into parts is for the CPU backend: this model trains on the GPU's own step".into()));
        }
        Ok(())
    }

    /// The model after a step, and the counters moved on to the next batch (and epoch).
    fn advance(&mut self, model: Autoencoder) {
        self.model = Some(model);
        self.next_batch_counters();
    }

    /// The counters moved on to the next batch (and epoch).
    fn next_batch_counters(&mut self) {
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

    /// Up to `max_steps` steps, never past the end of the current epoch (nor, on the GPU step,
    /// past what a call of its batches holds: [`GpuStep::steps_that_fit`]); returns each step's
    /// loss.
    /// The losses are read back once, at the end, so the device is not stalled after every step.
    pub async fn run(&mut self, data: &MnistSet, max_steps: usize) -> Result<Vec<f32>, TrainError> {
        let steps = max_steps.min(self.batches_per_epoch() - self.batch);
        if steps == 0 {
            return Ok(Vec::new());
        }
        #[cfg(feature = "webgpu")]
        if self.optimizer.on_gpu_step() {
            return self.run_gpu_steps(data, steps).await;
        }
        let losses: Vec<Tensor<1>> = (0..steps).map(|_| self.step_unread(data)).collect();
        read_floats(Tensor::cat(losses, 0)).await
    }

    /// `steps` steps of the GPU step (none past the epoch's end, and no more than its call's
    /// buffers hold at this batch), all launched before their losses are read, in one read: the
    /// step made first if this is the first call.
    #[cfg(feature = "webgpu")]
    async fn run_gpu_steps(&mut self, data: &MnistSet, steps: usize) -> Result<Vec<f32>, TrainError> {
        assert_eq!(data.len(), self.order.len(), "the training set changed under the trainer");
        // A call of big batches takes fewer steps, so that its images fit a GPU buffer.
        let steps = steps.min(GpuStep::steps_that_fit(self.config.batch_size));
        if let Optimizer::Gpu(None) = self.optimizer {
            let params = read_floats(Tensor::cat(param_parts(self.model()), 0)).await?;
            let step = GpuStep::new(self.model(), &params, &self.device)
                .ok_or_else(|| TrainError::Config("the GPU step does not fit this model's parameters".into()))?;
            self.optimizer = Optimizer::Gpu(Some(Box::new(step)));
        }
        let Optimizer::Gpu(Some(step)) = &mut self.optimizer else { unreachable!("made above") };
        // The training set goes to the GPU once; each call then writes its images' indices.
        if step.held_images() != Some(data.len()) {
            step.hold_set(data);
        }
        let size = self.config.batch_size;
        let batches: Vec<&[usize]> = (self.batch..self.batch + steps).map(|b| &self.order[b * size..((b + 1) * size).min(self.order.len())]).collect();
        let losses = step.launch_held_steps(&batches, self.config.learning_rate).map_err(TrainError::Device)?;
        // The parameters move on the GPU as the launches run; the counters move with them.
        (0..steps).for_each(|_| self.next_batch_counters());
        let Optimizer::Gpu(Some(step)) = &self.optimizer else { unreachable!("made above") };
        step.read_losses(losses, steps).await.map_err(TrainError::Device)
    }
}

/// One part's share of a step cut over copies of a trainer ([`Trainer::share_gradients`]).
#[derive(Debug, Clone, PartialEq)]
pub struct GradientShare {
    /// The part's images' squared error, divided by the whole batch's pixel count: the parts'
    /// losses add up to the batch's mean squared error.
    pub loss: f32,
    /// The gradient of `loss` with respect to every parameter, in the flat layout of
    /// [`crate::params`]: the parts' gradients add up to the batch's.
    pub gradients: Vec<f32>,
}

#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::data::Mnist;
    use crate::model::ModelKind;

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
            let copy = || Trainer::resume(config(), pollster::block_on(burns.inference_model()).unwrap(), device.clone(), data.len()).with_flat_adam();
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
            let mut cut = Trainer::resume(TrainingConfig::new(kind).with_seed(3), pollster::block_on(whole.inference_model()).unwrap(), device.clone(), data.len());
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
}
