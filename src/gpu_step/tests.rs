//! The GPU step against burn: its loss and every gradient against burn's autodiff (the trainer's
//! own loss, burn's sigmoid and `MseLoss`) on the CPU, and its Adam steps against the flat Adam
//! the CPU in wasm trains with. They run on whatever wgpu adapter the machine has; `build.sh`
//! installs Mesa's lavapipe (a Vulkan on the CPU) where there is no GPU.

use burn::nn::loss::{MseLoss, Reduction};
use burn::optim::GradientsParams;
use burn::prelude::*;

use super::GpuStep;
use crate::cpu_step::flat_adam::FlatAdam;
use crate::data::IMAGE_PIXELS;
use crate::model::{Autoencoder, CodeActivation, ModelKind};
use crate::params::gradient_parts;

#[path = "../../tests/support/strokes.rs"]
mod strokes;
use strokes::images;

/// The machine's wgpu device, made once for all the tests (a second init of the runtime fails).
fn gpu() -> Device {
    static DEVICE: std::sync::OnceLock<Device> = std::sync::OnceLock::new();
    DEVICE
        .get_or_init(|| Device::wgpu_options().tasks_max(super::TASKS_PER_SUBMIT).init().expect("a wgpu adapter (apt-get install mesa-vulkan-drivers gives lavapipe)"))
        .clone()
}

/// burn's autodiff on the CPU, as the trainer computes a share of a batch on a GPU: the loss
/// and the flat gradient, in the model's visitor order.
fn burns(model: &Autoencoder, pixels: &[f32], scale: f32) -> (f32, Vec<f32>) {
    let device = Device::flex().autodiff();
    let model = model.clone().to_device(&device).train();
    let batch = pixels.len() / IMAGE_PIXELS;
    let images = Tensor::<3>::from_data(TensorData::new(pixels.to_vec(), [batch, 28, 28]), &device);
    let loss = MseLoss::new().forward(model.forward(images.clone()), images, Reduction::Mean).mul_scalar(scale);
    let grads = GradientsParams::from_grads(loss.backward(), &model);
    let flat = Tensor::cat(gradient_parts(&model, grads, &Device::flex()), 0);
    (loss.into_scalar(), flat.into_data().try_into_vec::<f32>().unwrap())
}

fn assert_close(what: &str, got: &[f32], want: &[f32], tolerance: f32) {
    assert_eq!(got.len(), want.len(), "{what}: lengths");
    let scale = want.iter().fold(0f32, |m, g| m.max(g.abs()));
    assert!(scale > 0.0, "{what}: burn's values are all zeros, so the comparison would prove nothing");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!((g - w).abs() <= tolerance * scale, "{what}: number {i} is {g}, burn's {w} (largest {scale})");
    }
}

fn check(model: &Autoencoder, batches: &[usize], kind: &str) {
    let mut step = GpuStep::for_model(model, &gpu()).expect("a model on a wgpu device");
    for &batch in batches {
        let pixels = images(batch);
        for scale in [1.0, 0.25] {
            let what = format!("{kind}, batch {batch}, scale {scale}");
            let (loss, grad) = pollster::block_on(step.loss_and_gradient(&pixels, scale)).unwrap();
            let (want_loss, want_grad) = burns(model, &pixels, scale);
            assert!((loss - want_loss).abs() <= 1e-5 * want_loss.abs(), "{what}: loss {loss} against burn's {want_loss}");
            assert_close(&what, &grad, &want_grad, 1e-4);
        }
    }
}

#[test]
fn the_dense_step_gives_burns_loss_and_gradients() {
    let host = Device::flex();
    check(&ModelKind::Dense.init(None, &host), &[32, 17, 5, 1], "dense");
    let relu = ModelKind::Dense.init_with(Some(8), CodeActivation::Relu, &host).unwrap();
    check(&relu, &[7], "dense, ReLU code of 8");
}

/// A code wider than the middle kernels take: the middle layers a launch each, as the conv
/// model's layers are. Such a model's hidden layers are as wide as its code: at a code of 200
/// every layer runs in the wide kernels, at 201 none does (the scalar kernels').
#[test]
fn a_wide_dense_code_steps_a_layer_at_a_time() {
    let host = Device::flex();
    for code in [200, 201] {
        let wide = ModelKind::Dense.init_with(Some(code), CodeActivation::Relu, &host).unwrap();
        assert_eq!(GpuStep::for_model(&wide, &gpu()).unwrap().launches_per_step(), 17, "a launch per layer each way");
        check(&wide, &[6], &format!("dense, ReLU code of {code}"));
    }
}

