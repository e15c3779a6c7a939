//! The dense model's middle layers (128-64-12-3-12-64-128 in the seed's) in three launches a step
//! rather than twelve: one runs the six layers forward, one their input gradients back to the
//! first layer's output, both [`IMAGES`] images a unit, and one takes the weight and bias
//! gradients of every layer but the last.
//!
//! A middle layer's product at batch 32 is a few thousand sums: too little work to pay for a
//! launch of its own, which costs the host tens of microseconds in the browser however fast the
//! GPU ([`super`]). A unit that owns its images through all six layers needs no barrier between
//! them (a unit reads what it wrote itself; a barrier would make SwiftShader run the kernel as
//! coroutines): about 18,000 multiply-adds an image each way in the seed's model, in tiles of
//! its images by [`COLS`] outputs, so that each weight it loads serves [`IMAGES`] of them. A code
//! or hidden layer wider than [`MAX_WIDTH`] makes that sequence long, and the step then launches
//! the middle layers one by one ([`super::kernels`]).
//!
//! The activations are one buffer, `acts`, every layer's output but the last's at
//! [`output_at`], and their gradients another of the same layout, `act_grads`; the layers'
//! widths are the model's mirrored ones, [`widths`], so the kernels need only the hidden and code
//! widths to find every weight.

// The #[cube] macro writes paths from `cubecl::`: burn's re-export is that crate.
use burn::cubecl;
use cubecl::prelude::*;

use super::kernels::{COLS, ROWS, WIDTH, bias_gradient, tile_product, weight_gradient_tile};

/// The widest hidden or code layer the middle kernels take (the seed's is 128).
pub(super) const MAX_WIDTH: usize = 128;

/// Images a unit of [`middle_forward`] and [`middle_backward`] takes: each weight it loads serves
/// this many of them. At batch 32 that is 8 units, two 4-wide SIMD groups on SwiftShader, one
/// for each of this machine's cores; more images a unit would leave a core idle there.
pub(super) const IMAGES: usize = 4;

/// Units in a workgroup of [`middle_forward`] and [`middle_backward`]: a CPU-run adapter runs a
/// workgroup on one thread, so 8 units make two.
pub(super) const MIDDLE_UNITS: u32 = 4;

/// The dense model's layers: 4 down to the code, 4 back up.
const LAYERS: usize = 8;

/// The layer whose output is the code: its ReLU is the model's choice.
const CODE: usize = 3;

/// The dense model's widths from its hidden widths and code: layer `l` takes `widths[l]`
/// numbers an image and gives `widths[l + 1]`.
#[cube]
fn widths(h1: usize, h2: usize, h3: usize, latent: usize) -> Array<usize> {
    let mut w = Array::<usize>::new(LAYERS + 1);
    w[0] = 784;
    w[1] = h1;
    w[2] = h2;
    w[3] = h3;
    w[4] = latent;
    w[5] = h3;
    w[6] = h2;
    w[7] = h1;
    w[8] = 784;
    w
}

/// Where each layer's weights start in the flat parameters (its biases follow them).
#[cube]
fn weights_at(w: &Array<usize>) -> Array<usize> {
    let mut at = Array::<usize>::new(LAYERS);
    at[0] = 0;
    for l in 1..LAYERS {
        at[l] = at[l - 1] + w[l - 1] * w[l] + w[l];
    }
    at
}

/// Where each layer's output starts in `acts` (and its gradient in `act_grads`) for `batch`
/// images: the layers' outputs one after another, the last layer's not among them, each from a
/// whole vector (the last layer reads layer 6's output [`WIDTH`] numbers at a time,
/// [`super::wide_kernels`]).
#[cube]
fn output_at(w: &Array<usize>, batch: usize) -> Array<usize> {
    let mut at = Array::<usize>::new(LAYERS);
    at[0] = 0;
    for l in 1..LAYERS {
        at[l] = at[l - 1] + (batch * w[l]).div_ceil(WIDTH) * WIDTH;
    }
    at
}

