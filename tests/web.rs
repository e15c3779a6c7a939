//! The page's boundary on the real WebGPU path, in headless Chromium (run by `./build.sh test`
//! through wasm-bindgen-test-runner; WebGPU comes from SwiftShader where there is no GPU).
#![cfg(target_arch = "wasm32")]

use autoencoder_lab::data::{IMAGE_PIXELS, MnistSet};
use autoencoder_lab::web::{Lab, heap_bytes, prepare_drawing};
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

/// The first 256 real MNIST test digits, as one page chunk.
fn chunk() -> Vec<u8> {
    let images = include_bytes!("../data/mnist/t10k-images-idx3-ubyte.gz");
    let labels = include_bytes!("../data/mnist/t10k-labels-idx1-ubyte.gz");
    MnistSet::from_idx(images, "t10k images", labels, "t10k labels").unwrap().take(256).to_chunk()
}

async fn lab_with_data() -> Lab {
    let mut lab = Lab::create("webgpu".into()).await.expect("a WebGPU adapter");
    assert_eq!(lab.add_data("train", &chunk()).unwrap(), 256);
    assert_eq!(lab.add_data("test", &chunk()).unwrap(), 256);
    lab
}

async fn ten_steps_lower_the_loss(model: &str) {
    let mut lab = lab_with_data().await;
    lab.reset(model, 32, 1e-3, 1, 0, None).unwrap();
    assert_eq!(lab.model().as_deref(), Some(model));
    let untrained = lab.evaluate().await.unwrap().test_mse;
    let mut losses = Vec::new();
    while losses.len() < 10 {
        losses.extend(lab.step(10 - losses.len() as u32).await.unwrap());
    }
    assert_eq!(lab.steps(), 10);
    let first = (losses[0] + losses[1]) / 2.0;
    let last = (losses[8] + losses[9]) / 2.0;
    assert!(last < first, "{model}: losses {losses:?}");
    let evaluation = lab.evaluate().await.unwrap();
    let mse = evaluation.test_mse;
    assert!(mse.is_finite() && mse < untrained, "{model}: test MSE {untrained} untrained, {mse} after 10 steps");
    // The same pass's codes give the count the encoder alone gives.
    assert_eq!(evaluation.dead_code_units, lab.dead_code_units().await.unwrap(), "{model}");
}

#[wasm_bindgen_test]
async fn dense_trains_on_webgpu() {
    ten_steps_lower_the_loss("dense").await;
}

#[wasm_bindgen_test]
async fn conv_trains_on_webgpu() {
    ten_steps_lower_the_loss("conv").await;
}

/// Losses of the first `n` steps of `model` on `backend`, seed 3.
async fn first_losses(backend: &str, model: &str, n: usize) -> Vec<f32> {
    let mut lab = Lab::create(backend.into()).await.unwrap();
    lab.add_data("train", &chunk()).unwrap();
    lab.reset(model, 32, 1e-3, 3, 0, None).unwrap();
    let mut losses = Vec::new();
    while losses.len() < n {
        losses.extend(lab.step((n - losses.len()) as u32).await.unwrap());
    }
    losses
}

/// Two CPU Labs as two workers of a pool take a step in two parts (each computes its own,
/// hands it to the other, both add them in part order): the same losses as a Lab stepping whole
/// (float sums aside), the two copies the same to the bit, and a step with a part missing refused.
#[wasm_bindgen_test]
async fn a_step_cut_over_two_labs_is_the_step_taken_whole() {
    for model in ["dense", "conv"] {
        let whole = first_losses("cpu", model, 4).await;
        let mut labs = Vec::new();
        for _ in 0..2 {
            let mut lab = Lab::create("cpu".into()).await.unwrap();
            lab.add_data("train", &chunk()).unwrap();
            lab.reset(model, 32, 1e-3, 3, 0, None).unwrap();
            labs.push(lab);
        }
        assert!(labs[0].apply_shares().is_err(), "{model}: no part computed yet");
        for (step, expected) in whole.iter().enumerate() {
            let mut shares = Vec::new();
            for (part, lab) in labs.iter_mut().enumerate() {
                let mut share = lab.share_gradients(part as u32, 2).await.unwrap();
                shares.push((share.loss, share.take_gradients().to_vec()));
                assert_eq!(share.take_gradients().length(), 0, "{model}: the gradient is handed over once");
            }
            if step == 0 {
                // Part 1 has not come in to Lab 0 yet: refused, and nothing changes.
                assert!(labs[0].apply_shares().is_err(), "{model}: a step with part 1 missing is refused");
                assert_eq!(labs[0].steps(), 0);
            }
            labs[0].add_share(1, 2, shares[1].0, shares[1].1.clone()).unwrap();
            labs[1].add_share(0, 2, shares[0].0, shares[0].1.clone()).unwrap();
            let (a, b) = (labs[0].apply_shares().unwrap(), labs[1].apply_shares().unwrap());
            assert_eq!(a.to_bits(), b.to_bits(), "{model} step {step}: the two copies differ");
            assert!((a - expected).abs() <= 1e-4 * expected, "{model} step {step}: whole {expected}, in two parts {a}");
        }
        assert_eq!((labs[0].steps(), labs[1].steps()), (4, 4));
        assert!(labs[0].add_share(1, 2, 0.0, vec![0.0; 3]).is_err(), "{model}: a gradient of another length is refused");
    }
}

