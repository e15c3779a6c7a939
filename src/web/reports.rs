//! What the `Lab` hands back to the page besides plain arrays: a test pass's figures, the
//! predictors' report, burn's GPU memory pool, one image's reading, and one worker's share of a
//! training step.

use wasm_bindgen::prelude::*;

/// What one pass over the loaded test images measures (`Lab.evaluate`).
#[wasm_bindgen]
pub struct Evaluation {
    /// Mean squared error per pixel of the reconstructions.
    #[wasm_bindgen(readonly, js_name = testMse)]
    pub test_mse: f32,
    /// Code numbers that are 0 for every test image: dead, so they carry nothing to the decoder.
    #[wasm_bindgen(readonly, js_name = deadCodeUnits)]
    pub dead_code_units: u32,
}

/// Test accuracy of both predictors, with their confusion matrices (row-major by true digit:
/// `confusion[NUM_CLASSES * true + predicted]`) and the linear classifier's loss per epoch.
#[wasm_bindgen]
pub struct PredictorReport {
    #[wasm_bindgen(readonly, js_name = knnAccuracy)]
    pub knn_accuracy: f32,
    #[wasm_bindgen(readonly, js_name = linearAccuracy)]
    pub linear_accuracy: f32,
    #[wasm_bindgen(readonly)]
    pub k: u32,
    #[wasm_bindgen(readonly, js_name = trainCodes)]
    pub train_codes: u32,
    #[wasm_bindgen(readonly, js_name = testCodes)]
    pub test_codes: u32,
    /// Code numbers that are 0 for every test image: dead, so they carry nothing to the decoder.
    #[wasm_bindgen(readonly, js_name = deadCodeUnits)]
    pub dead_code_units: u32,
    pub(super) knn_confusion: Vec<u32>,
    pub(super) linear_confusion: Vec<u32>,
    pub(super) linear_losses: Vec<f32>,
}

#[wasm_bindgen]
impl PredictorReport {
    #[wasm_bindgen(getter, js_name = knnConfusion)]
    pub fn knn_confusion(&self) -> Vec<u32> {
        self.knn_confusion.clone()
    }

    #[wasm_bindgen(getter, js_name = linearConfusion)]
    pub fn linear_confusion(&self) -> Vec<u32> {
        self.linear_confusion.clone()
    }

    #[wasm_bindgen(getter, js_name = linearLosses)]
    pub fn linear_losses(&self) -> Vec<f32> {
        self.linear_losses.clone()
    }
}

/// What burn's memory pool holds on a GPU device, for the page's leak check.
#[wasm_bindgen]
pub struct GpuMemory {
    /// Bytes the live tensors use.
    #[wasm_bindgen(readonly, js_name = bytesInUse)]
    pub bytes_in_use: f64,
    /// Bytes the pool has taken from the device, free pages kept for reuse included.
    #[wasm_bindgen(readonly, js_name = bytesReserved)]
    pub bytes_reserved: f64,
    /// Live allocations.
    #[wasm_bindgen(readonly)]
    pub allocations: f64,
}

/// Everything the page shows about one image: its reconstruction, both predictors' scores for
/// each digit, and where its code falls on the latent map.
#[wasm_bindgen]
pub struct Reading {
    pub(super) reconstruction: Vec<f32>,
    pub(super) knn: Vec<f32>,
    pub(super) linear: Vec<f32>,
    #[wasm_bindgen(readonly)]
    pub x: f32,
    #[wasm_bindgen(readonly)]
    pub y: f32,
}

#[wasm_bindgen]
impl Reading {
    #[wasm_bindgen(getter)]
    pub fn reconstruction(&self) -> Vec<f32> {
        self.reconstruction.clone()
    }

    /// Vote share of each digit among the k nearest training codes.
    #[wasm_bindgen(getter)]
    pub fn knn(&self) -> Vec<f32> {
        self.knn.clone()
    }

    /// The linear classifier's probability of each digit.
    #[wasm_bindgen(getter)]
    pub fn linear(&self) -> Vec<f32> {
        self.linear.clone()
    }
}


/// One worker's part of a training step cut over several workers (`Lab.shareGradients`): its
/// share of the batch's loss and the flat gradient of that share, in parameter order. The
/// workers' gradients, summed in worker order, are the step's (`Lab.applyShares`).
#[wasm_bindgen]
pub struct StepShare {
    #[wasm_bindgen(readonly)]
    pub loss: f32,
    /// Already on the JS side: the Lab keeps its own part in wasm memory, and this is the one
    /// copy of it that goes out.
    pub(super) gradients: js_sys::Float32Array,
}

#[wasm_bindgen]
impl StepShare {
    /// The gradient, handed over rather than copied (a second call gets an empty array): it is
    /// sent on to the other workers once a step.
    #[wasm_bindgen(js_name = takeGradients)]
    pub fn take_gradients(&mut self) -> js_sys::Float32Array {
        std::mem::replace(&mut self.gradients, js_sys::Float32Array::new_with_length(0))
    }
}
