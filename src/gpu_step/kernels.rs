//! The step's products and Adam, in CubeCL (the dense model's layers and the conv model's 7x7
//! ones): compiled to WGSL for the browser's WebGPU and to SPIR-V for Vulkan natively, by the
//! cubecl runtime that burn-wgpu already runs on.
//!
//! Every buffer is a flat `[f32]`. Activations and their gradients are row-major `[batch,
//! features]`. A layer's weight element `(i, o)` is at `at + i w_in + o w_out` in the flat
//! parameters and its biases follow the weight, one per `bias_every` outputs ([`crate::params`]'
//! order): burn's `Linear` is `[inputs, outputs]` (`w_in` = outputs, `w_out` = 1, a bias each); the
//! conv model's 7x7 layers are products of a whole 7x7 map too, its encoder's kernel `[outputs,
//! inputs]` and its decoder's `[inputs, outputs]` with a bias per channel of 49 pixels. The conv
//! model's stride-2 layers are [`super::conv_kernels`]. Every product, a
//! layer's forward and both of its backward ones, is [`tile_product`]: a unit computes a
//! [`ROWS`] x [`COLS`] tile of it in registers, so that each number it loads serves four or
//! eight sums. They are plain loops over memory, no tiles in workgroup memory and no barriers (SwiftShader
//! runs a kernel with a barrier as coroutines, at many times the cost), so a real GPU runs them at
//! a fraction of its speed; but each layer is one launch, and launches are what a step costs the
//! host. Each launch's time alone: `bench --device wgpu --gpu-step --kernels`.

// The #[cube] macro writes paths from `cubecl::`: burn's re-export is that crate.
use burn::cubecl;
use cubecl::prelude::*;

use super::{BETA_1, BETA_2};

/// Units per workgroup of a layer's launch: few, so that the big layers' few tiles (128 at batch
/// 32 for the first layer's forward product) still make several workgroups, which a CPU-run
/// adapter spreads over its cores.
pub(super) const UNITS: u32 = 16;

/// Units per workgroup of [`adam`]: WebGPU guarantees 256.
pub(super) const ADAM_UNITS: u32 = 64;

/// Numbers in a vector, where a kernel binds a buffer as vectors ([`adam`],
/// [`super::wide_kernels`]): one load, and in a browser one check of the load against the
/// buffer's length, for four numbers.
pub(super) const WIDTH: usize = 4;

/// Vectors an [`adam`] unit updates, a unit's `stride` apart (neighbouring units take
/// neighbouring vectors): fewer units, each one's start-up shared by four.
pub(super) const ADAM_PER_UNIT: usize = 4;

/// Parts a step's loss comes back in: [`adam`]'s first units each sum a share of the last layer's
/// partial sums, and the host adds the parts in f64. A running f32 sum of all 1,568 partials
/// (batch 32) drifted by up to 1.2e-6 of the loss; a compensated one, tried first, came out of
/// Mesa's shader compiler as the plain sum (it folds `(t + x) - t` to `x`), and other adapters'
/// compilers may do the same. Sums of 25 numbers each drift by far less whatever the compiler.
pub(super) const LOSS_PARTS: usize = 64;

/// A unit computes a tile of [`ROWS`] x [`COLS`] of a layer's product (rows of images, or of
/// inputs for a weight's gradient), 32 sums held in registers for 12 loads a step along the sum
/// (a tile of 4 x 4 needs 8 loads for 16 sums, one output a unit 5 for 4). Loads, not
/// arithmetic, are what a step costs on a CPU-run adapter: SwiftShader runs four units at once on
/// 4-wide SIMD, and a load at an index computed at run time is a masked gather of the four lanes,
/// whatever the addresses. (A tile of 8 x 8 was no faster there and took a second longer to
/// compile before the first step.)
pub(super) const ROWS: usize = 8;
/// Columns of a unit's tile: outputs (inputs, for the input's gradient).
pub(super) const COLS: usize = 4;

