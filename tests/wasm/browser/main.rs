//! The crate's Rust tests compiled to wasm32 and run in headless Chromium (wasm-bindgen-test):
//! what only Rust can reach inside the wasm module, beneath the JavaScript boundary that
//! tests/module/ calls. `./build.sh test-wasm` builds them in the `wasm-test` profile (Cargo.toml)
//! and runs them; natively this file is empty.
//!
//! - here: the hand-written CPU training step against burn's autodiff, the native tests' very
//!   check (tests/support/cpu_step_check.rs), run on the WebAssembly SIMD kernel and loops the
//!   page's CPU backend trains with, which no native build runs;
//! - `webgpu`: the page's WebGPU device set up as `Lab::create` opens it, and training on it;
//! - `model_file`: model files written and read back in wasm, off the GPU too.
#![cfg(target_arch = "wasm32")]

#[path = "../../support/cpu_step_check.rs"]
mod cpu_step_check;
mod model_file;
mod webgpu;

use autoencoder_lab::data::MnistSet;
use autoencoder_lab::web::Lab;
use wasm_bindgen_test::{wasm_bindgen_test, wasm_bindgen_test_configure};

wasm_bindgen_test_configure!(run_in_browser);

#[wasm_bindgen_test]
fn the_dense_step_gives_burns_loss_and_gradients_in_wasm() {
    cpu_step_check::the_dense_step_gives_burns_loss_and_gradients();
}

#[wasm_bindgen_test]
fn the_conv_step_gives_burns_loss_and_gradients_in_wasm() {
    cpu_step_check::the_conv_step_gives_burns_loss_and_gradients();
}

/// The first `n` real MNIST test digits, compiled into the test module (the browser has no files).
fn test_digits(n: usize) -> MnistSet {
    let images = include_bytes!("../../../data/mnist/t10k-images-idx3-ubyte.gz");
    let labels = include_bytes!("../../../data/mnist/t10k-labels-idx1-ubyte.gz");
    MnistSet::from_idx(images, "t10k images", labels, "t10k labels").expect("the MNIST test files parse").take(n)
}

/// A `Lab` on `backend` (`"webgpu"` or `"cpu"`) holding `n` test digits as its training and test
/// images, handed over as the page hands them: one chunk each.
async fn lab_with_digits(backend: &str, n: usize) -> Lab {
    let mut lab = Lab::create(backend.to_string()).await.unwrap_or_else(|e| panic!("a {backend} Lab: {e:?}"));
    let chunk = test_digits(n).to_chunk();
    assert_eq!(lab.add_data("train", &chunk).unwrap(), n as u32);
    assert_eq!(lab.add_data("test", &chunk).unwrap(), n as u32);
    lab
}
