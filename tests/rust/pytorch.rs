//! PyTorch's side of the door (src/pytorch/), proven against PyTorch itself without PyTorch in
//! the test run: tests/fixtures/pytorch/ holds the study's two models trained briefly in PyTorch
//! and PyTorch's own codes and reconstructions of the first 64 test digits
//! (tools/pytorch_interop.py wrote them). Here the lab loads each and reproduces those numbers,
//! exports them back in PyTorch's layout, refuses every kind of corrupt or foreign file with a
//! message naming the tensor or the header at fault, and survives a fuzz run of its reader.
//!
//!     cargo test --release --test pytorch
//!     PYTORCH_EXPORT_DIR=/tmp/lab cargo test --release --test pytorch -- export   (files for
//!         `tools/pytorch_interop.py --check /tmp/lab/conv.safetensors`)

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::collections::BTreeMap;
use std::panic::{self, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::{Once, OnceLock};

use autoencoder_lab::data::Mnist;
use autoencoder_lab::model::{Autoencoder, CodeActivation, ModelKind};
use autoencoder_lab::pytorch::{self, CodeSource, NamedTensor, PytorchError, Safetensors, Spelling};
use autoencoder_lab::rng::SplitMix64;
use autoencoder_lab::train::{Trainer, TrainingConfig};
use burn::prelude::*;
use pollster::block_on;
use serde_json::{Value, json};

/// The bound: PyTorch's numbers reproduced to within this, max absolute difference, for
/// the reconstructions (pixels in [0, 1]). The codes are held to it relative to their largest
/// number: the conv model's codes reach 114 here, where f32 numbers lie 7.6e-6 apart, and each is
/// a sum of 1,568 products whose partial sums are as large, so every code carries rounding of that
/// size whatever its own value. PyTorch's own f32 codes of these digits differ from the same
/// model's in f64 by 3.1e-5 (tools/pytorch_interop.py's models, run both ways), so no f32
/// implementation, PyTorch included, can promise 1e-5 absolute there.
const TOLERANCE: f32 = 1e-5;
/// The fixtures' outputs are of the first 64 test digits.
const DIGITS: usize = 64;

fn device() -> Device {
    Device::flex()
}

fn fixture(name: &str) -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/pytorch").join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}; tools/pytorch_interop.py writes it", path.display()))
}

fn mnist() -> &'static Mnist {
    static MNIST: OnceLock<Mnist> = OnceLock::new();
    MNIST.get_or_init(|| {
        Mnist::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("data/mnist")).expect("the MNIST files should be in data/mnist")
    })
}

fn digits() -> Tensor<3> {
    let indices: Vec<usize> = (0..DIGITS).collect();
    mnist().test.batch(&indices, &device())
}

fn floats<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data().try_into_vec::<f32>().unwrap()
}

fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
}

/// The largest absolute difference of `ours` from `theirs`, over the largest size of a number of
/// `theirs` where that is over 1: [`TOLERANCE`]'s measure for codes.
fn max_scaled_diff(ours: &[f32], theirs: &[f32]) -> f32 {
    max_abs_diff(ours, theirs) / theirs.iter().fold(1.0, |m, v| v.abs().max(m))
}

/// How far `model`'s codes and reconstructions of the 64 digits are from `expected` (an outputs
/// file's tensors).
#[derive(Debug)]
struct Differences {
    codes: f32,
    codes_scaled: f32,
    reconstructions: f32,
}

impl Differences {
    fn within_tolerance(&self) -> bool {
        self.codes_scaled <= TOLERANCE && self.reconstructions <= TOLERANCE
    }
}

fn differences(model: &Autoencoder, expected: &Safetensors) -> Differences {
    let codes = floats(model.encode(digits()));
    let reconstructions = floats(model.forward(digits()));
    let want = |name: &str| &expected.get(name).unwrap_or_else(|| panic!("no {name} in the outputs")).values;
    Differences {
        codes: max_abs_diff(&codes, want("codes")),
        codes_scaled: max_scaled_diff(&codes, want("codes")),
        // Pixels lie in [0, 1], so for them the scaled difference is the absolute one.
        reconstructions: max_abs_diff(&reconstructions, want("reconstructions")),
    }
}