/// Units for a product of `rows` by `cols`, a [`ROWS`] x [`COLS`] tile a unit.
pub(super) fn tiles(rows: usize, cols: usize) -> usize {
    rows.div_ceil(ROWS) * cols.div_ceil(COLS)
}

/// Adds to `sums` (a `rows` x [`COLS`] tile, row-major: `rows` is [`ROWS`] but in
/// [`super::middle_kernels`]) the sums over `len` of `A(r, k) B(k, c)`, where `A(r, k) =
/// a[a_starts[r] + k a_step]` and `B(k, c) = b[b_starts[c] + k b_step]`: every product of a step,
/// forward and backward, is one of these over a different layout. Rows and columns past the edge
/// point at the last one (a valid address) and are not written by the callers.
#[cube]
#[allow(clippy::too_many_arguments)]
pub(super) fn tile_product(a: &[f32], a_starts: &Array<usize>, a_step: usize, b: &[f32], b_starts: &Array<usize>, b_step: usize, len: usize, sums: &mut Array<f32>, #[comptime] rows: usize) {
    masked_tile_product(a, a_starts, &Array::<f32>::new(1usize), a_step, b, b_starts, b_step, len, sums, rows, false);
}

/// [`tile_product`], with `A(r, k)` times `mask[r]` where `masked` (the conv model's stride-2
/// layers, [`super::conv_kernels`]: 1, or 0 for a row that stands in for a tap off the map). A
/// comptime choice, so the unmasked kernels compile to the loop without it and read no mask.
#[cube]
#[allow(clippy::too_many_arguments)]
pub(super) fn masked_tile_product(
    a: &[f32],
    a_starts: &Array<usize>,
    mask: &Array<f32>,
    a_step: usize,
    b: &[f32],
    b_starts: &Array<usize>,
    b_step: usize,
    len: usize,
    sums: &mut Array<f32>,
    #[comptime] rows: usize,
    #[comptime] masked: bool,
) {
    for k in 0..len {
        let (ka, kb) = (k * a_step, k * b_step);
        let mut av = Array::<f32>::new(rows);
        let mut bv = Array::<f32>::new(COLS);
        #[unroll]
        for r in 0..rows {
            if comptime![masked] {
                av[r] = a[a_starts[r] + ka] * mask[r];
            } else {
                av[r] = a[a_starts[r] + ka];
            }
        }
        #[unroll]
        for c in 0..COLS {
            bv[c] = b[b_starts[c] + kb];
        }
        #[unroll]
        for r in 0..rows {
            #[unroll]
            for c in 0..COLS {
                sums[r * COLS + c] += av[r] * bv[c];
            }
        }
    }
}

/// `len` sums, each 0.
#[cube]
pub(super) fn zeros(#[comptime] len: usize) -> Array<f32> {
    let mut sums = Array::<f32>::new(len);
    #[unroll]
    for k in 0..len {
        sums[k] = 0.0;
    }
    sums
}

/// The forward product of a layer for the tile of images from `first_b` and outputs from
/// `first_o`, its bias added: `x · W + b`, the images at `x_at` in `x` (each `inputs` long),
/// the layer's weight at `at` in `params`.
#[cube]
#[allow(clippy::too_many_arguments)]
fn forward_tile(x: &[f32], params: &[f32], batch: usize, inputs: usize, outputs: usize, at: usize, w_in: usize, w_out: usize, bias_every: usize, x_at: usize, first_b: usize, first_o: usize) -> Array<f32> {
    let mut sums = Array::<f32>::new(ROWS * COLS);
    let mut rows = Array::<usize>::new(ROWS);
    let mut cols = Array::<usize>::new(COLS);
    #[unroll]
    for r in 0..ROWS {
        rows[r] = x_at + usize::min(first_b + r, batch - 1) * inputs;
    }
    #[unroll]
    for c in 0..COLS {
        let o = usize::min(first_o + c, outputs - 1);
        cols[c] = at + o * w_out;
        let bias = params[at + inputs * outputs + o / bias_every];
        #[unroll]
        for r in 0..ROWS {
            sums[r * COLS + c] = bias;
        }
    }
    tile_product(x, &rows, 1, params, &cols, w_in, inputs, &mut sums, ROWS);
    sums
}

