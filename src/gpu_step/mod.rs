//! A training step written for the GPU by hand, in few launches: a model's forward pass, fused
//! sigmoid-MSE loss, backward pass and Adam, as CubeCL kernels launched on the cubecl runtime
//! under burn-wgpu (the browser's WebGPU, or Vulkan, Metal, DX12 natively).
//!
//! burn's autodiff on a GPU launches a kernel per tensor operation: 98 a step for the dense model
//! and 88 for the conv one (with fusion), and each costs the host tens of microseconds to record
//! and submit however fast the GPU is. Here a step is one launch per layer forward (the last with
//! the loss), one per layer backward (weight, bias and input gradients in one), and one Adam over
//! every parameter: 13 for the conv model's 6 layers. The dense model's six small middle layers
//! take three launches between them ([`middle_kernels`]), so its step is 7. The dense layers and
//! the conv model's 7x7 ones are products ([`kernels`]); its stride-2 convolutions and
//! transposed convolutions fold their taps into where each product reads ([`conv_kernels`]). The
//! parameters, Adam's moments and the gradient are each one buffer in [`crate::params`]' flat
//! layout, as the CPU's step ([`crate::cpu_step`]) keeps them; a step's loss stays on the GPU,
//! and a call's losses come back in one read. The trainer's training set stays on the GPU too,
//! as bytes ([`GpuStep::hold_set`]): a call writes its images' indices, and one launch a call
//! gathers the images. A call of steps is launched kernel by kernel the
//! first time a call of its shape comes, recorded as it is, and replayed after ([`GpuStep`]):
//! what a launch costs the host is then a few commands into the compute pass.
//!
//! The trainer takes its steps for either model on any wgpu device ([`crate::train::Trainer`]:
//! the page's WebGPU, `--device wgpu` natively), made at its first call from burn's model's
//! parameters, and writes them back into burn's model when the model is read (evaluation,
//! reconstructions, the model file, the predictors).
//! The tests check the step against burn's autodiff (loss and every gradient), against the flat
//! Adam, the model written back from it against the step, and a trainer on it against burn's
//! trainer on the CPU; `bench --device wgpu --gpu-step` times the step alone natively.

mod conv_kernels;
mod kernels;
mod middle_kernels;
mod wide_kernels;

use std::borrow::Borrow;
use std::collections::HashMap;

use burn::backend::DispatchDevice;
use burn::cubecl;
use burn::prelude::*;
use cubecl::bytes::Bytes;
use cubecl::client::Graph;
use cubecl::prelude::*;
use cubecl::server::Handle;

use crate::data::{IMAGE_PIXELS, MnistSet, UNIT_PIXEL};
use crate::model::{Autoencoder, CodeActivation};
#[cfg(not(target_arch = "wasm32"))]
use crate::params::flat_params;
use crate::params::write_params;
use kernels::{ADAM_PER_UNIT, ADAM_UNITS, GATHER_UNITS, LOSS_PARTS, UNITS, WIDTH, tiles};
use middle_kernels::MIDDLE_UNITS;

/// How a layer's launches compute it.
#[derive(Debug, Clone, Copy)]
enum Form {
    /// A product of all its inputs, weight `(i, o)` at `i w_in + o w_out`, a bias each
    /// `bias_every` outputs ([`kernels`]).
    Dense { w_in: usize, w_out: usize, bias_every: usize },
    /// A 3x3 stride-2 convolution (`up` false) or transposed convolution (`up` true) between a
    /// map of `side` with `c_small` channels and one of `2 side` with `c_big` ([`conv_kernels`]).
    Stride2 { up: bool, side: usize, c_small: usize, c_big: usize },
}

/// One layer of a step: its form, the numbers an image has in and out, where its weights start
/// in the step's parameters ([`GpuStep::new`] moves some from where they are in the flat
/// layout), and whether a ReLU follows it.
#[derive(Debug, Clone, Copy)]
struct Layer {
    form: Form,
    inputs: usize,
    outputs: usize,
    at: usize,
    relu_after: bool,
}

impl Layer {
    /// Its weights and biases, how many numbers.
    fn params(&self) -> usize {
        match self.form {
            Form::Dense { bias_every, .. } => self.inputs * self.outputs + self.outputs / bias_every,
            Form::Stride2 { up, c_small, c_big, .. } => 9 * c_small * c_big + if up { c_big } else { c_small },
        }
    }

    /// Whether [`wide_kernels`] can run it, wherever its numbers start: a layer `[inputs,
    /// outputs]` with a bias each, both widths whole vectors.
    fn has_wide_form(&self) -> bool {
        let dense = matches!(self.form, Form::Dense { w_in, w_out: 1, bias_every: 1 } if w_in == self.outputs);
        dense && self.inputs % WIDTH == 0 && self.outputs % WIDTH == 0
    }

    /// Whether it runs in [`wide_kernels`] with its input from `x_at` and its output's gradient
    /// from `g_at` in their buffers: [`Self::has_wide_form`], and every start on a whole vector.
    fn is_wide(&self, x_at: usize, g_at: usize) -> bool {
        self.has_wide_form() && [self.at, x_at, g_at].iter().all(|n| n % WIDTH == 0)
    }

    /// Units of its forward launch for `batch` images: the last layer's sum of squared errors
    /// comes in this many partial sums.
    fn forward_units(&self, batch: usize) -> usize {
        match self.form {
            Form::Dense { .. } => tiles(batch, self.outputs),
            Form::Stride2 { up, side, c_small, c_big } => conv_kernels::forward_units(up, batch, side, c_small, c_big),
        }
    }

    #[cfg(not(target_arch = "wasm32"))]
    fn name(&self) -> String {
        match self.form {
            Form::Dense { .. } => format!("{}-{}", self.inputs, self.outputs),
            Form::Stride2 { up: false, side, c_small, c_big } => format!("conv {c_big}x{}² -> {c_small}x{side}²", 2 * side),
            Form::Stride2 { up: true, side, c_small, c_big } => format!("conv-transpose {c_small}x{side}² -> {c_big}x{}²", 2 * side),
        }
    }
}

