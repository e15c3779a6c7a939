//! Every parser that takes outside bytes, fed malformed input: model files, MNIST IDX files (raw
//! and gzip), page chunks, and drawings. Each input must end in a typed error or a value that
//! keeps the parser's promises; no panic, no allocation far beyond what the input paid for, no
//! slow case.
//!
//! Inputs are valid files mutated (truncated, bits flipped, length fields grown, headers swapped,
//! two files spliced, a model record rebuilt with a wrong dtype or shape...) or made from nothing,
//! all drawn from a seeded SplitMix64, so a run is the same everywhere and any case replays alone:
//!
//!     FUZZ_CASES=200000 cargo test --release --test fuzz -- --nocapture   (cases per parser)
//!     FUZZ_SEED=7 FUZZ_CASE=1234 cargo test --release --test fuzz -- --exact model_files --nocapture
//!
//! A failure names the parser, seed, case index and the mutations that made the input.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::{Cell, RefCell};
use std::panic::{self, AssertUnwindSafe};
use std::path::Path;
use std::sync::{Once, OnceLock};
use std::time::{Duration, Instant};

use autoencoder_lab::data::{IMAGE_PIXELS, MAX_IMAGES, MAX_INFLATED_BYTES, MnistSet};
use autoencoder_lab::drawing::mnist_style;
use autoencoder_lab::model::ModelKind;
use autoencoder_lab::model_file::{self, MAX_LATENT, ModelFileError};
use autoencoder_lab::rng::SplitMix64;
use burn::prelude::*;
use burn::tensor::DType;
use serde_json::{Value, json};

/// A case slower than this is a hang in the making: the inputs are at most a few MB, and every
/// parser here is linear in its input.
const SLOW_CASE: Duration = Duration::from_secs(5);

// --- the harness ---------------------------------------------------------------------------------

/// Counts the largest single allocation the current thread asks for, so a case can show that
/// nothing it made was sized by a field the parser had not checked against the input.
struct PeakAllocation;

thread_local! {
    static PEAK: Cell<usize> = const { Cell::new(0) };
    static PANIC_MESSAGE: RefCell<Option<String>> = const { RefCell::new(None) };
    static FUZZING: Cell<bool> = const { Cell::new(false) };
}

fn note_allocation(size: usize) {
    let _ = PEAK.try_with(|peak| peak.set(peak.get().max(size)));
}

unsafe impl GlobalAlloc for PeakAllocation {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note_allocation(layout.size());
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note_allocation(layout.size());
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note_allocation(new_size);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: PeakAllocation = PeakAllocation;

/// Panics inside a fuzz case are recorded, not printed: a broken check can panic on thousands of
/// inputs, and the report lists the first few with their seeds instead.
fn quiet_panics_while_fuzzing() {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        let default = panic::take_hook();
        panic::set_hook(Box::new(move |info| {
            if FUZZING.with(Cell::get) {
                let location = info.location().map(|l| format!(" at {}:{}", l.file(), l.line())).unwrap_or_default();
                let message = info
                    .payload()
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| info.payload().downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "(no message)".into());
                PANIC_MESSAGE.with(|m| *m.borrow_mut() = Some(format!("{message}{location}")));
            } else {
                default(info);
            }
        }));
    });
}

fn env_number(name: &str) -> Option<u64> {
    let value = std::env::var(name).ok()?;
    Some(value.trim().parse().unwrap_or_else(|_| panic!("{name}={value:?} should be a whole number")))
}

/// What a parser made of one input.
enum Outcome {
    /// A value that keeps the parser's promises.
    Valid,
    /// A typed error.
    Refused,
    /// A value that breaks a promise (the message says which).
    Broken(String),
}

/// One generated input: what was done to make it, how many bytes it is, the most one allocation
/// may take while parsing it, and the parse itself.
struct Case<'a> {
    recipe: String,
    allocation_limit: usize,
    parse: Box<dyn FnOnce() -> Outcome + 'a>,
}

