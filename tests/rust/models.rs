//! The two autoencoders on burn's CPU backend: sizes, shapes, code activations, and that training
//! on real MNIST works. (The model file's own tests are in src/model_file.rs.)

use std::path::Path;

use autoencoder_lab::data::{IMAGE_SIDE, Mnist, MnistSet};
use autoencoder_lab::evaluate::{encode_set, evaluate, psnr};
use autoencoder_lab::model::{Autoencoder, CodeActivation, MAX_LATENT, ModelKind};
use autoencoder_lab::predict::dead_code_units;
use autoencoder_lab::train::{Trainer, TrainingConfig};
use burn::module::{ModuleMapper, Param};
use burn::prelude::*;
use pollster::block_on;

fn device() -> Device {
    Device::flex()
}

fn test_images(n: usize) -> MnistSet {
    let dir = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/data/mnist"));
    Mnist::load(dir).expect("the MNIST files should be in data/mnist").test.take(n)
}

fn min_max(data: Vec<f32>) -> (f32, f32) {
    data.iter().fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), &v| (lo.min(v), hi.max(v)))
}

#[test]
fn parameter_counts_match_the_seed_models() {
    assert_eq!(ModelKind::Dense.init(None, &device()).num_params(), 219_891);
    assert_eq!(ModelKind::Conv.init(None, &device()).num_params(), 210_369);
}

#[test]
fn codes_and_reconstructions_have_the_documented_shapes() {
    let images = test_images(5).batch(&[0, 1, 2, 3, 4], &device());
    for (kind, latent) in [(ModelKind::Dense, 3), (ModelKind::Conv, 64)] {
        let model = kind.init(None, &device());
        assert_eq!(model.latent_size(), latent);
        let code = model.encode(images.clone());
        assert_eq!(code.dims(), [5, latent], "{kind} code");
        let out = model.decode(code);
        assert_eq!(out.dims(), [5, IMAGE_SIDE, IMAGE_SIDE], "{kind} decode");
        assert_eq!(model.forward(images.clone()).dims(), [5, IMAGE_SIDE, IMAGE_SIDE], "{kind} forward");
    }
}

#[test]
fn latent_size_is_configurable_for_a_fair_comparison() {
    let dense = ModelKind::Dense.init(Some(64), &device());
    let conv = ModelKind::Conv.init(Some(3), &device());
    assert_eq!((dense.latent_size(), conv.latent_size()), (64, 3));
    let images = test_images(2).batch(&[0, 1], &device());
    assert_eq!(conv.encode(images.clone()).dims(), [2, 3]);
    assert_eq!(dense.forward(images).dims(), [2, IMAGE_SIDE, IMAGE_SIDE]);
}

#[test]
fn outputs_are_pixels_in_0_1_even_for_extreme_codes() {
    for kind in ModelKind::ALL {
        let model = kind.init(None, &device());
        let code = Tensor::<2>::ones([2, model.latent_size()], &device()).mul_scalar(1e4);
        let (lo, hi) = min_max(model.decode(code).into_data().try_into_vec::<f32>().unwrap());
        assert!(lo >= 0.0 && hi <= 1.0, "{kind}: [{lo}, {hi}]");
    }
}

#[test]
fn model_names_parse_and_anything_else_is_refused() {
    assert_eq!("dense".parse::<ModelKind>(), Ok(ModelKind::Dense));
    assert_eq!("conv".parse::<ModelKind>(), Ok(ModelKind::Conv));
    let err = "foo".parse::<ModelKind>().unwrap_err();
    assert!(err.contains("invalid model type") && err.contains("dense"), "{err}");
}

