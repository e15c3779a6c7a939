//! The output sigmoid and the mean squared error as one pass, with their gradient: the CPU
//! backend's loss in the browser.
//!
//! Both models end in a sigmoid, and training scores it with the MSE. As burn tensor operations
//! that is a sigmoid, a difference, a square and a mean, and as many again on the way back, each
//! a pass over the batch's pixels. In wasm the sigmoid's `exp` is the scalar libm one, one
//! number at a time: profiled in Node (V8's sampling profiler, the dense model on the CPU) the
//! sigmoid took 17% of a training step. Here the loss and its gradient with respect to the logits
//! are computed in one pass, four pixels at a time with WebAssembly SIMD, and the gradient enters
//! burn's autodiff as `sum(logits * gradient)`, whose derivative with respect to the logits is
//! that gradient: the backward pass from the logits down is burn's, unchanged. In headless
//! Chromium (`./build.sh bench-web --backends cpu`, three runs each, interleaved, medians) the dense
//! model went from 5,400 to 8,964 images/s and the conv model from 2,518 to 2,971.
//!
//! The logits are clamped to +-[`LOGIT_LIMIT`] first, and past the clamp the gradient is exactly
//! 0. That is for speed, not for the values. Once the model is sure of a pixel (the background's
//! zeros, the ink's ones), its logit runs far out, and the gradient through the sigmoid (about
//! the pixel's error times the sigmoid's slope) falls below f32's smallest normal number. On x86
//! each operation on such a subnormal number takes a microcode assist of about a hundred cycles;
//! the command line flushes them (FTZ/DAZ), but WebAssembly has no such mode, and the backward
//! pass filled with them: in the browser a conv step took 21.0 ms after 300 steps without the
//! clamp and 14.7 ms with it.

use burn::prelude::*;

/// Beyond this the sigmoid is within 9.4e-14 of 0 or 1: logits are clamped to +-30.
pub const LOGIT_LIMIT: f32 = 30.0;

/// The MSE of `sigmoid(logits)` against `targets` (same length), times `scale`, and its gradient
/// with respect to each logit (times `scale` too): a part of a batch holding `scale` of its
/// images scores its share of the batch's mean.
pub fn sigmoid_mse(logits: &[f32], targets: &[f32], scale: f32) -> (f32, Vec<f32>) {
    assert_eq!(logits.len(), targets.len(), "one target per logit");
    let n = logits.len();
    let mut gradient = vec![0.0; n];
    if n == 0 {
        return (0.0, gradient);
    }
    // d(mean((s - t)^2))/dz = 2 (s - t) s (1 - s) / n.
    let factor = 2.0 * scale / n as f32;
    let (done, mut squares) = simd(logits, targets, factor, &mut gradient);
    for i in done..n {
        let (square, g) = one(logits[i], targets[i], factor);
        squares += square as f64;
        gradient[i] = g;
    }
    ((squares / n as f64) as f32 * scale, gradient)
}

/// The loss and gradient of [`sigmoid_mse`] as burn tensors: `logits` `[batch, pixels]` (on the
/// CPU backend, where reading is synchronous), `targets` the same shape. Returns the loss (one
/// number, no graph) and `sum(logits * gradient)`, whose `backward()` gives every parameter its
/// gradient of that loss.
pub fn loss_and_surrogate(logits: Tensor<2>, targets: Tensor<2>, scale: f32) -> (Tensor<1>, Tensor<1>) {
    let device = logits.device();
    let shape = logits.shape();
    let read = |t: Tensor<2>| t.into_data().try_into_vec::<f32>().expect("f32 pixels");
    let (loss, gradient) = sigmoid_mse(&read(logits.clone().detach()), &read(targets), scale);
    let gradient = Tensor::<2>::from_data(TensorData::new(gradient, shape), &device);
    let loss = Tensor::<1>::from_data(TensorData::new(vec![loss], [1]), &device);
    (loss, (logits * gradient).sum())
}

/// One pixel: its squared error and its gradient times `factor`.
fn one(logit: f32, target: f32, factor: f32) -> (f32, f32) {
    let z = logit.clamp(-LOGIT_LIMIT, LOGIT_LIMIT);
    let e = exp_of_non_positive(-z.abs());
    let s = if z >= 0.0 { 1.0 / (1.0 + e) } else { e / (1.0 + e) };
    let d = s - target;
    let inside = logit.abs() <= LOGIT_LIMIT;
    (d * d, if inside { factor * d * (s * (1.0 - s)) } else { 0.0 })
}

// e^a for a in [-30, 0], Cephes' `expf`: a = n ln2 + r with |r| <= ln2/2, e^r by a polynomial,
// times 2^n built from its exponent bits. Within 2 ulp of the true value.
const LOG2_E: f32 = std::f32::consts::LOG2_E;
const LN2_HI: f32 = 0.693_359_4;
const LN2_LO: f32 = -2.121_944_4e-4;
const P: [f32; 6] = [1.987_569_1e-4, 1.398_199_9e-3, 8.333_452e-3, 4.166_579_6e-2, 1.666_666_5e-1, 0.5];

fn exp_of_non_positive(a: f32) -> f32 {
    let n = (a * LOG2_E).round_ties_even();
    let r = (a - n * LN2_HI) - n * LN2_LO;
    let mut p = P[0];
    for c in &P[1..] {
        p = p * r + c;
    }
    let e = (p * (r * r) + r) + 1.0;
    e * f32::from_bits(((n as i32 + 127) as u32) << 23)
}