/// Runs `cases` inputs from `generate` (each from its own seeded generator), then fails with the
/// first few bad cases if any input panicked, broke a promise, allocated too much or was slow.
fn fuzz<'a>(parser: &str, salt: u64, default_cases: u64, mut generate: impl FnMut(&mut SplitMix64) -> Case<'a>) {
    quiet_panics_while_fuzzing();
    let seed = env_number("FUZZ_SEED").unwrap_or(0x5eed);
    let cases = env_number("FUZZ_CASES").unwrap_or(default_cases);
    let only = env_number("FUZZ_CASE");
    let indices: Box<dyn Iterator<Item = u64>> = match only {
        Some(i) => Box::new(std::iter::once(i)),
        None => Box::new(0..cases),
    };

    let started = Instant::now();
    let (mut tried, mut valid, mut refused) = (0u64, 0u64, 0u64);
    let mut failures: Vec<String> = Vec::new();
    let mut failed = 0u64;
    let mut slowest = (Duration::ZERO, 0u64);
    let mut largest_share = 0f64;
    for index in indices {
        let mut rng = SplitMix64::new(seed ^ salt ^ index.wrapping_mul(0x9e37_79b9_7f4a_7c15));
        let case = generate(&mut rng);
        let recipe = case.recipe;
        let limit = case.allocation_limit;

        PEAK.with(|p| p.set(0));
        FUZZING.with(|f| f.set(true));
        let clock = Instant::now();
        let result = panic::catch_unwind(AssertUnwindSafe(case.parse));
        let elapsed = clock.elapsed();
        FUZZING.with(|f| f.set(false));
        let peak = PEAK.with(Cell::get);

        tried += 1;
        largest_share = largest_share.max(peak as f64 / limit as f64);
        if elapsed > slowest.0 {
            slowest = (elapsed, index);
        }
        let fault = match result {
            Ok(Outcome::Valid) => {
                valid += 1;
                None
            }
            Ok(Outcome::Refused) => {
                refused += 1;
                None
            }
            Ok(Outcome::Broken(why)) => Some(format!("a value that breaks a promise: {why}")),
            Err(_) => Some(format!(
                "panicked: {}",
                PANIC_MESSAGE.with(|m| m.borrow_mut().take()).unwrap_or_else(|| "(no message)".into())
            )),
        };
        let fault = fault
            .or_else(|| (peak > limit).then(|| format!("one allocation of {peak} bytes, more than the {limit} allowed")))
            .or_else(|| (elapsed > SLOW_CASE).then(|| format!("took {elapsed:?}")));
        if let Some(fault) = fault {
            failed += 1;
            if failures.len() < 8 {
                failures.push(format!("  FUZZ_SEED={seed} FUZZ_CASE={index} [{recipe}]: {fault}"));
            }
        }
    }
    let panics = failures.iter().filter(|f| f.contains("panicked")).count();
    println!(
        "fuzz {parser}: {tried} cases (FUZZ_SEED={seed}) in {:.1} s: {valid} Ok, {refused} Err, {failed} failed \
         ({panics} of the first {} panicked); slowest case {:.1} ms (#{}); largest allocation {:.0}% of its limit",
        started.elapsed().as_secs_f64(),
        failures.len(),
        slowest.0.as_secs_f64() * 1e3,
        slowest.1,
        largest_share * 100.0
    );
    assert!(failed == 0, "{parser}: {failed} of {tried} inputs failed; the first:\n{}", failures.join("\n"));
    if only.is_none() {
        // A mutator that only ever makes garbage (or never does) tests nothing deep.
        assert!(valid > 0 && refused > 0, "{parser}: {valid} Ok and {refused} Err; the inputs do not reach both outcomes");
    }
}

// --- byte mutations ------------------------------------------------------------------------------

fn pick<'a, T>(rng: &mut SplitMix64, items: &'a [T]) -> &'a T {
    &items[rng.below(items.len())]
}

fn chance(rng: &mut SplitMix64, one_in: usize) -> bool {
    rng.below(one_in) == 0
}

/// u32 values that sit on the edges of length and count checks.
fn interesting_u32(rng: &mut SplitMix64, len: usize) -> u32 {
    let edges = [
        0,
        1,
        2,
        3,
        27,
        28,
        29,
        255,
        256,
        784,
        MAX_IMAGES as u32,
        MAX_IMAGES as u32 + 1,
        64 * 1024,
        64 * 1024 + 1,
        0x0801,
        0x0803,
        0x7fff_ffff,
        0x8000_0000,
        0xffff_fffe,
        0xffff_ffff,
        len as u32,
        (len as u32).wrapping_add(1),
        (len as u32).wrapping_sub(1),
        (len as u32).wrapping_mul(2),
    ];
    if chance(rng, 4) { rng.next_u64() as u32 } else { *pick(rng, &edges) }
}

fn random_bytes(rng: &mut SplitMix64, len: usize) -> Vec<u8> {
    (0..len).map(|_| rng.next_u64() as u8).collect()
}