/// A copy of a tile's sums for its epilogue, which loops over them at run time: unrolled, the
/// epilogue's branches (the loss's sigmoid, the bounds) were most of a kernel's code, and
/// SwiftShader's compile before the first step grew with them. The copy is made with constant
/// indices, so the sums themselves stay in registers through the product.
#[cube]
pub(super) fn spill(sums: &Array<f32>) -> Array<f32> {
    let mut out = Array::<f32>::new(ROWS * COLS);
    #[unroll]
    for k in 0..ROWS * COLS {
        out[k] = sums[k];
    }
    out
}

/// One layer's forward pass: a unit per tile of [`ROWS`] images by [`COLS`] outputs (the units
/// of a workgroup are neighbouring outputs, so they read neighbouring weights and the same
/// inputs); the layer's input starts at `x_at` in `x` (a call's images are one buffer), its
/// output at `y_at` in `y` (the dense model's middle layers' outputs are one buffer,
/// [`super::middle_kernels`]).
///
/// With `loss` 0, `y = act(x · W + b)`, `relu`: 1 for a ReLU as the activation. With `loss` 1,
/// the last layer, its sigmoid and the MSE against `targets` (from `targets_at`) in one: the
/// gradient of `scale * mean((sigmoid(z) - t)^2)` with respect to each logit `z` goes to `y`,
/// `factor` being `2 scale / n`, and each unit's sum of its tile's squared errors to
/// `partials[index]` (summed by [`adam`], which needs every gradient anyway). Flags like these
/// are numbers rather than compile-time choices: each variant of a kernel is one more pipeline
/// to compile before the first step, about half a second each on SwiftShader.
#[cube(launch)]
pub(super) fn layer_forward(
    x: &[f32],
    params: &[f32],
    targets: &[f32],
    y: &mut [f32],
    partials: &mut [f32],
    batch: u32,
    inputs: u32,
    outputs: u32,
    at: u32,
    w_in: u32,
    w_out: u32,
    bias_every: u32,
    x_at: u32,
    y_at: u32,
    targets_at: u32,
    factor: f32,
    relu: u32,
    loss: u32,
) {
    let index = ABSOLUTE_POS;
    let (batch, inputs, outputs, at, x_at) = (batch as usize, inputs as usize, outputs as usize, at as usize, x_at as usize);
    let (w_in, w_out, bias_every) = (w_in as usize, w_out as usize, bias_every as usize);
    let col_tiles = outputs.div_ceil(COLS);
    if index < batch.div_ceil(ROWS) * col_tiles {
        let (first_b, first_o) = (index / col_tiles * ROWS, index % col_tiles * COLS);
        let sums = forward_tile(x, params, batch, inputs, outputs, at, w_in, w_out, bias_every, x_at, first_b, first_o);
        forward_epilogue(&sums, targets, y, partials, batch, outputs, first_b, first_o, y_at as usize, targets_at as usize, factor, relu, loss, index);
    }
}

/// One output of a forward launch, number `k` of the layer's output, at `y_at + k` in `y`, from
/// its sum `z` (bias included): `act(z)`, or for the last layer (`loss` 1) the sigmoid-MSE's
/// gradient at `z` against `targets[targets_at + k]` (`factor` being `2 scale / n`); returns the
/// squared error (0 but for the last layer).
#[cube]
#[allow(clippy::too_many_arguments)]
pub(super) fn finish_output(z: f32, k: usize, y_at: usize, targets: &[f32], targets_at: usize, y: &mut [f32], factor: f32, relu: u32, loss: u32) -> f32 {
    let mut square = 0.0f32;
    if loss == 1 {
        // The sigmoid from e^-|z|, which cannot overflow.
        let e = f32::exp(-f32::abs(z));
        let mut s = e / (1.0 + e);
        if z >= 0.0 {
            s = 1.0 / (1.0 + e);
        }
        let d = s - targets[targets_at + k];
        square = d * d;
        // d(mean((s - t)^2))/dz = 2 (s - t) s (1 - s) / n, times the share.
        y[y_at + k] = factor * d * (s * (1.0 - s));
    } else if relu == 1 {
        y[y_at + k] = f32::max(z, 0.0);
    } else {
        y[y_at + k] = z;
    }
    square
}

