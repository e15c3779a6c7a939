//! Training on the CPU in wasm, the page's CPU backend: the whole path that replaces burn's
//! autodiff and Adam there, because WebAssembly has no flush-to-zero mode, a scalar libm `exp`,
//! and a matrix kernel that spills registers in V8.
//!
//! - this module: [`CpuStep`], the training step written out by hand, forward, loss and backward
//!   of both models over flat parameters (`dense`, `conv`), with a matrix product of its own
//!   ([`matmul`]);
//! - [`flat_adam`]: Adam as one pass over every parameter, subnormal moments flushed;
//! - [`sigmoid_mse`]: the output sigmoid and the MSE as one SIMD pass with its gradient, also
//!   the loss where burn's autodiff trains on the CPU in wasm (`crate::train`).
//!
//! burn's autodiff on its CPU backend spends most of a step in `gemm`'s matrix kernel, whose
//! WebAssembly form spills registers in V8 (see [`matmul`]), and the rest in one pass over memory
//! per tensor operation, allocations and the graph's bookkeeping. Profiled in Node (a one-worker
//! conv step, V8's sampling profiler), gemm's 12 x 4 kernel alone took 72% of the step and
//! burn-flex's gathers and scatters 8%.
//!
//! Here a step reads the parameters where [`flat_adam::FlatAdam`] keeps them, in the flat layout
//! of [`crate::params`], and writes the gradient in that same layout, so that Adam, the pool's
//! exchange of gradients and burn's model (which Adam writes back into after every step) need
//! nothing of their own. The arithmetic is the conv model's CPU form (`src/model/conv/cpu.rs`):
//! the same layouts (a feature map is `[channels, pixels x batch]`), the same taps, the same
//! fused sigmoid and MSE ([`sigmoid_mse`]); only the order of some sums differs. The tests check
//! the loss and every parameter's gradient against burn's autodiff, for both models, natively
//! (tests/rust/cpu_step.rs) and in wasm in the browser, SIMD kernel and all (tests/wasm/).

mod conv;
mod dense;
pub mod flat_adam;
pub mod matmul;
pub mod sigmoid_mse;

use crate::data::IMAGE_PIXELS;
use burn::module::Module;

use crate::model::{Autoencoder, CodeActivation};

/// A model's shape, as the hand-written step needs it, and the buffers a step reuses.
pub struct CpuStep {
    net: Net,
}

/// Boxed: the buffers' handles alone are hundreds of bytes, and the step lives in the trainer's
/// optimizer, next to much smaller ones.
enum Net {
    Dense(Box<dense::Dense>),
    Conv(Box<conv::Conv>),
}

impl CpuStep {
    /// The step for `model`'s architecture, or `None` for a model whose parameters are not laid
    /// out as this step expects (then burn's autodiff trains it).
    pub fn for_model(model: &Autoencoder) -> Option<Self> {
        let net = match model {
            Autoencoder::Dense(m) => Net::Dense(Box::new(dense::Dense::new(m.widths(), m.code_activation() == CodeActivation::Relu))),
            Autoencoder::Conv(m) => Net::Conv(Box::new(conv::Conv::new(m.channels()))),
        };
        let step = Self { net };
        (step.param_count() == model.num_params()).then_some(step)
    }

    fn param_count(&self) -> usize {
        match &self.net {
            Net::Dense(d) => d.param_count(),
            Net::Conv(c) => c.param_count(),
        }
    }

    /// The loss of `pixels` (`n` images of 784 numbers in [0, 1], row-major) times `scale`, and
    /// its gradient with respect to every parameter in `params` (flat, the model's visitor order),
    /// in the same order. `scale` is the share of a batch these images are (1 for a whole batch).
    pub fn loss_and_gradient(&mut self, params: &[f32], pixels: &[f32], scale: f32) -> (f32, Vec<f32>) {
        assert_eq!(params.len(), self.param_count(), "parameters of another model");
        assert_eq!(pixels.len() % IMAGE_PIXELS, 0, "whole images only");
        let batch = pixels.len() / IMAGE_PIXELS;
        let mut gradient = vec![0.0; params.len()];
        if batch == 0 {
            return (0.0, gradient);
        }
        let loss = match &mut self.net {
            Net::Dense(d) => d.step(params, pixels, batch, scale, &mut gradient),
            Net::Conv(c) => c.step(params, pixels, batch, scale, &mut gradient),
        };
        (loss, gradient)
    }
}