/// Applies one to four mutations to `bytes`; `fields` are offsets of length or count fields
/// (`big_endian` says how they are written), `others` are inputs to splice from. Returns what
/// was done.
fn mutate(rng: &mut SplitMix64, bytes: &mut Vec<u8>, fields: &[usize], big_endian: bool, others: &[&[u8]]) -> String {
    let mut done = Vec::new();
    for _ in 0..1 + rng.below(4) {
        let len = bytes.len();
        let at = |rng: &mut SplitMix64| rng.below(len.max(1));
        match rng.below(10) {
            0 => {
                let cut = at(rng);
                bytes.truncate(cut);
                done.push(format!("truncate@{cut}"));
            }
            1 if len > 0 => {
                for _ in 0..1 + rng.below(8) {
                    let i = at(rng);
                    bytes[i] ^= 1 << rng.below(8);
                }
                done.push("flip bits".into());
            }
            2 if len > 0 => {
                let i = at(rng);
                bytes[i] = *pick(rng, &[0, 1, 0x7f, 0x80, 0xfe, 0xff]);
                done.push(format!("byte@{i}"));
            }
            3 | 4 => {
                // A length or count field, grown, shrunk or set to an edge; or any four bytes.
                let i = if !fields.is_empty() && !chance(rng, 3) { *pick(rng, fields) } else { at(rng) };
                let value = interesting_u32(rng, len);
                let word = if big_endian { value.to_be_bytes() } else { value.to_le_bytes() };
                for (k, b) in word.iter().enumerate() {
                    if let Some(slot) = bytes.get_mut(i + k) {
                        *slot = *b;
                    }
                }
                done.push(format!("u32@{i}={value:#x}"));
            }
            5 => {
                let i = at(rng).min(len);
                let n = 1 + rng.below(64);
                let junk = random_bytes(rng, n);
                bytes.splice(i..i, junk);
                done.push(format!("insert {n}@{i}"));
            }
            6 if len > 0 => {
                let i = at(rng);
                let n = 1 + rng.below((len - i).min(4096));
                bytes.drain(i..i + n);
                done.push(format!("delete {n}@{i}"));
            }
            7 if len > 0 => {
                let (from, to) = (at(rng), at(rng));
                let n = 1 + rng.below((len - from).min(1024));
                let chunk = bytes[from..from + n].to_vec();
                bytes.splice(to..to, chunk);
                done.push(format!("copy {n} {from}->{to}"));
            }
            8 if !others.is_empty() => {
                let other = *pick(rng, others);
                let (i, j) = (rng.below(len + 1), rng.below(other.len() + 1));
                bytes.truncate(i);
                bytes.extend_from_slice(&other[j..]);
                done.push(format!("splice [..{i}] + other[{j}..]"));
            }
            _ => {
                let n = 1 + rng.below(256);
                let junk = random_bytes(rng, n);
                bytes.extend_from_slice(&junk);
                done.push(format!("append {n}"));
            }
        }
    }
    done.join(", ")
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    use flate2::{Compression, write::GzEncoder};
    use std::io::Write;
    let mut encoder = GzEncoder::new(Vec::new(), Compression::fast());
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}

// --- model files ---------------------------------------------------------------------------------

fn device() -> Device {
    Device::flex()
}

/// A model file put together by hand: marker, header length, header, weights.
fn forge(header: &[u8], weights: &[u8]) -> Vec<u8> {
    let mut out = b"AELAB\x00\x00\x01".to_vec();
    out.extend_from_slice(&(header.len() as u32).to_le_bytes());
    out.extend_from_slice(header);
    out.extend_from_slice(weights);
    out
}

/// One valid model file split into its header (as JSON) and weights.
struct ModelSeed {
    file: Vec<u8>,
    header: Value,
    weights: Vec<u8>,
}

fn model_seeds() -> Vec<ModelSeed> {
    [(ModelKind::Dense, None), (ModelKind::Conv, None), (ModelKind::Dense, Some(2)), (ModelKind::Conv, Some(3))]
        .into_iter()
        .map(|(kind, latent)| {
            let model = kind.init(latent, &device());
            let file = model_file::save(&model, json!({"epochs": 1, "images": 64})).unwrap();
            let (header, weights) = model_file::read_header(&file).unwrap();
            ModelSeed { header: serde_json::to_value(&header).unwrap(), weights: weights.to_vec(), file }
        })
        .collect()
}

/// The record's tensors as burnpack's reader gives them: (name, dtype, shape, param id, bytes).
type PackTensor = (String, DType, Vec<usize>, Option<u64>, Vec<u8>);

fn unpack(weights: &[u8]) -> Vec<PackTensor> {
    burn_pack::Reader::from_bytes(burn_pack::Bytes::from_bytes_vec(weights.to_vec()))
        .unwrap()
        .into_tensors()
        .unwrap()
        .into_iter()
        .map(|t| {
            let (name, dtype, shape, id, bytes) = t.into_parts().unwrap();
            (name, dtype, shape.to_vec(), id, bytes.to_vec())
        })
        .collect()
}

fn pack(tensors: Vec<PackTensor>) -> Option<Vec<u8>> {
    let tensors = tensors
        .into_iter()
        .map(|(name, dtype, shape, id, bytes)| burn_pack::Tensor::new(name, dtype, shape, id, burn_pack::Bytes::from_bytes_vec(bytes)))
        .collect();
    // The writer refuses bytes that do not fit the shape; such records come from the byte
    // mutations instead.
    burn_pack::Writer::new(tensors).into_bytes().ok().map(|b| b.to_vec())
}

const DTYPES: [DType; 13] = [
    DType::F64,
    DType::Flex32,
    DType::F16,
    DType::BF16,
    DType::I64,
    DType::I32,
    DType::I16,
    DType::I8,
    DType::U64,
    DType::U32,
    DType::U16,
    DType::U8,
    DType::F32,
];