fn loaded(file: &[u8]) -> pytorch::Imported {
    pytorch::load(file, None, &device()).unwrap_or_else(|e| panic!("{e}"))
}

fn refusal(file: &[u8]) -> String {
    match pytorch::load(file, None, &device()) {
        Ok(imported) => panic!("loaded {}", imported.describe()),
        Err(e) => e.to_string(),
    }
}

/// The fixture's tensors, each changed by `edit` (which may drop one by returning `None`), written
/// back with `extra` added.
fn edited(name: &str, edit: impl Fn(NamedTensor) -> Option<NamedTensor>, extra: Vec<NamedTensor>) -> Vec<u8> {
    let file = pytorch::read(&fixture(name)).unwrap();
    let mut tensors: Vec<NamedTensor> = file.tensors.into_iter().filter_map(edit).collect();
    tensors.extend(extra);
    pytorch::write(&tensors, &file.metadata)
}

/// A safetensors file put together by hand: `header` as JSON, its length as given or true.
fn forge(header: &Value, length: Option<u64>, data: &[u8]) -> Vec<u8> {
    let header = serde_json::to_vec(header).unwrap();
    let mut out = length.unwrap_or(header.len() as u64).to_le_bytes().to_vec();
    out.extend_from_slice(&header);
    out.extend_from_slice(data);
    out
}

/// The fixture's header as JSON and its data bytes.
fn header_and_data(bytes: &[u8]) -> (Value, Vec<u8>) {
    let length = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    (serde_json::from_slice(&bytes[8..8 + length]).unwrap(), bytes[8 + length..].to_vec())
}

// --- PyTorch's numbers, reproduced ----------------------------------------------------------------

#[test]
fn pytorch_trained_models_give_pytorchs_codes_and_reconstructions() {
    for (kind, latent) in [(ModelKind::Dense, 3), (ModelKind::Conv, 64)] {
        let imported = loaded(&fixture(&format!("{kind}.safetensors")));
        assert_eq!((imported.model.kind(), imported.model.latent_size()), (kind, latent));
        assert_eq!(imported.spelling, Spelling::EncoderDecoder);
        // PyTorch's state_dict says nothing of the code activation: the kind's default, said so.
        assert_eq!(imported.code_source, CodeSource::Default);
        assert_eq!(imported.code_activation, kind.default_code_activation());
        let outputs = pytorch::read(&fixture(&format!("{kind}.outputs.safetensors"))).unwrap();
        let d = differences(&imported.model, &outputs);
        println!(
            "{kind}: max |lab - PyTorch|: codes {:.3e} ({:.3e} of the largest code), reconstructions {:.3e}",
            d.codes, d.codes_scaled, d.reconstructions
        );
        assert!(d.within_tolerance(), "{kind}: {d:?}");
    }
}

#[test]
fn a_dense_import_says_its_code_activation_was_assumed() {
    let dense = loaded(&fixture("dense.safetensors"));
    assert!(dense.describe().contains("linear code is assumed"), "{}", dense.describe());
    let asked = pytorch::load(&fixture("dense.safetensors"), Some(CodeActivation::Relu), &device()).unwrap();
    assert_eq!((asked.code_activation, asked.code_source), (CodeActivation::Relu, CodeSource::Asked));
    assert_eq!(asked.model.code_activation(), CodeActivation::Relu);
    // The same weights with a ReLU on the code: PyTorch's codes with their negatives cut to 0.
    let codes = floats(asked.model.encode(digits()));
    let pytorch_codes = pytorch::read(&fixture("dense.outputs.safetensors")).unwrap().get("codes").unwrap().values.clone();
    let clipped: Vec<f32> = pytorch_codes.iter().map(|c| c.max(0.0)).collect();
    assert!(pytorch_codes.iter().any(|&c| c < 0.0), "the fixture's codes should have negatives for this to test anything");
    assert!(max_scaled_diff(&codes, &clipped) <= TOLERANCE);
}

