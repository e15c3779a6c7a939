//! The crate's Rust tests compiled to wasm32 and run in headless Chromium (wasm-bindgen-test):
//! what only Rust can reach inside the wasm module, beneath the JavaScript boundary that
//! tests/module/ calls. `./build.sh test-wasm` builds them with the page's WebGPU module's
//! profile and features, so that they reuse its build of burn, and runs them.
//!
//! - `cpu_step`: the hand-written CPU training step against burn's autodiff, the native tests'
//!   very check, on the WebAssembly SIMD kernel and loops that no native build runs;
//! - `webgpu`: the page's WebGPU device set up as `Lab::create` opens it, and training on it;
//! - `model_file`: model files written and read back in wasm, off the GPU too;
//! - `digits`: the real MNIST digits they train on.

#[cfg(target_arch = "wasm32")]
mod cpu_step;
#[cfg(target_arch = "wasm32")]
mod digits;
#[cfg(target_arch = "wasm32")]
mod model_file;
#[cfg(target_arch = "wasm32")]
mod webgpu;

#[cfg(target_arch = "wasm32")]
wasm_bindgen_test::wasm_bindgen_test_configure!(run_in_browser);

/// `harness = false` (Cargo.toml): wasm-bindgen-test-runner calls each `#[wasm_bindgen_test]`
/// by its export, so libtest is not linked, and the standard library built from source is the
/// page's (with `test` in it, it would differ, and burn would be compiled again for the tests).
/// Natively this binary does nothing.
fn main() {}