/// The layers of `model`'s step, each's weights starting where the one before's end.
fn layers_of(model: &Autoencoder) -> Vec<Layer> {
    let mut layers: Vec<Layer> = Vec::new();
    let mut push = |form, inputs, outputs, relu_after| {
        let at = layers.last().map_or(0, |l: &Layer| l.at + l.params());
        layers.push(Layer { form, inputs, outputs, at, relu_after });
    };
    match model {
        Autoencoder::Dense(dense) => {
            let mut widths = dense.widths();
            widths.extend(widths.clone().iter().rev().skip(1));
            let (last, code) = (widths.len() - 2, widths.len() / 2 - 1);
            let code_relu = dense.code_activation() == CodeActivation::Relu;
            for (l, w) in widths.windows(2).enumerate() {
                let form = Form::Dense { w_in: w[1], w_out: 1, bias_every: 1 };
                push(form, w[0], w[1], l != last && (l != code || code_relu));
            }
        }
        Autoencoder::Conv(conv) => {
            // The model's own order (enc1, enc2, enc3, dec1, dec2, dec3), every layer but the
            // last with a ReLU. The 7x7 layers take the whole 7x7 map: enc3's kernel is
            // `[latent, c2 * 49]`, dec1's `[latent, c2 * 49]` too, read as `[inputs, outputs]`.
            let [c1, c2, latent] = conv.channels();
            let map = c2 * 49;
            push(Form::Stride2 { up: false, side: 14, c_small: c1, c_big: 1 }, IMAGE_PIXELS, c1 * 196, true);
            push(Form::Stride2 { up: false, side: 7, c_small: c2, c_big: c1 }, c1 * 196, map, true);
            push(Form::Dense { w_in: 1, w_out: map, bias_every: 1 }, map, latent, true);
            push(Form::Dense { w_in: map, w_out: 1, bias_every: 49 }, latent, map, true);
            push(Form::Stride2 { up: true, side: 7, c_small: c2, c_big: c1 }, map, c1 * 196, true);
            push(Form::Stride2 { up: true, side: 14, c_small: c1, c_big: 1 }, c1 * 196, IMAGE_PIXELS, false);
        }
    }
    layers
}

/// Moves each layer that can run in [`wide_kernels`] to start on a whole vector of the step's
/// parameters, and those after it along: the dense model's last layer starts at 118,755 in the
/// flat layout. With the middle kernels (`middle`), which find layers 1 to 6 as the flat layout
/// has them, only the last layer moves.
fn align_wide_layers(layers: &mut [Layer], middle: bool) {
    let last = layers.len() - 1;
    let mut shift = 0;
    for (l, layer) in layers.iter_mut().enumerate() {
        layer.at += shift;
        if (!middle || l == last) && layer.has_wide_form() {
            let gap = layer.at.next_multiple_of(WIDTH) - layer.at;
            layer.at += gap;
            shift += gap;
        }
    }
}

/// `flat` (parameters in the flat layout, each layer's from `flat_at`) in a step's of `room`
/// numbers: each layer's at its `at`, zeros elsewhere.
fn to_step_layout(layers: &[Layer], flat_at: &[usize], room: usize, flat: &[f32]) -> Vec<f32> {
    let mut laid = vec![0.0f32; room];
    for (layer, &from) in layers.iter().zip(flat_at) {
        laid[layer.at..layer.at + layer.params()].copy_from_slice(&flat[from..from + layer.params()]);
    }
    laid
}

/// The launches of a step before Adam, in order.
#[derive(Debug, Clone, Copy)]
enum Launch {
    /// Layer `l`'s forward pass (the last layer's with the loss).
    Forward(usize),
    /// Layer `l`'s backward pass: its weight and bias gradients, and its input's but for the
    /// first layer.
    Backward(usize),
    /// The dense model's layers 1 to 6 forward ([`middle_kernels`]).
    MiddleForward,
    /// Their input gradients, down to layer 0's output.
    MiddleBackward,
    /// The weight and bias gradients of layers 1 to 6.
    MiddleWeights,
}

/// The launches of a step of `layers`: for the dense model whose hidden and code widths
/// `middle` holds, its middle layers three launches in all and the first layer's weight gradient
/// after them; otherwise a launch per layer each way.
fn plan(layers: &[Layer], middle: Option<&Middle>) -> Vec<Launch> {
    let last = layers.len() - 1;
    match middle {
        Some(_) => vec![
            Launch::Forward(0),
            Launch::MiddleForward,
            Launch::Forward(last),
            Launch::Backward(last),
            Launch::MiddleBackward,
            Launch::MiddleWeights,
            Launch::Backward(0),
        ],
        None => (0..=last).map(Launch::Forward).chain((0..=last).rev().map(Launch::Backward)).collect(),
    }
}

/// A kernel of a call, for compiling it ahead ([`GpuStep::compile_next`]).
#[derive(Debug, Clone, Copy)]
enum Kernel {
    /// The gather of a call's images from the held training set.
    Gather,
    /// A step's launch before Adam.
    Step(Launch),
    Adam,
}

/// What the middle kernels need of a dense model: its hidden widths and code, whether a ReLU
/// follows the code, and how many units the weight-gradient launch takes (the same every step).
#[derive(Debug, Clone, Copy)]
struct Middle {
    widths: [u32; 4],
    code_relu: u32,
    weight_units: usize,
}

impl Middle {
    /// The middle kernels' view of `model`: `None` for the conv model, and for a dense model
    /// with a hidden or code layer wider than [`middle_kernels::MAX_WIDTH`], whose middle layers
    /// run a launch each.
    fn of(model: &Autoencoder) -> Option<Self> {
        let Autoencoder::Dense(dense) = model else { return None };
        let widths = dense.widths();
        let &[_, h1, h2, h3, latent] = widths.as_slice() else { return None };
        let widths = [h1, h2, h3, latent];
        (widths.iter().all(|&w| w <= middle_kernels::MAX_WIDTH)).then(|| Middle {
            widths: widths.map(|w| w as u32),
            code_relu: (dense.code_activation() == CodeActivation::Relu) as u32,
            weight_units: middle_kernels::weight_grad_units(widths),
        })
    }
}

/// A layer's output (or its gradient) in the step's buffers: `len` floats from `at` in
/// `buffer`, which may hold other layers' too.
#[derive(Clone)]
struct Slot {
    buffer: Handle,
    len: usize,
    at: usize,
}