/// `encoder.N.*` / `decoder.N.*` renamed to one flat `nn.Sequential`'s indices: `dense` as
/// tools/pytorch_reference.py builds it (Flatten first, so Linear layers at 1, 3, 5, 7, then 8,
/// 10, 12, 14), conv with its twelve modules (convolutions at 0, 2, ..., 10).
fn flat_name(kind: ModelKind, name: &str) -> String {
    let (part, rest) = name.split_once('.').unwrap();
    let (index, field) = rest.split_once('.').unwrap();
    let layer = index.parse::<usize>().unwrap() / 2 + if part == "decoder" { if kind == ModelKind::Dense { 4 } else { 3 } } else { 0 };
    let flat = match kind {
        ModelKind::Dense => [1, 3, 5, 7, 8, 10, 12, 14][layer],
        ModelKind::Conv => 2 * layer,
    };
    format!("{flat}.{field}")
}

#[test]
fn a_flat_sequential_loads_as_the_same_model() {
    for kind in ModelKind::ALL {
        let name = format!("{kind}.safetensors");
        let flat = edited(&name, |t| Some(NamedTensor { name: flat_name(kind, &t.name), ..t }), vec![]);
        let imported = loaded(&flat);
        assert_eq!(imported.spelling, Spelling::Flat);
        let outputs = pytorch::read(&fixture(&format!("{kind}.outputs.safetensors"))).unwrap();
        let d = differences(&imported.model, &outputs);
        assert!(d.within_tolerance(), "{kind}: {d:?}");
        // And out again in the study's encoder/decoder names.
        let names: Vec<String> = pytorch::state_dict(&imported.model).unwrap().into_iter().map(|t| t.name).collect();
        assert!(names.iter().all(|n| n.starts_with("encoder.") || n.starts_with("decoder.")), "{names:?}");
    }
}

// --- our models, out in PyTorch's layout ----------------------------------------------------------

#[test]
fn an_unchanged_import_exports_pytorchs_own_tensors_to_the_bit() {
    for kind in ModelKind::ALL {
        let original = pytorch::read(&fixture(&format!("{kind}.safetensors"))).unwrap();
        let exported = pytorch::save(&loaded(&fixture(&format!("{kind}.safetensors"))).model).unwrap();
        let exported = pytorch::read(&exported).unwrap();
        assert_eq!(exported.tensors.len(), original.tensors.len(), "{kind}");
        for theirs in &original.tensors {
            let ours = exported.get(&theirs.name).unwrap_or_else(|| panic!("{kind}: no {} in the export", theirs.name));
            assert_eq!(ours.shape, theirs.shape, "{}", theirs.name);
            let bits = |t: &NamedTensor| t.values.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
            assert!(bits(ours) == bits(theirs), "{kind}: {} differs", theirs.name);
        }
        assert_eq!(exported.metadata.get("model").map(String::as_str), Some(kind.name()));
        assert_eq!(exported.metadata.get("code_activation").map(String::as_str), Some(kind.default_code_activation().name()));
    }
}

#[test]
fn a_relu_code_survives_the_round_trip_through_the_files_metadata() {
    let model = ModelKind::Dense.init_with(Some(5), CodeActivation::Relu, &device()).unwrap();
    let back = loaded(&pytorch::save(&model).unwrap());
    assert_eq!((back.code_activation, back.code_source), (CodeActivation::Relu, CodeSource::File));
    assert_eq!(back.model.latent_size(), 5);
    let (a, b) = (floats(model.forward(digits())), floats(back.model.forward(digits())));
    assert_eq!(max_abs_diff(&a, &b), 0.0);
}

