//! PyTorch's door: the study's models as a PyTorch `state_dict` in safetensors, read and written.
//!
//! safetensors is the field's common weight format (PyTorch, JAX, Hugging Face): an 8-byte
//! little-endian header length, a JSON header naming each tensor's dtype, shape and byte range,
//! then the tensors' bytes, row-major, little-endian. The study's models in PyTorch are an
//! `encoder` and a `decoder`, each an `nn.Sequential` (tools/pytorch_interop.py), so a state_dict
//! reads `encoder.0.weight`, `encoder.0.bias`, `encoder.2.weight`, ... (ReLUs and the Sigmoid hold
//! no tensors). One flat `nn.Sequential` (`0.weight`, `3.weight`, ..., as
//! tools/pytorch_reference.py builds it) is read too: in either spelling the layers' order and
//! their shapes leave no doubt about which of our layers each tensor is.
//!
//! Layouts: PyTorch's `Linear` weight is `[out, in]` and burn's `[in, out]`, so those are
//! transposed both ways. `Conv2d` (`[out, in, kh, kw]`) and `ConvTranspose2d`
//! (`[in, out, kh, kw]`) have the same layout in both (burn-nn 0.22's conv2d.rs and
//! conv_transpose2d.rs), and burn's transposed convolution is PyTorch's arithmetic, so those are
//! copied as they are.
//!
//! The parser is written here rather than taken from the `safetensors` crate: the checks a file
//! from anyone needs are a page of code (below), and this way each refusal names the tensor at
//! fault in the lab's words, and nothing is allocated from a length before that length is
//! checked against the bytes present.
//!
//! # Files from anyone
//!
//! [`read`] checks, in this order, before any tensor's values are copied: the file's size (at most
//! [`MAX_FILE_BYTES`]); the header's length (at most [`MAX_HEADER_BYTES`], and no more than the
//! bytes after it); that the header is a JSON object; for each tensor, that its dtype is F32, its
//! shape has at most [`MAX_DIMS`] whole numbers whose product times 4 does not overflow, and its
//! byte range is exactly that long and inside the data; then that the ranges tile the data with
//! no overlap, gap or trailing bytes (as the format requires). [`load`] then matches names and
//! shapes to a model built lazily (no weight allocated) and refuses the first tensor that does not
//! fit: one named as no layer of the study's modules, a missing or extra one, a wrong shape.
//! Weight values themselves are not checked, as with the lab's own model files: any f32 is a
//! number a model could hold.
//!
//! The rooms: `safetensors` the format (bytes <-> named f32 tensors), this module the study's
//! models in it (names and shapes <-> the lab's layers).

mod safetensors;

use std::collections::BTreeMap;

use burn::module::{ModuleMapper, ModuleVisitor, Param};
use burn::prelude::*;

use crate::model::{Autoencoder, CodeActivation, MAX_LATENT, ModelKind};
use safetensors::tensor_fault;
pub use safetensors::{MAX_DIMS, MAX_FILE_BYTES, MAX_HEADER_BYTES, NamedTensor, PytorchError, Safetensors, is_safetensors, read, write};

/// How the tensors of a state_dict are named.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Spelling {
    /// `encoder.N.weight`, `decoder.N.bias`: the study's encoder and decoder modules, as
    /// [`save`] writes them.
    EncoderDecoder,
    /// `N.weight`: one flat `nn.Sequential` (tools/pytorch_reference.py).
    Flat,
}

/// Where a loaded model's code activation came from (a state_dict cannot show it: a ReLU holds
/// no tensor).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CodeSource {
    /// The caller named it.
    Asked,
    /// The file's metadata (`code_activation`, which [`save`] writes).
    File,
    /// Neither: the model kind's default (linear for dense, the conv model's only ReLU).
    Default,
}

/// A model read from a PyTorch state_dict, and what the file could and could not say.
#[derive(Debug)]
pub struct Imported {
    pub model: Autoencoder,
    pub spelling: Spelling,
    pub code_activation: CodeActivation,
    pub code_source: CodeSource,
}

impl Imported {
    /// One line for a person: what was read, and the code activation where the file could not
    /// say it.
    pub fn describe(&self) -> String {
        let kind = self.model.kind();
        let spelling = match self.spelling {
            Spelling::EncoderDecoder => "encoder/decoder",
            Spelling::Flat => "flat nn.Sequential",
        };
        let read = format!("a PyTorch {kind} model with a {}-number code ({spelling} names)", self.model.latent_size());
        match (kind, self.code_source) {
            (ModelKind::Dense, CodeSource::Default) => format!(
                "{read}; the file cannot say its code activation, so the lab's linear code is assumed \
                 (ask for relu if it was trained with a ReLU on its code, as the seed's text has)"
            ),
            (ModelKind::Dense, CodeSource::File) => format!("{read}, {} code (from the file's metadata)", self.code_activation),
            (ModelKind::Dense, CodeSource::Asked) => format!("{read}, {} code", self.code_activation),
            (ModelKind::Conv, _) => read,
        }
    }
}

