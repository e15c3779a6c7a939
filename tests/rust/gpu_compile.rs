//! The GPU step's kernels compiled ahead of its first step (`GpuStep::compile_next`, which the
//! page's Lab calls). Alone in its process: the compiling is done in cubecl's dry run, which
//! drops every launch in the process while it lasts, so a test launching on another thread
//! (as src/gpu_step's tests do, beside each other) could lose a launch to it.

use autoencoder_lab::gpu_step::{GpuStep, TASKS_PER_SUBMIT};
use autoencoder_lab::model::ModelKind;
use burn::prelude::*;
use pollster::block_on;

#[path = "../support/strokes.rs"]
mod strokes;
use strokes::images;

/// Compiling a step's kernels launches each kernel once and runs none: the parameters, Adam's
/// state and the steps after are those of a step that compiled nothing first, to the bit, for
/// both models. Seven kernels for the dense model (the gather of a call's images from the held
/// training set, its outer layers' kernel each way, the middle layers' three, Adam), six for the
/// conv one (the gather; each way, its dense and stride-2 layers' kernels; Adam).
#[test]
fn compiling_the_kernels_first_runs_nothing() {
    let gpu = Device::wgpu_options().tasks_max(TASKS_PER_SUBMIT).init().expect("a wgpu adapter (apt-get install mesa-vulkan-drivers gives lavapipe)");
    let host = Device::flex();
    for (kind, kernels) in [(ModelKind::Dense, 7), (ModelKind::Conv, 6)] {
        let model = kind.init(None, &host);
        let mut compiled = GpuStep::for_model(&model, &gpu).unwrap();
        let mut fresh = GpuStep::for_model(&model, &gpu).unwrap();
        let mut count = 0;
        while compiled.compile_next(32) {
            count += 1;
        }
        assert_eq!(count, kernels, "{kind}: kernels compiled");
        assert!(!compiled.compile_next(32), "{kind}: nothing is left to compile");
        let before = block_on(compiled.params()).unwrap();
        assert!(before == block_on(fresh.params()).unwrap(), "{kind}: compiling changed the parameters");
        let batches = [images(32), images(32), images(7)];
        let got = block_on(compiled.steps(&batches, 1e-3)).unwrap();
        let want = block_on(fresh.steps(&batches, 1e-3)).unwrap();
        assert_eq!(got, want, "{kind}: the losses of the steps after");
        let (got, want) = (block_on(compiled.params()).unwrap(), block_on(fresh.params()).unwrap());
        assert!(got != before, "{kind}: the steps left the parameters as they were");
        assert!(got == want, "{kind}: the parameters after the steps differ from a step that compiled nothing first");
    }
}