fn other_dtype(rng: &mut SplitMix64) -> DType {
    match rng.below(DTYPES.len() + 3) {
        i if i < DTYPES.len() => DTYPES[i],
        i if i == DTYPES.len() => DType::Bool(burn::tensor::BoolStore::Native),
        i if i == DTYPES.len() + 1 => DType::Bool(burn::tensor::BoolStore::U32),
        _ => DType::QFloat(burn::tensor::quantization::QuantScheme::default()),
    }
}

/// A record rebuilt with one tensor changed in kind: its dtype, its shape, its name or id, or
/// tensors dropped or added. Bytes are resized to fit, so burnpack's writer accepts it.
fn mutate_record(rng: &mut SplitMix64, weights: &[u8]) -> (String, Option<Vec<u8>>) {
    let mut tensors = unpack(weights);
    let i = rng.below(tensors.len());
    let elements = |shape: &[usize]| shape.iter().product::<usize>();
    let what = match rng.below(7) {
        0 => {
            let dtype = other_dtype(rng);
            let t = &mut tensors[i];
            if !matches!(dtype, DType::QFloat(_)) {
                t.4.resize(elements(&t.2) * dtype.size(), 0x3c);
            }
            t.1 = dtype;
            format!("record: {} as {dtype:?}", t.0)
        }
        1 => {
            let t = &mut tensors[i];
            match rng.below(5) {
                0 => t.2.reverse(),
                1 => t.2.push(1),
                2 => {
                    t.2.pop();
                }
                3 => {
                    let d = rng.below(t.2.len().max(1));
                    if let Some(dim) = t.2.get_mut(d) {
                        *dim += 1;
                    }
                }
                _ => t.2 = vec![elements(&t.2)],
            }
            let size = elements(&t.2) * 4;
            t.4.resize(size, 0);
            format!("record: {} shaped {:?}", t.0, t.2)
        }
        2 => {
            let t = tensors.remove(i);
            format!("record: {} dropped", t.0)
        }
        3 => {
            let mut t = tensors[i].clone();
            t.0.push_str(".copy");
            tensors.push(t);
            "record: a tensor added".into()
        }
        4 => {
            let other = tensors[rng.below(tensors.len())].0.clone();
            let t = &mut tensors[i];
            let old = std::mem::replace(&mut t.0, if chance(rng, 2) { other } else { "encoder.9.weight".into() });
            format!("record: {old} renamed {}", t.0)
        }
        5 => {
            tensors[i].3 = if chance(rng, 2) { None } else { Some(rng.next_u64()) };
            "record: param id".into()
        }
        _ => {
            // Two tensors swap their data (same byte length or not).
            let j = rng.below(tensors.len());
            let (a, b) = (tensors[i].4.clone(), tensors[j].4.clone());
            tensors[i].4 = b;
            tensors[j].4 = a;
            "record: data swapped".into()
        }
    };
    (what, pack(tensors))
}

/// A header JSON with one field changed to an edge value, dropped, or made odd; returns what was
/// done and the header's bytes.
fn mutate_header(rng: &mut SplitMix64, header: &mut Value) -> (String, Vec<u8>) {
    let fields = ["model", "latent", "parameters", "weights_crc32", "training"];
    let field = *pick(rng, &fields);
    let parameters = header["parameters"].as_u64().unwrap();
    let value = match field {
        "model" => pick(rng, &[json!("dense"), json!("conv"), json!("Dense"), json!(""), json!(3), json!(null)]).clone(),
        "latent" => pick(
            rng,
            &[
                json!(0),
                json!(1),
                json!(2),
                json!(3),
                json!(64),
                json!(MAX_LATENT),
                json!(MAX_LATENT + 1),
                json!(u64::MAX),
                json!(-1),
                json!(1.5),
                json!("64"),
            ],
        )
        .clone(),
        "parameters" => {
            pick(rng, &[json!(0), json!(parameters + 1), json!(parameters - 1), json!(u64::MAX), json!(-3), json!(219_891), json!(210_369)])
                .clone()
        }
        "weights_crc32" => pick(rng, &[json!(0), json!(u32::MAX), json!(u64::from(u32::MAX) + 1), json!(-1), json!("00000000"), json!(null)]).clone(),
        _ if chance(rng, 2) => {
            // Nesting past serde_json's recursion limit (128), written as text since a `Value`
            // that deep cannot be made.
            let depth = 1 + rng.below(300);
            header.as_object_mut().unwrap().remove("training");
            let mut text = serde_json::to_string(header).unwrap();
            text.pop();
            text.push_str(&format!(",\"training\":{}{}}}", "[".repeat(depth), "]".repeat(depth)));
            return (format!("header: training nested {depth} deep"), text.into_bytes());
        }
        _ => {
            // Past the 64 KiB header cap, or not.
            let n = rng.below(80_000);
            pick(rng, &[json!("x".repeat(n)), json!({"epochs": -1})]).clone()
        }
    };
    let object = header.as_object_mut().unwrap();
    let done = if chance(rng, 6) {
        object.remove(field);
        format!("header: {field} removed")
    } else {
        object.insert(field.into(), value);
        format!("header: {field} changed")
    };
    (done, serde_json::to_vec(header).unwrap())
}