/// A model the lab trained further (from the PyTorch fixture, as `train --load` does; the dense one
/// also with the seed's ReLU code), exported: read back it is the trained model, its code
/// activation from the file's metadata. With PYTORCH_EXPORT_DIR set, each file and the lab's
/// outputs of the 64 digits are written there (dense, dense-relu, conv) for
/// `tools/pytorch_interop.py --check`.
#[test]
fn export_for_pytorch_after_training_on() {
    let train = mnist().train.take(320);
    for (kind, code, name) in [
        (ModelKind::Dense, CodeActivation::Linear, "dense"),
        (ModelKind::Dense, CodeActivation::Relu, "dense-relu"),
        (ModelKind::Conv, CodeActivation::Relu, "conv"),
    ] {
        let fixture = fixture(&format!("{kind}.safetensors"));
        let start = pytorch::load(&fixture, Some(code), &device()).unwrap().model;
        let config = TrainingConfig::new(kind).with_code_activation(Some(code));
        let mut trainer = Trainer::resume(config, start.clone(), device(), train.len());
        let losses = block_on(trainer.run(&train, 10)).unwrap();
        assert!(losses.iter().all(|l| l.is_finite()), "{name}: {losses:?}");
        let trained = block_on(trainer.inference_model()).unwrap();
        let before = floats(start.forward(digits()));
        let reconstructions = floats(trained.forward(digits()));
        assert!(max_abs_diff(&before, &reconstructions) > 1e-4, "{name}: training changed nothing to check");

        let file = pytorch::save(&trained).unwrap();
        let back = loaded(&file);
        assert_eq!(max_abs_diff(&floats(back.model.forward(digits())), &reconstructions), 0.0, "{name}");
        assert_eq!((back.code_activation, back.code_source), (code, CodeSource::File), "{name}");

        if let Some(dir) = std::env::var_os("PYTORCH_EXPORT_DIR").map(PathBuf::from) {
            std::fs::create_dir_all(&dir).unwrap();
            let codes = floats(trained.encode(digits()));
            let outputs = [
                NamedTensor { name: "codes".into(), shape: vec![DIGITS, trained.latent_size()], values: codes },
                NamedTensor { name: "reconstructions".into(), shape: vec![DIGITS, 28, 28], values: reconstructions },
            ];
            std::fs::write(dir.join(format!("{name}.safetensors")), &file).unwrap();
            std::fs::write(dir.join(format!("{name}.outputs.safetensors")), pytorch::write(&outputs, &BTreeMap::new())).unwrap();
            println!("wrote {}/{name}.safetensors and its outputs", dir.display());
        }
    }
}

// --- refusals, each naming what does not fit ------------------------------------------------------

fn assert_refused(file: &[u8], words: &[&str]) {
    let message = refusal(file);
    for word in words {
        assert!(message.contains(word), "{message:?} should say {word:?}");
    }
}

#[test]
fn a_wrong_shape_is_refused_naming_the_tensor_and_the_shape_it_needs() {
    let file = edited(
        "dense.safetensors",
        |t| Some(if t.name == "encoder.2.weight" { NamedTensor { shape: vec![64, 100], values: vec![0.0; 6400], ..t } } else { t }),
        vec![],
    );
    assert_refused(&file, &["\"encoder.2.weight\"", "[64, 100]", "[64, 128]", "Linear(128, 64)"]);
    // A conv kernel the wrong size.
    let file = edited(
        "conv.safetensors",
        |t| Some(if t.name == "decoder.2.weight" { NamedTensor { shape: vec![32, 16, 2, 2], values: vec![0.0; 2048], ..t } } else { t }),
        vec![],
    );
    assert_refused(&file, &["\"decoder.2.weight\"", "[32, 16, 3, 3]", "ConvTranspose2d(32, 16, 3)"]);
    // Linear weights stored in burn's layout instead of PyTorch's.
    let file = edited(
        "dense.safetensors",
        |t| Some(if t.shape.len() == 2 { NamedTensor { shape: vec![t.shape[1], t.shape[0]], ..t } } else { t }),
        vec![],
    );
    assert_refused(&file, &["\"encoder.0.weight\"", "[784, 128]", "[128, 784]"]);
}