/// Which module of the study's a tensor belongs to, from its name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Part {
    Encoder,
    Decoder,
    /// Both halves in one `nn.Sequential`.
    Whole,
}

/// `encoder.4.weight` -> (Encoder, 4, true); `3.bias` -> (Whole, 3, false).
fn parse_name(name: &str) -> Option<(Part, usize, bool)> {
    let (layer, field) = name.rsplit_once('.')?;
    let is_weight = match field {
        "weight" => true,
        "bias" => false,
        _ => return None,
    };
    let (part, index) = match layer.split_once('.') {
        Some(("encoder", index)) => (Part::Encoder, index),
        Some(("decoder", index)) => (Part::Decoder, index),
        Some(_) => return None,
        None => (Part::Whole, layer),
    };
    if index.is_empty() || !index.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((part, index.parse().ok()?, is_weight))
}

/// The name [`save`] gives parameter `layer` (counted over the whole model) of a model with
/// `layers` layers: even indices, since each layer is followed by its activation.
fn natural_name(layer: usize, layers: usize, is_weight: bool) -> String {
    let half = layers / 2;
    let (part, index) = if layer < half { ("encoder", layer) } else { ("decoder", layer - half) };
    format!("{part}.{}.{}", 2 * index, if is_weight { "weight" } else { "bias" })
}

/// Loads a PyTorch state_dict of the study's dense or conv model from safetensors bytes onto
/// `device`. The kind and code size come from the tensors' names and shapes; `code` is the dense
/// model's code activation, which no tensor shows: `None` takes the file's metadata where [`save`]
/// wrote it, else the kind's default (linear for dense), and [`Imported::describe`] says which.
pub fn load(bytes: &[u8], code: Option<CodeActivation>, device: &Device) -> Result<Imported, PytorchError> {
    from_safetensors(read(bytes)?, code, device)
}