/// The model's [`widths`], where each layer's weights start ([`weights_at`]) and where its
/// output does ([`output_at`]), for `batch` images.
#[cube]
fn layout(h1: u32, h2: u32, h3: u32, latent: u32, batch: usize) -> (Array<usize>, Array<usize>, Array<usize>) {
    let w = widths(h1 as usize, h2 as usize, h3 as usize, latent as usize);
    let at = weights_at(&w);
    let out = output_at(&w, batch);
    (w, at, out)
}

/// Whether layer `l`'s output goes through a ReLU: every layer's but the last's, and the code's
/// where the model says so.
#[cube]
fn relu_after(l: usize, code_relu: u32) -> bool {
    l + 1 < LAYERS && (l != CODE || code_relu == 1)
}

/// Layers 1 to 6 forward, [`IMAGES`] images a unit: each layer's output into `acts`, from layer
/// 0's output there, a tile of the unit's images by [`COLS`] outputs at a time
/// ([`tile_product`]).
#[cube(launch)]
pub(super) fn middle_forward(acts: &mut [f32], params: &[f32], batch: u32, h1: u32, h2: u32, h3: u32, latent: u32, code_relu: u32) {
    let (first_b, batch) = (ABSOLUTE_POS * IMAGES, batch as usize);
    if first_b < batch {
        let (w, at, out) = layout(h1, h2, h3, latent, batch);
        let mut rows = Array::<usize>::new(IMAGES);
        let mut cols = Array::<usize>::new(COLS);
        let mut sums = Array::<f32>::new(IMAGES * COLS);
        for l in 1..LAYERS - 1 {
            let (inputs, outputs) = (w[l], w[l + 1]);
            let relu = relu_after(l, code_relu);
            // Images past the batch stand in as its last, the unit's own: read, never written.
            #[unroll]
            for r in 0..IMAGES {
                rows[r] = out[l - 1] + usize::min(first_b + r, batch - 1) * inputs;
            }
            for first_o in range_stepped(0, outputs, COLS) {
                #[unroll]
                for c in 0..COLS {
                    let o = usize::min(first_o + c, outputs - 1);
                    cols[c] = at[l] + o;
                    let bias = params[at[l] + inputs * outputs + o];
                    #[unroll]
                    for r in 0..IMAGES {
                        sums[r * COLS + c] = bias;
                    }
                }
                tile_product(&*acts, &rows, 1, params, &cols, outputs, inputs, &mut sums, IMAGES);
                #[unroll]
                for r in 0..IMAGES {
                    #[unroll]
                    for c in 0..COLS {
                        let (b, o) = (first_b + r, first_o + c);
                        if b < batch && o < outputs {
                            let mut y = sums[r * COLS + c];
                            if relu {
                                y = f32::max(y, 0.0);
                            }
                            acts[out[l] + b * outputs + o] = y;
                        }
                    }
                }
            }
        }
    }
}