#[test]
fn a_missing_or_extra_tensor_is_refused_naming_it() {
    assert_refused(&edited("dense.safetensors", |t| (t.name != "decoder.4.bias").then_some(t), vec![]), &["\"decoder.4.bias\"", "missing"]);
    assert_refused(
        &edited("conv.safetensors", |t| (t.name != "encoder.2.weight").then_some(t), vec![]),
        &["\"encoder.2.weight\"", "missing"],
    );
    // A whole layer gone, or one more than the model has.
    assert_refused(
        &edited("dense.safetensors", |t| (!t.name.starts_with("decoder.6.")).then_some(t), vec![]),
        &["3 decoder layers", "4 in its decoder"],
    );
    let extra = |name: &str, shape: Vec<usize>| NamedTensor { name: name.into(), values: vec![0.0; shape.iter().product()], shape };
    assert_refused(
        &edited("conv.safetensors", Some, vec![extra("decoder.6.weight", vec![1, 1, 1, 1]), extra("decoder.6.bias", vec![1])]),
        &["4 decoder layers"],
    );
    // A tensor no layer of the study's holds (a BatchNorm's, say).
    assert_refused(
        &edited("conv.safetensors", Some, vec![extra("encoder.1.running_mean", vec![16])]),
        &["\"encoder.1.running_mean\"", "not a weight or bias"],
    );
    // The two spellings mixed.
    assert_refused(
        &edited(
            "dense.safetensors",
            |t| Some(if t.name == "decoder.6.bias" { NamedTensor { name: "14.bias".into(), ..t } } else { t }),
            vec![],
        ),
        &["\"14.bias\"", "mixes"],
    );
    // Nothing at all.
    assert_refused(&edited("dense.safetensors", |_| None, vec![]), &["no tensors"]);
}

#[test]
fn f16_f64_and_other_dtypes_are_refused_naming_the_tensor() {
    let bytes = fixture("conv.safetensors");
    for dtype in ["F16", "BF16", "F64", "I64", "U8"] {
        let (mut header, data) = header_and_data(&bytes);
        header["encoder.4.bias"]["dtype"] = json!(dtype);
        assert_refused(&forge(&header, None, &data), &["\"encoder.4.bias\"", dtype, "F32"]);
    }
}

#[test]
fn a_header_that_lies_is_refused() {
    let bytes = fixture("dense.safetensors");
    let (header, data) = header_and_data(&bytes);
    let length = serde_json::to_vec(&header).unwrap().len() as u64;
    // Its length: past the file, absurd, or short of the JSON's end.
    assert_refused(&forge(&header, Some(length + 100), &data[..50]), &["only", "truncated"]);
    assert_refused(&forge(&header, Some(u64::MAX), &data), &["not plausible"]);
    assert_refused(&forge(&header, Some(length - 1), &data), &["not JSON"]);
    // The file cut short: the last tensor's bytes are not all there.
    let cut = &bytes[..bytes.len() - 4];
    let last = pytorch::read(&bytes).unwrap().tensors.last().unwrap().name.clone();
    assert_refused(cut, &[&format!("{last:?}"), "truncated"]);
    // Offsets that disagree with the shape, overlap, leave a gap, or leave bytes over.
    let mut lying = header.clone();
    lying["encoder.6.bias"]["data_offsets"][1] = json!(lying["encoder.6.bias"]["data_offsets"][1].as_u64().unwrap() + 4);
    assert_refused(&forge(&lying, None, &data), &["\"encoder.6.bias\"", "data_offsets"]);
    let mut overlapping = header.clone();
    let [start, end] = [0, 1].map(|i| overlapping["encoder.6.bias"]["data_offsets"][i].as_u64().unwrap());
    overlapping["encoder.6.bias"]["data_offsets"] = json!([start - 4, end - 4]);
    assert_refused(&forge(&overlapping, None, &data), &["overlaps"]);
    let mut gap = header.clone();
    gap["decoder.0.bias"]["data_offsets"] = json!([
        gap["decoder.0.bias"]["data_offsets"][0].as_u64().unwrap() + 4,
        gap["decoder.0.bias"]["data_offsets"][1].as_u64().unwrap() + 4
    ]);
    let mut longer = data.clone();
    longer.extend_from_slice(&[0; 4]);
    assert_refused(&forge(&gap, None, &longer), &["\"decoder.0.bias\"", "unused"]);
    assert_refused(&forge(&header, None, &longer), &["4 bytes of data follow"]);
    // Shapes that cannot be.
    let mut huge = header.clone();
    huge["encoder.0.weight"]["shape"] = json!([u64::MAX, 2]);
    assert_refused(&forge(&huge, None, &data), &["\"encoder.0.weight\"", "too large"]);
    let mut negative = header.clone();
    negative["encoder.0.weight"]["shape"] = json!([-128, 784]);
    assert_refused(&forge(&negative, None, &data), &["\"encoder.0.weight\"", "whole numbers"]);
    // Not safetensors at all: the lab's own model file, an empty file, JSON that is no object.
    let ours = [b"AELAB\x00\x00\x01".as_slice(), &2u32.to_le_bytes(), b"{}"].concat();
    assert!(!pytorch::is_safetensors(&ours) && pytorch::is_safetensors(&bytes));
    assert!(matches!(pytorch::read(&ours), Err(PytorchError::Header(_))));
    assert!(matches!(pytorch::read(&[]), Err(PytorchError::Header(_))));
    assert_refused(&forge(&json!([1, 2]), None, &[]), &["not a JSON object"]);
}