/// [`load`] from tensors already read.
pub fn from_safetensors(file: Safetensors, code: Option<CodeActivation>, device: &Device) -> Result<Imported, PytorchError> {
    let mut named = Vec::with_capacity(file.tensors.len());
    for tensor in &file.tensors {
        let (part, index, is_weight) = parse_name(&tensor.name).ok_or_else(|| {
            tensor_fault(
                &tensor.name,
                "is not a weight or bias of the study's modules (their names read encoder.N.weight, \
                 decoder.N.bias, or N.weight in one flat nn.Sequential)",
            )
        })?;
        named.push((part, index, is_weight, tensor));
    }
    // In layer order: encoder before decoder, then by index; weight before bias, as burn visits.
    named.sort_by_key(|&(part, index, is_weight, _)| (part, index, !is_weight));
    let Some(&(first_part, ..)) = named.first() else {
        return Err(PytorchError::Model("the safetensors file holds no tensors".into()));
    };
    let spelling = if first_part == Part::Whole { Spelling::Flat } else { Spelling::EncoderDecoder };
    if let Some(&(.., tensor)) = named.iter().find(|&&(part, ..)| (part == Part::Whole) != (spelling == Spelling::Flat)) {
        return Err(tensor_fault(&tensor.name, "mixes a flat nn.Sequential's names with encoder/decoder ones"));
    }

    // Each layer as (part, index, weight, bias).
    let mut layers: Vec<(Part, usize, Option<&NamedTensor>, Option<&NamedTensor>)> = Vec::new();
    for &(part, index, is_weight, tensor) in &named {
        if layers.last().is_none_or(|&(p, i, ..)| (p, i) != (part, index)) {
            layers.push((part, index, None, None));
        }
        let layer = layers.last_mut().expect("pushed above");
        let slot = if is_weight { &mut layer.2 } else { &mut layer.3 };
        if slot.is_some() {
            return Err(tensor_fault(&tensor.name, "appears twice"));
        }
        *slot = Some(tensor);
    }
    let mut pairs = Vec::with_capacity(layers.len());
    for &(part, index, weight, bias) in &layers {
        let name = |field: &str| match part {
            Part::Encoder => format!("encoder.{index}.{field}"),
            Part::Decoder => format!("decoder.{index}.{field}"),
            Part::Whole => format!("{index}.{field}"),
        };
        match (weight, bias) {
            (Some(w), Some(b)) => pairs.push((w, b)),
            (Some(_), None) => return Err(tensor_fault(&name("bias"), "is missing (its layer's weight is there)")),
            (None, _) => return Err(tensor_fault(&name("weight"), "is missing (its layer's bias is there)")),
        }
    }

    let first = pairs[0].0;
    let kind = match first.shape.len() {
        2 => ModelKind::Dense,
        4 => ModelKind::Conv,
        _ => {
            return Err(tensor_fault(
                &first.name,
                format!("is {:?}: neither a Linear weight (2 dimensions) nor a convolution's (4)", first.shape),
            ));
        }
    };
    let per_half = match kind {
        ModelKind::Dense => 4,
        ModelKind::Conv => 3,
    };
    let in_encoder = layers.iter().filter(|l| l.0 == Part::Encoder).count();
    let in_decoder = layers.iter().filter(|l| l.0 == Part::Decoder).count();
    let counts_fit = match spelling {
        Spelling::EncoderDecoder => in_encoder == per_half && in_decoder == per_half,
        Spelling::Flat => layers.len() == 2 * per_half,
    };
    if !counts_fit {
        let found = match spelling {
            Spelling::EncoderDecoder => format!("{in_encoder} encoder and {in_decoder} decoder layers"),
            Spelling::Flat => format!("{} layers", layers.len()),
        };
        return Err(PytorchError::Model(format!(
            "the file holds {found}, but the study's {kind} model has {per_half} in its encoder and {per_half} in its decoder"
        )));
    }

    // The code layer's outputs: PyTorch's Linear [out, in], Conv2d [out, in, kh, kw].
    let code_layer = pairs[per_half - 1].0;
    let latent = code_layer.shape.first().copied().unwrap_or(0);
    if latent == 0 || latent > MAX_LATENT {
        return Err(tensor_fault(
            &code_layer.name,
            format!("is {:?}, a {latent}-number code; the lab's models have 1 to {MAX_LATENT}", code_layer.shape),
        ));
    }

    let (code, code_source) = match (code, file.metadata.get("code_activation")) {
        (Some(code), _) => (code, CodeSource::Asked),
        (None, Some(named)) => (named.parse().map_err(|e| PytorchError::Model(format!("the file's metadata: {e}")))?, CodeSource::File),
        (None, None) => (kind.default_code_activation(), CodeSource::Default),
    };
    // Lazy: the layers know their shapes, but no weight is allocated until the file's land.
    let model = kind.init_with(Some(latent), code, device).map_err(PytorchError::Model)?;

    let mut shapes = Shapes(Vec::new());
    model.visit(&mut shapes);
    let layer_count = 2 * per_half;
    assert_eq!(shapes.0.len(), 2 * layer_count, "the study's models have a weight and a bias per layer");
    let mut values = Vec::with_capacity(shapes.0.len());
    for (i, ours) in shapes.0.iter().enumerate() {
        let (layer, is_weight) = (i / 2, i % 2 == 0);
        let tensor = if is_weight { pairs[layer].0 } else { pairs[layer].1 };
        let weight_shape = shapes.0[2 * layer].as_slice();
        let expected = pytorch_shape(ours);
        if tensor.shape != expected {
            let role = pytorch_layer(kind, layer, layer_count, weight_shape);
            let role = if is_weight { role } else { format!("the bias of {role}") };
            return Err(tensor_fault(
                &tensor.name,
                format!("is {:?}, but the {kind} model with a {latent}-number code needs {expected:?} here ({role})", tensor.shape),
            ));
        }
        values.push((ours.clone(), to_burn_layout(&tensor.values, ours)));
    }

    let mut fill = Fill { values: values.into_iter(), device: device.clone() };
    let model = model.map(&mut fill);
    Ok(Imported { model, spelling, code_activation: code, code_source })
}

/// Each parameter's shape in burn's layout, in the order burn visits them, without allocating a
/// lazy one.
struct Shapes(Vec<Vec<usize>>);

impl ModuleVisitor for Shapes {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        self.0.push(param.lazy_shape().to_vec());
    }
}

/// Replaces each parameter, in visiting order, with the file's values, keeping its id, device and
/// whether it trains (as burn's own record loading does).
struct Fill {
    values: std::vec::IntoIter<(Vec<usize>, Vec<f32>)>,
    device: Device,
}

impl ModuleMapper for Fill {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let (shape, values) = self.values.next().expect("one value per parameter, counted when the shapes were checked");
        let tensor = Tensor::<D>::from_data(TensorData::new(values, shape), &self.device);
        let id = param.id;
        param.transform_for_load(tensor, id)
    }
}

/// burn's shape for a parameter -> PyTorch's: a Linear weight `[in, out]` becomes `[out, in]`;
/// everything else is the same.
fn pytorch_shape(burn_shape: &[usize]) -> Vec<usize> {
    match burn_shape {
        &[inputs, outputs] => vec![outputs, inputs],
        other => other.to_vec(),
    }
}

/// A matrix `[rows, cols]`, row-major, transposed.
fn transpose(values: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    let mut out = vec![0.0; values.len()];
    for r in 0..rows {
        for c in 0..cols {
            out[c * rows + r] = values[r * cols + c];
        }
    }
    out
}

