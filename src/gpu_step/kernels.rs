//! The dense step's kernels, in CubeCL: compiled to WGSL for the browser's WebGPU and to SPIR-V
//! for Vulkan natively, by the cubecl runtime that burn-wgpu already runs on.
//!
//! Every buffer is a flat `[f32]`. Activations and their gradients are row-major `[batch,
//! features]`. A layer's weight `W` is `[inputs, outputs]` row-major and its bias follows it, at
//! `at` in the flat parameters (burn's `Linear`, [`crate::params`]'s order). A unit computes the
//! same output for [`ROWS`] images (or inputs), so that each weight it loads serves [`ROWS`] sums
//! held in registers. These are plain loops over memory, no tiles in workgroup memory, which a
//! GPU runs at a fraction of its speed; but each layer is one launch, and launches are what a
//! step costs the host. On Mesa's lavapipe (`bench --device wgpu --gpu-step`, three runs each,
//! interleaved, on a loaded machine) one output a unit trained at 238, 422 and 525 images/s,
//! four at 609, 636 and 740, eight at 745, 595 and 667 against four's 788, 602 and 606.

// The #[cube] macro writes paths from `cubecl::`: burn's re-export is that crate.
use burn::cubecl;
use cubecl::prelude::*;

/// Units per workgroup: WebGPU guarantees 256, and 64 keeps the small layers' launches busy.
pub(super) const UNITS: u32 = 64;

/// Rows a unit computes at once: each weight it loads serves this many images (or inputs), from
/// registers. Four cut the loads of the big layers by four without costing the small ones units.
pub(super) const ROWS: usize = 4;

/// Units for `rows` rows of `cols` numbers, [`ROWS`] rows a unit.
pub(super) fn blocked(rows: usize, cols: usize) -> usize {
    rows.div_ceil(ROWS) * cols
}

/// `y = act(x · W + b)` for one layer: a unit per output `o` and block of [`ROWS`] images (the
/// units of a workgroup are neighbouring outputs, so they read neighbouring weights and the same
/// inputs). The images start at `x_at` in `x` (a call's images are one buffer). `relu`: a ReLU
/// after it.
#[cube(launch)]
pub(super) fn layer_forward(x: &[f32], params: &[f32], y: &mut [f32], batch: u32, inputs: u32, outputs: u32, at: u32, x_at: u32, #[comptime] relu: bool) {
    let index = ABSOLUTE_POS;
    let (batch, inputs, outputs, at, x_at) = (batch as usize, inputs as usize, outputs as usize, at as usize, x_at as usize);
    if index < batch.div_ceil(ROWS) * outputs {
        let o = index % outputs;
        let first = index / outputs * ROWS;
        let mut sums = Array::<f32>::new(ROWS);
        // Rows past the batch read its last row (a valid address) and are not written.
        let mut starts = Array::<usize>::new(ROWS);
        #[unroll]
        for r in 0..ROWS {
            sums[r] = params[at + inputs * outputs + o];
            starts[r] = x_at + usize::min(first + r, batch - 1) * inputs;
        }
        for i in 0..inputs {
            let w = params[at + i * outputs + o];
            #[unroll]
            for r in 0..ROWS {
                sums[r] += x[starts[r] + i] * w;
            }
        }
        #[unroll]
        for r in 0..ROWS {
            if first + r < batch {
                let mut sum = sums[r];
                if comptime![relu] {
                    sum = f32::max(sum, 0.0);
                }
                y[(first + r) * outputs + o] = sum;
            }
        }
    }
}

/// The last layer, its sigmoid and the MSE against `targets` in one, units as
/// [`layer_forward`]'s: the gradient of `scale * mean((sigmoid(z) - t)^2)` with respect to each
/// logit `z` goes to `grad`, each pixel's squared error to `squares` (summed by [`adam`], which
/// needs every gradient anyway). The targets start at `targets_at` in `targets`.
#[cube(launch)]
pub(super) fn last_layer_loss(
    x: &[f32],
    params: &[f32],
    targets: &[f32],
    grad: &mut [f32],
    squares: &mut [f32],
    batch: u32,
    inputs: u32,
    outputs: u32,
    at: u32,
    targets_at: u32,
    factor: f32,
) {
    let index = ABSOLUTE_POS;
    let (batch, inputs, outputs, at) = (batch as usize, inputs as usize, outputs as usize, at as usize);
    if index < batch.div_ceil(ROWS) * outputs {
        let o = index % outputs;
        let first = index / outputs * ROWS;
        let mut sums = Array::<f32>::new(ROWS);
        let mut starts = Array::<usize>::new(ROWS);
        #[unroll]
        for r in 0..ROWS {
            sums[r] = params[at + inputs * outputs + o];
            starts[r] = usize::min(first + r, batch - 1) * inputs;
        }
        for i in 0..inputs {
            let w = params[at + i * outputs + o];
            #[unroll]
            for r in 0..ROWS {
                sums[r] += x[starts[r] + i] * w;
            }
        }
        #[unroll]
        for r in 0..ROWS {
            if first + r < batch {
                let z = sums[r];
                let k = (first + r) * outputs + o;
                // The sigmoid from e^-|z|, which cannot overflow.
                let e = f32::exp(-f32::abs(z));
                let mut s = e / (1.0 + e);
                if z >= 0.0 {
                    s = 1.0 / (1.0 + e);
                }
                let d = s - targets[targets_at as usize + k];
                squares[k] = d * d;
                // d(mean((s - t)^2))/dz = 2 (s - t) s (1 - s) / n, times the share: `factor`.
                grad[k] = factor * d * (s * (1.0 - s));
            }
        }
    }
}