#[test]
fn a_conv_model_cannot_be_asked_for_a_linear_code() {
    let message = pytorch::load(&fixture("conv.safetensors"), Some(CodeActivation::Linear), &device()).unwrap_err().to_string();
    assert!(message.contains("conv model's code always has the seed's ReLU"), "{message}");
}

// --- fuzz: no panic, allocation bounded by the input ----------------------------------------------

/// The largest single allocation the current thread asks for (as in tests/fuzz.rs): a case shows
/// that nothing it made was sized by a field the reader had not checked against the input.
struct PeakAllocation;

thread_local! {
    static PEAK: Cell<usize> = const { Cell::new(0) };
    static FUZZING: Cell<bool> = const { Cell::new(false) };
}

/// Panics inside a fuzz case are counted, not printed; other tests' panics print as usual.
fn quiet_panics_while_fuzzing() {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        let default = panic::take_hook();
        panic::set_hook(Box::new(move |info| {
            if !FUZZING.with(Cell::get) {
                default(info);
            }
        }));
    });
}

unsafe impl GlobalAlloc for PeakAllocation {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let _ = PEAK.try_with(|p| p.set(p.get().max(layout.size())));
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let _ = PEAK.try_with(|p| p.set(p.get().max(layout.size())));
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let _ = PEAK.try_with(|p| p.set(p.get().max(new_size)));
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: PeakAllocation = PeakAllocation;

fn pick<'a, T>(rng: &mut SplitMix64, items: &'a [T]) -> &'a T {
    &items[rng.below(items.len())]
}

/// A header field's new value: edges of lengths and counts, wrong types.
fn odd_value(rng: &mut SplitMix64, near: u64) -> Value {
    let values = [
        json!(0),
        json!(1),
        json!(3),
        json!(near),
        json!(near + 1),
        json!(near.saturating_sub(1)),
        json!(near * 2),
        json!(u32::MAX),
        json!(u64::MAX),
        json!(1u64 << 62),
        json!(-1),
        json!(1.5),
        json!("12"),
        json!(null),
        json!([]),
    ];
    pick(rng, &values).clone()
}

