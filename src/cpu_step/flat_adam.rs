//! Adam as one pass over every parameter at once: the CPU backend's optimizer in the browser.
//!
//! burn's Adam is a dozen elementwise tensor operations per parameter tensor. On the CPU in wasm
//! that costs twice. Each operation is a pass over memory. And WebAssembly has no flush-to-zero
//! mode: the moments of weights that rarely get a gradient (those of the border pixels) decay
//! through the subnormal range, where each operation on x86 takes a microcode assist of about a
//! hundred cycles. The command line sets x86's FTZ/DAZ flags instead (src/main.rs); here the pass
//! flushes the moments itself.
//!
//! The arithmetic is burn's (burn-optim's `AdaptiveMomentum`, same formula, same order of
//! operations, in f32), so a step matches burn's Adam up to the flushed subnormals.

use burn::prelude::*;

use crate::model::Autoencoder;
use crate::params::{flat_params, write_params};

/// Adam's defaults, as the trainer's burn Adam has them (`AdamConfig` with epsilon 1e-8).
const BETA_1: f32 = 0.9;
const BETA_2: f32 = 0.999;
const EPSILON: f32 = 1e-8;

/// Every parameter of a model and Adam's two moments for each, in the flat layout of
/// [`crate::params`].
pub struct FlatAdam {
    params: Vec<f32>,
    moment_1: Vec<f32>,
    moment_2: Vec<f32>,
    time: i32,
}

impl FlatAdam {
    /// Adam for `model`, whose parameters are read once here: from then on this holds the
    /// parameters, and each step writes them into the model.
    pub fn new(model: &Autoencoder) -> Self {
        let params = flat_params(model);
        let zeros = vec![0.0; params.len()];
        Self { moment_1: zeros.clone(), moment_2: zeros, params, time: 0 }
    }

    /// Every parameter, flat, as of the last step.
    pub fn params(&self) -> &[f32] {
        &self.params
    }

    pub fn len(&self) -> usize {
        self.params.len()
    }

    pub fn is_empty(&self) -> bool {
        self.params.is_empty()
    }

    /// One Adam step with `gradients` (flat, `len()` numbers) at learning rate `lr`, written into
    /// `model`, which must be the model this was made for, on `device`. `tracked`: whether burn's
    /// autodiff takes the next gradients from the model. An autodiff device keeps a graph node
    /// for every parameter marked for gradients until a backward pass frees it, so the
    /// parameters are marked only where one will run (without, the hand-written step's model
    /// grew the heap by 8 KB a step).
    pub fn step(&mut self, lr: f64, gradients: &[f32], model: Autoencoder, device: &Device, tracked: bool) -> Autoencoder {
        assert_eq!(gradients.len(), self.params.len(), "a gradient for another model");
        self.time += 1;
        // burn's `AdaptiveMomentum::transform`: the bias corrections folded into two factors.
        let bias_correction_2_sqrt = (1.0 - BETA_2.powi(self.time)).sqrt();
        let combined_factor = bias_correction_2_sqrt / (1.0 - BETA_1.powi(self.time));
        let step = Step { combined_factor, epsilon: EPSILON * bias_correction_2_sqrt, lr: lr as f32 };
        let (params, m, v) = (&mut self.params[..], &mut self.moment_1[..], &mut self.moment_2[..]);
        let done = step.simd(params, gradients, m, v);
        for i in done..params.len() {
            step.one(&mut params[i], gradients[i], &mut m[i], &mut v[i]);
        }
        write_params(model, &self.params, device, tracked)
    }
}

/// One step's factors.
struct Step {
    combined_factor: f32,
    epsilon: f32,
    lr: f32,
}

impl Step {
    /// burn's Adam on one number, its moments flushed to zero when subnormal.
    fn one(&self, param: &mut f32, g: f32, m: &mut f32, v: &mut f32) {
        *m = flush(*m * BETA_1 + g * (1.0 - BETA_1));
        *v = flush(*v * BETA_2 + (g * g) * (1.0 - BETA_2));
        let update = (*m * self.combined_factor) / (v.sqrt() + self.epsilon);
        *param -= update * self.lr;
    }

    /// [`Step::one`] four numbers at a time, with WebAssembly SIMD: the same IEEE operations in
    /// the same order, so the same results. Returns how many numbers it did (a multiple of 4).
    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
    fn simd(&self, params: &mut [f32], grads: &[f32], m: &mut [f32], v: &mut [f32]) -> usize {
        use core::arch::wasm32::*;
        let splat = f32x4_splat;
        let (b1, one_b1, b2, one_b2) = (splat(BETA_1), splat(1.0 - BETA_1), splat(BETA_2), splat(1.0 - BETA_2));
        let (factor, epsilon, lr, tiny) = (splat(self.combined_factor), splat(self.epsilon), splat(self.lr), splat(f32::MIN_POSITIVE));
        // A lane whose magnitude is below the smallest normal number becomes +0.
        let flush = |x: v128| v128_andnot(x, f32x4_lt(f32x4_abs(x), tiny));
        let n = params.len() / 4 * 4;
        for i in (0..n).step_by(4) {
            // SAFETY: i + 4 <= n <= the length of each slice (all four have the same length,
            // checked by the caller); v128 loads and stores need no alignment.
            unsafe {
                let (p, g, mp, vp) = (params.as_mut_ptr().add(i), grads.as_ptr().add(i), m.as_mut_ptr().add(i), v.as_mut_ptr().add(i));
                let g4 = v128_load(g as *const v128);
                let m4 = flush(f32x4_add(f32x4_mul(v128_load(mp as *const v128), b1), f32x4_mul(g4, one_b1)));
                let v4 = flush(f32x4_add(f32x4_mul(v128_load(vp as *const v128), b2), f32x4_mul(f32x4_mul(g4, g4), one_b2)));
                let update = f32x4_div(f32x4_mul(m4, factor), f32x4_add(f32x4_sqrt(v4), epsilon));
                v128_store(mp as *mut v128, m4);
                v128_store(vp as *mut v128, v4);
                v128_store(p as *mut v128, f32x4_sub(v128_load(p as *const v128), f32x4_mul(update, lr)));
            }
        }
        n
    }

    #[cfg(not(all(target_arch = "wasm32", target_feature = "simd128")))]
    fn simd(&self, _: &mut [f32], _: &[f32], _: &mut [f32], _: &mut [f32]) -> usize {
        0
    }
}

/// A subnormal as zero, as x86's flush-to-zero mode would leave it.
fn flush(x: f32) -> f32 {
    if x.abs() < f32::MIN_POSITIVE { 0.0 } else { x }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subnormals_are_flushed_and_normals_kept() {
        assert_eq!(flush(f32::MIN_POSITIVE / 2.0), 0.0);
        assert_eq!(flush(-f32::MIN_POSITIVE / 4.0), 0.0);
        assert_eq!(flush(f32::MIN_POSITIVE), f32::MIN_POSITIVE);
        assert_eq!(flush(-1e-3), -1e-3);
    }
}
