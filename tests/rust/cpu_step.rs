//! The hand-written CPU training step (src/cpu_step) against burn's autodiff, natively. The
//! same check runs compiled to wasm32 in the browser (tests/wasm/browser/): it lives in
//! tests/support/cpu_step_check.rs, which both include.

#[path = "../support/cpu_step_check.rs"]
mod cpu_step_check;

use autoencoder_lab::cpu_step::CpuStep;
use autoencoder_lab::model::ModelKind;
use autoencoder_lab::params::flat_params;
use burn::prelude::*;

use cpu_step_check::images;

#[test]
fn the_dense_step_gives_burns_loss_and_gradients() {
    cpu_step_check::the_dense_step_gives_burns_loss_and_gradients();
}

#[test]
fn the_conv_step_gives_burns_loss_and_gradients() {
    cpu_step_check::the_conv_step_gives_burns_loss_and_gradients();
}

// Native only: on wasm32 a panic aborts, so there is nothing to catch.
#[test]
fn parameters_of_another_model_are_refused() {
    let device = Device::flex();
    let dense = ModelKind::Dense.init(None, &device);
    let conv = ModelKind::Conv.init(None, &device);
    let mut step = CpuStep::for_model(&dense).unwrap();
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| step.loss_and_gradient(&flat_params(&conv), &images(1), 1.0)));
    assert!(result.is_err());
}