/// What a loaded model must be: what its header says, and a working model of that kind.
fn check_loaded(file: &[u8], kind: Option<ModelKind>) -> Outcome {
    let Ok((model, header)) = model_file::load(file, kind, &device()) else {
        return Outcome::Refused;
    };
    let (_, weights) = model_file::read_header(file).unwrap();
    let broken = |why: String| Outcome::Broken(why);
    if kind.is_some_and(|k| k != header.model) || model.kind() != header.model {
        return broken(format!("a {} model loaded from a {} header", model.kind(), header.model));
    }
    if model.latent_size() != header.latent || model.num_params() != header.parameters {
        return broken(format!(
            "the model has latent {} and {} parameters; the header says {} and {}",
            model.latent_size(),
            model.num_params(),
            header.latent,
            header.parameters
        ));
    }
    if header.weights_crc32.is_some_and(|crc| crc != model_file::crc32(weights)) {
        return broken("weights that do not match the header's CRC-32 loaded".into());
    }
    let code = Tensor::<2>::zeros([1, model.latent_size()], &device());
    let out = model.decode(code);
    if out.dims() != [1, 28, 28] || out.dtype() != DType::F32 {
        return broken(format!("decoding gave {:?} {:?}", out.dims(), out.dtype()));
    }
    Outcome::Valid
}

#[test]
fn model_files() {
    let seeds = model_seeds();
    // Burn's first use of a device sets up thread pools; that is not the parser's allocation.
    for seed in &seeds {
        assert!(matches!(check_loaded(&seed.file, None), Outcome::Valid));
    }
    let files: Vec<&[u8]> = seeds.iter().map(|s| s.file.as_slice()).collect();

    fuzz("model files", 0x6d6f_64656c, 4_000, |rng| {
        let seed = pick(rng, &seeds);
        let header_bytes = |header: &Value| serde_json::to_vec(header).unwrap();
        // Half the inputs keep a checksum that fits their weights, so the mutation reaches the
        // checks behind it; some drop it, as files written before it did.
        let with_crc = |rng: &mut SplitMix64, header: &mut Value, weights: &[u8]| -> &'static str {
            let object = header.as_object_mut().unwrap();
            if chance(rng, 3) {
                object.remove("weights_crc32");
                "no crc"
            } else {
                object.insert("weights_crc32".into(), json!(model_file::crc32(weights)));
                "crc fixed"
            }
        };
        let (recipe, file) = match rng.below(8) {
            0 => {
                let mut file = seed.file.clone();
                let header_end = 12 + u32::from_le_bytes(file[8..12].try_into().unwrap()) as usize;
                let fields = [8, header_end + 4, header_end + 6];
                let done = mutate(rng, &mut file, &fields, false, &files);
                (format!("file: {done}"), file)
            }
            1 | 2 => {
                let mut weights = seed.weights.clone();
                let done = mutate(rng, &mut weights, &[4, 6], false, &[]);
                let mut header = seed.header.clone();
                let crc = with_crc(rng, &mut header, &weights);
                (format!("weights: {done}, {crc}"), forge(&header_bytes(&header), &weights))
            }
            3 | 4 => {
                let (done, weights) = mutate_record(rng, &seed.weights);
                let weights = weights.unwrap_or_else(|| seed.weights.clone());
                let mut header = seed.header.clone();
                let crc = with_crc(rng, &mut header, &weights);
                (format!("{done}, {crc}"), forge(&header_bytes(&header), &weights))
            }
            5 => {
                let mut header = seed.header.clone();
                let (done, header) = mutate_header(rng, &mut header);
                (done, forge(&header, &seed.weights))
            }
            6 => {
                // One model's header over another's weights.
                let other = pick(rng, &seeds);
                let mut header = seed.header.clone();
                let crc = with_crc(rng, &mut header, &other.weights);
                (format!("header swapped, {crc}"), forge(&header_bytes(&header), &other.weights))
            }
            _ => {
                let n = rng.below(4096);
                let mut bytes = random_bytes(rng, n);
                if chance(rng, 2) {
                    let mut file = b"AELAB\x00\x00\x01".to_vec();
                    file.extend_from_slice(&bytes);
                    bytes = file;
                }
                (format!("random {n} bytes"), bytes)
            }
        };
        let kind = *pick(rng, &[None, Some(ModelKind::Dense), Some(ModelKind::Conv)]);
        let allocation_limit = 3 * file.len() + (4 << 20);
        Case { recipe, allocation_limit, parse: Box::new(move || check_loaded(&file, kind)) }
    });
}