impl Slot {
    fn own(buffer: Handle, len: usize) -> Self {
        Slot { buffer, len, at: 0 }
    }

    /// The whole buffer as a kernel argument.
    fn arg(&self) -> BufferArg {
        arg(&self.buffer, self.len)
    }
}

/// Adam's constants, as the trainer's burn Adam and [`crate::cpu_step::flat_adam`] have them.
const BETA_1: f32 = 0.9;
const BETA_2: f32 = 0.999;
const EPSILON: f32 = 1e-8;

/// Kernels a dense step launches: the first and last layers' forward (the last with the loss)
/// and backward, three for the middle layers ([`middle_kernels`]: forward, input gradients, and
/// their weight gradients), and Adam. With a hidden or code layer wider than
/// [`middle_kernels::MAX_WIDTH`] it is one per layer each way and Adam, 17.
pub const LAUNCHES_PER_DENSE_STEP: usize = 2 + 2 + 3 + 1;

/// Kernels a conv step launches, the same way for its 6 layers.
pub const LAUNCHES_PER_CONV_STEP: usize = 6 + 6 + 1;

/// The tasks (launches and writes) cubecl's wgpu runtime records before it submits them, set
/// where each wgpu device is made (the page's, `--device wgpu`, the tests'). Its default, 32,
/// cut a call into a submit every 32 tasks, about two a dense step; this holds the page's largest
/// call (64 steps of [`LAUNCHES_PER_CONV_STEP`] and the gather of their images, 833 launches)
/// whole, so a call's work reaches the queue in one submit, and the read of its losses adds the
/// copy's. Natively cubecl also waits for the GPU after every 512 submitted tasks, so nothing
/// piles up.
pub const TASKS_PER_SUBMIT: usize = 1024;

/// Steps a call's buffers hold room for when first made: the page's largest call
/// (`MAX_STEPS_PER_CALL` in `www/js/lab/callsize.js`), where the images fit
/// [`CALL_IMAGE_BYTES`]. A larger call makes them again.
const CALL_STEPS: usize = 64;

/// The most bytes a call's images take on the GPU (as floats, 3,136 bytes an image): 64 steps
/// of 32 images take 6.4 MB, but the page allows batches of up to 4,096 images (12.8 MB a step),
/// and WebGPU promises no buffer binding over 128 MiB. A call of big batches is cut to as many
/// steps as fit ([`GpuStep::steps_that_fit`]); a step always fits, whatever its batch.
const CALL_IMAGE_BYTES: usize = 64 << 20;

/// Shapes of call recorded at most: the page's calls take 1 to 16 steps or a multiple of 8 up to
/// 64 (`www/js/lab/callsize.js`), and an epoch's last
/// call fewer, so a training run has a few; a call of a shape past these launches afresh.
const MAX_RECORDED_CALLS: usize = 32;

/// What a recorded call of steps replays for: its steps' batches, and whether it gathers its
/// images from the held training set ([`GpuStep::hold_set`]) or was given them. Everything else
/// a call's launches are given is the same at every call of that shape.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct CallShape {
    gathered: bool,
    batches: Vec<usize>,
}

/// 32-bit words of an image's pixels, a byte each, in the training set held on the GPU.
const WORDS_PER_IMAGE: usize = IMAGE_PIXELS / 4;

/// The training set held on the GPU ([`GpuStep::hold_set`]): how many images, their pixels'
/// bytes four to a word, and the 256 floats a byte stands for.
struct HeldSet {
    images: usize,
    pixels: Handle,
    values: Handle,
}

/// A model's step on a wgpu device: the parameters and Adam's state live on the GPU.
///
/// Each shape of call (its steps' batches) is recorded once as a cubecl graph (its launches
/// with their bind groups, made once) and replayed from then on: the host then records three
/// commands a launch, where a launch made afresh also builds a bind group and writes its
/// arguments, and a call is one replay (cubecl submits what is pending at each replay, so a
/// replay a step would submit every step). A call replays over the buffers it was recorded with,
/// so every buffer here is kept from call to call and made again only to grow, which drops the
/// recordings first.
pub struct GpuStep {
    /// Declared first, so dropped before the buffers they were recorded over.
    graphs: HashMap<CallShape, Graph>,
    /// Whether calls are recorded and replayed: off where the runtime refuses a recording.
    record: bool,
    client: Client,
    layers: Vec<Layer>,
    middle: Option<Middle>,
    plan: Vec<Launch>,
    /// The model's parameters, how many, and where each layer's start in the flat layout.
    count: usize,
    flat_at: Vec<usize>,
    /// The parameters' buffer, its gradients' and Adam's moments': `room` numbers each, the
    /// layers at their `at` ([`to_step_layout`]), zeros between and after.
    room: usize,
    params: Handle,
    moment_1: Handle,
    moment_2: Handle,
    grads: Handle,
    /// Adam's step count, for its bias corrections.
    time: i32,
    /// The largest batch the activation buffers hold, the batch they are laid out for, and the
    /// buffers: each layer's output but the last's (the next layer's input), each layer's
    /// output gradient, the squared errors summed a tile of the last layer at a time.
    capacity: usize,
    batch: usize,
    outputs: Vec<Slot>,
    output_grads: Vec<Slot>,
    partials: Option<Handle>,
    /// A call's images, Adam's constants and losses ([`Calls`]), once a call has come.
    calls: Option<Calls>,
    /// The training set, once held.
    set: Option<HeldSet>,
    /// One float, bound where a kernel's input or output goes unused.
    unused: Handle,
    /// How many of [`Self::kernel_launches`] [`Self::compile_next`] has compiled.
    compiled: usize,
}

