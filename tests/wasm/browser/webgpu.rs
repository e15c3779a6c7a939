//! The page's WebGPU device (src/web/device.rs) as `Lab::create("webgpu")` opens it: burn-wgpu
//! initialised asynchronously on the browser's WebGPU (SwiftShader in headless Chromium without a
//! GPU), once per page, and the first steps of training on it against the CPU's.

use wasm_bindgen_test::wasm_bindgen_test;

use crate::digits::lab_with_digits;

/// The losses of the first `steps` steps of `model` on `backend`, seed 3, batches of 32.
async fn first_losses(backend: &str, model: &str, steps: u32) -> Vec<f32> {
    let mut lab = lab_with_digits(backend, 128).await;
    assert_eq!(lab.backend(), backend);
    // Only a WebGPU device has burn's GPU memory pool: this Lab is on the device it asked for.
    assert_eq!(lab.gpu_memory().is_some(), backend == "webgpu", "{backend}: the memory pool report");
    lab.reset(model, 32, 1e-3, 3, 0, None).unwrap();
    let mut losses = Vec::new();
    while losses.len() < steps as usize {
        losses.extend(lab.step(steps - losses.len() as u32).await.unwrap());
    }
    losses
}

/// Each model trains in a Lab of its own on WebGPU: the page's first Lab opens the device, every
/// later one reuses it (WebGPU is initialised once per page). Both models' losses are the CPU
/// backend's (the hand-written CPU step and a flat Adam there; on WebGPU the hand-written GPU
/// step, its Adam on the GPU) up to the order of float sums.
#[wasm_bindgen_test]
async fn webgpu_opens_once_and_trains_both_models_as_the_cpu_does() {
    for model in ["dense", "conv"] {
        let gpu = first_losses("webgpu", model, 4).await;
        let cpu = first_losses("cpu", model, 4).await;
        assert!(gpu[3] < gpu[0], "{model}: the loss falls on WebGPU: {gpu:?}");
        for (step, (g, c)) in gpu.iter().zip(&cpu).enumerate() {
            assert!((g - c).abs() <= 1e-3 * c.abs(), "{model} step {step}: WebGPU {gpu:?}, CPU {cpu:?}");
        }
    }
}