/// One to three changes to a header: a tensor's dtype, shape, offsets or name, an entry removed
/// or copied, the metadata changed.
fn mutate_header(rng: &mut SplitMix64, header: &mut Value) -> String {
    let mut done = Vec::new();
    for _ in 0..1 + rng.below(3) {
        let object = header.as_object_mut().unwrap();
        let names: Vec<String> = object.keys().filter(|k| *k != "__metadata__").cloned().collect();
        if names.is_empty() {
            break;
        }
        let name = pick(rng, &names).clone();
        match rng.below(9) {
            0 => {
                let dtype = *pick(rng, &["F16", "BF16", "F64", "I32", "U8", "BOOL", "f32", ""]);
                object[&name]["dtype"] = json!(dtype);
                done.push(format!("{name} dtype {dtype}"));
            }
            1 | 2 => {
                let shape = object[&name]["shape"].as_array_mut().unwrap();
                match rng.below(4) {
                    0 => shape.push(json!(1 + rng.below(3))),
                    1 => drop(shape.pop()),
                    _ if !shape.is_empty() => {
                        let i = rng.below(shape.len());
                        let near = shape[i].as_u64().unwrap_or(1);
                        shape[i] = odd_value(rng, near);
                    }
                    _ => {}
                }
                done.push(format!("{name} shape"));
            }
            3 | 4 => {
                let i = rng.below(2);
                let near = object[&name]["data_offsets"][i].as_u64().unwrap_or(0);
                object[&name]["data_offsets"][i] = odd_value(rng, near);
                done.push(format!("{name} offset {i}"));
            }
            5 => {
                object.remove(&name);
                done.push(format!("{name} removed"));
            }
            6 => {
                let copy = object[&name].clone();
                let new = pick(rng, &["encoder.8.weight", "decoder.1.bias", "0.weight", "x", "encoder.0.weight"]).to_string();
                object.insert(new.clone(), copy);
                done.push(format!("{name} copied to {new}"));
            }
            7 => {
                let entry = object.remove(&name).unwrap();
                let new = name.replace("encoder", "decoder").replace("weight", "bias");
                object.insert(new.clone(), entry);
                done.push(format!("{name} renamed {new}"));
            }
            _ => {
                let value =
                    pick(rng, &[json!({"code_activation": "relu"}), json!({"code_activation": "tanh"}), json!({"x": 1}), json!(7)]).clone();
                object.insert("__metadata__".into(), value);
                done.push("metadata".into());
            }
        }
    }
    done.join(", ")
}

/// One to three byte-level changes: truncation, flipped bits, the length field set to an edge,
/// bytes inserted, deleted or appended.
fn mutate_bytes(rng: &mut SplitMix64, bytes: &mut Vec<u8>) -> String {
    let mut done = Vec::new();
    for _ in 0..1 + rng.below(3) {
        let len = bytes.len().max(1);
        match rng.below(6) {
            0 => {
                let cut = rng.below(len);
                bytes.truncate(cut);
                done.push(format!("truncate@{cut}"));
            }
            1 if !bytes.is_empty() => {
                let i = rng.below(bytes.len());
                bytes[i] ^= 1 << rng.below(8);
                done.push(format!("flip@{i}"));
            }
            2 if bytes.len() >= 8 => {
                let near = u64::from_le_bytes(bytes[..8].try_into().unwrap());
                let value = *pick(rng, &[0, 1, near + 1, near - 1, near * 2, u64::MAX, 1 << 32, 64 * 1024 + 1, bytes.len() as u64]);
                bytes[..8].copy_from_slice(&value.to_le_bytes());
                done.push(format!("length={value}"));
            }
            3 => {
                let i = rng.below(len).min(bytes.len());
                let junk: Vec<u8> = (0..1 + rng.below(32)).map(|_| rng.next_u64() as u8).collect();
                bytes.splice(i..i, junk);
                done.push(format!("insert@{i}"));
            }
            4 if !bytes.is_empty() => {
                let i = rng.below(bytes.len());
                let n = 1 + rng.below((bytes.len() - i).min(64));
                bytes.drain(i..i + n);
                done.push(format!("delete {n}@{i}"));
            }
            _ => {
                let junk: Vec<u8> = (0..1 + rng.below(64)).map(|_| rng.next_u64() as u8).collect();
                bytes.extend_from_slice(&junk);
                done.push("append".into());
            }
        }
    }
    done.join(", ")
}