/// The buffers a call of steps writes and reads, each with room for `steps` steps: the images
/// (`image_floats` floats; the first layer's input and the last's targets) and, where they are
/// gathered from the held set, their indices in it (one an image), three of Adam's constants a
/// step (its two bias-corrected factors and the learning rate), and a step's loss in
/// [`LOSS_PARTS`] parts.
struct Calls {
    steps: usize,
    image_floats: usize,
    images: Handle,
    indices: Handle,
    constants: Handle,
    losses: Handle,
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

/// The first `used` floats of `handle`, of `len` floats: where a write of fewer goes.
fn prefix(handle: &Handle, len: usize, used: usize) -> Handle {
    handle.clone().offset_end(((len - used) * 4) as u64)
}

/// A kernel argument over the whole of `handle`, `len` floats.
fn arg(handle: &Handle, len: usize) -> BufferArg {
    // SAFETY: every handle here was made for at least `len` f32s (`client.empty` or
    // `create_from_slice` in this module).
    unsafe { BufferArg::from_raw_parts(handle.clone(), len) }
}

impl GpuStep {
    /// The step for `model` on `device`, natively, its parameters read from `model` once, here
    /// ([`Self::new`] says when there is none).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn for_model(model: &Autoencoder, device: &Device) -> Option<Self> {
        Self::new(model, &flat_params(model), device)
    }

    /// Whether [`Self::new`] makes a step for `model` on `device`: either model, any code, on
    /// a wgpu device.
    pub fn covers(_model: &Autoencoder, device: &Device) -> bool {
        wgpu_device(device).is_some()
    }

    /// The step for `model`'s architecture on `device`, starting from `params` (the model's
    /// parameters in the flat layout; in a browser they can only be read asynchronously, so the
    /// caller reads them): `None` unless the device is a wgpu one and `params` as many as the
    /// model has.
    pub fn new(model: &Autoencoder, params: &[f32], device: &Device) -> Option<Self> {
        let client = cubecl::Device::Wgpu(wgpu_device(device)?).client();
        let mut layers = layers_of(model);
        let at = layers.last().map_or(0, |l| l.at + l.params());
        if at != model.num_params() || params.len() != at {
            return None;
        }
        let middle = Middle::of(model);
        let flat_at: Vec<usize> = layers.iter().map(|l| l.at).collect();
        align_wide_layers(&mut layers, middle.is_some());
        // Adam takes the parameters, their gradients and moments four at a time: the buffers
        // hold whole vectors.
        let room = layers.last().map_or(0, |l| l.at + l.params()).next_multiple_of(WIDTH);
        let zeros = vec![0.0f32; room];
        let laid = to_step_layout(&layers, &flat_at, room, params);
        Some(Self {
            graphs: HashMap::new(),
            record: true,
            plan: plan(&layers, middle.as_ref()),
            middle,
            params: client.create_from_slice(bytes(&laid)),
            moment_1: client.create_from_slice(bytes(&zeros)),
            moment_2: client.create_from_slice(bytes(&zeros)),
            grads: client.create_from_slice(bytes(&zeros)),
            layers,
            count: at,
            flat_at,
            room,
            time: 0,
            capacity: 0,
            batch: 0,
            outputs: Vec::new(),
            output_grads: Vec::new(),
            partials: None,
            calls: None,
            set: None,
            unused: client.empty(4),
            compiled: 0,
            client,
        })
    }

    /// `laid` (this step's layout, [`to_step_layout`]) in the flat layout.
    fn to_flat_layout(&self, laid: &[f32]) -> Vec<f32> {
        let mut flat = vec![0.0f32; self.count];
        for (layer, &to) in self.layers.iter().zip(&self.flat_at) {
            flat[to..to + layer.params()].copy_from_slice(&laid[layer.at..layer.at + layer.params()]);
        }
        flat
    }

    /// One launch of each kernel a call launches, in the call's order: the gather of its images
    /// from the held set, the step's launches before Adam, then Adam. The layers of one form share
    /// their kernel each way, whatever their sizes (they are launch arguments).
    fn kernel_launches(&self) -> Vec<Kernel> {
        let kernel = |launch: Launch| {
            let form = match launch {
                Launch::Forward(l) | Launch::Backward(l) => Some(std::mem::discriminant(&self.layers[l].form)),
                _ => None,
            };
            (std::mem::discriminant(&launch), form)
        };
        let mut seen = Vec::new();
        let mut firsts = vec![Kernel::Gather];
        for &launch in &self.plan {
            if !seen.contains(&kernel(launch)) {
                seen.push(kernel(launch));
                firsts.push(Kernel::Step(launch));
            }
        }
        firsts.push(Kernel::Adam);
        firsts
    }

    /// Compiles the next of the step's kernels for steps of `batch` images, running nothing:
    /// whether there was one left. A first step would compile each as it launched it; but in a
    /// browser the GPU process hears of a new pipeline only when the worker gets back to its
    /// event loop, so it would compile them all one after another after the step's launches.
    /// Given the event loop between calls (the page's Lab does this before a model's first
    /// step), the GPU process compiles each kernel while the worker builds the next.
    ///
    /// The launch is made in cubecl's dry run, which compiles every launch and runs none: in the
    /// whole process, so no other thread may launch meanwhile (the page's worker has one).
    pub fn compile_next(&mut self, batch: usize) -> bool {
        let Some(&launch) = self.kernel_launches().get(self.compiled) else { return false };
        self.compiled += 1;
        self.buffers_for(batch);
        let calls = self.call_buffers(1, batch * IMAGE_PIXELS);
        let images = (calls.images.clone(), calls.image_floats);
        let dry_run = cubecl::dry_run::DryRun::new();
        match launch {
            Kernel::Gather => self.launch_gather(batch),
            Kernel::Step(launch) => self.launch(launch, batch, (&images.0, images.1, 0), 1.0),
            Kernel::Adam => self.launch_adam(batch, 1.0, 0),
        }
        drop(dry_run);
        true
    }

    fn layers(&self) -> usize {
        self.layers.len()
    }

    /// Kernels a step launches: its plan's and Adam.
    pub fn launches_per_step(&self) -> usize {
        self.plan.len() + 1
    }

    /// How many partial sums of squared errors a step of `batch` images leaves.
    fn partials_len(&self, batch: usize) -> usize {
        self.layers[self.layers() - 1].forward_units(batch)
    }