#[test]
fn bad_training_values_are_refused() {
    let bad = [
        TrainingConfig { batch_size: 0, ..TrainingConfig::new(ModelKind::Dense) },
        TrainingConfig { learning_rate: -1e-3, ..TrainingConfig::new(ModelKind::Dense) },
        TrainingConfig { learning_rate: f64::NAN, ..TrainingConfig::new(ModelKind::Dense) },
        TrainingConfig { latent: Some(0), ..TrainingConfig::new(ModelKind::Conv) },
        TrainingConfig { latent: Some(MAX_LATENT + 1), ..TrainingConfig::new(ModelKind::Dense) },
        TrainingConfig::new(ModelKind::Conv).with_latent(Some(usize::MAX)),
    ];
    for config in bad {
        assert!(Trainer::new(config.clone(), &device(), 100).is_err(), "{config:?} was accepted");
    }
    assert!(Trainer::new(TrainingConfig::new(ModelKind::Dense), &device(), 0).is_err(), "no data was accepted");
}

/// 50 steps of batch 32 on 512 real digits: the reconstruction error on those digits must fall
/// by at least a third (from about 0.23 for an untrained sigmoid output).
fn training_lowers_the_loss(kind: ModelKind) {
    let images = test_images(512);
    let device = device();
    let mut trainer = Trainer::new(TrainingConfig::new(kind), &device, images.len()).unwrap();
    let before = block_on(evaluate(&block_on(trainer.inference_model()).unwrap(), &images, 256, &device)).unwrap();
    let mut losses = Vec::new();
    while losses.len() < 50 {
        losses.extend(block_on(trainer.run(&images, 50 - losses.len())).unwrap());
    }
    assert_eq!(trainer.steps(), 50);
    assert_eq!(trainer.batches_per_epoch(), 16);
    assert_eq!((trainer.epoch(), trainer.batch()), (3, 2));
    let after = block_on(evaluate(&block_on(trainer.inference_model()).unwrap(), &images, 256, &device)).unwrap();
    assert!(after <= before * 2.0 / 3.0, "{kind}: MSE {before} -> {after}");
    assert!(losses.iter().all(|l| l.is_finite()));
    assert!(psnr(after) > psnr(before));
}

#[test]
fn training_lowers_the_dense_loss_by_a_third() {
    training_lowers_the_loss(ModelKind::Dense);
}

#[test]
fn training_lowers_the_conv_loss_by_a_third() {
    training_lowers_the_loss(ModelKind::Conv);
}

#[test]
fn runs_never_cross_an_epoch_end() {
    let images = test_images(100); // 4 batches of 32, the last of 4 images
    let mut trainer = Trainer::new(TrainingConfig::new(ModelKind::Dense), &device(), images.len()).unwrap();
    assert_eq!(block_on(trainer.run(&images, 10)).unwrap().len(), 4);
    assert_eq!((trainer.epoch(), trainer.batch()), (1, 0));
    assert_eq!(block_on(trainer.run(&images, 3)).unwrap().len(), 3);
    assert_eq!((trainer.epoch(), trainer.batch()), (1, 3));
}

#[test]
fn the_same_seed_gives_the_same_run() {
    let images = test_images(64);
    let run = |seed| {
        let config = TrainingConfig { seed, ..TrainingConfig::new(ModelKind::Conv) };
        let mut trainer = Trainer::new(config, &device(), images.len()).unwrap();
        block_on(trainer.run(&images, 2)).unwrap()
    };
    assert_eq!(run(3), run(3));
    assert_ne!(run(3), run(4));
}

fn seeded(model: ModelKind, code_activation: Option<CodeActivation>, seed: u64) -> Autoencoder {
    let config = TrainingConfig { seed, code_activation, ..TrainingConfig::new(model) };
    block_on(Trainer::new(config, &device(), 1).unwrap().inference_model()).unwrap()
}

fn codes(model: &Autoencoder, images: &MnistSet) -> Vec<f32> {
    block_on(encode_set(model, images, 64, &device())).unwrap().values().to_vec()
}

