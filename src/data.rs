//! MNIST bytes (IDX, raw or gzip) -> checked images and labels -> shuffled batches.
//!
//! The same reader serves the command line (the four files under `data/mnist/`) and the page
//! (chunks of 1,000 images: an images IDX record followed by a labels IDX record, gzipped).

use std::io::Read;
use std::path::{Path, PathBuf};

use burn::prelude::*;

use crate::rng::SplitMix64;

/// Side of an MNIST image in pixels.
pub const IMAGE_SIDE: usize = 28;
/// Pixels in one MNIST image.
pub const IMAGE_PIXELS: usize = IMAGE_SIDE * IMAGE_SIDE;

/// Each byte value's pixel in [0, 1], `p / 255.0`, made once: a batch is built on every training
/// step, and in wasm building it a division per pixel into a growing vector took 2.7% of the
/// dense model's step (V8's profiler, in Node).
pub(crate) const UNIT_PIXEL: [f32; 256] = {
    let mut table = [0.0; 256];
    let mut p = 0;
    while p < 256 {
        table[p] = p as f32 / 255.0;
        p += 1;
    }
    table
};
/// Digit classes.
pub const NUM_CLASSES: usize = 10;

/// IDX magic numbers: two zero bytes, the element type (0x08 = u8), the number of dimensions.
const IMAGES_MAGIC: u32 = 0x0000_0803;
const LABELS_MAGIC: u32 = 0x0000_0801;
/// MNIST's largest file holds 60,000 images; a header claiming more than this is corrupt, not big.
pub const MAX_IMAGES: usize = 100_000;
/// The most bytes any well-formed input can inflate to: a chunk of `MAX_IMAGES` images and their
/// labels with both IDX headers (16 + 8 bytes). Gzip packs a run of zeros about 1000:1, so a
/// small download could otherwise claim gigabytes of memory before a header is checked.
pub const MAX_INFLATED_BYTES: usize = 24 + MAX_IMAGES * (IMAGE_PIXELS + 1);

/// Where the repository keeps its copy of MNIST, relative to the crate root.
pub const DEFAULT_DATA_DIR: &str = "data/mnist";

/// Everything that can be wrong with MNIST input, each naming the source and the fault.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    #[error("{source_name}: cannot read ({err}); the MNIST files should be in {DEFAULT_DATA_DIR} (or pass --data-dir)")]
    Io { source_name: String, err: std::io::Error },
    #[error("{source_name}: not valid gzip data ({err}); the file is corrupted, restore it from the repository")]
    Gzip { source_name: String, err: std::io::Error },
    #[error("{source_name}: truncated: {what} needs {needed} bytes but only {available} are there")]
    Truncated { source_name: String, what: &'static str, needed: usize, available: usize },
    #[error("{source_name}: wrong IDX magic 0x{found:08x} (expected 0x{expected:08x} for {kind}); is this the right file?")]
    Magic { source_name: String, found: u32, expected: u32, kind: &'static str },
    #[error("{source_name}: images are {rows}x{cols}, expected {IMAGE_SIDE}x{IMAGE_SIDE}")]
    Dimensions { source_name: String, rows: usize, cols: usize },
    #[error("{source_name}: inflates to more than the {MAX_INFLATED_BYTES} bytes any MNIST file needs; it is not MNIST data")]
    Inflated { source_name: String },
    #[error("{source_name}: header claims {count} items, more than any MNIST file holds")]
    TooMany { source_name: String, count: usize },
    #[error("{source_name}: {trailing} unexpected bytes after the data")]
    Trailing { source_name: String, trailing: usize },
    #[error("{images_name} has {images} images but {labels_name} has {labels} labels")]
    CountMismatch { images_name: String, images: usize, labels_name: String, labels: usize },
    #[error("{source_name}: label {label} at index {index} is not a digit 0-9")]
    BadLabel { source_name: String, index: usize, label: u8 },
}

/// A set of MNIST images (u8 pixels, row-major) with their labels.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MnistSet {
    pixels: Vec<u8>,
    labels: Vec<u8>,
}

impl MnistSet {
    /// Parses one images IDX record and one labels IDX record (each raw or gzip).
    pub fn from_idx(
        images: &[u8],
        images_name: &str,
        labels: &[u8],
        labels_name: &str,
    ) -> Result<Self, DataError> {
        let images = maybe_gunzip(images, images_name)?;
        let labels = maybe_gunzip(labels, labels_name)?;
        let (pixels, rest) = parse_images(&images, images_name)?;
        expect_end(rest, images_name)?;
        let (labels_vec, rest) = parse_labels(&labels, labels_name)?;
        expect_end(rest, labels_name)?;
        Self::checked(pixels, images_name, labels_vec, labels_name)
    }

    /// Parses a page chunk: an images IDX record immediately followed by a labels IDX record,
    /// the whole gzipped (or raw).
    pub fn from_chunk(bytes: &[u8], name: &str) -> Result<Self, DataError> {
        let bytes = maybe_gunzip(bytes, name)?;
        let (pixels, rest) = parse_images(&bytes, name)?;
        let (labels, rest) = parse_labels(rest, name)?;
        expect_end(rest, name)?;
        Self::checked(pixels, name, labels, name)
    }