/// Where one layer's weight and bias lie in the flat parameters (weight first, then bias, as
/// the model's visitor meets them), and so in the flat gradient.
#[derive(Clone, Copy)]
struct Layer {
    at: usize,
    weights: usize,
    biases: usize,
}

impl Layer {
    /// The layers of `sizes` (each layer's weight and bias lengths, in parameter order), laid
    /// end to end.
    fn laid_out(sizes: impl IntoIterator<Item = (usize, usize)>) -> Vec<Layer> {
        let mut at = 0;
        sizes
            .into_iter()
            .map(|(weights, biases)| {
                let layer = Layer { at, weights, biases };
                at += weights + biases;
                layer
            })
            .collect()
    }

    /// How many parameters `layers` hold together.
    fn count(layers: &[Layer]) -> usize {
        layers.last().map_or(0, |l| l.at + l.weights + l.biases)
    }

    /// This layer's weight and bias in `params`.
    fn of(self, params: &[f32]) -> (&[f32], &[f32]) {
        params[self.at..][..self.weights + self.biases].split_at(self.weights)
    }

    /// This layer's weight and bias gradients in `gradient`.
    fn of_mut(self, gradient: &mut [f32]) -> (&mut [f32], &mut [f32]) {
        gradient[self.at..][..self.weights + self.biases].split_at_mut(self.weights)
    }
}

/// Adds `bias[r / rows_per_bias]` to every element of row `r` of a row-major matrix with `cols`
/// columns (a bias per channel, a channel being `rows_per_bias` rows).
fn add_row_bias(x: &mut [f32], cols: usize, bias: &[f32], rows_per_bias: usize) {
    for (r, row) in x.chunks_exact_mut(cols).enumerate() {
        let b = bias[r / rows_per_bias];
        row.iter_mut().for_each(|v| *v += b);
    }
}

/// `x[r, c] += bias[c]`: a bias per column of a row-major matrix (the dense layers' layout).
fn add_col_bias(x: &mut [f32], bias: &[f32]) {
    for row in x.chunks_exact_mut(bias.len()) {
        row.iter_mut().zip(bias).for_each(|(v, b)| *v += b);
    }
}

fn relu(x: &mut [f32]) {
    x.iter_mut().for_each(|v| *v = v.max(0.0));
}

/// The gradient through a ReLU whose output was `out`: zero where the output is 0 (burn's rule).
fn relu_back(grad: &mut [f32], out: &[f32]) {
    grad.iter_mut().zip(out).for_each(|(g, &o)| *g = if o > 0.0 { *g } else { 0.0 });
}

/// `sums[r / rows_per_sum] += sum of row r`, for a row-major matrix with `cols` columns.
fn row_sums(x: &[f32], cols: usize, rows_per_sum: usize, sums: &mut [f32]) {
    for (r, row) in x.chunks_exact(cols).enumerate() {
        sums[r / rows_per_sum] += sum(row);
    }
}

/// A sum in 8 running lanes, added at the end: one chain of additions would wait on each
/// addition's latency (and cannot be vectorised, since it fixes the order), 8 can go at once.
fn sum(x: &[f32]) -> f32 {
    let mut lanes = [0.0f32; 8];
    let chunks = x.chunks_exact(8);
    let rest: f32 = chunks.remainder().iter().sum();
    for chunk in chunks {
        lanes.iter_mut().zip(chunk).for_each(|(l, v)| *l += v);
    }
    lanes.iter().sum::<f32>() + rest
}