#[test]
fn a_record_of_another_dtype_is_refused_before_burn_reads_it() {
    let seed = model_seeds().swap_remove(0);
    for dtype in DTYPES.into_iter().filter(|d| *d != DType::F32) {
        let mut tensors = unpack(&seed.weights);
        let t = &mut tensors[0];
        t.4.resize(t.2.iter().product::<usize>() * dtype.size(), 0);
        t.1 = dtype;
        let weights = pack(tensors).unwrap();
        let mut header = seed.header.clone();
        header["weights_crc32"] = json!(model_file::crc32(&weights));
        let file = forge(&serde_json::to_vec(&header).unwrap(), &weights);
        let err = model_file::load(&file, None, &device()).map(|_| ()).unwrap_err();
        // Narrower dtypes fail the size check first ("cannot hold N f32 parameters"); the others
        // are named ("... is F64; the models here hold f32 only").
        assert!(matches!(err, ModelFileError::Weights { .. }), "{dtype:?}: {err}");
        assert!(err.to_string().contains("f32"), "{dtype:?}: {err}");
    }
}

#[test]
fn the_widest_latent_a_header_may_ask_for_allocates_nothing_before_the_size_check() {
    let seed = model_seeds().swap_remove(0);
    for kind in ModelKind::ALL {
        let mut header = seed.header.clone();
        header["model"] = json!(kind);
        header["latent"] = json!(MAX_LATENT);
        // The kind's own code activation, so that the size check is what refuses the file.
        header["code_activation"] = json!(kind.default_code_activation());
        let file = forge(&serde_json::to_vec(&header).unwrap(), &seed.weights);
        PEAK.with(|p| p.set(0));
        let err = model_file::load(&file, None, &device()).map(|_| ()).unwrap_err();
        let peak = PEAK.with(Cell::get);
        assert!(err.to_string().contains("parameters"), "{err}");
        // The model is built lazily: a dense model this wide would be ~430 MB of weights.
        assert!(peak < 4 * file.len(), "{kind}: an allocation of {peak} bytes for a {} byte file", file.len());
    }
}

// --- MNIST: IDX files and page chunks ------------------------------------------------------------

fn data_dir() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/data/mnist"))
}

fn t10k() -> &'static MnistSet {
    static SET: OnceLock<MnistSet> = OnceLock::new();
    SET.get_or_init(|| {
        let read = |name: &str| std::fs::read(data_dir().join(name)).expect("the MNIST files should be in data/mnist");
        MnistSet::from_idx(&read("t10k-images-idx3-ubyte.gz"), "images", &read("t10k-labels-idx1-ubyte.gz"), "labels").unwrap()
    })
}

fn images_idx(set: &MnistSet) -> Vec<u8> {
    let mut out = Vec::new();
    for word in [0x0803u32, set.len() as u32, 28, 28] {
        out.extend_from_slice(&word.to_be_bytes());
    }
    for i in 0..set.len() {
        out.extend_from_slice(set.image(i));
    }
    out
}

fn labels_idx(set: &MnistSet) -> Vec<u8> {
    let mut out = Vec::new();
    for word in [0x0801u32, set.len() as u32] {
        out.extend_from_slice(&word.to_be_bytes());
    }
    out.extend_from_slice(set.labels());
    out
}

/// A gzip stream of a valid IDX header and far more zeros than any MNIST file holds: a few
/// hundred KB that would inflate to 200 MB.
fn gzip_bomb() -> &'static [u8] {
    static BOMB: OnceLock<Vec<u8>> = OnceLock::new();
    BOMB.get_or_init(|| {
        use flate2::{Compression, write::GzEncoder};
        use std::io::Write;
        let mut encoder = GzEncoder::new(Vec::new(), Compression::fast());
        for word in [0x0803u32, 60_000, 28, 28] {
            encoder.write_all(&word.to_be_bytes()).unwrap();
        }
        let zeros = vec![0u8; 1 << 20];
        for _ in 0..200 {
            encoder.write_all(&zeros).unwrap();
        }
        encoder.finish().unwrap()
    })
}

/// What a parsed set must be: whole images, one label each, every label a digit.
fn check_set(set: Result<MnistSet, impl std::fmt::Display>) -> Outcome {
    let Ok(set) = set else { return Outcome::Refused };
    if set.labels().len() != set.len() || set.len() > MAX_IMAGES {
        return Outcome::Broken(format!("{} labels for {} images", set.labels().len(), set.len()));
    }
    if let Some(label) = set.labels().iter().find(|&&l| l > 9) {
        return Outcome::Broken(format!("label {label}"));
    }
    if (0..set.len()).any(|i| set.image(i).len() != IMAGE_PIXELS) {
        return Outcome::Broken("an image that is not 784 pixels".into());
    }
    Outcome::Valid
}

