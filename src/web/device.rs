//! Where the wasm module meets its host: the static constructors run once, the page's one WebGPU
//! device, and a model copied off the GPU so that it can be written to a file.

#[cfg(feature = "webgpu")]
use std::cell::RefCell;

use burn::module::{ModuleMapper, ModuleVisitor, Param};
use burn::prelude::*;
use wasm_bindgen::prelude::*;

use super::js_error;
use crate::model::Autoencoder;
use crate::train::read_floats;

#[cfg(feature = "webgpu")]
thread_local! {
    // WebGPU can be initialised once per page; a second `Lab` reuses the first device.
    static WEBGPU: RefCell<Option<Device>> = const { RefCell::new(None) };
}

unsafe extern "C" {
    /// Runs the module's static constructors (the linker writes it). cubecl's kernel optimizer
    /// registers its IR types through them (the `inventory` crate).
    fn __wasm_call_ctors();
}

/// Runs the constructors, once. This call matters for speed: when no code calls
/// `__wasm_call_ctors`, wasm-ld makes every export rerun all the constructors on each call
/// ("command" modules), and the glue calls exports thousands of times per training step (measured
/// on a dense step in Chromium: 2.4 s of constructor reruns in a 2.9 s step). Called from `start`,
/// and again (then a no-op) from `Lab::create`, so that no Lab runs without them.
pub(super) fn run_constructors() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    // SAFETY: runs once, before any code that relies on what the constructors register.
    ONCE.call_once(|| unsafe { __wasm_call_ctors() });
}

#[cfg(feature = "webgpu")]
pub(super) async fn webgpu_device() -> Result<Device, JsError> {
    if let Some(device) = WEBGPU.with(|d| d.borrow().clone()) {
        return Ok(device);
    }
    if let Some(scope) = scope_without_webgpu() {
        return Err(js_error(format!(
            "this browser has no WebGPU in the {scope} where the model trains (navigator.gpu is missing there; a browser can offer WebGPU to pages and not to Web Workers); the CPU backend still works"
        )));
    }
    let device = Device::wgpu_options().tasks_max(crate::gpu_step::TASKS_PER_SUBMIT).init_async().await.map_err(|e| {
        js_error(format!(
            "WebGPU is not available in this browser ({e}); the page says which browsers have it, and the CPU backend still works"
        ))
    })?;
    WEBGPU.with(|d| *d.borrow_mut() = Some(device.clone()));
    Ok(device)
}

/// The scope this module runs in, where `navigator.gpu` is missing there: the training worker's
/// (a `WorkerGlobalScope`) or a page's (a `Window`, as in the module tests). A browser can offer
/// WebGPU to pages and not to workers, and wgpu's own error then names no cause. A scope that is
/// neither is left to wgpu.
#[cfg(feature = "webgpu")]
fn scope_without_webgpu() -> Option<&'static str> {
    let global = js_sys::global();
    let (navigator, scope): (JsValue, _) = if let Some(worker) = global.dyn_ref::<web_sys::WorkerGlobalScope>() {
        (worker.navigator().into(), "Web Worker")
    } else if let Some(window) = global.dyn_ref::<web_sys::Window>() {
        (window.navigator().into(), "page")
    } else {
        return None;
    };
    let gpu = js_sys::Reflect::get(&navigator, &JsValue::from_str("gpu")).unwrap_or(JsValue::UNDEFINED);
    gpu.is_undefined().then_some(scope)
}

/// The page's CPU module (built without the `webgpu` feature) has no WebGPU to open.
#[cfg(not(feature = "webgpu"))]
pub(super) async fn webgpu_device() -> Result<Device, JsError> {
    Err(js_error("this is the CPU-only module (www/pkg-cpu), built without WebGPU: load www/pkg for the WebGPU backend"))
}

#[cfg(feature = "webgpu")]
#[wasm_bindgen]
extern "C" {
    /// A channel of two ports (HTML's `MessageChannel`), declared here rather than through
    /// web-sys: the two calls below are all it is used for.
    type MessageChannel;
    #[wasm_bindgen(constructor)]
    fn new() -> MessageChannel;
    #[wasm_bindgen(method, getter)]
    fn port1(this: &MessageChannel) -> MessagePort;
    #[wasm_bindgen(method, getter)]
    fn port2(this: &MessageChannel) -> MessagePort;

    type MessagePort;
    #[wasm_bindgen(method, setter)]
    fn set_onmessage(this: &MessagePort, handler: &js_sys::Function);
    #[wasm_bindgen(method, js_name = postMessage)]
    fn post_message(this: &MessagePort, message: &JsValue);
}

/// Resolves in a task of its own, once the event loop has run: where the browser sends the
/// WebGPU commands made so far on to its GPU process (it does at the end of a task). A message
/// to itself rather than a timer: timers nested this deep wait 4 ms each, and a hidden tab's
/// may wait a second.
#[cfg(feature = "webgpu")]
pub(super) async fn next_task() {
    let channel = MessageChannel::new();
    let task = js_sys::Promise::new(&mut |resolve, _| channel.port1().set_onmessage(&resolve));
    channel.port2().post_message(&JsValue::NULL);
    // A message's promise resolves and is never rejected.
    let _ = wasm_bindgen_futures::JsFuture::from(task).await;
}

/// A copy of `model` on the CPU backend, its parameters read back in one async transfer.
pub(super) async fn to_host(model: Autoencoder) -> Result<Autoencoder, JsError> {
    struct Flatten(Vec<Tensor<1>>);
    impl ModuleVisitor for Flatten {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            let value = param.val();
            let n = value.shape().num_elements();
            self.0.push(value.reshape([n]));
        }
    }
    // Visits the parameters in the same order as `Flatten`, taking each one's values in turn.
    struct Refill {
        values: Vec<f32>,
        at: usize,
        device: Device,
    }
    impl ModuleMapper for Refill {
        fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
            let dims = param.val().dims();
            let n: usize = dims.iter().product();
            let values = self.values[self.at..self.at + n].to_vec();
            self.at += n;
            let device = self.device.clone();
            param.map(|_| Tensor::from_data(TensorData::new(values, dims), &device))
        }
    }

    let mut flat = Flatten(Vec::new());
    model.visit(&mut flat);
    let values = read_floats(Tensor::cat(flat.0, 0)).await.map_err(js_error)?;
    let mut refill = Refill { values, at: 0, device: Device::flex() };
    let host = model.map(&mut refill);
    if refill.at != refill.values.len() {
        return Err(js_error("copying the model off the GPU lost track of its parameters"));
    }
    Ok(host)
}