    /// Encodes this set as a page chunk (the inverse of [`MnistSet::from_chunk`]), gzipped.
    pub fn to_chunk(&self) -> Vec<u8> {
        use flate2::{Compression, write::GzEncoder};
        use std::io::Write;
        let n = self.len() as u32;
        let mut raw = Vec::with_capacity(self.pixels.len() + self.labels.len() + 28);
        for word in [IMAGES_MAGIC, n, IMAGE_SIDE as u32, IMAGE_SIDE as u32] {
            raw.extend_from_slice(&word.to_be_bytes());
        }
        raw.extend_from_slice(&self.pixels);
        for word in [LABELS_MAGIC, n] {
            raw.extend_from_slice(&word.to_be_bytes());
        }
        raw.extend_from_slice(&self.labels);
        let mut encoder = GzEncoder::new(Vec::new(), Compression::best());
        encoder.write_all(&raw).expect("writing to a Vec cannot fail");
        encoder.finish().expect("writing to a Vec cannot fail")
    }

    fn checked(
        pixels: Vec<u8>,
        images_name: &str,
        labels: Vec<u8>,
        labels_name: &str,
    ) -> Result<Self, DataError> {
        let images = pixels.len() / IMAGE_PIXELS;
        if images != labels.len() {
            return Err(DataError::CountMismatch {
                images_name: images_name.to_string(),
                images,
                labels_name: labels_name.to_string(),
                labels: labels.len(),
            });
        }
        if let Some((index, &label)) = labels.iter().enumerate().find(|(_, l)| **l as usize >= NUM_CLASSES) {
            return Err(DataError::BadLabel { source_name: labels_name.to_string(), index, label });
        }
        Ok(Self { pixels, labels })
    }

    /// Number of images.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// Whether the set holds no image.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// All labels, in order.
    pub fn labels(&self) -> &[u8] {
        &self.labels
    }

    /// The u8 pixels of image `index`.
    pub fn image(&self, index: usize) -> &[u8] {
        &self.pixels[index * IMAGE_PIXELS..(index + 1) * IMAGE_PIXELS]
    }

    /// Every image's pixels, one image after another.
    pub fn pixels(&self) -> &[u8] {
        &self.pixels
    }

    /// The first `n` images (all of them if there are fewer).
    pub fn take(&self, n: usize) -> Self {
        self.range(0, n.min(self.len()))
    }

    /// Images `start..start + count` (clamped to the set).
    pub fn range(&self, start: usize, count: usize) -> Self {
        let start = start.min(self.len());
        let end = (start + count).min(self.len());
        Self {
            pixels: self.pixels[start * IMAGE_PIXELS..end * IMAGE_PIXELS].to_vec(),
            labels: self.labels[start..end].to_vec(),
        }
    }

    /// Appends another set's images.
    pub fn extend(&mut self, other: &MnistSet) {
        self.pixels.extend_from_slice(&other.pixels);
        self.labels.extend_from_slice(&other.labels);
    }

    /// Pixels of the images at `indices`, scaled to [0, 1], concatenated.
    pub fn pixels_f32(&self, indices: impl IntoIterator<Item = usize>) -> Vec<f32> {
        let indices = indices.into_iter();
        let mut pixels = Vec::with_capacity(indices.size_hint().0 * IMAGE_PIXELS);
        for i in indices {
            pixels.extend(self.image(i).iter().map(|&p| UNIT_PIXEL[usize::from(p)]));
        }
        pixels
    }

    /// The images at `indices` as a `[n, 28, 28]` tensor in [0, 1].
    pub fn batch(&self, indices: &[usize], device: &Device) -> Tensor<3> {
        let data = TensorData::new(self.pixels_f32(indices.iter().copied()), [indices.len(), IMAGE_SIDE, IMAGE_SIDE]);
        Tensor::from_data(data, device)
    }

    /// The mean image, each pixel in [0, 1]: the reconstruction of a model that learned nothing
    /// but the average digit.
    pub fn mean_image(&self) -> Vec<f32> {
        let mut sum = vec![0f64; IMAGE_PIXELS];
        for i in 0..self.len() {
            for (s, &p) in sum.iter_mut().zip(self.image(i)) {
                *s += f64::from(p);
            }
        }
        sum.iter().map(|s| (s / (255.0 * self.len().max(1) as f64)) as f32).collect()
    }
}

/// The four MNIST files, read and checked.
#[derive(Debug, Clone)]
pub struct Mnist {
    pub train: MnistSet,
    pub test: MnistSet,
}

impl Mnist {
    /// Reads `train-*` and `t10k-*` IDX files (gzipped, as published) from `dir`.
    pub fn load(dir: &Path) -> Result<Self, DataError> {
        Ok(Self {
            train: load_pair(dir, "train")?,
            test: load_pair(dir, "t10k")?,
        })
    }
}