/// One side of an IDX pair, or a chunk: a valid input, mutated raw (then maybe gzipped, so the
/// malformed IDX arrives intact through gzip), mutated after gzip, or made from nothing.
fn mnist_input(rng: &mut SplitMix64, valid: &[u8], fields: &[usize], others: &[&[u8]]) -> (String, Vec<u8>, bool) {
    match rng.below(9) {
        0 => ("valid".into(), valid.to_vec(), false),
        1 => ("valid, gzip".into(), gzip(valid), true),
        2..=4 => {
            let mut bytes = valid.to_vec();
            let done = mutate(rng, &mut bytes, fields, true, others);
            if chance(rng, 2) { (format!("{done}, gzip"), gzip(&bytes), true) } else { (done, bytes, false) }
        }
        5 | 6 => {
            let mut bytes = gzip(valid);
            let done = mutate(rng, &mut bytes, &[], true, &[]);
            (format!("gzip, then {done}"), bytes, true)
        }
        7 => {
            let n = rng.below(2048);
            let mut bytes = random_bytes(rng, n);
            if chance(rng, 2) && bytes.len() >= 2 {
                bytes[..2].copy_from_slice(&[0x1f, 0x8b]);
            }
            (format!("random {n} bytes"), bytes, true)
        }
        _ if chance(rng, 50) => {
            let bomb = gzip_bomb();
            let cut = if chance(rng, 2) { bomb.len() } else { rng.below(bomb.len()) };
            (format!("gzip bomb[..{cut}]"), bomb[..cut].to_vec(), true)
        }
        _ => {
            // A record of the other kind where this one belongs.
            let other = pick(rng, others).to_vec();
            ("the other record".into(), other, false)
        }
    }
}

/// The largest single allocation a parse may make: the raw input twice (a copy and the Vec's
/// growth), or, for gzip, a buffer that grows by doubling up to the inflation cap.
fn mnist_allocation_limit(bytes: &[&[u8]], gzipped: bool) -> usize {
    let raw: usize = bytes.iter().map(|b| b.len()).sum();
    if gzipped { 2 * MAX_INFLATED_BYTES + 2 * raw } else { 2 * raw + (1 << 20) }
}

fn sets() -> Vec<MnistSet> {
    [(0, 0), (0, 1), (17, 3), (100, 10), (5000, 40)].iter().map(|&(start, n)| t10k().range(start, n)).collect()
}

#[test]
fn idx_files() {
    let sets = sets();
    let images: Vec<Vec<u8>> = sets.iter().map(images_idx).collect();
    let labels: Vec<Vec<u8>> = sets.iter().map(labels_idx).collect();
    // The published labels file as it is, gzip and all.
    let published_labels = std::fs::read(data_dir().join("t10k-labels-idx1-ubyte.gz")).unwrap();
    let all: Vec<&[u8]> = images.iter().chain(&labels).map(Vec::as_slice).chain([published_labels.as_slice()]).collect();

    fuzz("IDX files", 0x1d78, 10_000, |rng| {
        let which = rng.below(sets.len());
        let (images_recipe, image_bytes, images_gz) = mnist_input(rng, &images[which], &[4, 8, 12], &all);
        let (labels_recipe, label_bytes, labels_gz) = if chance(rng, 20) {
            ("published t10k labels".into(), published_labels.clone(), true)
        } else {
            // Mostly the matching labels, so that images mutated in their pixels still parse.
            let which = if chance(rng, 4) { rng.below(sets.len()) } else { which };
            mnist_input(rng, &labels[which], &[4], &all)
        };
        let allocation_limit = mnist_allocation_limit(&[&image_bytes, &label_bytes], images_gz || labels_gz);
        Case {
            recipe: format!("set {which}; images: {images_recipe}; labels: {labels_recipe}"),
            allocation_limit,
            parse: Box::new(move || check_set(MnistSet::from_idx(&image_bytes, "images", &label_bytes, "labels"))),
        }
    });
}

#[test]
fn page_chunks() {
    let sets = sets();
    let raw: Vec<Vec<u8>> = sets.iter().map(|s| [images_idx(s), labels_idx(s)].concat()).collect();
    let gzipped: Vec<Vec<u8>> = sets.iter().map(MnistSet::to_chunk).collect();
    let all: Vec<&[u8]> = raw.iter().chain(&gzipped).map(Vec::as_slice).collect();

    fuzz("page chunks", 0xc4a2, 10_000, |rng| {
        let which = rng.below(sets.len());
        let n = sets[which].len();
        // The count fields of both records, and the labels record's magic.
        let labels_at = 16 + n * IMAGE_PIXELS;
        let fields = [4, 8, 12, labels_at, labels_at + 4];
        let (recipe, bytes, gz) = if chance(rng, 10) {
            let mut bytes = gzipped[which].clone();
            let done = mutate(rng, &mut bytes, &[], true, &all);
            (format!("to_chunk, then {done}"), bytes, true)
        } else {
            mnist_input(rng, &raw[which], &fields, &all)
        };
        let allocation_limit = mnist_allocation_limit(&[&bytes], gz);
        Case {
            recipe: format!("set {which}: {recipe}"),
            allocation_limit,
            parse: Box::new(move || check_set(MnistSet::from_chunk(&bytes, "chunk"))),
        }
    });
}