/// The end of a layer's forward pass for the tile of images from `first_b` and outputs from
/// `first_o`, whose sums (the bias added) are `sums`: [`layer_forward`] says what goes to `y`
/// and `partials`.
#[cube]
#[allow(clippy::too_many_arguments)]
pub(super) fn forward_epilogue(
    sums: &Array<f32>,
    targets: &[f32],
    y: &mut [f32],
    partials: &mut [f32],
    batch: usize,
    outputs: usize,
    first_b: usize,
    first_o: usize,
    y_at: usize,
    targets_at: usize,
    factor: f32,
    relu: u32,
    loss: u32,
    index: usize,
) {
    let sums = spill(sums);
    let mut squares = 0.0f32;
    for r in 0..ROWS {
        for c in 0..COLS {
            let (b, o) = (first_b + r, first_o + c);
            if b < batch && o < outputs {
                squares += finish_output(sums[r * COLS + c], b * outputs + o, y_at, targets, targets_at, y, factor, relu, loss);
            }
        }
    }
    if loss == 1 {
        partials[index] = squares;
    }
}

/// One layer's backward pass in one launch. Where `input_grad` is 1 the first `tiles(batch,
/// inputs)` units each sum the gradient at a tile of images by inputs, `g · Wᵀ`, zero where the
/// ReLU before this layer was off (`relu_before`: 1); the next `tiles(inputs, outputs)` units each
/// the gradients of a tile of weights over the batch (`xᵀ · g`), the next `outputs` a bias's.
/// The weight and bias gradients go to `grads` at `at`, the flat layout; the input's gradient
/// to `gx` from `gx_at`. The layer's input starts at `x_at` in `x`, its output's gradient at
/// `g_at` in `g`.
#[cube(launch)]
pub(super) fn layer_backward(
    x: &[f32],
    params: &[f32],
    g: &[f32],
    grads: &mut [f32],
    gx: &mut [f32],
    batch: u32,
    inputs: u32,
    outputs: u32,
    at: u32,
    w_in: u32,
    w_out: u32,
    bias_every: u32,
    x_at: u32,
    g_at: u32,
    gx_at: u32,
    input_grad: u32,
    relu_before: u32,
) {
    let (batch, inputs, outputs, at, x_at) = (batch as usize, inputs as usize, outputs as usize, at as usize, x_at as usize);
    let (w_in, w_out, bias_every) = (w_in as usize, w_out as usize, bias_every as usize);
    let (g_at, gx_at) = (g_at as usize, gx_at as usize);
    let weight_units = inputs.div_ceil(ROWS) * outputs.div_ceil(COLS);
    // The input gradient's units come first: each of them sums over all the outputs, the
    // weights' over the batch (784 against 32 in the last layer), and started first their few
    // long workgroups finish beside the many short ones rather than after them.
    let mut input_units = 0usize;
    if input_grad == 1 {
        input_units = batch.div_ceil(ROWS) * inputs.div_ceil(COLS);
    }
    let index = ABSOLUTE_POS;
    let mut sums = zeros(ROWS * COLS);
    let mut rows = Array::<usize>::new(ROWS);
    let mut cols = Array::<usize>::new(COLS);
    if index < input_units {
        // A(b, o) = g[b][o], B(o, i) = W[i][o]: units from 0, tiles of images by inputs.
        let col_tiles = inputs.div_ceil(COLS);
        let (first_b, first_i) = (index / col_tiles * ROWS, index % col_tiles * COLS);
        #[unroll]
        for r in 0..ROWS {
            rows[r] = g_at + usize::min(first_b + r, batch - 1) * outputs;
        }
        #[unroll]
        for c in 0..COLS {
            cols[c] = at + usize::min(first_i + c, inputs - 1) * w_in;
        }
        tile_product(g, &rows, 1, params, &cols, w_out, outputs, &mut sums, ROWS);
        let sums = spill(&sums);
        for r in 0..ROWS {
            for c in 0..COLS {
                let (b, i) = (first_b + r, first_i + c);
                if b < batch && i < inputs {
                    let mut sum = sums[r * COLS + c];
                    // burn's rule: no gradient through a ReLU whose output was 0.
                    if relu_before == 1 {
                        sum = select(x[x_at + b * inputs + i] > 0.0, sum, 0.0f32);
                    }
                    gx[gx_at + b * inputs + i] = sum;
                }
            }
        }
    } else {
        let index = index - input_units;
        if index < weight_units {
            weight_gradient_tile(x, x_at, g, g_at, grads, at, w_in, w_out, batch, inputs, outputs, index);
        } else if index < weight_units + outputs / bias_every {
            bias_gradient(g, g_at, grads, at + inputs * outputs, batch, outputs, bias_every, index - weight_units);
        }
    }
}

