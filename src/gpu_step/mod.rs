//! A training step written for the GPU by hand, in few launches: the dense model's forward pass,
//! fused sigmoid-MSE loss, backward pass and Adam, as CubeCL kernels ([`kernels`]) launched on the
//! cubecl runtime under burn-wgpu (the browser's WebGPU, or Vulkan, Metal, DX12 natively).
//!
//! burn's autodiff on a GPU launches a kernel per tensor operation: 98 a step for the dense model
//! (with fusion), and each costs the host tens of microseconds to record and submit however fast
//! the GPU is. Here a step is one launch per layer forward (the last with the loss), one per
//! layer backward (weight, bias and input gradients in one), and one Adam over every parameter:
//! 17 for the dense model's 8 layers. The parameters, Adam's moments and the gradient are each
//! one buffer in [`crate::params`]' flat layout, as the CPU's step ([`crate::cpu_step`]) keeps
//! them; a step's loss stays on the GPU, and a call's losses come back in one read.
//!
//! The trainer takes its steps for the dense model on any wgpu device ([`crate::train::Trainer`]:
//! the page's WebGPU, `--device wgpu` natively), made at its first call from burn's model's
//! parameters, and writes them back into burn's model when the model is read (evaluation,
//! reconstructions, the model file, the predictors). The conv model trains with burn's autodiff.
//! The tests check the step against burn's autodiff (loss and every gradient), against the flat
//! Adam, the model written back from it against the step, and a trainer on it against burn's
//! trainer on the CPU; `bench --device wgpu --gpu-step` times the step alone natively.

mod kernels;

use burn::backend::DispatchDevice;
use burn::cubecl;
use burn::prelude::*;
use cubecl::prelude::*;
use cubecl::server::Handle;

use crate::data::IMAGE_PIXELS;
use crate::model::{Autoencoder, CodeActivation};
#[cfg(not(target_arch = "wasm32"))]
use crate::params::flat_params;
use crate::params::write_params;
use kernels::{ADAM_PER_UNIT, ADAM_UNITS, UNITS, tiles};

/// Adam's constants, as the trainer's burn Adam and [`crate::cpu_step::flat_adam`] have them.
const BETA_1: f32 = 0.9;
const BETA_2: f32 = 0.999;
const EPSILON: f32 = 1e-8;

/// Kernels a dense step launches: one per layer forward (the last with the loss), one per
/// layer backward, and Adam.
pub const LAUNCHES_PER_DENSE_STEP: usize = 8 + 8 + 1;

/// The tasks (launches and uploads) cubecl's wgpu runtime records before it submits them, set
/// where each wgpu device is made (the page's, `--device wgpu`, the tests'). Its default, 32,
/// cut a call into a submit every 32 tasks, about two a dense step; this holds the page's largest
/// call (16 steps of [`LAUNCHES_PER_DENSE_STEP`] and one upload of their images) whole, so a
/// call's work reaches the queue in one submit, and the read of its losses adds the copy's.
/// Natively cubecl also waits for the GPU after every 512 submitted tasks, so nothing piles up.
pub const TASKS_PER_SUBMIT: usize = 512;

/// The dense model's step on a wgpu device: the parameters and Adam's state live on the GPU.
pub struct GpuStep {
    client: Client,
    /// The layers' widths, input first: `[784, 128, 64, 12, 3, 12, 64, 128, 784]`.
    widths: Vec<usize>,
    /// Where each layer's weight starts in the flat parameters (its bias follows the weight).
    offsets: Vec<usize>,
    code_relu: bool,
    count: usize,
    params: Handle,
    moment_1: Handle,
    moment_2: Handle,
    grads: Handle,
    /// Adam's step count, for its bias corrections.
    time: i32,
    /// The batch the activation buffers are sized for, and the buffers: each layer's output
    /// (the next layer's input), each layer's output gradient, the squared errors summed a tile
    /// of the last layer at a time. The images are the first layer's input, uploaded with each
    /// call.
    batch: usize,
    outputs: Vec<Handle>,
    output_grads: Vec<Handle>,
    partials: Option<Handle>,
    /// One float, bound where a kernel's input or output goes unused.
    unused: Handle,
}

/// The wgpu device under `device` (with or without autodiff), if it is one.
fn wgpu_device(device: &Device) -> Option<cubecl::wgpu::WgpuDevice> {
    match device.clone().inner().as_dispatch() {
        DispatchDevice::Cube(cubecl::Device::Wgpu(wgpu)) => Some(wgpu.clone()),
        _ => None,
    }
}

fn floats(bytes: &[u8]) -> Vec<f32> {
    bytes.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect()
}

fn bytes(values: &[f32]) -> &[u8] {
    // SAFETY: f32 has no padding and any alignment of u8 fits; the length is exact.
    unsafe { std::slice::from_raw_parts(values.as_ptr().cast::<u8>(), std::mem::size_of_val(values)) }
}

