//! The hand-written CPU training step (src/cpu_step) checked against burn's autodiff: the loss and
//! every parameter's gradient, for both models, several batch sizes and a share of a batch.
//!
//! One check, run in two places: natively (tests/rust/cpu_step.rs) and compiled to wasm32 in the
//! browser (tests/wasm/browser/), where the step runs the WebAssembly SIMD matrix kernel and
//! loops that the page's CPU backend trains with, which a native run never executes. Each test
//! target includes this file with `#[path]`; it uses the crate's public API only.

use autoencoder_lab::cpu_step::CpuStep;
use autoencoder_lab::cpu_step::sigmoid_mse::loss_and_surrogate;
use autoencoder_lab::data::IMAGE_PIXELS;
use autoencoder_lab::model::{Autoencoder, CodeActivation, ModelKind};
use autoencoder_lab::params::{flat_params, gradient_parts};
use burn::optim::GradientsParams;
use burn::prelude::*;

/// The dense model's step, the seed's model and one with a ReLU code of 8, against burn's.
pub fn the_dense_step_gives_burns_loss_and_gradients() {
    let device = Device::flex();
    check(ModelKind::Dense.init(None, &device), &[32, 5, 1], "dense");
    let relu = ModelKind::Dense.init_with(Some(8), CodeActivation::Relu, &device).unwrap();
    check(relu, &[7], "dense, ReLU code of 8");
}

/// The conv model's step, the seed's code of 64 and a code of 10, against burn's.
pub fn the_conv_step_gives_burns_loss_and_gradients() {
    let device = Device::flex();
    check(ModelKind::Conv.init(None, &device), &[16, 3, 1], "conv");
    check(ModelKind::Conv.init(Some(10), &device), &[5], "conv, code of 10");
}

#[path = "strokes.rs"]
mod strokes;
pub use strokes::images;

/// burn's autodiff through the models' CPU form and the same fused loss: the loss and the flat
/// gradient, in the model's visitor order. Synchronous reads: flex's tensors are in memory, in
/// wasm too.
fn burns(model: &Autoencoder, pixels: &[f32], scale: f32) -> (f32, Vec<f32>) {
    let device = Device::flex().autodiff();
    let model = model.clone().to_device(&device).train();
    let batch = pixels.len() / IMAGE_PIXELS;
    let images = Tensor::<3>::from_data(TensorData::new(pixels.to_vec(), [batch, 28, 28]), &device);
    let targets = images.clone().reshape([batch, IMAGE_PIXELS]);
    let (loss, surrogate) = loss_and_surrogate(model.logits(images), targets, scale);
    let grads = GradientsParams::from_grads(surrogate.backward(), &model);
    let flat = Tensor::cat(gradient_parts(&model, grads, &Device::flex()), 0);
    (loss.into_scalar(), flat.into_data().try_into_vec::<f32>().unwrap())
}

fn assert_same(kind: &str, (loss, grad): (f32, Vec<f32>), (want_loss, want_grad): (f32, Vec<f32>)) {
    assert!((loss - want_loss).abs() <= 1e-5 * want_loss.abs().max(1e-3), "{kind}: loss {loss} against burn's {want_loss}");
    assert_eq!(grad.len(), want_grad.len());
    let scale = want_grad.iter().fold(0f32, |m, g| m.max(g.abs()));
    assert!(scale > 0.0, "{kind}: burn's gradient is all zeros, so the comparison would prove nothing");
    for (i, (g, w)) in grad.iter().zip(&want_grad).enumerate() {
        assert!((g - w).abs() <= 1e-4 * scale, "{kind}: gradient {i} is {g}, burn's {w} (largest {scale})");
    }
}

fn check(model: Autoencoder, batches: &[usize], kind: &str) {
    let params = flat_params(&model);
    let mut step = CpuStep::for_model(&model).expect("the seed's models have the expected layout");
    for &batch in batches {
        let pixels = images(batch);
        for scale in [1.0, 0.25] {
            let ours = step.loss_and_gradient(&params, &pixels, scale);
            assert_same(&format!("{kind}, batch {batch}, scale {scale}"), ours, burns(&model, &pixels, scale));
        }
    }
}