/// The gradient of tile `index` of a layer's weights (its [`ROWS`] inputs by [`COLS`] outputs,
/// tiles row by row), `xᵀ · g` summed over the batch: the layer's input from `x_at` in `x`
/// (`inputs` an image), its output's gradient from `g_at` in `g` (`outputs` an image), weight
/// `(i, o)`'s gradient to `grads` at `at + i w_in + o w_out`.
#[cube]
#[allow(clippy::too_many_arguments)]
pub(super) fn weight_gradient_tile(x: &[f32], x_at: usize, g: &[f32], g_at: usize, grads: &mut [f32], at: usize, w_in: usize, w_out: usize, batch: usize, inputs: usize, outputs: usize, index: usize) {
    // A(i, b) = x[b][i], B(b, o) = g[b][o].
    let col_tiles = outputs.div_ceil(COLS);
    let (first_i, first_o) = (index / col_tiles * ROWS, index % col_tiles * COLS);
    let mut sums = zeros(ROWS * COLS);
    let mut rows = Array::<usize>::new(ROWS);
    let mut cols = Array::<usize>::new(COLS);
    #[unroll]
    for r in 0..ROWS {
        rows[r] = x_at + usize::min(first_i + r, inputs - 1);
    }
    #[unroll]
    for c in 0..COLS {
        cols[c] = g_at + usize::min(first_o + c, outputs - 1);
    }
    tile_product(x, &rows, inputs, g, &cols, outputs, batch, &mut sums, ROWS);
    let sums = spill(&sums);
    for r in 0..ROWS {
        for c in 0..COLS {
            let (i, o) = (first_i + r, first_o + c);
            if i < inputs && o < outputs {
                grads[at + i * w_in + o * w_out] = sums[r * COLS + c];
            }
        }
    }
}

/// The gradient of a layer's bias number `channel`, one per `bias_every` neighbouring outputs (a
/// channel of a feature map): its outputs' gradients (from `g_at` in `g`, `outputs` an image)
/// summed over the batch, to `grads` at `biases_at + channel`.
#[cube]
#[allow(clippy::too_many_arguments)]
pub(super) fn bias_gradient(g: &[f32], g_at: usize, grads: &mut [f32], biases_at: usize, batch: usize, outputs: usize, bias_every: usize, channel: usize) {
    let mut sum = 0.0f32;
    for b in 0..batch {
        let start = g_at + b * outputs + channel * bias_every;
        for o in 0..bias_every {
            sum += g[start + o];
        }
    }
    grads[biases_at + channel] = sum;
}