#[test]
fn code_activations_parse_and_default_per_model() {
    assert_eq!("linear".parse::<CodeActivation>(), Ok(CodeActivation::Linear));
    assert_eq!("relu".parse::<CodeActivation>(), Ok(CodeActivation::Relu));
    let err = "tanh".parse::<CodeActivation>().unwrap_err();
    assert!(err.contains("invalid code activation") && err.contains("relu"), "{err}");
    assert_eq!(ModelKind::Dense.init(None, &device()).code_activation(), CodeActivation::Linear);
    assert_eq!(ModelKind::Conv.init(None, &device()).code_activation(), CodeActivation::Relu);
    // The conv model's code has no other activation than the seed's ReLU.
    assert!(ModelKind::Conv.init_with(None, CodeActivation::Linear, &device()).is_err());
    let conv_linear = TrainingConfig { code_activation: Some(CodeActivation::Linear), ..TrainingConfig::new(ModelKind::Conv) };
    assert!(Trainer::new(conv_linear, &device(), 100).is_err());
    // The setting adds no parameter.
    assert_eq!(seeded(ModelKind::Dense, Some(CodeActivation::Relu), 0).num_params(), 219_891);
}

#[test]
fn a_relu_code_is_the_linear_code_clipped_at_zero() {
    let images = test_images(64);
    // One seed, one set of weights: only the code's activation differs.
    let linear = seeded(ModelKind::Dense, Some(CodeActivation::Linear), 5);
    let relu = seeded(ModelKind::Dense, Some(CodeActivation::Relu), 5);
    assert_eq!(relu.code_activation(), CodeActivation::Relu);
    let (linear_codes, relu_codes) = (codes(&linear, &images), codes(&relu, &images));
    assert!(linear_codes.iter().any(|&c| c < 0.0), "the linear code should have negative numbers to clip");
    assert!(relu_codes.iter().all(|&c| c >= 0.0));
    let clipped: Vec<f32> = linear_codes.iter().map(|&c| c.max(0.0)).collect();
    assert_eq!(relu_codes, clipped);
    // The decoder is the same: a code decodes to the same image in both.
    let code = Tensor::<2>::from_data(TensorData::new(vec![0.3f32, 1.2, 0.0], [1, 3]), &device());
    let a = linear.decode(code.clone()).into_data().try_into_vec::<f32>().unwrap();
    let b = relu.decode(code).into_data().try_into_vec::<f32>().unwrap();
    assert_eq!(a, b);
}

/// Sets the code layer's bias (the only bias of `latent` numbers in a dense model with a 3-number
/// code) to `bias`.
struct CodeBias(Vec<f32>);

impl ModuleMapper for CodeBias {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let dims = param.val().dims();
        if D != 1 || dims[0] != self.0.len() {
            return param;
        }
        let bias = self.0.clone();
        param.map(|t| Tensor::from_data(TensorData::new(bias, dims), &t.device()))
    }
}

#[test]
fn code_numbers_pushed_below_zero_for_every_image_are_counted_dead() {
    let images = test_images(500);
    let dead = |model: Autoencoder| {
        let codes = block_on(encode_set(&model, &images, 100, &device())).unwrap();
        dead_code_units(&codes)
    };
    // A bias of -1e4 outweighs anything the layers before can add up to from pixels in [0, 1], so
    // numbers 0 and 2 are negative before the ReLU for every image; number 1 keeps a large bias.
    let forced = CodeBias(vec![-1e4, 1e4, -1e4]);
    let relu = seeded(ModelKind::Dense, Some(CodeActivation::Relu), 1);
    assert_eq!(dead(relu.clone()), dead(relu.clone()), "the count is deterministic");
    assert_eq!(dead(relu.map(&mut CodeBias(forced.0.clone()))), 2);
    let linear = seeded(ModelKind::Dense, Some(CodeActivation::Linear), 1);
    assert_eq!(dead(linear.map(&mut CodeBias(forced.0.clone()))), 0, "a linear code's negative numbers are alive");
    // All three forced: every code number dead, so every image decodes to one and the same picture.
    let relu = seeded(ModelKind::Dense, Some(CodeActivation::Relu), 1).map(&mut CodeBias(vec![-1e4; 3]));
    assert_eq!(dead(relu.clone()), 3);
    let out = relu.forward(images.batch(&[0, 1, 2], &device())).into_data().try_into_vec::<f32>().unwrap();
    assert_eq!(out[..784], out[784..1568]);
    assert_eq!(out[..784], out[1568..]);
}