fn load_pair(dir: &Path, prefix: &str) -> Result<MnistSet, DataError> {
    let images_path = dir.join(format!("{prefix}-images-idx3-ubyte.gz"));
    let labels_path = dir.join(format!("{prefix}-labels-idx1-ubyte.gz"));
    let images = read_file(&images_path)?;
    let labels = read_file(&labels_path)?;
    MnistSet::from_idx(&images, &display(&images_path), &labels, &display(&labels_path))
}

fn display(path: &Path) -> String {
    path.display().to_string()
}

fn read_file(path: &PathBuf) -> Result<Vec<u8>, DataError> {
    std::fs::read(path).map_err(|err| DataError::Io { source_name: display(path), err })
}

/// Gzip starts with 0x1f 0x8b; IDX starts with two zero bytes, so the two cannot be confused.
fn maybe_gunzip<'a>(bytes: &'a [u8], name: &str) -> Result<std::borrow::Cow<'a, [u8]>, DataError> {
    if bytes.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::new();
        // One byte past the limit tells a stream that stops at the limit from one that goes on.
        flate2::read::GzDecoder::new(bytes)
            .take(MAX_INFLATED_BYTES as u64 + 1)
            .read_to_end(&mut out)
            .map_err(|err| DataError::Gzip { source_name: name.to_string(), err })?;
        if out.len() > MAX_INFLATED_BYTES {
            return Err(DataError::Inflated { source_name: name.to_string() });
        }
        Ok(out.into())
    } else {
        Ok(bytes.into())
    }
}

fn read_u32(bytes: &[u8], at: usize, name: &str, what: &'static str) -> Result<u32, DataError> {
    bytes
        .get(at..at + 4)
        .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
        .ok_or_else(|| DataError::Truncated {
            source_name: name.to_string(),
            what,
            needed: at + 4,
            available: bytes.len(),
        })
}

fn check_magic(found: u32, expected: u32, kind: &'static str, name: &str) -> Result<(), DataError> {
    if found == expected {
        Ok(())
    } else {
        Err(DataError::Magic { source_name: name.to_string(), found, expected, kind })
    }
}

fn check_count(count: usize, name: &str) -> Result<(), DataError> {
    if count > MAX_IMAGES {
        Err(DataError::TooMany { source_name: name.to_string(), count })
    } else {
        Ok(())
    }
}

/// Takes `len` bytes after a header of `header` bytes, or says how short the input is.
fn body<'a>(bytes: &'a [u8], header: usize, len: usize, name: &str, what: &'static str) -> Result<(&'a [u8], &'a [u8]), DataError> {
    if bytes.len() < header + len {
        return Err(DataError::Truncated {
            source_name: name.to_string(),
            what,
            needed: header + len,
            available: bytes.len(),
        });
    }
    Ok(bytes[header..].split_at(len))
}

/// One images record: magic, count, rows, cols, then count*rows*cols bytes. Returns the pixels
/// and whatever follows the record.
fn parse_images<'a>(bytes: &'a [u8], name: &str) -> Result<(Vec<u8>, &'a [u8]), DataError> {
    check_magic(read_u32(bytes, 0, name, "the IDX header")?, IMAGES_MAGIC, "images", name)?;
    let count = read_u32(bytes, 4, name, "the IDX header")? as usize;
    let rows = read_u32(bytes, 8, name, "the IDX header")? as usize;
    let cols = read_u32(bytes, 12, name, "the IDX header")? as usize;
    check_count(count, name)?;
    if (rows, cols) != (IMAGE_SIDE, IMAGE_SIDE) {
        return Err(DataError::Dimensions { source_name: name.to_string(), rows, cols });
    }
    let (pixels, rest) = body(bytes, 16, count * IMAGE_PIXELS, name, "the image data")?;
    Ok((pixels.to_vec(), rest))
}

/// One labels record: magic, count, then count bytes.
fn parse_labels<'a>(bytes: &'a [u8], name: &str) -> Result<(Vec<u8>, &'a [u8]), DataError> {
    check_magic(read_u32(bytes, 0, name, "the IDX header")?, LABELS_MAGIC, "labels", name)?;
    let count = read_u32(bytes, 4, name, "the IDX header")? as usize;
    check_count(count, name)?;
    let (labels, rest) = body(bytes, 8, count, name, "the label data")?;
    Ok((labels.to_vec(), rest))
}

fn expect_end(rest: &[u8], name: &str) -> Result<(), DataError> {
    if rest.is_empty() {
        Ok(())
    } else {
        Err(DataError::Trailing { source_name: name.to_string(), trailing: rest.len() })
    }
}

/// The order in which epoch `epoch` visits `len` images: a Fisher-Yates shuffle seeded by the run
/// seed and the epoch, so any epoch can be reproduced on its own.
pub fn epoch_order(len: usize, seed: u64, epoch: usize) -> Vec<usize> {
    let mut rng = SplitMix64::new(seed ^ (epoch as u64).wrapping_mul(0xd6e8_feb8_6659_fd93));
    let mut order: Vec<usize> = (0..len).collect();
    rng.shuffle(&mut order);
    order
}