/// [`one`] four pixels at a time, with WebAssembly SIMD: the same IEEE operations in the same
/// order, so the same gradients. Returns how many pixels it did (a multiple of 4) and the sum of
/// their squared errors.
#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
fn simd(logits: &[f32], targets: &[f32], factor: f32, gradient: &mut [f32]) -> (usize, f64) {
    use core::arch::wasm32::*;
    let splat = f32x4_splat;
    let (limit, one, zero) = (splat(LOGIT_LIMIT), splat(1.0), splat(0.0));
    let mut squares = splat(0.0);
    let n = logits.len() / 4 * 4;
    for i in (0..n).step_by(4) {
        // SAFETY: i + 4 <= n <= the length of each slice (all three have the same length,
        // checked by the caller); v128 loads and stores need no alignment.
        unsafe {
            let logit = v128_load(logits.as_ptr().add(i) as *const v128);
            let target = v128_load(targets.as_ptr().add(i) as *const v128);
            let z = f32x4_pmin(f32x4_pmax(logit, f32x4_neg(limit)), limit);
            let a = f32x4_neg(f32x4_abs(z));
            let k = f32x4_nearest(f32x4_mul(a, splat(LOG2_E)));
            let r = f32x4_sub(f32x4_sub(a, f32x4_mul(k, splat(LN2_HI))), f32x4_mul(k, splat(LN2_LO)));
            let mut p = splat(P[0]);
            for c in &P[1..] {
                p = f32x4_add(f32x4_mul(p, r), splat(*c));
            }
            let e = f32x4_add(f32x4_add(f32x4_mul(p, f32x4_mul(r, r)), r), one);
            let scale = i32x4_shl(i32x4_add(i32x4_trunc_sat_f32x4(k), i32x4_splat(127)), 23);
            let e = f32x4_mul(e, scale);
            let denominator = f32x4_add(one, e);
            let s = v128_bitselect(f32x4_div(one, denominator), f32x4_div(e, denominator), f32x4_ge(z, zero));
            let d = f32x4_sub(s, target);
            squares = f32x4_add(squares, f32x4_mul(d, d));
            let g = f32x4_mul(f32x4_mul(splat(factor), d), f32x4_mul(s, f32x4_sub(one, s)));
            let inside = f32x4_le(f32x4_abs(logit), limit);
            v128_store(gradient.as_mut_ptr().add(i) as *mut v128, v128_and(g, inside));
        }
    }
    let lanes = [f32x4_extract_lane::<0>(squares), f32x4_extract_lane::<1>(squares), f32x4_extract_lane::<2>(squares), f32x4_extract_lane::<3>(squares)];
    (n, lanes.iter().map(|&x| x as f64).sum())
}

#[cfg(not(all(target_arch = "wasm32", target_feature = "simd128")))]
fn simd(_: &[f32], _: &[f32], _: f32, _: &mut [f32]) -> (usize, f64) {
    (0, 0.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::activation::sigmoid;

    #[test]
    fn the_exp_is_within_two_ulp_of_libm() {
        for i in 0..=30_000 {
            let a = -(i as f32) / 1000.0;
            let (ours, theirs) = (exp_of_non_positive(a), a.exp());
            let ulp = (theirs.to_bits() as i64 - ours.to_bits() as i64).abs();
            assert!(ulp <= 2, "exp({a}): {ours} against {theirs}, {ulp} ulp apart");
        }
    }

    #[test]
    fn the_loss_and_gradient_are_burns_sigmoid_and_mse() {
        let device = Device::flex().autodiff();
        let logits = [-40.0, -31.0, -12.0, -2.5, -0.3, 0.0, 0.7, 3.0, 15.0, 29.0, 30.5, 80.0];
        let targets = [0.0, 0.2, 0.0, 1.0, 0.5, 0.3, 1.0, 0.0, 1.0, 1.0, 0.9, 1.0];
        let (loss, gradient) = sigmoid_mse(&logits, &targets, 0.5);

        let z = Tensor::<1>::from_floats(logits, &device).require_grad();
        let t = Tensor::<1>::from_floats(targets, &device);
        let burn_loss = (sigmoid(z.clone().clamp(-LOGIT_LIMIT, LOGIT_LIMIT)) - t).square().mean().mul_scalar(0.5);
        let grads = burn_loss.backward();
        let burn_gradient = z.grad(&grads).unwrap().into_data().try_into_vec::<f32>().unwrap();
        let burn_loss: f32 = burn_loss.into_scalar();

        assert!((loss - burn_loss).abs() <= 1e-6 * burn_loss, "loss {loss} against burn's {burn_loss}");
        for (i, (ours, theirs)) in gradient.iter().zip(&burn_gradient).enumerate() {
            assert!((ours - theirs).abs() <= 1e-5 * theirs.abs(), "logit {}: {ours} against {theirs}", logits[i]);
        }
        // Past the clamp the gradient is exactly 0, so no subnormal number leaves this pass.
        assert_eq!([gradient[0], gradient[1], gradient[10], gradient[11]], [0.0; 4]);
    }

    #[test]
    fn an_empty_batch_part_has_no_loss() {
        assert_eq!(sigmoid_mse(&[], &[], 1.0), (0.0, vec![]));
    }
}
