//! Reading digits from latent codes, and drawing codes on a plane.
//!
//! An autoencoder never sees a label, yet its codes place digits of one kind near each other.
//! Two predictors measure how well: a k-nearest-neighbour vote among the training images' codes,
//! and a softmax (linear) classifier trained on the frozen codes. [`Projection`] maps codes to 2-D
//! for the latent map (PCA, or two chosen axes of a small code) and maps points back to codes so
//! that the decoder can draw any point of the map.
//!
//! Plain Rust on purpose: the work is small (at most 60,000 codes of 64 numbers), it runs the same
//! natively and in wasm, and it needs no device round trip while a person draws.

mod classify;
mod map;

pub use classify::{ClassScores, Evaluation, Knn, LinearClassifier, LinearConfig, argmax, evaluate, top};
pub use map::{MAX_PATH_POINTS, Projection, interpolate};

use crate::data::NUM_CLASSES;

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PredictError {
    #[error("no codes to learn from")]
    Empty,
    #[error("codes of size {dim} need {expected} values for {count} images, got {found}")]
    Shape { dim: usize, count: usize, expected: usize, found: usize },
    #[error("label {0} is not a digit")]
    Label(u8),
    #[error("a code must have {expected} numbers, got {found}")]
    CodeSize { expected: usize, found: usize },
    #[error("a code holds a number that is not finite")]
    NotFinite,
    #[error("a path between two codes takes at most {max} points, not {asked}")]
    TooManyPoints { asked: usize, max: usize },
}

/// Latent codes of labelled images, row-major `[count, dim]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Codes {
    dim: usize,
    values: Vec<f32>,
    labels: Vec<u8>,
}

impl Codes {
    pub fn new(dim: usize, values: Vec<f32>, labels: Vec<u8>) -> Result<Self, PredictError> {
        if dim == 0 || labels.is_empty() {
            return Err(PredictError::Empty);
        }
        let expected = dim * labels.len();
        if values.len() != expected {
            return Err(PredictError::Shape { dim, count: labels.len(), expected, found: values.len() });
        }
        if let Some(&bad) = labels.iter().find(|&&l| usize::from(l) >= NUM_CLASSES) {
            return Err(PredictError::Label(bad));
        }
        if values.iter().any(|v| !v.is_finite()) {
            return Err(PredictError::NotFinite);
        }
        Ok(Self { dim, values, labels })
    }

    pub fn dim(&self) -> usize {
        self.dim
    }

    pub fn len(&self) -> usize {
        self.labels.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn labels(&self) -> &[u8] {
        &self.labels
    }

    pub fn values(&self) -> &[f32] {
        &self.values
    }

    pub fn row(&self, i: usize) -> &[f32] {
        &self.values[i * self.dim..(i + 1) * self.dim]
    }

    fn check(&self, code: &[f32]) -> Result<(), PredictError> {
        if code.len() != self.dim {
            return Err(PredictError::CodeSize { expected: self.dim, found: code.len() });
        }
        if code.iter().any(|v| !v.is_finite()) {
            return Err(PredictError::NotFinite);
        }
        Ok(())
    }
}

/// How many of the code's numbers are exactly 0 for every image in `codes`: dead units. After a
/// ReLU a number whose input is negative for every image is 0 everywhere, gets no gradient, and
/// carries nothing to the decoder; a dense model whose 3 code numbers are all dead can only draw
/// the mean digit. A linear code has none unless a number is identically 0.
pub fn dead_code_units(codes: &Codes) -> usize {
    let mut alive = vec![false; codes.dim()];
    for i in 0..codes.len() {
        for (alive, &v) in alive.iter_mut().zip(codes.row(i)) {
            *alive |= v != 0.0;
        }
    }
    alive.iter().filter(|&&a| !a).count()
}

