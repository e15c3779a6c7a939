//! The safetensors format itself, read with every check a file from anyone needs (the parent
//! module's doc lists them, in order) and written as the `safetensors` package writes it.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

/// The same bound as the lab's own model files: the largest model here is under 1 MB of f32s.
pub const MAX_FILE_BYTES: usize = 64 * 1024 * 1024;
/// A header of the study's models is about 1.3 KB (16 tensors); 64 KiB is ample, and small
/// enough that parsing any header as JSON allocates a bounded amount.
pub const MAX_HEADER_BYTES: usize = 64 * 1024;
/// The models here have tensors of 1, 2 or 4 dimensions; more is refused before its shape is kept.
pub const MAX_DIMS: usize = 8;

/// One f32 tensor of a safetensors file, row-major, as PyTorch lays it out.
#[derive(Debug, Clone, PartialEq)]
pub struct NamedTensor {
    pub name: String,
    pub shape: Vec<usize>,
    pub values: Vec<f32>,
}

/// A safetensors file's tensors (in the order of their bytes) and its string metadata.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Safetensors {
    pub tensors: Vec<NamedTensor>,
    pub metadata: BTreeMap<String, String>,
}

impl Safetensors {
    pub fn get(&self, name: &str) -> Option<&NamedTensor> {
        self.tensors.iter().find(|t| t.name == name)
    }
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PytorchError {
    #[error("the safetensors file is {0} bytes, more than the {MAX_FILE_BYTES} any model here needs")]
    TooLarge(usize),
    #[error("not a readable safetensors file: {0}")]
    Header(String),
    #[error("tensor {name:?} {reason}")]
    Tensor { name: String, reason: String },
    #[error("{0}")]
    Model(String),
}

pub(super) fn tensor_fault(name: &str, reason: impl Into<String>) -> PytorchError {
    PytorchError::Tensor { name: name.to_string(), reason: reason.into() }
}

/// Whether `bytes` look like a safetensors file (a header length that fits, then a JSON object),
/// to tell one from the lab's own model file (which starts `AELAB`) before reading either.
pub fn is_safetensors(bytes: &[u8]) -> bool {
    let Some(length) = bytes.get(..8) else { return false };
    let length = u64::from_le_bytes(length.try_into().expect("8 bytes"));
    length >= 2 && length <= (bytes.len() - 8) as u64 && bytes[8] == b'{'
}

/// Reads every tensor of a safetensors file; the module doc lists what is checked, and in which
/// order. Only F32 tensors are accepted (the models here hold nothing else).
pub fn read(bytes: &[u8]) -> Result<Safetensors, PytorchError> {
    if bytes.len() > MAX_FILE_BYTES {
        return Err(PytorchError::TooLarge(bytes.len()));
    }
    let length = bytes.get(..8).ok_or_else(|| PytorchError::Header(format!("{} bytes is shorter than a header's length", bytes.len())))?;
    let length = u64::from_le_bytes(length.try_into().expect("8 bytes"));
    let rest = &bytes[8..];
    if length > MAX_HEADER_BYTES as u64 {
        return Err(PytorchError::Header(format!("its header length {length} is not plausible (a model's header is a few KB)")));
    }
    let length = length as usize;
    if length > rest.len() {
        return Err(PytorchError::Header(format!(
            "its header length is {length} bytes but only {} follow it (the file is truncated)",
            rest.len()
        )));
    }
    let (header, data) = rest.split_at(length);
    let header: Value = serde_json::from_slice(header).map_err(|e| PytorchError::Header(format!("its header is not JSON ({e})")))?;
    let Value::Object(entries) = header else {
        return Err(PytorchError::Header("its header is not a JSON object".into()));
    };

    let mut metadata = BTreeMap::new();
    // (name, shape, start, end) of each tensor, checked one by one before any is copied.
    let mut spans: Vec<(String, Vec<usize>, usize, usize)> = Vec::with_capacity(entries.len());
    for (name, entry) in &entries {
        if name == "__metadata__" {
            let fields = entry.as_object().ok_or_else(|| PytorchError::Header("its __metadata__ is not a JSON object".into()))?;
            for (key, value) in fields {
                let value = value.as_str().ok_or_else(|| PytorchError::Header(format!("its __metadata__ {key:?} is not a string")))?;
                metadata.insert(key.clone(), value.to_string());
            }
            continue;
        }
        spans.push(check_entry(name, entry, data.len())?);
    }

    // The format requires the byte ranges to cover the data exactly, in any order: no overlap,
    // which would let two tensors share bytes, and nothing unaccounted for.
    spans.sort_by_key(|&(_, _, start, end)| (start, end));
    let mut covered = 0;
    let mut previous: Option<&str> = None;
    for (name, _, start, end) in &spans {
        if *start < covered {
            let other = previous.unwrap_or_default();
            return Err(tensor_fault(name, format!("overlaps tensor {other:?} (its data_offsets start at {start}, inside the other's)")));
        }
        if *start > covered {
            return Err(tensor_fault(name, format!("leaves bytes {covered}..{start} of the data unused before it")));
        }
        covered = *end;
        previous = Some(name);
    }
    if covered != data.len() {
        return Err(PytorchError::Header(format!(
            "{} bytes of data follow the last tensor (the header covers {covered} of {})",
            data.len() - covered,
            data.len()
        )));
    }

    let tensors = spans
        .into_iter()
        .map(|(name, shape, start, end)| {
            let values = data[start..end].chunks_exact(4).map(|b| f32::from_le_bytes(b.try_into().expect("4 bytes"))).collect();
            NamedTensor { name, shape, values }
        })
        .collect();
    Ok(Safetensors { tensors, metadata })
}

/// One header entry: an F32 tensor whose shape and byte range agree and lie inside `data_len`.
fn check_entry(name: &str, entry: &Value, data_len: usize) -> Result<(String, Vec<usize>, usize, usize), PytorchError> {
    let fault = |reason: String| tensor_fault(name, reason);
    let entry = entry.as_object().ok_or_else(|| fault("is not a JSON object of dtype, shape and data_offsets".into()))?;
    let dtype = entry.get("dtype").and_then(Value::as_str).ok_or_else(|| fault("has no dtype".into()))?;
    if dtype != "F32" {
        return Err(fault(format!("is {dtype}; only F32 tensors can be read (in PyTorch, save model.float().state_dict())")));
    }
    let shape = entry.get("shape").and_then(Value::as_array).ok_or_else(|| fault("has no shape".into()))?;
    if shape.len() > MAX_DIMS {
        return Err(fault(format!("has {} dimensions; the models here have at most 4", shape.len())));
    }
    let shape: Vec<usize> = shape
        .iter()
        .map(|d| d.as_u64().and_then(|d| usize::try_from(d).ok()))
        .collect::<Option<_>>()
        .ok_or_else(|| fault("has a shape that is not a list of whole numbers".into()))?;
    let bytes = shape
        .iter()
        .try_fold(size_of::<f32>(), |n, &d| n.checked_mul(d))
        .ok_or_else(|| fault(format!("has shape {shape:?}, too large for any file")))?;
    let offsets = entry.get("data_offsets").and_then(Value::as_array).ok_or_else(|| fault("has no data_offsets".into()))?;
    let [start, end] = offsets
        .iter()
        .map(|o| o.as_u64().and_then(|o| usize::try_from(o).ok()))
        .collect::<Option<Vec<_>>>()
        .and_then(|o| <[usize; 2]>::try_from(o).ok())
        .ok_or_else(|| fault("has data_offsets that are not two whole numbers".into()))?;
    if end < start || end - start != bytes {
        return Err(fault(format!("is {shape:?} F32, {bytes} bytes, but its data_offsets [{start}, {end}] say otherwise")));
    }
    if end > data_len {
        return Err(fault(format!("lies at bytes {start}..{end} of the data, but the file has only {data_len} (it is truncated)")));
    }
    Ok((name.to_string(), shape, start, end))
}

/// Writes `tensors` as a safetensors file, in the given order, with `metadata` in the header.
/// The header is padded with spaces to a multiple of 8 bytes, as the `safetensors` package does,
/// so a reader that maps the file finds each f32 aligned.
pub fn write(tensors: &[NamedTensor], metadata: &BTreeMap<String, String>) -> Vec<u8> {
    let mut header = Map::new();
    if !metadata.is_empty() {
        let fields = metadata.iter().map(|(k, v)| (k.clone(), Value::String(v.clone()))).collect();
        header.insert("__metadata__".into(), Value::Object(fields));
    }
    let mut offset = 0;
    for tensor in tensors {
        let end = offset + tensor.values.len() * size_of::<f32>();
        let entry = serde_json::json!({ "dtype": "F32", "shape": tensor.shape, "data_offsets": [offset, end] });
        header.insert(tensor.name.clone(), entry);
        offset = end;
    }
    let mut header = serde_json::to_vec(&Value::Object(header)).expect("a map of strings and numbers serializes");
    header.resize(header.len().next_multiple_of(8), b' ');
    let mut out = Vec::with_capacity(8 + header.len() + offset);
    out.extend_from_slice(&(header.len() as u64).to_le_bytes());
    out.extend_from_slice(&header);
    for tensor in tensors {
        out.extend(tensor.values.iter().flat_map(|v| v.to_le_bytes()));
    }
    out
}
