//! The hand-written CPU training step against burn's autodiff in wasm: the check the native
//! tests run (tests/rust/cpu_step.rs), included from tests/support, here on the WebAssembly SIMD
//! matrix kernel and loops that the page's CPU backend trains with.

#[path = "../../support/cpu_step_check.rs"]
mod cpu_step_check;

use wasm_bindgen_test::wasm_bindgen_test;

#[wasm_bindgen_test]
fn the_dense_step_gives_burns_loss_and_gradients_in_wasm() {
    cpu_step_check::the_dense_step_gives_burns_loss_and_gradients();
}

#[wasm_bindgen_test]
fn the_conv_step_gives_burns_loss_and_gradients_in_wasm() {
    cpu_step_check::the_conv_step_gives_burns_loss_and_gradients();
}