/// The conv model's step: its stride-2 layers (convolutions down, transposed ones up, each
/// backward the other way) and its 7x7 layers as products, at the seed's code of 64 and a code
/// of 16 (the conv model's code is always a ReLU).
#[test]
fn the_conv_step_gives_burns_loss_and_gradients() {
    let host = Device::flex();
    check(&ModelKind::Conv.init(None, &host), &[32, 17, 5, 1], "conv");
    let small = ModelKind::Conv.init_with(Some(16), CodeActivation::Relu, &host).unwrap();
    check(&small, &[9], "conv, code of 16");
}

#[test]
fn only_a_wgpu_device_has_the_step() {
    let host = Device::flex();
    for kind in ModelKind::ALL {
        let model = kind.init(None, &host);
        assert!(GpuStep::for_model(&model, &host).is_none(), "{kind} on the CPU");
        assert!(GpuStep::new(&model, &[0.0; 10], &gpu()).is_none(), "{kind}: parameters of another size");
        assert_eq!(GpuStep::for_model(&model, &gpu()).unwrap().launches_per_step(), match kind {
            ModelKind::Dense => super::LAUNCHES_PER_DENSE_STEP,
            ModelKind::Conv => super::LAUNCHES_PER_CONV_STEP,
        });
    }
}

/// The model written from the step's parameters is the model the step trains: burn's loss of a
/// batch on it is the step's.
#[test]
fn the_model_written_back_scores_as_the_step() {
    let host = Device::flex();
    let model = ModelKind::Dense.init(None, &host);
    let mut step = GpuStep::for_model(&model, &gpu()).unwrap();
    let batches: Vec<Vec<f32>> = (0..3).map(|k| images(8 + k)).collect();
    pollster::block_on(step.steps(&batches, 1e-3)).unwrap();
    let trained = pollster::block_on(step.write_into(model.clone(), &host, false)).unwrap();
    let pixels = images(12);
    let (loss, _) = pollster::block_on(step.loss_and_gradient(&pixels, 1.0)).unwrap();
    let (untrained, _) = burns(&model, &pixels, 1.0);
    let (want, _) = burns(&trained, &pixels, 1.0);
    assert!((loss - want).abs() <= 1e-5 * want, "loss {loss} on the step, {want} on the model written back");
    assert!((untrained - want).abs() > 1e-4 * want, "the steps changed the model: {untrained} before, {want} after");
}

/// Ten steps of the GPU's Adam take the parameters where the flat Adam takes them from the same
/// gradients, and each step's loss comes back from the one read of the call. (The gradients are
/// the GPU's own, read back before each step: Adam divides by the gradients' size, so where a
/// gradient is near zero, a rounding in it moves the parameter by up to the learning rate.)
#[test]
fn its_adam_steps_are_the_flat_adams() {
    let host = Device::flex();
    let model = ModelKind::Dense.init(None, &host);
    let mut step = GpuStep::for_model(&model, &gpu()).unwrap();
    let mut adam = FlatAdam::new(&model);
    let mut cpu_model = model.clone();
    let mut losses = Vec::new();
    for k in 0..10 {
        let pixels = images(8 + k);
        // The same parameters and images give the same numbers again: nothing on the GPU sums
        // in a varying order.
        let (loss, grad) = pollster::block_on(step.loss_and_gradient(&pixels, 1.0)).unwrap();
        cpu_model = adam.step(1e-3, &grad, cpu_model, &host, false);
        let stepped = pollster::block_on(step.steps(&[pixels], 1e-3)).unwrap();
        // The step's loss comes in parts added in f64 (`LOSS_PARTS`): within 7e-8 of the host's
        // f64 sum of the partials in 200 steps. One running f32 sum of them drifted up to 1.2e-6.
        assert!((stepped[0] - loss).abs() <= 3e-7 * loss, "step {k}: loss {} from the step, {loss} from the gradient", stepped[0]);
        losses.push(loss);
    }
    assert!(losses[9] < losses[0], "the loss falls: {losses:?}");
    let params = pollster::block_on(step.params()).unwrap();
    assert_close("parameters after 10 steps", &params, adam.params(), 1e-5);
}