#[test]
fn a_gzip_bomb_is_refused_without_inflating_it_all() {
    let bomb = gzip_bomb();
    PEAK.with(|p| p.set(0));
    let err = MnistSet::from_chunk(bomb, "bomb").unwrap_err();
    let peak = PEAK.with(Cell::get);
    assert!(err.to_string().contains("inflates to more than"), "{err}");
    assert!(peak <= 2 * MAX_INFLATED_BYTES, "one allocation of {peak} bytes");
}

// --- drawings ------------------------------------------------------------------------------------

/// The inverse of an odd number modulo 2^64 (Newton's iteration), to make sizes whose product
/// wraps around to a chosen length.
fn inverse_mod_2_64(odd: u64) -> u64 {
    let mut x = odd;
    for _ in 0..6 {
        x = x.wrapping_mul(2u64.wrapping_sub(odd.wrapping_mul(x)));
    }
    x
}

fn ink_value(rng: &mut SplitMix64) -> f32 {
    match rng.below(12) {
        0..=4 => 0.0,
        5 | 6 => 1.0,
        7 => (rng.next_u64() >> 40) as f32 / (1u64 << 24) as f32,
        8 => *pick(rng, &[0.05, 0.050_000_004, -1.0, 2.0, 1e30, -1e30, f32::MAX, f32::MIN_POSITIVE, 1e-45]),
        9 => *pick(rng, &[f32::INFINITY, f32::NEG_INFINITY]),
        10 if chance(rng, 8) => f32::NAN,
        _ => f32::from_bits(rng.next_u64() as u32),
    }
}

#[test]
fn drawings() {
    fuzz("drawings", 0xd4a3, 20_000, |rng| {
        let side = |rng: &mut SplitMix64| match rng.below(6) {
            0 => *pick(rng, &[0, 1, 2, 28, 280]),
            1 => 1 + rng.below(600),
            _ => 1 + rng.below(64),
        };
        let (mut width, mut height) = (side(rng), side(rng));
        let mut len = width * height;
        let mut recipe = String::new();
        match rng.below(8) {
            0 => {
                // Sizes whose product overflows, most made to wrap around to the ink's length.
                len = rng.below(4096);
                width = (rng.next_u64() | 1 | (1 << 40)) as usize;
                height = if chance(rng, 4) {
                    *pick(rng, &[usize::MAX, 1 << 32, (1 << 32) + 1, usize::MAX / 2 + 1])
                } else {
                    (len as u64).wrapping_mul(inverse_mod_2_64(width as u64)) as usize
                };
                recipe.push_str("overflowing sizes, ");
            }
            1 => {
                let any = rng.below(5000);
                len = *pick(rng, &[0, len.saturating_sub(1), len + 1, any, len * 2]);
                recipe.push_str("wrong length, ");
            }
            _ => {}
        }
        let mut ink: Vec<f32> = vec![0.0; len];
        match rng.below(4) {
            0 => ink.iter_mut().for_each(|v| *v = ink_value(rng)),
            1 if len > 0 => {
                // A rectangle of ink somewhere, perhaps a single pixel.
                let w = width.clamp(1, len);
                let (x0, y0) = (rng.below(w), rng.below((len / w).max(1)));
                let (x1, y1) = (x0 + 1 + rng.below(w - x0), y0 + 1 + rng.below(len / w - y0));
                let value = ink_value(rng);
                for y in y0..y1 {
                    for x in x0..x1 {
                        if let Some(v) = ink.get_mut(y * w + x) {
                            *v = value;
                        }
                    }
                }
            }
            2 if len > 0 => {
                for _ in 0..1 + rng.below(20) {
                    let i = rng.below(len);
                    ink[i] = ink_value(rng);
                }
            }
            _ => {}
        }
        recipe.push_str(&format!("{width}x{height}, {len} values"));
        let allocation_limit = 8 * len + (1 << 20);
        Case {
            recipe,
            allocation_limit,
            parse: Box::new(move || match mnist_style(&ink, width, height) {
                Err(_) => Outcome::Refused,
                Ok(out) => {
                    if width.checked_mul(height) != Some(ink.len()) {
                        Outcome::Broken(format!("a drawing of {} values accepted as {width}x{height}", ink.len()))
                    } else if ink.iter().any(|v| v.is_nan()) {
                        Outcome::Broken("a drawing with NaN accepted".into())
                    } else if out.len() != IMAGE_PIXELS || !out.iter().all(|v| (0.0..=1.0).contains(v)) {
                        Outcome::Broken("an image that is not 784 values in [0, 1]".into())
                    } else if out.iter().sum::<f32>() <= 0.0 {
                        Outcome::Broken("an empty image from a drawing with ink".into())
                    } else {
                        Outcome::Valid
                    }
                }
            }),
        }
    });
}