/// Workgroups of `per_group` units for `units` units.
fn groups(units: usize, per_group: u32) -> CubeCount {
    CubeCount::Static(units.div_ceil(per_group as usize).max(1) as u32, 1, 1)
}

/// Workgroups of [`UNITS`] for `units` units, one a unit.
fn cubes(units: usize) -> CubeCount {
    groups(units, UNITS)
}

/// A kernel argument over the whole of `handle`, `len` floats.
fn arg(handle: &Handle, len: usize) -> BufferArg {
    // SAFETY: every handle here was made for `len` f32s (`GpuStep::buffer` or `upload`).
    unsafe { BufferArg::from_raw_parts(handle.clone(), len) }
}

impl GpuStep {
    /// The step for `model` on `device`, natively, its parameters read from `model` once, here
    /// ([`Self::new`] says when there is none).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn for_model(model: &Autoencoder, device: &Device) -> Option<Self> {
        Self::new(model, &flat_params(model), device)
    }

    /// Whether [`Self::new`] makes a step for `model` on `device`: the dense model (either code
    /// activation) on a wgpu device.
    pub fn covers(model: &Autoencoder, device: &Device) -> bool {
        matches!(model, Autoencoder::Dense(_)) && wgpu_device(device).is_some()
    }

    /// The step for `model`'s architecture on `device`, starting from `params` (the model's
    /// parameters in the flat layout; in a browser they can only be read asynchronously, so the
    /// caller reads them): `None` unless the model is the dense one, the device a wgpu one and
    /// `params` as many as the model has.
    pub fn new(model: &Autoencoder, params: &[f32], device: &Device) -> Option<Self> {
        let Autoencoder::Dense(dense) = model else { return None };
        let client = cubecl::Device::Wgpu(wgpu_device(device)?).client();
        let mut widths = dense.widths();
        widths.extend(widths.clone().iter().rev().skip(1));
        let mut offsets = Vec::new();
        let mut at = 0;
        for w in widths.windows(2) {
            offsets.push(at);
            at += w[0] * w[1] + w[1];
        }
        if at != model.num_params() || params.len() != at {
            return None;
        }
        let zeros = vec![0.0f32; params.len()];
        Some(Self {
            params: client.create_from_slice(bytes(params)),
            moment_1: client.create_from_slice(bytes(&zeros)),
            moment_2: client.create_from_slice(bytes(&zeros)),
            grads: client.create_from_slice(bytes(&zeros)),
            widths,
            offsets,
            code_relu: dense.code_activation() == CodeActivation::Relu,
            count: at,
            time: 0,
            batch: 0,
            outputs: Vec::new(),
            output_grads: Vec::new(),
            partials: None,
            unused: client.empty(4),
            client,
        })
    }

    fn layers(&self) -> usize {
        self.offsets.len()
    }

    /// Whether layer `l`'s output goes through a ReLU: all but the last, and the code's only
    /// with a ReLU code.
    fn relu_after(&self, l: usize) -> bool {
        let code = self.widths.len() / 2 - 1;
        l + 1 < self.layers() && (l != code || self.code_relu)
    }

    /// Sizes the activation buffers for `batch` images, when it changes.
    fn buffers_for(&mut self, batch: usize) {
        if self.batch == batch {
            return;
        }
        let client = &self.client;
        self.outputs = self.widths[1..self.layers()].iter().map(|w| client.empty(batch * w * 4)).collect();
        self.output_grads = self.widths[1..].iter().map(|w| client.empty(batch * w * 4)).collect();
        self.partials = Some(client.empty(tiles(batch, IMAGE_PIXELS) * 4));
        self.batch = batch;
    }

    /// Layer `l`'s input for `batch` images as a kernel argument, and where in it they start:
    /// for the first layer the images (`images`: the call's upload, its length in floats, and
    /// where this step's images start in it), for the others the layer before's output.
    fn layer_input(&self, l: usize, batch: usize, images: (&Handle, usize, usize)) -> (BufferArg, u32) {
        let (handle, len, at) = images;
        match l {
            0 => (arg(handle, len), at as u32),
            _ => (arg(&self.outputs[l - 1], batch * self.widths[l]), 0),
        }
    }

    /// Launches the forward pass, the loss and the backward pass for `batch` images, the
    /// `batch * 784` numbers at `at` in `images` (of `len` floats, all in [0, 1]), scored as
    /// `scale` of a batch: the flat gradient is left in `grads`, the squared errors in
    /// `partials`, a sum per tile of the last layer. The images of a call's steps are one
    /// upload, each step's at its own place in it: an upload after launches makes cubecl submit
    /// them first.
    fn launch_gradient(&mut self, images: &Handle, len: usize, at: usize, batch: usize, scale: f32) {
        assert!(batch > 0, "a step needs images");
        self.buffers_for(batch);
        let images = (images, len, at);
        for l in 0..self.layers() {
            self.launch_forward(l, batch, images, scale);
        }
        for l in (0..self.layers()).rev() {
            self.launch_backward(l, batch, images);
        }
    }

    /// Layer `l`'s forward launch (the last layer's with the loss, scored as `scale`), for the
    /// images of [`Self::launch_gradient`].
    fn launch_forward(&self, l: usize, batch: usize, images: (&Handle, usize, usize), scale: f32) {
        let n = self.count;
        let (i, o) = (self.widths[l], self.widths[l + 1]);
        let (x, x_at) = self.layer_input(l, batch, images);
        let partials = arg(self.partials.as_ref().expect("sized"), tiles(batch, o));
        let last = l + 1 == self.layers();
        // A hidden layer reads no targets: a stand-in is bound (not the images, which its input
        // may be: cubecl declares every buffer writable, and WebGPU refuses a writable buffer
        // bound twice in one launch).
        let (targets, targets_at, y) = match last {
            true => (arg(images.0, images.1), images.2 as u32, arg(&self.output_grads[l], batch * o)),
            false => (arg(&self.unused, 1), 0, arg(&self.outputs[l], batch * o)),
        };
        kernels::layer_forward::launch(
            &self.client,
            cubes(tiles(batch, o)),
            CubeDim::new_1d(UNITS),
            x,
            arg(&self.params, n),
            targets,
            y,
            partials,
            batch as u32,
            i as u32,
            o as u32,
            self.offsets[l] as u32,
            x_at,
            targets_at,
            2.0 * scale / (batch * o) as f32,
            self.relu_after(l) as u32,
            last as u32,
        );
    }

    /// Layer `l`'s backward launch: its weight and bias gradients, and its input's gradient
    /// but for the first layer.
    fn launch_backward(&self, l: usize, batch: usize, images: (&Handle, usize, usize)) {
        let n = self.count;
        let (i, o) = (self.widths[l], self.widths[l + 1]);
        let input_grad = l > 0;
        let units = tiles(i, o) + o + if input_grad { tiles(batch, i) } else { 0 };
        let (x, x_at) = self.layer_input(l, batch, images);
        // The first layer has no input gradient: its `gx` is a stand-in, never written (a
        // buffer bound twice in one launch, once writable, is an error in WebGPU).
        let gx = if input_grad { arg(&self.output_grads[l - 1], batch * i) } else { arg(&self.unused, 1) };
        kernels::layer_backward::launch(
            &self.client,
            cubes(units),
            CubeDim::new_1d(UNITS),
            x,
            arg(&self.params, n),
            arg(&self.output_grads[l], batch * o),
            arg(&self.grads, n),
            gx,
            batch as u32,
            i as u32,
            o as u32,
            self.offsets[l] as u32,
            x_at,
            input_grad as u32,
            (input_grad && self.relu_after(l - 1)) as u32,
        );
    }

    /// Each launch of a step on `pixels` timed alone, natively (`bench --gpu-step --kernels`):
    /// its name and the milliseconds one launch took, the mean of `repeats` launched back to back
    /// and waited for. A step runs first, so that every buffer holds what a step leaves in it.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn kernel_times(&mut self, pixels: &[f32], repeats: usize) -> Vec<(String, f64)> {
        let losses = self.launch_steps(&[pixels.to_vec()], 1e-3);
        let (images, len) = self.upload(&[pixels.to_vec()]);
        let batch = len / IMAGE_PIXELS;
        let images = (&images, len, 0);
        let client = self.client.clone();
        let time = |launch: &mut dyn FnMut()| {
            let sync = || pollster::block_on(client.sync()).expect("the GPU finished");
            launch();
            sync();
            let started = std::time::Instant::now();
            (0..repeats).for_each(|_| launch());
            sync();
            1000.0 * started.elapsed().as_secs_f64() / repeats as f64
        };
        let width = |l: usize| format!("{}-{}", self.widths[l], self.widths[l + 1]);
        let mut times = Vec::new();
        for l in 0..self.layers() {
            times.push((format!("forward {}", width(l)), time(&mut || self.launch_forward(l, batch, images, 1.0))));
        }
        for l in (0..self.layers()).rev() {
            times.push((format!("backward {}", width(l)), time(&mut || self.launch_backward(l, batch, images))));
        }
        times.push(("adam".to_string(), time(&mut || self.launch_adam(1e-3, batch, 1.0, &losses, 1, 0))));
        times
    }

    /// Launches Adam with the gradient of the last [`Self::launch_gradient`], and the sum of its
    /// squared errors into `losses[slot]`.
    fn launch_adam(&mut self, lr: f64, batch: usize, scale: f32, losses: &Handle, slots: usize, slot: usize) {
        self.time += 1;
        // burn's `AdaptiveMomentum::transform`: the bias corrections folded into two factors.
        let bias_correction_2_sqrt = (1.0 - BETA_2.powi(self.time)).sqrt();
        let factor = bias_correction_2_sqrt / (1.0 - BETA_1.powi(self.time));
        let n = self.count;
        let partials = tiles(batch, IMAGE_PIXELS);
        kernels::adam::launch(
            &self.client,
            groups(n.div_ceil(ADAM_PER_UNIT), ADAM_UNITS),
            CubeDim::new_1d(ADAM_UNITS),
            arg(&self.params, n),
            arg(&self.grads, n),
            arg(&self.moment_1, n),
            arg(&self.moment_2, n),
            arg(self.partials.as_ref().expect("a gradient was launched"), partials),
            arg(losses, slots),
            n as u32,
            partials as u32,
            slot as u32,
            scale / (batch * IMAGE_PIXELS) as f32,
            factor,
            EPSILON * bias_correction_2_sqrt,
            lr as f32,
        );
    }

    /// One training step per batch of `batches` (each `n` images of 784 numbers in [0, 1]) at
    /// learning rate `lr`, all launched before anything is read; then their losses, in one read.
    pub async fn steps(&mut self, batches: &[Vec<f32>], lr: f64) -> Result<Vec<f32>, String> {
        let losses = self.launch_steps(batches, lr);
        self.read_losses(losses, batches.len()).await
    }

    /// [`Self::steps`]' launches alone: the losses' buffer, to read with [`Self::read_losses`].
    /// What this takes is what a step costs the host, however fast the GPU.
    pub fn launch_steps(&mut self, batches: &[Vec<f32>], lr: f64) -> Handle {
        let losses = self.client.empty(batches.len().max(1) * 4);
        if batches.is_empty() {
            return losses;
        }
        let (images, len) = self.upload(batches);
        let mut at = 0;
        for (slot, pixels) in batches.iter().enumerate() {
            let batch = pixels.len() / IMAGE_PIXELS;
            self.launch_gradient(&images, len, at, batch, 1.0);
            self.launch_adam(lr, batch, 1.0, &losses, batches.len(), slot);
            at += pixels.len();
        }
        losses
    }

    /// Uploads `batches` (whole images each) one after another in one buffer, before anything
    /// is launched: its handle and length in floats.
    fn upload(&self, batches: &[Vec<f32>]) -> (Handle, usize) {
        assert!(batches.iter().all(|b| b.len() % IMAGE_PIXELS == 0), "whole images only");
        let all = batches.concat();
        (self.client.create_from_slice(bytes(&all)), all.len())
    }

    /// The first `steps` losses in `losses`, in one read: it waits for the GPU to finish them.
    pub async fn read_losses(&self, losses: Handle, steps: usize) -> Result<Vec<f32>, String> {
        let read = self.client.read_async(vec![losses]).await.map_err(|e| format!("{e:?}"))?;
        Ok(floats(&read[0])[..steps].to_vec())
    }

    /// Every parameter, flat, as of the last step.
    pub async fn params(&self) -> Result<Vec<f32>, String> {
        let read = self.client.read_async(vec![self.params.clone()]).await.map_err(|e| format!("{e:?}"))?;
        Ok(floats(&read[0]))
    }

    /// `model` (the model this step was made for) with the step's parameters, as trainable
    /// tensors on `device` (`tracked`: marked for burn's autodiff): for saving, reconstructing
    /// and everything else that reads burn's model.
    pub async fn write_into(&self, model: Autoencoder, device: &Device, tracked: bool) -> Result<Autoencoder, String> {
        Ok(write_params(model, &self.params().await?, device, tracked))
    }

    /// The loss of `pixels` times `scale` and its flat gradient, with no Adam step: what the
    /// tests compare with burn's autodiff.
    pub async fn loss_and_gradient(&mut self, pixels: &[f32], scale: f32) -> Result<(f32, Vec<f32>), String> {
        let (images, len) = self.upload(std::slice::from_ref(&pixels.to_vec()));
        let batch = len / IMAGE_PIXELS;
        self.launch_gradient(&images, len, 0, batch, scale);
        let read = self
            .client
            .read_async(vec![self.grads.clone(), self.partials.clone().expect("launched")])
            .await
            .map_err(|e| format!("{e:?}"))?;
        let partials = floats(&read[1]);
        let squares: f64 = partials[..tiles(batch, IMAGE_PIXELS)].iter().map(|&s| s as f64).sum();
        let loss = (squares / (batch * IMAGE_PIXELS) as f64) as f32 * scale;
        Ok((loss, floats(&read[0])))
    }
}

#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests;