/// One layer's backward pass in one launch. The first `blocked(inputs, outputs)` units each sum
/// the gradients of [`ROWS`] weights (one output, neighbouring inputs) over the batch, the next
/// `outputs` a bias's, and where `input_grad` is set the next `blocked(batch, inputs)` each the
/// gradient at one input of [`ROWS`] images, `g · Wᵀ`, zero where the ReLU before this layer
/// (`relu_before`) was off. The weight and bias gradients go to `grads` at `at`, the flat
/// layout; the input's gradient to `gx`. The layer's input starts at `x_at` in `x`.
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
    x_at: u32,
    #[comptime] input_grad: bool,
    #[comptime] relu_before: bool,
) {
    let index = ABSOLUTE_POS;
    let (batch, inputs, outputs, at, x_at) = (batch as usize, inputs as usize, outputs as usize, at as usize, x_at as usize);
    let weight_units = inputs.div_ceil(ROWS) * outputs;
    if index < weight_units {
        let o = index % outputs;
        let first = index / outputs * ROWS;
        let mut sums = Array::<f32>::new(ROWS);
        let mut columns = Array::<usize>::new(ROWS);
        #[unroll]
        for r in 0..ROWS {
            sums[r] = 0.0;
            columns[r] = usize::min(first + r, inputs - 1);
        }
        for b in 0..batch {
            let gb = g[b * outputs + o];
            #[unroll]
            for r in 0..ROWS {
                sums[r] += x[x_at + b * inputs + columns[r]] * gb;
            }
        }
        #[unroll]
        for r in 0..ROWS {
            if first + r < inputs {
                grads[at + (first + r) * outputs + o] = sums[r];
            }
        }
    } else if index < weight_units + outputs {
        let o = index - weight_units;
        let mut sum = 0.0f32;
        for b in 0..batch {
            sum += g[b * outputs + o];
        }
        grads[at + inputs * outputs + o] = sum;
    } else if comptime![input_grad] {
        let k = index - weight_units - outputs;
        if k < batch.div_ceil(ROWS) * inputs {
            let i = k % inputs;
            let first = k / inputs * ROWS;
            let mut sums = Array::<f32>::new(ROWS);
            let mut starts = Array::<usize>::new(ROWS);
            #[unroll]
            for r in 0..ROWS {
                sums[r] = 0.0;
                starts[r] = usize::min(first + r, batch - 1) * outputs;
            }
            for o in 0..outputs {
                let w = params[at + i * outputs + o];
                #[unroll]
                for r in 0..ROWS {
                    sums[r] += g[starts[r] + o] * w;
                }
            }
            #[unroll]
            for r in 0..ROWS {
                let b = first + r;
                if b < batch {
                    let mut sum = sums[r];
                    // burn's rule: no gradient through a ReLU whose output was 0.
                    if comptime![relu_before] {
                        sum = select(x[x_at + b * inputs + i] > 0.0, sum, 0.0f32);
                    }
                    gx[b * inputs + i] = sum;
                }
            }
        }
    }
}

/// burn's Adam (`AdaptiveMomentum`, epsilon 1e-8, no weight decay) on every parameter at once,
/// a unit per parameter, the bias corrections folded into `factor` and `epsilon` by the host.
/// The first workgroup also sums `squares` (the last layer's squared errors) into
/// `losses[slot]`, times `mean` (`scale / n`): the step's loss stays on the GPU until the call
/// reads all its steps' losses at once.
#[cube(launch)]
pub(super) fn adam(
    params: &mut [f32],
    grads: &[f32],
    m: &mut [f32],
    v: &mut [f32],
    squares: &[f32],
    losses: &mut [f32],
    count: u32,
    squares_len: u32,
    slot: u32,
    mean: f32,
    factor: f32,
    epsilon: f32,
    lr: f32,
) {
    let index = ABSOLUTE_POS;
    if index < count as usize {
        // In f32, as burn computes them.
        let (beta_1, beta_2) = (0.9f32, 0.999f32);
        let g = grads[index];
        let m_new = m[index] * beta_1 + g * (1.0f32 - beta_1);
        let v_new = v[index] * beta_2 + (g * g) * (1.0f32 - beta_2);
        m[index] = m_new;
        v[index] = v_new;
        let update = (m_new * factor) / (f32::sqrt(v_new) + epsilon);
        params[index] -= update * lr;
    }
    if CUBE_POS == 0 {
        // Each unit sums every UNITS-th square, then unit 0 adds the partial sums.
        let mut partial = Shared::<[f32]>::new_slice(UNITS as usize);
        let unit = UNIT_POS as usize;
        let mut sum = 0.0f32;
        let mut k = unit;
        while k < squares_len as usize {
            sum += squares[k];
            k += UNITS as usize;
        }
        partial[unit] = sum;
        sync_cube();
        if unit == 0 {
            let mut total = 0.0f32;
            for u in 0..UNITS as usize {
                total += partial[u];
            }
            losses[slot as usize] = total * mean;
        }
    }
}