/// What loading one input gave: loaded (and the model keeps the file's promises), refused, or a
/// broken promise.
fn check_one(file: &[u8]) -> Result<bool, String> {
    let Ok(imported) = pytorch::load(file, None, &device()) else { return Ok(false) };
    let numbers: usize = pytorch::read(file).unwrap().tensors.iter().map(|t| t.values.len()).sum();
    if imported.model.num_params() != numbers {
        return Err(format!("a model of {} parameters from {numbers} numbers", imported.model.num_params()));
    }
    let out = imported.model.decode(Tensor::<2>::zeros([1, imported.model.latent_size()], &device()));
    if out.dims() != [1, 28, 28] {
        return Err(format!("decoding gave {:?}", out.dims()));
    }
    Ok(true)
}

/// FUZZ_CASES (default 4,000) inputs from the two fixtures and a relu-coded export, each mutated
/// in its header, its bytes or both, drawn from FUZZ_SEED; FUZZ_CASE replays one.
#[test]
fn fuzz_the_safetensors_reader() {
    let number = |name: &str| std::env::var(name).ok().map(|v| v.parse::<u64>().expect("a whole number"));
    let seed = number("FUZZ_SEED").unwrap_or(0x5eed);
    let cases = number("FUZZ_CASES").unwrap_or(4_000);
    let seeds = [
        fixture("dense.safetensors"),
        fixture("conv.safetensors"),
        pytorch::save(&ModelKind::Dense.init_with(Some(7), CodeActivation::Relu, &device()).unwrap()).unwrap(),
    ];
    // Burn's first use of a device sets up its pools; that is not the reader's allocation.
    for file in &seeds {
        assert_eq!(check_one(file), Ok(true));
    }
    quiet_panics_while_fuzzing();
    let (mut valid, mut refused, mut failures) = (0, 0, Vec::new());
    let indices: Vec<u64> = match number("FUZZ_CASE") {
        Some(i) => vec![i],
        None => (0..cases).collect(),
    };
    for &index in &indices {
        let mut rng = SplitMix64::new(seed ^ 0x0070_7974_6f72_6368 ^ index.wrapping_mul(0x9e37_79b9_7f4a_7c15));
        let mut file = pick(&mut rng, &seeds).clone();
        let recipe = match rng.below(4) {
            0 | 1 => {
                let (mut header, data) = header_and_data(&file);
                let done = mutate_header(&mut rng, &mut header);
                file = forge(&header, None, &data);
                done
            }
            2 => mutate_bytes(&mut rng, &mut file),
            _ => {
                let (mut header, data) = header_and_data(&file);
                let first = mutate_header(&mut rng, &mut header);
                file = forge(&header, None, &data);
                format!("{first}, {}", mutate_bytes(&mut rng, &mut file))
            }
        };
        let limit = 3 * file.len() + (4 << 20);
        PEAK.with(|p| p.set(0));
        FUZZING.with(|f| f.set(true));
        let outcome = panic::catch_unwind(AssertUnwindSafe(|| check_one(&file)));
        FUZZING.with(|f| f.set(false));
        let peak = PEAK.with(Cell::get);
        let fault = match outcome {
            Ok(Ok(true)) => {
                valid += 1;
                None
            }
            Ok(Ok(false)) => {
                refused += 1;
                None
            }
            Ok(Err(why)) => Some(why),
            Err(_) => Some("panicked".into()),
        };
        let fault = fault.or_else(|| (peak > limit).then(|| format!("one allocation of {peak} bytes, over {limit}")));
        if let Some(fault) = fault {
            failures.push(format!("  FUZZ_SEED={seed} FUZZ_CASE={index} [{recipe}]: {fault}"));
        }
    }
    println!("fuzz safetensors: {} cases (FUZZ_SEED={seed}): {valid} loaded, {refused} refused, {} failed", indices.len(), failures.len());
    assert!(failures.is_empty(), "{} inputs failed; the first:\n{}", failures.len(), failures[..failures.len().min(8)].join("\n"));
    if indices.len() > 1 {
        assert!(valid > 0 && refused > 0, "{valid} loaded and {refused} refused: the inputs do not reach both outcomes");
    }
}