/// Several steps in one call: each its own loss, read at once, as one step a call gives them,
/// for both models.
#[test]
fn a_call_of_steps_gives_each_steps_loss() {
    let host = Device::flex();
    for kind in ModelKind::ALL {
        let model = kind.init(None, &host);
        let batches: Vec<Vec<f32>> = (0..4).map(|k| images(16 + k)).collect();
        let mut together = GpuStep::for_model(&model, &gpu()).unwrap();
        let mut apart = GpuStep::for_model(&model, &gpu()).unwrap();
        let all = pollster::block_on(together.steps(&batches, 1e-3)).unwrap();
        let one_by_one: Vec<f32> = batches.iter().flat_map(|b| pollster::block_on(apart.steps(std::slice::from_ref(b), 1e-3)).unwrap()).collect();
        assert_eq!(all, one_by_one, "{kind}");
        assert!(all[3] < all[0], "{kind}: the loss falls: {all:?}");
        assert_eq!(pollster::block_on(together.params()).unwrap(), pollster::block_on(apart.params()).unwrap(), "{kind}");
    }
}


/// Two steps for `model` from the same parameters: one that records its calls and replays them,
/// one that launches every step's kernels afresh.
fn recorded_and_afresh(model: &Autoencoder) -> (GpuStep, GpuStep) {
    let recorded = GpuStep::for_model(model, &gpu()).unwrap();
    let mut afresh = GpuStep::for_model(model, &gpu()).unwrap();
    afresh.launch_each_step();
    (recorded, afresh)
}

/// A call of steps recorded once and replayed after takes the model where launching its kernels
/// afresh at every step takes it, to the bit, for both models: over calls of different lengths,
/// one with a short last batch, each shape of call recorded once and replayed when it comes again.
#[test]
fn a_replayed_call_is_the_call_launched_afresh() {
    let host = Device::flex();
    for kind in ModelKind::ALL {
        let (mut replayed, mut launched) = recorded_and_afresh(&kind.init(None, &host));
        let call = |sizes: &[usize]| -> Vec<Vec<f32>> { sizes.iter().map(|&n| images(n)).collect() };
        for batches in [call(&[16, 16, 9]), call(&[16]), call(&[16, 16, 9]), call(&[16, 16])] {
            let want = pollster::block_on(launched.steps(&batches, 1e-3)).unwrap();
            let got = pollster::block_on(replayed.steps(&batches, 1e-3)).unwrap();
            assert_eq!(got, want, "{kind}: the losses of a call of {}", batches.len());
        }
        assert_eq!(replayed.recorded_calls(), 3, "{kind}: a recording for each shape of call");
        assert_eq!(launched.recorded_calls(), 0, "{kind}");
        let (got, want) = (pollster::block_on(replayed.params()).unwrap(), pollster::block_on(launched.params()).unwrap());
        assert_eq!(got, want, "{kind}: the parameters after 9 steps");
    }
}