    /// Lays the activation buffers out for `batch` images, when it changes; makes them anew
    /// (dropping the calls recorded over the old ones) only for a batch larger than any before.
    fn buffers_for(&mut self, batch: usize) {
        if self.batch == batch {
            return;
        }
        let last = self.layers() - 1;
        let sizes = |batch: usize| -> Vec<usize> { self.layers.iter().map(|l| batch * l.outputs).collect() };
        if batch > self.capacity {
            self.graphs.clear();
            let (client, sizes) = (&self.client, sizes(batch));
            let own = |len: usize| Slot::own(client.empty(len * 4), len);
            if self.middle.is_some() {
                // Every output but the last's in one buffer, their gradients in another
                // ([`middle_kernels`]' layout, laid out below); the last's gradient on its own.
                let len: usize = sizes[..last].iter().map(|size| size.next_multiple_of(WIDTH)).sum();
                let (acts, act_grads) = (own(len), own(len));
                self.outputs = vec![acts; last];
                self.output_grads = vec![act_grads; last];
                self.output_grads.push(own(sizes[last]));
            } else {
                self.outputs = sizes[..last].iter().map(|&size| own(size)).collect();
                self.output_grads = sizes.iter().map(|&size| own(size)).collect();
            }
            self.partials = Some(client.empty(self.partials_len(batch) * 4));
            self.capacity = batch;
        }
        if self.middle.is_some() {
            // The middle kernels find each layer's output from the batch: one after another, each
            // from a whole vector, for [`wide_kernels`].
            let starts = sizes(batch)[..last].iter().scan(0, |at, size| Some(std::mem::replace(at, *at + size.next_multiple_of(WIDTH)))).collect::<Vec<_>>();
            for (slot, &at) in self.outputs.iter_mut().zip(&starts) {
                slot.at = at;
            }
            for (slot, &at) in self.output_grads.iter_mut().zip(&starts) {
                slot.at = at;
            }
        }
        self.batch = batch;
    }