#[wasm_bindgen_test]
async fn the_cpu_fallback_and_webgpu_train_the_same_model_on_the_same_seed() {
    for model in ["dense", "conv"] {
        let cpu = first_losses("cpu", model, 6).await;
        let gpu = first_losses("webgpu", model, 6).await;
        for (step, (c, g)) in cpu.iter().zip(&gpu).enumerate() {
            // Sums run in another order on the GPU: equal up to float rounding, not bit for bit.
            assert!((c - g).abs() <= 1e-3 * c.abs(), "{model} step {step}: cpu {cpu:?} webgpu {gpu:?}");
        }
    }
}

#[wasm_bindgen_test]
async fn the_gpu_memory_pool_is_reported_on_webgpu_only() {
    let mut lab = lab_with_data().await;
    lab.reset("dense", 32, 1e-3, 0, 0, None).unwrap();
    lab.step(2).await.unwrap();
    let memory = lab.gpu_memory().expect("a pool report on WebGPU");
    assert!(memory.allocations >= 1.0 && memory.bytes_in_use > 0.0, "{} allocations, {} bytes", memory.allocations, memory.bytes_in_use);
    assert!(memory.bytes_reserved >= memory.bytes_in_use);
    let cpu = Lab::create("cpu".into()).await.unwrap();
    assert!(cpu.gpu_memory().is_none());
    // The Rust heap's count sees a buffer come and go.
    let before = heap_bytes();
    let buffer = vec![1u8; 1 << 20];
    assert!(heap_bytes() >= before + (1 << 20) as f64);
    drop(buffer);
    assert!(heap_bytes() < before + (1 << 20) as f64);
}

#[wasm_bindgen_test]
async fn reconstruct_returns_784_pixels_in_0_1_per_image() {
    let mut lab = lab_with_data().await;
    lab.reset("conv", 32, 1e-3, 0, 0, None).unwrap();
    let pixels = lab.test_pixels(0, 3);
    assert_eq!(pixels.len(), 3 * IMAGE_PIXELS);
    let out = lab.reconstruct(pixels.clone()).await.unwrap();
    assert_eq!(out.len(), 3 * IMAGE_PIXELS);
    assert!(out.iter().all(|v| (0.0..=1.0).contains(v)));
    let codes = lab.encode(pixels).await.unwrap();
    assert_eq!(codes.len(), 3 * 64);
}

#[wasm_bindgen_test]
async fn bad_input_is_an_error_not_a_panic() {
    let mut lab = lab_with_data().await;
    // No model yet.
    assert!(lab.reconstruct(vec![0.0; IMAGE_PIXELS]).await.is_err());
    assert!(lab.reset("foo", 32, 1e-3, 0, 0, None).is_err());
    assert!(lab.reset("dense", 0, 1e-3, 0, 0, None).is_err());
    assert!(lab.reset("dense", 32, -1.0, 0, 0, None).is_err());
    lab.reset("dense", 32, 1e-3, 0, 0, None).unwrap();
    assert!(lab.reconstruct(vec![0.5; 100]).await.is_err(), "wrong length accepted");
    assert!(lab.reconstruct(Vec::new()).await.is_err(), "empty input accepted");
    assert!(lab.reconstruct(vec![2.0; IMAGE_PIXELS]).await.is_err(), "pixels above 1 accepted");
    assert!(lab.add_data("train", b"not a chunk").is_err());
    assert!(lab.add_data("validation", &chunk()).is_err());
    assert!(prepare_drawing(&[0.0; 100], 10, 10).is_err(), "blank drawing accepted");
    assert!(prepare_drawing(&[1.0; 10], 10, 10).is_err(), "wrong-size drawing accepted");
    // A failed call leaves the model usable.
    assert_eq!(lab.step(1).await.unwrap().len(), 1);
}

