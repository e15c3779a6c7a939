//! Forward, the mean squared error and backward over a batch or a share of one: burn's sigmoid
//! and `MseLoss`, or on the CPU in wasm the fused sigmoid and MSE of
//! [`crate::cpu_step::sigmoid_mse`]; natively on the CPU, a batch cut over the cores.

#[cfg(not(target_arch = "wasm32"))]
use burn::module::{ModuleVisitor, Param};
use burn::nn::loss::{MseLoss, Reduction};
use burn::optim::GradientsParams;
use burn::prelude::*;

use crate::cpu_step::sigmoid_mse;
use crate::data::IMAGE_PIXELS;
#[cfg(not(target_arch = "wasm32"))]
use crate::data::MnistSet;
use crate::model::Autoencoder;

/// Forward, mean squared error and backward over one batch: the loss (detached) and the
/// gradient of every parameter.
pub(super) fn loss_and_gradients(model: &Autoencoder, images: Tensor<3>) -> (Tensor<1>, GradientsParams) {
    share_of_loss_and_gradients(model, images, 1.0)
}

/// [`loss_and_gradients`] of a part of a batch holding `share` of its images, both scaled by that
/// share, so that the parts' results add up to the batch's.
pub(super) fn share_of_loss_and_gradients(model: &Autoencoder, images: Tensor<3>, share: f32) -> (Tensor<1>, GradientsParams) {
    if cpu_in_wasm(&images.device()) {
        fused_share_of_loss_and_gradients(model, images, share)
    } else {
        burns_share_of_loss_and_gradients(model, images, share)
    }
}

/// [`share_of_loss_and_gradients`] with burn's sigmoid and `MseLoss`: natively and on a GPU.
fn burns_share_of_loss_and_gradients(model: &Autoencoder, images: Tensor<3>, share: f32) -> (Tensor<1>, GradientsParams) {
    let reconstructions = model.forward(images.clone());
    let loss = MseLoss::new().forward(reconstructions, images, Reduction::Mean);
    // Scaling the loss, one number, scales every gradient on the way back for free.
    let loss = if share == 1.0 { loss } else { loss.mul_scalar(share) };
    let grads = GradientsParams::from_grads(loss.backward(), model);
    (loss.detach(), grads)
}

/// [`share_of_loss_and_gradients`] with the output sigmoid and the MSE as one pass over the
/// logits ([`sigmoid_mse`]), its gradient handed to burn's backward pass at the logits.
fn fused_share_of_loss_and_gradients(model: &Autoencoder, images: Tensor<3>, share: f32) -> (Tensor<1>, GradientsParams) {
    let [batch, _, _] = images.dims();
    let targets = images.clone().reshape([batch, IMAGE_PIXELS]);
    let (loss, surrogate) = sigmoid_mse::loss_and_surrogate(model.logits(images), targets, share);
    (loss, GradientsParams::from_grads(surrogate.backward(), model))
}

/// Whether `device` is the CPU backend in wasm, where training takes its own Adam
/// ([`crate::cpu_step::flat_adam::FlatAdam`])
/// and its own loss ([`sigmoid_mse`]): there burn's elementwise operations are scalar passes over
/// memory (its sigmoid's `exp` is libm's) and subnormal numbers cannot be flushed. Natively the
/// platform's `exp` is vectorised and FTZ/DAZ is set, and on a GPU the work stays on the device.
pub(super) fn cpu_in_wasm(device: &Device) -> bool {
    cfg!(target_arch = "wasm32") && !crate::model::on_gpu(device)
}

/// The same loss and gradients as [`loss_and_gradients`] on the whole batch, computed on `cores`
/// threads at once. At the seed's batch of 32 no single operation of these models is big enough
/// for burn's CPU backend to spread over cores, so one step would use one core; cut into parts,
/// the batch uses them all. Each part runs on its own fork of the model (the same weights, its
/// own autodiff graph, so the backward passes do not contend for one graph's lock); the batch's
/// mean loss and its gradient are the sums of the parts', each weighted by its share of the images.
#[cfg(not(target_arch = "wasm32"))]
pub(super) fn split_loss_and_gradients(
    model: &Autoencoder,
    data: &MnistSet,
    batch: &[usize],
    cores: usize,
    device: &Device,
) -> (Tensor<1>, GradientsParams) {
    use rayon::prelude::*;
    let part_len = batch.len().div_ceil(cores);
    let (losses, grads): (Vec<Tensor<1>>, Vec<GradientsParams>) = batch
        .par_chunks(part_len)
        .map(|part| {
            let share = part.len() as f32 / batch.len() as f32;
            share_of_loss_and_gradients(&model.clone().fork(device), data.batch(part, device), share)
        })
        .unzip();
    let loss = losses.into_iter().reduce(|a, b| a + b).expect("a batch has at least one image");
    (loss, sum_gradients(model, grads))
}