    /// Layer `l`'s input for `batch` images as a kernel argument, and where in it they start:
    /// for the first layer the images (`images`: the call's upload, its length in floats, and
    /// where this step's images start in it), for the others the layer before's output.
    fn layer_input(&self, l: usize, images: (&Handle, usize, usize)) -> (BufferArg, u32) {
        let (handle, len, at) = images;
        match l {
            0 => (arg(handle, len), at as u32),
            _ => (self.outputs[l - 1].arg(), self.outputs[l - 1].at as u32),
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
        for &launch in &self.plan {
            self.launch(launch, batch, images, scale);
        }
    }

    fn launch(&self, launch: Launch, batch: usize, images: (&Handle, usize, usize), scale: f32) {
        match launch {
            Launch::Forward(l) => self.launch_forward(l, batch, images, scale),
            Launch::Backward(l) => self.launch_backward(l, batch, images),
            Launch::MiddleForward | Launch::MiddleBackward | Launch::MiddleWeights => self.launch_middle(launch, batch),
        }
    }

    /// One of the middle kernels' launches ([`middle_kernels`]), for `batch` images.
    fn launch_middle(&self, launch: Launch, batch: usize) {
        let Middle { widths: [h1, h2, h3, latent], code_relu, weight_units } = self.middle.expect("a dense model's middle");
        let (acts, act_grads) = (self.outputs[0].arg(), self.output_grads[0].arg());
        let (client, params, b) = (&self.client, arg(&self.params, self.room), batch as u32);
        let middle_units = groups(batch.div_ceil(middle_kernels::IMAGES), MIDDLE_UNITS);
        match launch {
            Launch::MiddleForward => {
                middle_kernels::middle_forward::launch(client, middle_units, CubeDim::new_1d(MIDDLE_UNITS), acts, params, b, h1, h2, h3, latent, code_relu)
            }
            Launch::MiddleBackward => middle_kernels::middle_backward::launch(
                client,
                middle_units,
                CubeDim::new_1d(MIDDLE_UNITS),
                acts,
                params,
                act_grads,
                b,
                h1,
                h2,
                h3,
                latent,
                code_relu,
            ),
            Launch::MiddleWeights => {
                middle_kernels::middle_weight_grads::launch(
                    client,
                    cubes(weight_units),
                    CubeDim::new_1d(UNITS),
                    acts,
                    act_grads,
                    arg(&self.grads, self.room),
                    b,
                    h1,
                    h2,
                    h3,
                    latent,
                )
            }
            Launch::Forward(_) | Launch::Backward(_) => unreachable!("a layer's own launch, not the middle's"),
        }
    }

    /// Layer `l`'s forward launch (the last layer's with the loss, scored as `scale`), for the
    /// images of [`Self::launch_gradient`].
    fn launch_forward(&self, l: usize, batch: usize, images: (&Handle, usize, usize), scale: f32) {
        let n = self.room;
        let layer = self.layers[l];
        let (x, x_at) = self.layer_input(l, images);
        let units = layer.forward_units(batch);
        let partials = arg(self.partials.as_ref().expect("sized"), self.partials_len(batch));
        let last = l + 1 == self.layers();
        // A hidden layer reads no targets: a stand-in is bound (not the images, which its input
        // may be: cubecl declares every buffer writable, and WebGPU refuses a writable buffer
        // bound twice in one launch).
        let (targets, targets_at, y) = match last {
            true => (arg(images.0, images.1), images.2 as u32, &self.output_grads[l]),
            false => (arg(&self.unused, 1), 0, &self.outputs[l]),
        };
        let y_at = y.at as u32;
        let y = y.arg();
        // The conv model's buffers are a layer's each ([`Self::buffers_for`]).
        assert!(y_at == 0 || matches!(layer.form, Form::Dense { .. }), "a stride-2 layer's output starts its buffer");
        let factor = 2.0 * scale / (batch * layer.outputs) as f32;
        let (relu, loss) = (layer.relu_after as u32, last as u32);
        match layer.form {
            Form::Dense { .. } if layer.is_wide(x_at as usize, 0) => wide_kernels::wide_forward::launch(
                &self.client,
                cubes(units),
                CubeDim::new_1d(UNITS),
                WIDTH,
                x,
                arg(&self.params, n),
                targets,
                y,
                partials,
                batch as u32,
                layer.inputs as u32,
                layer.outputs as u32,
                layer.at as u32,
                x_at,
                y_at,
                targets_at,
                factor,
                relu,
                loss,
            ),
            Form::Dense { w_in, w_out, bias_every } => kernels::layer_forward::launch(
                &self.client,
                cubes(units),
                CubeDim::new_1d(UNITS),
                x,
                arg(&self.params, n),
                targets,
                y,
                partials,
                batch as u32,
                layer.inputs as u32,
                layer.outputs as u32,
                layer.at as u32,
                w_in as u32,
                w_out as u32,
                bias_every as u32,
                x_at,
                y_at,
                targets_at,
                factor,
                relu,
                loss,
            ),
            Form::Stride2 { up, side, c_small, c_big } => conv_kernels::stride2_forward::launch(
                &self.client,
                cubes(units),
                CubeDim::new_1d(UNITS),
                x,
                arg(&self.params, n),
                targets,
                y,
                partials,
                batch as u32,
                side as u32,
                c_small as u32,
                c_big as u32,
                layer.at as u32,
                x_at,
                targets_at,
                factor,
                up as u32,
                relu,
                loss,
            ),
        }
    }

    /// Layer `l`'s backward launch: its weight and bias gradients, and its input's gradient
    /// but for the first layer.
    fn launch_backward(&self, l: usize, batch: usize, images: (&Handle, usize, usize)) {
        let n = self.room;
        let layer = self.layers[l];
        let input_grad = l > 0;
        let relu_before = input_grad && self.layers[l - 1].relu_after;
        let (x, x_at) = self.layer_input(l, images);
        // The first layer has no input gradient: its `gx` is a stand-in, never written (a
        // buffer bound twice in one launch, once writable, is an error in WebGPU).
        let (gx, gx_at) = match input_grad {
            true => (self.output_grads[l - 1].arg(), self.output_grads[l - 1].at as u32),
            false => (arg(&self.unused, 1), 0),
        };
        let (g, g_at) = (self.output_grads[l].arg(), self.output_grads[l].at as u32);
        match layer.form {
            Form::Dense { .. } if layer.is_wide(x_at as usize, g_at as usize) => {
                let (i, o) = (layer.inputs, layer.outputs);
                let units = tiles(i, o) + o / WIDTH + if input_grad { tiles(batch, i) } else { 0 };
                wide_kernels::wide_backward::launch(
                    &self.client,
                    cubes(units),
                    CubeDim::new_1d(UNITS),
                    WIDTH,
                    x,
                    arg(&self.params, n),
                    g,
                    arg(&self.grads, n),
                    gx,
                    batch as u32,
                    i as u32,
                    o as u32,
                    layer.at as u32,
                    x_at,
                    g_at,
                    gx_at,
                    input_grad as u32,
                    relu_before as u32,
                )
            }
            Form::Dense { w_in, w_out, bias_every } => {
                let (i, o) = (layer.inputs, layer.outputs);
                let units = tiles(i, o) + o / bias_every + if input_grad { tiles(batch, i) } else { 0 };
                kernels::layer_backward::launch(
                    &self.client,
                    cubes(units),
                    CubeDim::new_1d(UNITS),
                    x,
                    arg(&self.params, n),
                    g,
                    arg(&self.grads, n),
                    gx,
                    batch as u32,
                    i as u32,
                    o as u32,
                    layer.at as u32,
                    w_in as u32,
                    w_out as u32,
                    bias_every as u32,
                    x_at,
                    g_at,
                    gx_at,
                    input_grad as u32,
                    relu_before as u32,
                )
            }
            Form::Stride2 { up, side, c_small, c_big } => {
                // The conv model's buffers are a layer's each ([`Self::buffers_for`]).
                assert!(g_at == 0 && gx_at == 0, "a stride-2 layer's gradients start their buffers");
                let units = conv_kernels::backward_units(up, input_grad, batch, side, c_small, c_big);
                // The small map and the big one: the output's gradient (from 0) and the input.
                let ((small, small_at), (big, big_at)) = if up { ((x, x_at), (g, 0)) } else { ((g, 0), (x, x_at)) };
                conv_kernels::stride2_backward::launch(
                    &self.client,
                    cubes(units),
                    CubeDim::new_1d(UNITS),
                    small,
                    big,
                    arg(&self.params, n),
                    arg(&self.grads, n),
                    gx,
                    batch as u32,
                    side as u32,
                    c_small as u32,
                    c_big as u32,
                    layer.at as u32,
                    small_at,
                    big_at,
                    up as u32,
                    input_grad as u32,
                    relu_before as u32,
                )
            }
        }
    }

    /// Each launch of a step on `pixels` timed alone, natively (`bench --gpu-step --kernels`):
    /// its name and the milliseconds one launch took, the mean of `repeats` launched back to back
    /// and waited for. A step runs first, so that every buffer holds what a step leaves in it.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn kernel_times(&mut self, pixels: &[f32], repeats: usize) -> Vec<(String, f64)> {
        self.launch_steps(&[pixels.to_vec()], 1e-3).expect("a step launched");
        // The step's images are still in the call's buffer, from its start.
        let calls = self.calls.as_ref().expect("made by the step");
        let (images, len) = (calls.images.clone(), calls.image_floats);
        let batch = pixels.len() / IMAGE_PIXELS;
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
        let mut times = Vec::new();
        for launch in self.plan.clone() {
            let name = match launch {
                Launch::Forward(l) => format!("forward {}", self.layers[l].name()),
                Launch::Backward(l) => format!("backward {}", self.layers[l].name()),
                Launch::MiddleForward => "forward of layers 1-6, a unit an image".to_string(),
                Launch::MiddleBackward => "input gradients of layers 6-1, a unit an image".to_string(),
                Launch::MiddleWeights => "weight and bias gradients of layers 1-6".to_string(),
            };
            times.push((name, time(&mut || self.launch(launch, batch, images, 1.0))));
        }
        times.push(("adam".to_string(), time(&mut || self.launch_adam(batch, 1.0, 0))));
        times
    }