/// A call whose images the GPU gathers from the training set it holds takes the model where the
/// same images written as floats take it, to the bit, for both models: recorded and replayed
/// against launched afresh, over calls of different lengths with a short batch and images in any
/// order. An index past the set, or a call before any set is held, is refused.
#[test]
fn a_call_from_the_held_set_is_the_call_of_its_images() {
    use crate::data::Mnist;
    let data = Mnist::load(std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/data/mnist"))).unwrap().test.take(100);
    let host = Device::flex();
    for kind in ModelKind::ALL {
        let (mut held, mut given) = recorded_and_afresh(&kind.init(None, &host));
        assert!(held.launch_held_steps(&[&[0, 1]], 1e-3).is_err(), "{kind}: a call before a set is held");
        held.hold_set(&data);
        assert_eq!(held.held_images(), Some(100), "{kind}");
        assert!(held.launch_held_steps(&[&[3, 100]], 1e-3).is_err(), "{kind}: an image past the set");
        let order: Vec<usize> = (0..100).map(|i| (i * 37 + 11) % 100).collect();
        for sizes in [&[16, 16, 9][..], &[16], &[16, 16, 9], &[16, 16]] {
            let mut start = 0;
            let batches: Vec<&[usize]> = sizes
                .iter()
                .map(|&n| {
                    start += n;
                    &order[start - n..start]
                })
                .collect();
            let pixels: Vec<Vec<f32>> = batches.iter().map(|b| data.pixels_f32(b.iter().copied())).collect();
            let got = held.launch_held_steps(&batches, 1e-3).unwrap();
            let got = pollster::block_on(held.read_losses(got, batches.len())).unwrap();
            let want = pollster::block_on(given.steps(&pixels, 1e-3)).unwrap();
            assert_eq!(got, want, "{kind}: the losses of a call of {sizes:?}");
        }
        assert_eq!(held.recorded_calls(), 3, "{kind}: a recording for each shape of call");
        let (got, want) = (pollster::block_on(held.params()).unwrap(), pollster::block_on(given.params()).unwrap());
        assert!(got == want, "{kind}: the parameters after 9 steps differ");
    }
}

/// When the training images change under a trainer (the page cleared them and loaded others as
/// many), the GPU step trains on the new ones from its next call, as burn's trainer does: the same
/// losses over two calls of 2 steps before the change and two after, the calls after replaying
/// what the calls before recorded.
#[test]
fn the_trainer_takes_new_training_images_to_the_gpu() {
    use crate::data::Mnist;
    use crate::train::{Trainer, TrainingConfig};
    use pollster::block_on;

    let test = Mnist::load(std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/data/mnist"))).unwrap().test;
    let host = Device::flex();
    let config = || TrainingConfig::new(ModelKind::Dense).with_seed(5).with_learning_rate(3e-3);
    let mut burns = Trainer::new(config(), &host, 64).unwrap();
    let mut ours = Trainer::resume(config(), block_on(burns.inference_model()).unwrap(), gpu(), 64);
    for (k, data) in [test.take(64), test.range(64, 64)].iter().enumerate() {
        if k == 1 {
            ours.training_set_changed();
        }
        for call in 0..2 {
            let (want, got) = (block_on(burns.run(data, 2)).unwrap(), block_on(ours.run(data, 2)).unwrap());
            for (g, w) in got.iter().zip(&want) {
                assert!((g - w).abs() <= 1e-3 * w, "images {k}, call {call}: {got:?} on the GPU step, burn's {want:?}");
            }
        }
    }
}

/// A call's images fit one GPU buffer: 64 steps of the page's batches of 32, and at its largest
/// batch (4,096 images, 12.8 MB of floats a step) as many as 64 MiB holds; a step always fits.
#[test]
fn a_call_of_big_batches_is_cut_to_what_fits() {
    assert!(GpuStep::steps_that_fit(32) >= 64, "{}", GpuStep::steps_that_fit(32));
    assert_eq!(GpuStep::steps_that_fit(4096), 5);
    assert_eq!(GpuStep::steps_that_fit(1 << 20), 1, "a step whatever its batch");
}

/// The trainer takes either model's steps on a wgpu device with this step (a step cut into
/// parts, burn's way on the CPU workers, is refused there): from the same weights, the same
/// losses as burn's trainer on the CPU over 10 steps in calls of 4 (through an epoch's short last
/// batch, the call cut there), the dense model with either code activation and the conv model,
/// and the model it hands back scores on the CPU as burn's trained one.
#[test]
fn the_trainer_steps_with_it_as_burns_trainer_on_the_cpu() {
    use crate::data::Mnist;
    use crate::evaluate::evaluate;
    use crate::train::{Trainer, TrainingConfig};
    use pollster::block_on;

    let data = Mnist::load(std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/data/mnist"))).unwrap().test.take(70);
    let host = Device::flex();
    for (kind, code) in [(ModelKind::Dense, CodeActivation::Linear), (ModelKind::Dense, CodeActivation::Relu), (ModelKind::Conv, CodeActivation::Relu)] {
        let what = format!("{kind}, {code} code");
        let config = || TrainingConfig::new(kind).with_seed(5).with_learning_rate(3e-3).with_code_activation(Some(code));
        let mut burns = Trainer::new(config(), &host, data.len()).unwrap();
        let mut ours = Trainer::resume(config(), block_on(burns.inference_model()).unwrap(), gpu(), data.len());
        assert!(block_on(ours.share_gradients(&data, 0, 2)).is_err(), "{what}: parts are refused on the GPU step");
        let (mut want, mut got) = (Vec::new(), Vec::new());
        while want.len() < 10 {
            want.extend(block_on(burns.run(&data, 4)).unwrap());
            got.extend(block_on(ours.run(&data, 4)).unwrap());
            assert_eq!(got.len(), want.len(), "{what}: steps in a call");
        }
        for (k, (g, w)) in got.iter().zip(&want).enumerate() {
            assert!((g - w).abs() <= 1e-3 * w, "{what} step {k}: {g} on the GPU step, burn's {w}");
        }
        assert!(want[9] < 0.8 * want[0], "{what}: it trains: {want:?}");
        assert_eq!((ours.epoch(), ours.batch(), ours.steps()), (burns.epoch(), burns.batch(), burns.steps()));
        let mse = |t: &Trainer| block_on(evaluate(&block_on(t.inference_model()).unwrap().to_device(&host), &data, 70, &host)).unwrap();
        let (theirs, mine) = (mse(&burns), mse(&ours));
        assert!((mine - theirs).abs() <= 1e-3 * theirs, "{what}: the model handed back scores {mine}, burn's {theirs}");
    }
}
