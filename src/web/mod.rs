//! The page's typed boundary: the only module that says `wasm_bindgen`.
//!
//! One exported object, [`Lab`], owns the device, the data, the model and its optimizer. Typed
//! arrays cross the boundary (`Uint8Array` chunks in, `Float32Array` pixels and losses out) and
//! every error becomes a JS `Error` whose message a person can act on. Calls into one `Lab` must
//! not overlap (wasm-bindgen refuses a second call while an async one is pending): the page
//! sends them through one queue.
//!
//! The rooms: `lab` holds the `Lab` and its training methods, `predictors` its digit predictors
//! and latent map, `reports` the objects those return, `device` the WebGPU device and the
//! module's constructors, `alloc` the heap count the page's leak check reads.

mod alloc;
mod device;
mod lab;
mod predictors;
mod reports;

pub use alloc::heap_bytes;
pub use lab::Lab;
pub use reports::{Evaluation, GpuMemory, PredictorReport, Reading, StepShare};

use wasm_bindgen::prelude::*;

use crate::drawing::mnist_style;

#[wasm_bindgen(start)]
fn start() {
    device::run_constructors();
    console_error_panic_hook::set_once();
}

fn js_error(message: impl std::fmt::Display) -> JsError {
    JsError::new(&message.to_string())
}

fn no_predictors() -> JsError {
    js_error("fit the predictors first")
}

/// Makes a drawing (`width * height` ink values in [0, 1], row-major) into a 28x28 MNIST-style
/// image: the stroke's box scaled into 20x20 and centred by its centre of mass.
#[wasm_bindgen(js_name = prepareDrawing)]
pub fn prepare_drawing(ink: &[f32], width: u32, height: u32) -> Result<Vec<f32>, JsError> {
    mnist_style(ink, width as usize, height as usize).map_err(js_error)
}
