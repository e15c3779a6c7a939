//! The dense model's two wide layers (784 to the first hidden width, and back), forward and
//! backward, with their inputs, weights and gradients read four numbers a load: the products of
//! [`super::kernels`] over buffers bound as vectors of [`WIDTH`].
//!
//! Why vectors: a browser checks each load from a storage buffer against the buffer's length
//! (WebGPU's robust access), whatever the adapter, and on SwiftShader those checks cost a third
//! of the dense model's step (Chromium with them turned off, `--enable-dawn-features=
//! disable_robustness`, trained it 1.6 times as fast). A vector is one load and one check for
//! four numbers. The sums are the scalar kernels', added in the same order.
//!
//! A layer runs here when its numbers fall on whole vectors ([`super::GpuStep`] decides): its
//! widths multiples of four, its weights `[inputs, outputs]` from a multiple of four in the
//! parameters (the step pads them so), a bias per output, and its input and output gradient at
//! multiples of four in their buffers (the middle layers' outputs are laid out so). Other layers,
//! and the conv model's 7x7 ones, run in [`super::kernels`].

// The #[cube] macro writes paths from `cubecl::`: burn's re-export is that crate.
use burn::cubecl;
use cubecl::prelude::*;

use super::kernels::{COLS, ROWS, WIDTH, forward_epilogue, spill, zeros};

// A tile's outputs are one vector of the weight's row and of the output's gradient.
const _: () = assert!(COLS == WIDTH);

/// [`super::kernels::layer_forward`] for a layer whose numbers fall on whole vectors: `x`,
/// `params` and every position (`x_at`, `at`) and width (`inputs`, `outputs`) in numbers, the
/// buffers read `WIDTH` at a time. A unit's tile takes four of the sum's steps at a time: four
/// loads of the weight (the tile's outputs in rows `k` to `k + 3`), then a load an image of its
/// inputs `k` to `k + 3`.
#[cube(launch)]
#[allow(clippy::too_many_arguments)]
pub(super) fn wide_forward<N: Size>(
    x: &[Vector<f32, N>],
    params: &[Vector<f32, N>],
    targets: &[f32],
    y: &mut [f32],
    partials: &mut [f32],
    batch: u32,
    inputs: u32,
    outputs: u32,
    at: u32,
    x_at: u32,
    y_at: u32,
    targets_at: u32,
    factor: f32,
    relu: u32,
    loss: u32,
) {
    let index = ABSOLUTE_POS;
    let (batch, inputs, outputs, at, x_at) = (batch as usize, inputs as usize, outputs as usize, at as usize, x_at as usize);
    let col_tiles = outputs / COLS;
    if index < batch.div_ceil(ROWS) * col_tiles {
        let (first_b, first_o) = (index / col_tiles * ROWS, index % col_tiles * COLS);
        // In vectors from here: each image's inputs, and the tile's outputs in the weight's row 0.
        let mut rows = Array::<usize>::new(ROWS);
        #[unroll]
        for r in 0..ROWS {
            rows[r] = (x_at + usize::min(first_b + r, batch - 1) * inputs) / WIDTH;
        }
        let (w_row, w_step) = ((at + first_o) / WIDTH, outputs / WIDTH);
        let bias = params[(at + inputs * outputs + first_o) / WIDTH];
        let mut sums = Array::<f32>::new(ROWS * COLS);
        #[unroll]
        for r in 0..ROWS {
            #[unroll]
            for c in 0..COLS {
                sums[r * COLS + c] = bias.extract(c);
            }
        }
        for k4 in 0..inputs / WIDTH {
            let w = w_row + WIDTH * k4 * w_step;
            let (w0, w1, w2, w3) = (params[w], params[w + w_step], params[w + 2 * w_step], params[w + 3 * w_step]);
            #[unroll]
            for r in 0..ROWS {
                let a = x[rows[r] + k4];
                #[unroll]
                for c in 0..COLS {
                    let mut sum = sums[r * COLS + c];
                    sum += a.extract(0usize) * w0.extract(c);
                    sum += a.extract(1usize) * w1.extract(c);
                    sum += a.extract(2usize) * w2.extract(c);
                    sum += a.extract(3usize) * w3.extract(c);
                    sums[r * COLS + c] = sum;
                }
            }
        }
        forward_epilogue(&sums, targets, y, partials, batch, outputs, first_b, first_o, y_at as usize, targets_at as usize, factor, relu, loss, index);
    }
}