/// Layers 6 down to 1 backward, [`IMAGES`] images a unit: from the gradient at layer 6's output
/// in `act_grads` (the last layer's backward launch leaves it there), each layer's input
/// gradient, `g · Wᵀ`, a tile of the unit's images by [`COLS`] inputs at a time, zero where the
/// ReLU before the layer was off (burn's rule), down to the gradient at layer 0's output.
#[cube(launch)]
pub(super) fn middle_backward(acts: &[f32], params: &[f32], act_grads: &mut [f32], batch: u32, h1: u32, h2: u32, h3: u32, latent: u32, code_relu: u32) {
    let (first_b, batch) = (ABSOLUTE_POS * IMAGES, batch as usize);
    if first_b < batch {
        let (w, at, out) = layout(h1, h2, h3, latent, batch);
        let mut rows = Array::<usize>::new(IMAGES);
        let mut cols = Array::<usize>::new(COLS);
        let mut sums = Array::<f32>::new(IMAGES * COLS);
        for k in 1..LAYERS - 1 {
            let l = LAYERS - 1 - k;
            let (inputs, outputs) = (w[l], w[l + 1]);
            let relu = relu_after(l - 1, code_relu);
            // A(b, o) = g[b][o], B(o, i) = W[i][o].
            #[unroll]
            for r in 0..IMAGES {
                rows[r] = out[l] + usize::min(first_b + r, batch - 1) * outputs;
            }
            for first_i in range_stepped(0, inputs, COLS) {
                #[unroll]
                for c in 0..COLS {
                    cols[c] = at[l] + usize::min(first_i + c, inputs - 1) * outputs;
                    #[unroll]
                    for r in 0..IMAGES {
                        sums[r * COLS + c] = 0.0;
                    }
                }
                tile_product(&*act_grads, &rows, 1, params, &cols, 1, outputs, &mut sums, IMAGES);
                #[unroll]
                for r in 0..IMAGES {
                    #[unroll]
                    for c in 0..COLS {
                        let (b, i) = (first_b + r, first_i + c);
                        if b < batch && i < inputs {
                            let x = out[l - 1] + b * inputs + i;
                            let mut sum = sums[r * COLS + c];
                            if relu {
                                sum = select(acts[x] > 0.0, sum, 0.0f32);
                            }
                            act_grads[x] = sum;
                        }
                    }
                }
            }
        }
    }
}

/// The weight and bias gradients of layers 1 to 6 in one launch: for each layer in turn,
/// [`super::kernels`]' tiles of its weights (`xᵀ · g` over the batch, a [`ROWS`] x [`COLS`] tile
/// a unit), then a unit per bias, each layer's input the layer before's output in `acts`. Layer
/// 0's, from the images, have a launch of their own, which reads them four numbers at a time
/// ([`super::wide_kernels`]).
#[cube(launch)]
#[allow(clippy::too_many_arguments)]
pub(super) fn middle_weight_grads(acts: &[f32], act_grads: &[f32], grads: &mut [f32], batch: u32, h1: u32, h2: u32, h3: u32, latent: u32) {
    let batch = batch as usize;
    let (w, at, out) = layout(h1, h2, h3, latent, batch);
    // This unit's layer and its place among the layer's units (LAYERS - 1: none, past the end).
    let index = ABSOLUTE_POS;
    let mut layer = (LAYERS - 1).runtime();
    let mut local = 0usize;
    let mut start = 0usize;
    for l in 1..LAYERS - 1 {
        let units = w[l].div_ceil(ROWS) * w[l + 1].div_ceil(COLS) + w[l + 1];
        if index >= start && index < start + units {
            layer = l;
            local = index - start;
        }
        start += units;
    }
    if layer < LAYERS - 1 {
        let (inputs, outputs) = (w[layer], w[layer + 1]);
        let weight_units = inputs.div_ceil(ROWS) * outputs.div_ceil(COLS);
        if local < weight_units {
            weight_gradient_tile(acts, out[layer - 1], act_grads, out[layer], grads, at[layer], outputs, 1, batch, inputs, outputs, local);
        } else {
            bias_gradient(act_grads, out[layer], grads, at[layer] + inputs * outputs, batch, outputs, 1, local - weight_units);
        }
    }
}

/// Units of [`middle_weight_grads`] for a model of these hidden widths and code: as the kernel
/// counts them, a tile of weights each and one per bias, for layers 1 to 6 of [`widths`].
pub(super) fn weight_grad_units([h1, h2, h3, latent]: [usize; 4]) -> usize {
    let widths = [784, h1, h2, h3, latent, h3, h2, h1, 784];
    widths.windows(2).take(LAYERS - 1).skip(1).map(|w| super::kernels::tiles(w[0], w[1]) + w[1]).sum()
}