    /// Launches Adam with the gradient of the last [`Self::launch_gradient`], with step `slot`'s
    /// constants in the call's buffer, and the sum of its squared errors, in parts, into the
    /// losses from `slot LOSS_PARTS`.
    fn launch_adam(&self, batch: usize, scale: f32, slot: usize) {
        let (n, vectors) = (self.room, self.room / WIDTH);
        let partials = self.partials_len(batch);
        let calls = self.calls.as_ref().expect("a call's buffers");
        kernels::adam::launch(
            &self.client,
            groups(vectors.div_ceil(ADAM_PER_UNIT), ADAM_UNITS),
            CubeDim::new_1d(ADAM_UNITS),
            WIDTH,
            arg(&self.params, n),
            arg(&self.grads, n),
            arg(&self.moment_1, n),
            arg(&self.moment_2, n),
            arg(self.partials.as_ref().expect("a gradient was launched"), partials),
            arg(&calls.losses, calls.steps * LOSS_PARTS),
            arg(&calls.constants, 3 * calls.steps),
            vectors as u32,
            partials as u32,
            slot as u32,
            scale / (batch * IMAGE_PIXELS) as f32,
        );
    }

    /// One training step per batch of `batches` (each `n` images of 784 numbers in [0, 1]) at
    /// learning rate `lr`, all launched before anything is read; then their losses, in one read.
    pub async fn steps(&mut self, batches: &[Vec<f32>], lr: f64) -> Result<Vec<f32>, String> {
        let losses = self.launch_steps(batches, lr)?;
        self.read_losses(losses, batches.len()).await
    }

    /// [`Self::steps`]' launches alone: the losses' buffer, to read with [`Self::read_losses`]
    /// before the next call. What this takes is what a step costs the host, however fast the
    /// GPU. A call of a shape not seen before (its number of steps and their batches) runs launch
    /// by launch and is then recorded; a call of a shape seen before replays its recording.
    pub fn launch_steps(&mut self, batches: &[Vec<f32>], lr: f64) -> Result<Handle, String> {
        let (images, len) = self.upload(batches);
        let shape = CallShape { gathered: false, batches: batches.iter().map(|pixels| pixels.len() / IMAGE_PIXELS).collect() };
        self.launch_call(&images, len, shape, lr)
    }

    /// Holds `set` on the GPU, for calls of [`Self::launch_held_steps`]: one upload of its pixels
    /// as they are, a byte each (47 MB for MNIST's 60,000 training images, 188 MB as floats).
    pub fn hold_set(&mut self, set: &MnistSet) {
        self.release_set();
        let client = &self.client;
        // An empty set still binds a buffer.
        let pixels = if set.is_empty() { client.empty(4) } else { client.create_from_slice(set.pixels()) };
        self.set = Some(HeldSet { images: set.len(), pixels, values: client.create_from_slice(bytes(&UNIT_PIXEL)) });
    }

    /// Lets go of the held training set ([`Self::hold_set`]), whose images changed on the host,
    /// and of the calls recorded over it: they gather from the set they were recorded with.
    pub fn release_set(&mut self) {
        self.graphs.clear();
        self.set = None;
    }

    /// How many images the held training set has ([`Self::hold_set`]): `None` before one is held.
    pub fn held_images(&self) -> Option<usize> {
        self.set.as_ref().map(|set| set.images)
    }

    /// [`Self::launch_steps`] on images of the held training set ([`Self::hold_set`]), each
    /// batch their indices in it: a call writes 4 bytes an image rather than 3,136, and the GPU
    /// gathers them ([`kernels::gather_images`]) in one more launch a call.
    pub fn launch_held_steps(&mut self, batches: &[&[usize]], lr: f64) -> Result<Handle, String> {
        let held = self.set.as_ref().ok_or("no training set is held on the GPU")?.images;
        let indices: Vec<u32> = batches.concat().into_iter().map(|i| i as u32).collect();
        if let Some(&outside) = indices.iter().find(|&&i| i as usize >= held) {
            return Err(format!("image {outside} of a training set of {held} held on the GPU"));
        }
        let calls = self.call_buffers(batches.len(), indices.len() * IMAGE_PIXELS);
        let (images, len, at) = (calls.images.clone(), calls.image_floats, calls.indices.clone());
        if !indices.is_empty() {
            self.client.write(&prefix(&at, len / IMAGE_PIXELS, indices.len()), Bytes::from_elems(indices));
        }
        let shape = CallShape { gathered: true, batches: batches.iter().map(|batch| batch.len()).collect() };
        self.launch_call(&images, len, shape, lr)
    }

    /// A call's launches, its images in `images` (`len` floats) or to be gathered there first
    /// (`shape.gathered`): replayed, or launched and recorded.
    fn launch_call(&mut self, images: &Handle, len: usize, shape: CallShape, lr: f64) -> Result<Handle, String> {
        self.write_constants(shape.batches.len(), lr);
        let launch = |step: &mut Self| {
            if shape.gathered {
                step.launch_gather(shape.batches.iter().sum());
            }
            let mut at = 0;
            for (slot, &batch) in shape.batches.iter().enumerate() {
                step.launch_gradient(images, len, at, batch, 1.0);
                step.launch_adam(batch, 1.0, slot);
                at += batch * IMAGE_PIXELS;
            }
        };
        match self.graphs.get(&shape) {
            // SAFETY: a recording's buffers are all this step's, none freed or made anew while it
            // is kept (`buffers_for` and `call_buffers` drop the recordings first), and it
            // replays on the stream it was recorded on, this client's, where the call's writes
            // and reads go too.
            Some(graph) => unsafe { graph.replay() }.map_err(|e| format!("replaying a call of steps: {e:?}"))?,
            None if self.record && !shape.batches.is_empty() && self.graphs.len() < MAX_RECORDED_CALLS => {
                // Recording allocates nothing: the buffers are made before.
                self.buffers_for(shape.batches.iter().copied().max().unwrap_or(0));
                let prepared = self.client.graph_prepare().is_ok();
                // The call runs here, and is recorded after: a recording runs nothing.
                launch(self);
                if !prepared || self.client.start_capture().is_err() {
                    // A runtime that records no graph: the steps go on launched one by one.
                    if prepared {
                        let _ = self.client.stop_capture();
                    }
                    self.record = false;
                } else {
                    launch(self);
                    let graph = self.client.stop_capture().map_err(|e| format!("recording a call of steps: {e:?}"))?;
                    self.graphs.insert(shape, graph);
                }
            }
            None => launch(self),
        }
        Ok(self.calls.as_ref().expect("made by the upload").losses.clone())
    }