/// [`super::kernels::layer_backward`] for a layer whose numbers fall on whole vectors
/// ([`wide_forward`]): `x`, `params` and `g` read `WIDTH` at a time. Its units: the input's
/// gradient where `input_grad` is 1 (tiles of images by inputs, four steps of the sum over the
/// outputs a load of the output's gradient and one of each input's weights), then the weights'
/// (tiles of inputs by outputs, summed over the batch: two loads of an image's inputs and one of
/// its output gradient a step), then a unit for every four biases.
#[cube(launch)]
#[allow(clippy::too_many_arguments)]
pub(super) fn wide_backward<N: Size>(
    x: &[Vector<f32, N>],
    params: &[Vector<f32, N>],
    g: &[Vector<f32, N>],
    grads: &mut [f32],
    gx: &mut [f32],
    batch: u32,
    inputs: u32,
    outputs: u32,
    at: u32,
    x_at: u32,
    g_at: u32,
    gx_at: u32,
    input_grad: u32,
    relu_before: u32,
) {
    let (batch, inputs, outputs, at, x_at) = (batch as usize, inputs as usize, outputs as usize, at as usize, x_at as usize);
    let (g_at, gx_at) = (g_at as usize, gx_at as usize);
    let weight_units = inputs.div_ceil(ROWS) * (outputs / COLS);
    let mut input_units = 0usize;
    if input_grad == 1 {
        input_units = batch.div_ceil(ROWS) * (inputs / COLS);
    }
    let index = ABSOLUTE_POS;
    if index < input_units {
        input_gradient_tile(x, params, g, gx, batch, inputs, outputs, at, x_at, g_at, gx_at, relu_before, index);
    } else if index < input_units + weight_units {
        weight_gradient_tile(x, g, grads, batch, inputs, outputs, at, x_at, g_at, index - input_units);
    } else if index < input_units + weight_units + outputs / WIDTH {
        // Four biases: their outputs' gradients summed over the batch.
        let first_o = (index - input_units - weight_units) * WIDTH;
        let mut sum = Vector::<f32, N>::new(0.0f32);
        for b in 0..batch {
            sum += g[(g_at + b * outputs + first_o) / WIDTH];
        }
        let biases = at + inputs * outputs + first_o;
        #[unroll]
        for c in 0..WIDTH {
            grads[biases + c] = sum.extract(c);
        }
    }
}