#[wasm_bindgen_test]
async fn a_model_file_round_trips_on_webgpu_and_the_predictors_read_its_codes() {
    let mut lab = lab_with_data().await;
    lab.reset("dense", 32, 1e-3, 0, 0, None).unwrap();
    lab.step(3).await.unwrap();
    let pixels = lab.test_pixels(0, 1);
    let before = lab.reconstruct(pixels.clone()).await.unwrap();
    // Saving reads the weights off the GPU, which must happen asynchronously in a browser.
    let bytes = lab.save("{\"steps\": 3}".into()).await.unwrap();
    lab.reset("dense", 32, 1e-3, 7, 0, None).unwrap();
    assert!(lab.load(&bytes, "conv", 32, 1e-3, 0).is_err(), "a dense file loaded as conv");
    assert!(lab.load(&bytes[..bytes.len() / 2], "dense", 32, 1e-3, 0).is_err(), "a truncated file loaded");
    assert_eq!(lab.load(&bytes, "dense", 32, 1e-3, 0).unwrap(), "{\"steps\":3}");
    let after = lab.reconstruct(pixels.clone()).await.unwrap();
    let diff = before.iter().zip(&after).map(|(a, b)| (a - b).abs()).fold(0.0, f32::max);
    assert!(diff < 1e-5, "the loaded model reconstructs differently: {diff}");

    let report = lab.fit_predictors(256, 5, 3).await.unwrap();
    assert_eq!((report.train_codes, report.test_codes, report.k), (256, 256, 5));
    assert_eq!(report.knn_confusion().iter().sum::<u32>(), 256);
    assert!(lab.predictors_fresh());
    let reading = lab.read(pixels).await.unwrap();
    assert_eq!(reading.reconstruction().len(), IMAGE_PIXELS);
    assert!((reading.linear().iter().sum::<f32>() - 1.0).abs() < 1e-4);
    assert_eq!(lab.map_points().unwrap().len(), 2 * 256);
    let decoded = lab.decode_point(reading.x, reading.y).await.unwrap();
    assert_eq!(decoded.len(), IMAGE_PIXELS);
    assert!(lab.decode_point(f32::NAN, 0.0).await.is_err());
    assert_eq!(lab.interpolate(0, 1, 4).await.unwrap().len(), 4 * IMAGE_PIXELS);
    assert!(lab.interpolate(0, 999, 4).await.is_err(), "a test image that is not loaded");
}

#[wasm_bindgen_test]
async fn the_code_activation_is_set_reported_and_kept_in_the_model_file() {
    let mut lab = lab_with_data().await;
    assert_eq!(lab.code_activation(), None, "no model yet");
    lab.reset("dense", 32, 1e-3, 0, 0, None).unwrap();
    assert_eq!(lab.code_activation().as_deref(), Some("linear"));
    lab.reset("conv", 32, 1e-3, 0, 0, Some(String::new())).unwrap();
    assert_eq!(lab.code_activation().as_deref(), Some("relu"));
    assert!(lab.reset("conv", 32, 1e-3, 0, 0, Some("linear".into())).is_err(), "a linear conv code accepted");
    assert!(lab.reset("dense", 32, 1e-3, 0, 0, Some("tanh".into())).is_err(), "an unknown activation accepted");
    // A refused reset keeps the model it had.
    assert_eq!(lab.model().as_deref(), Some("conv"));

    lab.reset("dense", 32, 1e-3, 0, 0, Some("relu".into())).unwrap();
    assert_eq!(lab.code_activation().as_deref(), Some("relu"));
    lab.step(2).await.unwrap();
    let codes = lab.encode(lab.test_pixels(0, 8)).await.unwrap();
    assert!(codes.iter().all(|&c| c >= 0.0), "a ReLU code went negative: {codes:?}");
    let dead = lab.dead_code_units().await.unwrap();
    assert!(dead <= 3);
    let bytes = lab.save("{}".into()).await.unwrap();
    lab.reset("dense", 32, 1e-3, 0, 0, None).unwrap();
    lab.load(&bytes, "dense", 32, 1e-3, 0).unwrap();
    assert_eq!(lab.code_activation().as_deref(), Some("relu"), "the file's code activation was lost");
    let report = lab.fit_predictors(256, 5, 1).await.unwrap();
    assert_eq!(report.dead_code_units, dead, "the predictors' count differs from deadCodeUnits");
}