    /// Gathers the call's first `images` images from the held set into its images' buffer, by
    /// the indices written for the call (before a call's steps; for compiling, on any set).
    fn launch_gather(&self, images: usize) {
        let calls = self.calls.as_ref().expect("a call's buffers");
        let (pixels, values, held) = match &self.set {
            Some(set) => (&set.pixels, &set.values, set.images),
            None => (&self.unused, &self.unused, 0),
        };
        let words = images * WORDS_PER_IMAGE;
        kernels::gather_images::launch(
            &self.client,
            groups(words, GATHER_UNITS),
            CubeDim::new_1d(GATHER_UNITS),
            arg(pixels, (held * WORDS_PER_IMAGE).max(1)),
            arg(&calls.indices, calls.image_floats / IMAGE_PIXELS),
            arg(values, if held > 0 { 256 } else { 1 }),
            arg(&calls.images, calls.image_floats),
            words as u32,
            WORDS_PER_IMAGE as u32,
        );
    }

    /// Records and replays no call: every step launches its kernels one by one.
    pub fn launch_each_step(&mut self) {
        self.graphs.clear();
        self.record = false;
    }

    /// The most steps of `batch` images a call may take: as many as [`CALL_IMAGE_BYTES`] holds,
    /// at least one. The trainer cuts longer calls to this.
    pub fn steps_that_fit(batch: usize) -> usize {
        (CALL_IMAGE_BYTES / (batch.max(1) * IMAGE_PIXELS * 4)).max(1)
    }

    /// How many shapes of call (steps and their batches) are recorded to replay.
    pub fn recorded_calls(&self) -> usize {
        self.graphs.len()
    }

    /// Adam's constants for the next `steps` steps at learning rate `lr`, one write.
    fn write_constants(&mut self, steps: usize, lr: f64) {
        if steps == 0 {
            return;
        }
        let mut constants = Vec::with_capacity(3 * steps);
        for _ in 0..steps {
            self.time += 1;
            // burn's `AdaptiveMomentum::transform`: the bias corrections folded into two factors.
            let bias_correction_2_sqrt = (1.0 - BETA_2.powi(self.time)).sqrt();
            let factor = bias_correction_2_sqrt / (1.0 - BETA_1.powi(self.time));
            constants.extend([factor, EPSILON * bias_correction_2_sqrt, lr as f32]);
        }
        let calls = self.calls.as_ref().expect("made by the upload");
        self.client.write(&prefix(&calls.constants, calls.steps * 3, constants.len()), Bytes::from_elems(constants));
    }

    /// Uploads `batches` (whole images each) one after another into the call's images, before
    /// anything is launched: their buffer and its length in floats.
    fn upload(&mut self, batches: &[impl Borrow<[f32]>]) -> (Handle, usize) {
        assert!(batches.iter().all(|b| b.borrow().len() % IMAGE_PIXELS == 0), "whole images only");
        // `concat` copies slice by slice into room made first: collected number by number, the
        // steps' images took the page's worker 2 ms at 8 steps a call.
        let all = batches.concat();
        let calls = self.call_buffers(batches.len(), all.len());
        let (images, floats) = (calls.images.clone(), calls.image_floats);
        if !all.is_empty() {
            self.client.write(&prefix(&images, floats, all.len()), Bytes::from_elems(all));
        }
        (images, floats)
    }

    /// The call's buffers, made anew (the recorded calls dropped first) if they have no room
    /// for `steps` steps of `floats` images' floats in all.
    fn call_buffers(&mut self, steps: usize, floats: usize) -> &Calls {
        let fits = self.calls.as_ref().is_some_and(|c| c.steps >= steps && c.image_floats >= floats);
        if !fits {
            self.graphs.clear();
            // Room for the page's largest call of steps like these, as far as they fit.
            let per_step = floats.div_ceil(steps.max(1));
            let steps = steps.max(CALL_STEPS.min(Self::steps_that_fit(per_step / IMAGE_PIXELS)));
            let image_floats = (per_step * steps).max(floats).max(IMAGE_PIXELS);
            let client = &self.client;
            self.calls = Some(Calls {
                steps,
                image_floats,
                images: client.empty(image_floats * 4),
                indices: client.empty(image_floats / IMAGE_PIXELS * 4),
                constants: client.empty(3 * steps * 4),
                losses: client.empty(steps * LOSS_PARTS * 4),
            });
        }
        self.calls.as_ref().expect("made above")
    }

    /// The first `steps` losses in `losses`, in one read: it waits for the GPU to finish them.
    /// Each comes in [`LOSS_PARTS`] parts, added here in f64.
    pub async fn read_losses(&self, losses: Handle, steps: usize) -> Result<Vec<f32>, String> {
        let room = self.calls.as_ref().map_or(steps, |calls| calls.steps) * LOSS_PARTS;
        let read = self.client.read_async(vec![prefix(&losses, room, steps * LOSS_PARTS)]).await.map_err(|e| format!("{e:?}"))?;
        let parts = floats(&read[0]);
        Ok(parts.chunks_exact(LOSS_PARTS).map(|step| step.iter().map(|&p| p as f64).sum::<f64>() as f32).collect())
    }

    /// Every parameter, flat, as of the last step.
    pub async fn params(&self) -> Result<Vec<f32>, String> {
        let read = self.client.read_async(vec![self.params.clone()]).await.map_err(|e| format!("{e:?}"))?;
        Ok(self.to_flat_layout(&floats(&read[0])))
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
        let (images, len) = self.upload(&[pixels]);
        let batch = pixels.len() / IMAGE_PIXELS;
        self.launch_gradient(&images, len, 0, batch, scale);
        let read = self
            .client
            .read_async(vec![self.grads.clone(), self.partials.clone().expect("launched")])
            .await
            .map_err(|e| format!("{e:?}"))?;
        let partials = floats(&read[1]);
        let squares: f64 = partials[..self.partials_len(batch)].iter().map(|&s| s as f64).sum();
        let loss = (squares / (batch * IMAGE_PIXELS) as f64) as f32 * scale;
        Ok((loss, self.to_flat_layout(&floats(&read[0]))))
    }
}

#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests;