/// The input's gradient `g · Wᵀ` at the tile `index` of images by inputs, zero where the ReLU
/// before the layer was off (`relu_before`: 1), to `gx` from `gx_at`.
#[cube]
#[allow(clippy::too_many_arguments)]
fn input_gradient_tile<N: Size>(
    x: &[Vector<f32, N>],
    params: &[Vector<f32, N>],
    g: &[Vector<f32, N>],
    gx: &mut [f32],
    batch: usize,
    inputs: usize,
    outputs: usize,
    at: usize,
    x_at: usize,
    g_at: usize,
    gx_at: usize,
    relu_before: u32,
    index: usize,
) {
    // A(b, o) = g[b][o], B(o, i) = W[i][o]: both run along the outputs, four to a load.
    let col_tiles = inputs / COLS;
    let (first_b, first_i) = (index / col_tiles * ROWS, index % col_tiles * COLS);
    let mut rows = Array::<usize>::new(ROWS);
    #[unroll]
    for r in 0..ROWS {
        rows[r] = (g_at + usize::min(first_b + r, batch - 1) * outputs) / WIDTH;
    }
    let w = (at + first_i * outputs) / WIDTH;
    let w_step = outputs / WIDTH;
    let mut sums = zeros(ROWS * COLS);
    for k4 in 0..outputs / WIDTH {
        let (w0, w1, w2, w3) = (params[w + k4], params[w + w_step + k4], params[w + 2 * w_step + k4], params[w + 3 * w_step + k4]);
        #[unroll]
        for r in 0..ROWS {
            // Weight (first_i + c, 4 k4 + j) is component j of the c-th of w0 to w3.
            let a = g[rows[r] + k4];
            sums[r * COLS] = dot(sums[r * COLS], a, w0);
            sums[r * COLS + 1] = dot(sums[r * COLS + 1], a, w1);
            sums[r * COLS + 2] = dot(sums[r * COLS + 2], a, w2);
            sums[r * COLS + 3] = dot(sums[r * COLS + 3], a, w3);
        }
    }
    let sums = spill(&sums);
    for r in 0..ROWS {
        let b = first_b + r;
        if b < batch {
            // The layer's inputs at this tile's four: the ReLU's outputs, where one came before.
            let before = x[(x_at + b * inputs + first_i) / WIDTH];
            #[unroll]
            for c in 0..COLS {
                let mut sum = sums[r * COLS + c];
                // burn's rule: no gradient through a ReLU whose output was 0.
                if relu_before == 1 {
                    sum = select(before.extract(c) > 0.0, sum, 0.0f32);
                }
                gx[gx_at + b * inputs + first_i + c] = sum;
            }
        }
    }
}

/// `sum` plus the products of `a` and `b`'s components, added one at a time, in order.
#[cube]
fn dot<N: Size>(sum: f32, a: Vector<f32, N>, b: Vector<f32, N>) -> f32 {
    let mut sum = sum;
    #[unroll]
    for j in 0..WIDTH {
        sum += a.extract(j) * b.extract(j);
    }
    sum
}

/// The weights' gradient `xᵀ · g` summed over the batch at tile `index` of inputs by outputs, to
/// `grads` at `at + i outputs + o`.
#[cube]
#[allow(clippy::too_many_arguments)]
fn weight_gradient_tile<N: Size>(
    x: &[Vector<f32, N>],
    g: &[Vector<f32, N>],
    grads: &mut [f32],
    batch: usize,
    inputs: usize,
    outputs: usize,
    at: usize,
    x_at: usize,
    g_at: usize,
    index: usize,
) {
    // A(i, b) = x[b][i]: the tile's inputs are two vectors of an image (the second one moved
    // back onto the last four inputs where the tile runs past them); B(b, o) = g[b][o], one.
    let col_tiles = outputs / COLS;
    let (first_i, first_o) = (index / col_tiles * ROWS, index % col_tiles * COLS);
    let low = (x_at + first_i) / WIDTH;
    let high = (x_at + usize::min(first_i + WIDTH, inputs - WIDTH)) / WIDTH;
    let (x_step, g_step) = (inputs / WIDTH, outputs / WIDTH);
    let o = (g_at + first_o) / WIDTH;
    let mut sums = zeros(ROWS * COLS);
    for b in 0..batch {
        let (a_low, a_high, gb) = (x[low + b * x_step], x[high + b * x_step], g[o + b * g_step]);
        #[unroll]
        for r in 0..WIDTH {
            #[unroll]
            for c in 0..COLS {
                sums[r * COLS + c] += a_low.extract(r) * gb.extract(c);
                sums[(r + WIDTH) * COLS + c] += a_high.extract(r) * gb.extract(c);
            }
        }
    }
    let sums = spill(&sums);
    for r in 0..ROWS {
        let i = first_i + r;
        if i < inputs {
            #[unroll]
            for c in 0..COLS {
                grads[at + i * outputs + first_o + c] = sums[r * COLS + c];
            }
        }
    }
}