/// The sum of the parts' gradients, parameter by parameter.
#[cfg(not(target_arch = "wasm32"))]
fn sum_gradients(model: &Autoencoder, mut parts: Vec<GradientsParams>) -> GradientsParams {
    struct Sum<'a> {
        parts: &'a mut [GradientsParams],
        sum: GradientsParams,
    }
    impl ModuleVisitor for Sum<'_> {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            let sum = self.parts.iter_mut().filter_map(|grads| grads.remove::<D>(param.id)).reduce(|a, b| a + b);
            if let Some(sum) = sum {
                self.sum.register(param.id, sum);
            }
        }
    }
    let mut visitor = Sum { parts: &mut parts, sum: GradientsParams::new() };
    model.visit(&mut visitor);
    visitor.sum
}

#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::data::Mnist;
    use crate::model::ModelKind;

    /// The fused sigmoid and MSE that the CPU trains with in the browser gives every parameter
    /// the gradient, and the batch the loss, of burn's own sigmoid and `MseLoss`.
    #[test]
    fn the_fused_loss_has_the_loss_and_gradients_of_burns() {
        let data = Mnist::load(Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/data/mnist"))).unwrap().test.take(32);
        let batch: Vec<usize> = (0..32).collect();
        let device = Device::flex().autodiff();
        let loss = |t: Tensor<1>| t.into_data().try_into_vec::<f32>().unwrap()[0];
        for kind in ModelKind::ALL {
            let host = Device::flex();
            host.seed(11);
            let model = kind.init(None, &host).to_device(&device).train();
            for share in [1.0, 0.25] {
                let images = || data.batch(&batch, &device);
                let (burns_loss, burns) = burns_share_of_loss_and_gradients(&model, images(), share);
                let burns_loss = loss(burns_loss);
                let (fused_loss, fused) = fused_share_of_loss_and_gradients(&model, images(), share);
                let fused_loss = loss(fused_loss);
                assert!((burns_loss - fused_loss).abs() <= 1e-5 * burns_loss, "{kind}: loss {burns_loss} vs fused {fused_loss}");
                assert_same_gradients(&model, &burns, &fused, 1e-4);
            }
        }
    }

    /// Every weight and bias of `model` has the same gradient in `a` and `b`, within `tolerance`
    /// of the largest.
    fn assert_same_gradients(model: &Autoencoder, a: &GradientsParams, b: &GradientsParams, tolerance: f32) {
        struct Compare<'a>(&'a GradientsParams, &'a GradientsParams, f32, usize);
        impl ModuleVisitor for Compare<'_> {
            fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
                let values = |grads: &GradientsParams| grads.get::<D>(param.id).unwrap().into_data().try_into_vec::<f32>().unwrap();
                let (a, b) = (values(self.0), values(self.1));
                let scale = a.iter().fold(0f32, |m, g| m.max(g.abs()));
                let worst = a.iter().zip(&b).fold(0f32, |m, (x, y)| m.max((x - y).abs()));
                assert!(worst <= self.2 * scale, "gradient of {:?} differs by {worst} (largest {scale})", param.id);
                self.3 += 1;
            }
        }
        let mut compare = Compare(a, b, tolerance, 0);
        model.visit(&mut compare);
        assert!(compare.3 >= 12, "{}: every weight and bias compared, {} were", model.kind(), compare.3);
    }

    /// Cutting a batch over cores changes the order of some sums and nothing else: the loss and
    /// every parameter's gradient are those of the whole batch, also for parts of unequal size.
    #[test]
    fn a_batch_cut_over_cores_has_the_loss_and_gradients_of_the_whole() {
        let data = Mnist::load(Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/data/mnist"))).unwrap().test.take(37);
        let batch: Vec<usize> = (0..37).collect();
        let device = Device::flex().autodiff();
        for kind in ModelKind::ALL {
            let host = Device::flex();
            host.seed(7);
            let model = kind.init(None, &host).to_device(&device).train();
            let (whole_loss, whole) = loss_and_gradients(&model, data.batch(&batch, &device));
            let (split_loss, split) = split_loss_and_gradients(&model, &data, &batch, 3, &device);
            let loss = |t: Tensor<1>| t.into_data().try_into_vec::<f32>().unwrap()[0];
            let (whole_loss, split_loss) = (loss(whole_loss), loss(split_loss));
            // f32 sums over ~29,000 pixels in another order differ by about 1e-5 relative; a
            // part weighted wrongly would be off by a tenth or more.
            assert!((whole_loss - split_loss).abs() <= 1e-4 * whole_loss, "{kind}: loss {whole_loss} vs {split_loss}");

            assert_same_gradients(&model, &whole, &split, 1e-3);
        }
    }
}
