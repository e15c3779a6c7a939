//! Model files (src/model_file.rs) written and read back inside wasm: on the CPU backend, and from
//! a model trained on WebGPU, whose weights a browser lets the `Lab` read only asynchronously.
//! (Each way a file is refused is tested natively, in src/model_file.rs and tests/rust/fuzz.rs.)

use autoencoder_lab::data::MnistSet;
use autoencoder_lab::model::ModelKind;
use autoencoder_lab::model_file::{self, ModelFileError};
use autoencoder_lab::train::{Trainer, TrainingConfig, read_floats};
use burn::prelude::*;
use wasm_bindgen_test::wasm_bindgen_test;

use crate::digits::{lab_with_digits, test_digits};

/// `model`'s reconstructions of every image in `set`, as the host reads them.
async fn reconstructions(model: &autoencoder_lab::model::Autoencoder, set: &MnistSet, device: &Device) -> Vec<f32> {
    let batch = set.batch(&(0..set.len()).collect::<Vec<_>>(), device);
    read_floats(model.forward(batch)).await.unwrap()
}

/// A model trained two steps, written and read back in wasm on the CPU backend, is the same
/// model to the bit, with its header; the file cut short is refused with its reason (a panic
/// here would abort the whole module, not fail one call).
#[wasm_bindgen_test]
async fn model_files_round_trip_in_wasm() {
    let device = Device::flex();
    let digits = test_digits(16);
    for kind in ModelKind::ALL {
        let mut trainer = Trainer::new(TrainingConfig::new(kind), &device, digits.len()).unwrap();
        trainer.run(&digits, 2).await.unwrap();
        let model = trainer.inference_model().await.unwrap();
        let bytes = model_file::save(&model, serde_json::json!({"steps": 2})).unwrap();
        let (loaded, header) = model_file::load(&bytes, Some(kind), &device).unwrap();
        assert_eq!((header.model, header.latent, header.parameters), (kind, model.latent_size(), model.num_params()));
        assert_eq!(header.training["steps"], 2);
        assert_eq!(reconstructions(&loaded, &digits, &device).await, reconstructions(&model, &digits, &device).await, "{kind}");
        let cut = model_file::load(&bytes[..bytes.len() - 100], None, &device).map(|_| ()).unwrap_err();
        assert!(matches!(cut, ModelFileError::Weights { .. }), "{kind}: a file cut short: {cut}");
    }
}

/// The conv model trained on WebGPU and saved by its `Lab` (weights copied off the GPU) loads on
/// the CPU backend and reconstructs the digits as the GPU did, up to float rounding.
#[wasm_bindgen_test]
async fn a_model_trained_on_webgpu_loads_on_the_cpu() {
    let mut lab = lab_with_digits("webgpu", 64).await;
    lab.reset("conv", 32, 1e-3, 0, 0, None).unwrap();
    assert_eq!(lab.step(2).await.unwrap().len(), 2);
    let digits = test_digits(8);
    let on_gpu = lab.reconstruct(lab.test_pixels(0, 8)).await.unwrap();
    let bytes = lab.save(r#"{"steps": 2}"#.to_string()).await.unwrap();

    let device = Device::flex();
    let (model, header) = model_file::load(&bytes, Some(ModelKind::Conv), &device).unwrap();
    assert_eq!(header.training["steps"], 2);
    let on_cpu = reconstructions(&model, &digits, &device).await;
    assert_eq!(on_cpu.len(), on_gpu.len());
    let worst = on_cpu.iter().zip(&on_gpu).fold(0f32, |m, (a, b)| m.max((a - b).abs()));
    assert!(worst < 1e-4, "the CPU reconstructs the GPU's model {worst} away from the GPU");
}
