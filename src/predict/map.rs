//! The latent map's geometry: codes projected to a plane (PCA, or two chosen axes) and back, and
//! straight paths between two codes.

use super::{Codes, PredictError};

/// A linear map from codes to a plane and back: `point = components * (code - center)` and
/// `code = center + components^T * point`.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Projection {
    pub center: Vec<f32>,
    /// Two unit vectors of the code's size.
    pub components: [Vec<f32>; 2],
    /// The share of the codes' variance each component holds (for the map's axis labels).
    pub explained: [f32; 2],
}

impl Projection {
    /// The two principal components of `codes` (by power iteration on their covariance, with
    /// deflation), each signed so that its largest entry is positive, which makes the map's
    /// orientation reproducible.
    pub fn pca(codes: &Codes) -> Self {
        let dim = codes.dim;
        let n = codes.len() as f64;
        let mut mean = vec![0.0f64; dim];
        for i in 0..codes.len() {
            for (m, &v) in mean.iter_mut().zip(codes.row(i)) {
                *m += f64::from(v) / n;
            }
        }
        let mut cov = vec![0.0f64; dim * dim];
        for i in 0..codes.len() {
            let row = codes.row(i);
            for a in 0..dim {
                let da = f64::from(row[a]) - mean[a];
                for b in a..dim {
                    cov[a * dim + b] += da * (f64::from(row[b]) - mean[b]) / n;
                }
            }
        }
        for a in 0..dim {
            for b in 0..a {
                cov[a * dim + b] = cov[b * dim + a];
            }
        }
        let total: f64 = (0..dim).map(|a| cov[a * dim + a]).sum();

        let mut components: [Vec<f32>; 2] = [vec![0.0; dim], vec![0.0; dim]];
        let mut explained = [0.0f32; 2];
        for (k, component) in components.iter_mut().enumerate() {
            if k >= dim {
                break;
            }
            let (vector, value) = leading_eigenvector(&cov, dim);
            // Deflate: remove this direction so the next iteration finds the next one.
            for a in 0..dim {
                for b in 0..dim {
                    cov[a * dim + b] -= value * vector[a] * vector[b];
                }
            }
            *component = vector.iter().map(|&v| v as f32).collect();
            explained[k] = if total > 0.0 { (value / total) as f32 } else { 0.0 };
        }
        Self { center: mean.iter().map(|&m| m as f32).collect(), components, explained }
    }

    /// Coordinates `x` and `y` of the code as they are; the other coordinates, when a point is
    /// decoded, take their mean over `codes`.
    pub fn axes(codes: &Codes, x: usize, y: usize) -> Result<Self, PredictError> {
        let dim = codes.dim;
        if x >= dim || y >= dim || x == y {
            return Err(PredictError::CodeSize { expected: dim, found: x.max(y) + 1 });
        }
        let mut center = vec![0.0f32; dim];
        for i in 0..codes.len() {
            for (c, &v) in center.iter_mut().zip(codes.row(i)) {
                *c += v / codes.len() as f32;
            }
        }
        center[x] = 0.0;
        center[y] = 0.0;
        let unit = |axis: usize| (0..dim).map(|a| if a == axis { 1.0 } else { 0.0 }).collect::<Vec<f32>>();
        Ok(Self { center, components: [unit(x), unit(y)], explained: [0.0, 0.0] })
    }

    pub fn project(&self, code: &[f32]) -> [f32; 2] {
        let along = |c: &[f32]| code.iter().zip(&self.center).zip(c).map(|((v, m), w)| (v - m) * w).sum();
        [along(&self.components[0]), along(&self.components[1])]
    }

    pub fn unproject(&self, point: [f32; 2]) -> Vec<f32> {
        let [c0, c1] = &self.components;
        self.center.iter().zip(c0).zip(c1).map(|((m, a), b)| m + point[0] * a + point[1] * b).collect()
    }
}

/// Power iteration for the largest eigenvalue of a symmetric positive semi-definite matrix.
fn leading_eigenvector(matrix: &[f64], dim: usize) -> (Vec<f64>, f64) {
    // A start that is not orthogonal to any eigenvector in practice, and the same every run.
    let mut v: Vec<f64> = (0..dim).map(|i| 1.0 + 0.1 * i as f64).collect();
    let mut value = 0.0;
    for _ in 0..500 {
        let mut next = vec![0.0; dim];
        for a in 0..dim {
            next[a] = (0..dim).map(|b| matrix[a * dim + b] * v[b]).sum();
        }
        let norm = next.iter().map(|x| x * x).sum::<f64>().sqrt();
        if norm < 1e-30 {
            // Nothing left: any unit vector orthogonal to the rest will do for a flat direction.
            break;
        }
        next.iter_mut().for_each(|x| *x /= norm);
        let change: f64 = next.iter().zip(&v).map(|(a, b)| (a - b).abs()).sum();
        v = next;
        value = norm;
        if change < 1e-12 {
            break;
        }
    }
    let norm = v.iter().map(|x| x * x).sum::<f64>().sqrt();
    v.iter_mut().for_each(|x| *x /= norm);
    let largest = v.iter().copied().fold(0.0f64, |m, x| if x.abs() > m.abs() { x } else { m });
    if largest < 0.0 {
        v.iter_mut().for_each(|x| *x = -*x);
    }
    (v, value)
}

/// The most codes [`interpolate`] makes in one path. The page asks for 8; each code becomes a
/// decoded image, so a path far longer than a row of images is a mistake, not a wish, and an
/// unbounded count could ask the device for any amount of memory.
pub const MAX_PATH_POINTS: usize = 64;

/// `points` codes (at least 2) on the straight line from `a` to `b`, both ends included.
pub fn interpolate(a: &[f32], b: &[f32], points: usize) -> Result<Vec<f32>, PredictError> {
    if points > MAX_PATH_POINTS {
        return Err(PredictError::TooManyPoints { asked: points, max: MAX_PATH_POINTS });
    }
    let points = points.max(2);
    Ok((0..points)
        .flat_map(|i| {
            let t = i as f32 / (points - 1) as f32;
            a.iter().zip(b).map(move |(x, y)| x + t * (y - x))
        })
        .collect())
}