/// burn's Adam (`AdaptiveMomentum`, epsilon 1e-8, no weight decay) on every parameter at once,
/// [`WIDTH`] parameters a vector, a unit per [`ADAM_PER_UNIT`] vectors, the bias
/// corrections folded into two factors by the host: step `slot` of a call reads its factor,
/// epsilon and learning rate from `constants[3 slot..]`, written with the call's images, so that
/// a recorded step replays unchanged at any step count. The parameters, their gradients and
/// moments are `vectors` vectors long ([`super::GpuStep`] pads them with zeros, which stay 0).
/// Vectors, because a browser checks each load and store of a storage buffer against the
/// buffer's length (WebGPU's robust access), and one check then covers four numbers: the dense
/// model trained 7% faster for it in Chromium on SwiftShader.
/// Units 0 to [`LOSS_PARTS`] - 1 also sum a share each of `partials` (the last layer's units'
/// squared errors), times `mean` (`scale / n`), into `losses[slot LOSS_PARTS..]`: the step's
/// loss stays on the GPU until the call reads all its steps' at once. Each unit alone, with no
/// barrier: a barrier anywhere in a kernel makes SwiftShader run every workgroup of it as
/// coroutines, which cost Adam's 3,400 workgroups ten times the kernel's own time there.
#[cube(launch)]
pub(super) fn adam<N: Size>(
    params: &mut [Vector<f32, N>],
    grads: &[Vector<f32, N>],
    m: &mut [Vector<f32, N>],
    v: &mut [Vector<f32, N>],
    partials: &[f32],
    losses: &mut [f32],
    constants: &[f32],
    vectors: u32,
    partials_len: u32,
    slot: u32,
    mean: f32,
) {
    let index = ABSOLUTE_POS;
    let at = 3 * slot as usize;
    // In f32, as burn computes them, lane by lane.
    let factor = Vector::<f32, N>::new(constants[at]);
    let epsilon = Vector::<f32, N>::new(constants[at + 1]);
    let lr = Vector::<f32, N>::new(constants[at + 2]);
    let (beta_1, beta_2) = (Vector::<f32, N>::new(BETA_1), Vector::<f32, N>::new(BETA_2));
    let (rest_1, rest_2) = (Vector::<f32, N>::new(1.0f32 - BETA_1), Vector::<f32, N>::new(1.0f32 - BETA_2));
    let (count, stride) = (vectors as usize, vectors.div_ceil(ADAM_PER_UNIT as u32) as usize);
    #[unroll]
    for j in 0..ADAM_PER_UNIT {
        let p = index + j * stride;
        if index < stride && p < count {
            let g = grads[p];
            let m_new = m[p] * beta_1 + g * rest_1;
            let v_new = v[p] * beta_2 + (g * g) * rest_2;
            m[p] = m_new;
            v[p] = v_new;
            let update = (m_new * factor) / (Vector::sqrt(v_new) + epsilon);
            params[p] -= update * lr;
        }
    }
    if index < LOSS_PARTS {
        let len = partials_len as usize;
        let mut part = 0.0f32;
        // An index, not an iterator: a kernel's loops are ranges.
        #[allow(clippy::needless_range_loop)]
        for k in index * len / LOSS_PARTS..(index + 1) * len / LOSS_PARTS {
            part += partials[k];
        }
        losses[slot as usize * LOSS_PARTS + index] = part * mean;
    }
}

/// Units per workgroup of [`gather_images`].
pub(super) const GATHER_UNITS: u32 = 64;

/// A call's images from the training set held on the GPU ([`super::GpuStep::hold_set`]): image
/// `n` of the call is set image `indices[n]`. The set is its pixels' bytes as they are on the
/// host, four to a `u32` (784 a 196-word image, little-endian, as WebGPU reads every buffer), and
/// `values` the 256 numbers a byte stands for, the host's own table, so that each pixel is the
/// float the host would have written to the bit (a division here might round otherwise: WGSL
/// allows 2.5 ulp). A unit a word, four pixels: `words` in all. So a call writes its images'
/// indices, four bytes an image, rather than their 3,136 bytes of floats.
#[cube(launch)]
pub(super) fn gather_images(set: &[u32], indices: &[u32], values: &[f32], images: &mut [f32], words: u32, words_per_image: u32) {
    let w = ABSOLUTE_POS;
    if w < words as usize {
        let per_image = words_per_image as usize;
        let (image, k) = (w / per_image, w % per_image);
        let word = set[indices[image] as usize * per_image + k];
        #[unroll]
        for j in 0..4u32 {
            images[w * 4 + j as usize] = values[((word >> (8 * j)) & 255) as usize];
        }
    }
}