/// PyTorch's values of a parameter whose burn shape is `burn_shape`, in burn's layout.
fn to_burn_layout(values: &[f32], burn_shape: &[usize]) -> Vec<f32> {
    match burn_shape {
        // PyTorch's [out, in] -> burn's [in, out].
        &[inputs, outputs] => transpose(values, outputs, inputs),
        _ => values.to_vec(),
    }
}

/// How PyTorch builds layer `layer` (of `layers`) of a `kind` model whose weight is `burn_shape`
/// in burn's layout, for messages.
fn pytorch_layer(kind: ModelKind, layer: usize, layers: usize, burn_shape: &[usize]) -> String {
    match (kind, burn_shape) {
        (_, &[inputs, outputs]) => format!("Linear({inputs}, {outputs})"),
        (ModelKind::Conv, &[a, b, k, _]) if layer < layers / 2 => format!("Conv2d({b}, {a}, {k})"),
        (ModelKind::Conv, &[a, b, k, _]) => format!("ConvTranspose2d({a}, {b}, {k})"),
        _ => format!("a layer of shape {burn_shape:?}"),
    }
}

/// `model`'s parameters as a PyTorch state_dict of the study's encoder and decoder modules: names
/// `encoder.0.weight` ..., Linear weights transposed to PyTorch's `[out, in]`.
///
/// Reads each parameter back synchronously; on a WebGPU device in the page, copy the model to the
/// CPU first (as the page does before writing its own model file).
pub fn state_dict(model: &Autoencoder) -> Result<Vec<NamedTensor>, PytorchError> {
    let mut params = Values(Vec::new());
    model.visit(&mut params);
    let layers = params.0.len() / 2;
    params
        .0
        .into_iter()
        .enumerate()
        .map(|(i, data)| {
            let name = natural_name(i / 2, layers, i % 2 == 0);
            let shape = data.shape().to_vec();
            let values = data.try_into_vec::<f32>().map_err(|e| PytorchError::Model(format!("{name} could not be read as f32: {e:?}")))?;
            let values = match shape.as_slice() {
                // burn's [in, out] -> PyTorch's [out, in].
                &[inputs, outputs] => transpose(&values, inputs, outputs),
                _ => values,
            };
            Ok(NamedTensor { name, shape: pytorch_shape(&shape), values })
        })
        .collect()
}

/// Each parameter's values (and burn shape), in visiting order.
struct Values(Vec<TensorData>);

impl ModuleVisitor for Values {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        self.0.push(param.val().into_data());
    }
}

/// `model` as a safetensors file a PyTorch user loads with
/// `module.load_state_dict(safetensors.torch.load_file(path), strict=True)` into the study's
/// modules (tools/pytorch_interop.py). The metadata names the model, its code size and its code
/// activation, which [`load`] reads back.
pub fn save(model: &Autoencoder) -> Result<Vec<u8>, PytorchError> {
    let tensors = state_dict(model)?;
    let metadata = BTreeMap::from([
        ("format".to_string(), "pt".to_string()),
        ("model".to_string(), model.kind().name().to_string()),
        ("latent".to_string(), model.latent_size().to_string()),
        ("code_activation".to_string(), model.code_activation().name().to_string()),
    ]);
    Ok(write(&tensors, &metadata))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_parsed_in_both_spellings_and_nothing_else() {
        assert_eq!(parse_name("encoder.4.weight"), Some((Part::Encoder, 4, true)));
        assert_eq!(parse_name("decoder.10.bias"), Some((Part::Decoder, 10, false)));
        assert_eq!(parse_name("7.weight"), Some((Part::Whole, 7, true)));
        for bad in ["encoder.weight", "encoder.+1.weight", "model.encoder.0.weight", "encoder.0.running_mean", "0", ""] {
            assert_eq!(parse_name(bad), None, "{bad}");
        }
    }

    #[test]
    fn transposing_twice_is_the_identity() {
        let values: Vec<f32> = (0..6).map(|v| v as f32).collect();
        let t = transpose(&values, 2, 3);
        assert_eq!(t, [0.0, 3.0, 1.0, 4.0, 2.0, 5.0]);
        assert_eq!(transpose(&t, 3, 2), values);
    }

    #[test]
    fn natural_names_skip_the_activations() {
        let names: Vec<String> = (0..8).map(|l| natural_name(l, 8, true)).collect();
        assert_eq!(names[..4], ["encoder.0.weight", "encoder.2.weight", "encoder.4.weight", "encoder.6.weight"]);
        assert_eq!(names[4..], ["decoder.0.weight", "decoder.2.weight", "decoder.4.weight", "decoder.6.weight"]);
        assert_eq!(natural_name(5, 6, false), "decoder.4.bias");
    }
}
