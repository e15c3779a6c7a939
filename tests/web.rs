//! The page's boundary on the real WebGPU path, in headless Chromium (run by `./build.sh test`
//! through wasm-bindgen-test-runner; WebGPU comes from SwiftShader where there is no GPU).
#![cfg(target_arch = "wasm32")]

use autoencoder_lab::data::{IMAGE_PIXELS, MnistSet};
use autoencoder_lab::web::{Lab, prepare_drawing};
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
    lab.reset(model, 32, 1e-3, 1).unwrap();
    assert_eq!(lab.model().as_deref(), Some(model));
    let mut losses = Vec::new();
    while losses.len() < 10 {
        losses.extend(lab.step(10 - losses.len() as u32).await.unwrap());
    }
    assert_eq!(lab.steps(), 10);
    let first = (losses[0] + losses[1]) / 2.0;
    let last = (losses[8] + losses[9]) / 2.0;
    assert!(last < first, "{model}: losses {losses:?}");
    let mse = lab.evaluate().await.unwrap();
    assert!(mse.is_finite() && mse < 0.25, "{model}: test MSE {mse}");
}

#[wasm_bindgen_test]
async fn dense_trains_on_webgpu() {
    ten_steps_lower_the_loss("dense").await;
}

#[wasm_bindgen_test]
async fn conv_trains_on_webgpu() {
    ten_steps_lower_the_loss("conv").await;
}

#[wasm_bindgen_test]
async fn reconstruct_returns_784_pixels_in_0_1_per_image() {
    let mut lab = lab_with_data().await;
    lab.reset("conv", 32, 1e-3, 0).unwrap();
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
    assert!(lab.reset("foo", 32, 1e-3, 0).is_err());
    assert!(lab.reset("dense", 0, 1e-3, 0).is_err());
    assert!(lab.reset("dense", 32, -1.0, 0).is_err());
    lab.reset("dense", 32, 1e-3, 0).unwrap();
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
