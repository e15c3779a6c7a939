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

use crate::data::SplitMix64;

pub const CLASSES: usize = 10;

/// Probabilities (or vote shares) of the ten digits.
pub type ClassScores = [f32; CLASSES];

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
        if let Some(&bad) = labels.iter().find(|&&l| usize::from(l) >= CLASSES) {
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
        self.labels.is_empty()
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

/// The index of the largest score (the lowest digit on a tie).
pub fn argmax(scores: &ClassScores) -> u8 {
    let mut best = 0;
    for (i, &s) in scores.iter().enumerate() {
        if s > scores[best] {
            best = i;
        }
    }
    best as u8
}

/// The `n` likeliest digits with their scores, likeliest first.
pub fn top(scores: &ClassScores, n: usize) -> Vec<(u8, f32)> {
    let mut ranked: Vec<(u8, f32)> = scores.iter().enumerate().map(|(d, &s)| (d as u8, s)).collect();
    ranked.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    ranked.truncate(n);
    ranked
}

/// A k-nearest-neighbour vote in latent space (Euclidean distance).
pub struct Knn {
    k: usize,
    train: Codes,
}

impl Knn {
    pub fn new(train: Codes, k: usize) -> Self {
        Self { k: k.clamp(1, train.len()), train }
    }

    pub fn k(&self) -> usize {
        self.k
    }

    /// Each digit's share of the `k` nearest training codes. A tie in the vote goes to the digit of
    /// the nearest neighbour among the tied ones, by a small bonus that never outweighs a vote.
    pub fn scores(&self, code: &[f32]) -> Result<ClassScores, PredictError> {
        self.train.check(code)?;
        // The k best (distance, label), kept sorted; k is small, so insertion beats a heap.
        let mut best: Vec<(f32, u8)> = Vec::with_capacity(self.k + 1);
        for (i, &label) in self.train.labels.iter().enumerate() {
            let d: f32 = self.train.row(i).iter().zip(code).map(|(a, b)| (a - b) * (a - b)).sum();
            if best.len() == self.k && d >= best[self.k - 1].0 {
                continue;
            }
            let at = best.partition_point(|&(bd, _)| bd <= d);
            best.insert(at, (d, label));
            best.truncate(self.k);
        }
        let mut scores = [0.0; CLASSES];
        for &(_, label) in &best {
            scores[usize::from(label)] += 1.0 / self.k as f32;
        }
        let nearest_tied = best
            .iter()
            .find(|(_, l)| scores[usize::from(*l)] == scores.iter().copied().fold(0.0, f32::max))
            .map(|&(_, l)| l);
        if let Some(l) = nearest_tied {
            scores[usize::from(l)] += 1e-4 / self.k as f32;
        }
        Ok(scores)
    }
}

/// Softmax regression on standardized codes: ten weight vectors and biases, trained with
/// mini-batch SGD with momentum on the cross-entropy.
#[derive(Debug, Clone)]
pub struct LinearClassifier {
    dim: usize,
    mean: Vec<f32>,
    inv_std: Vec<f32>,
    /// `[CLASSES, dim]`
    weights: Vec<f32>,
    bias: [f32; CLASSES],
}

/// How the linear classifier trains.
#[derive(Debug, Clone, Copy)]
pub struct LinearConfig {
    pub epochs: usize,
    pub batch_size: usize,
    pub learning_rate: f32,
    pub momentum: f32,
    pub seed: u64,
}

impl Default for LinearConfig {
    fn default() -> Self {
        Self { epochs: 10, batch_size: 64, learning_rate: 0.1, momentum: 0.9, seed: 0 }
    }
}

impl LinearClassifier {
    /// Trains on `train` and returns the classifier with the mean cross-entropy of each epoch.
    pub fn fit(train: &Codes, config: LinearConfig) -> (Self, Vec<f32>) {
        let dim = train.dim;
        let n = train.len();
        // Standardize each coordinate: codes of different models span very different ranges, and
        // one learning rate then suits them all.
        let mut mean = vec![0.0f64; dim];
        for i in 0..n {
            for (m, &v) in mean.iter_mut().zip(train.row(i)) {
                *m += f64::from(v);
            }
        }
        mean.iter_mut().for_each(|m| *m /= n as f64);
        let mut var = vec![0.0f64; dim];
        for i in 0..n {
            for ((s, &v), m) in var.iter_mut().zip(train.row(i)).zip(&mean) {
                *s += (f64::from(v) - m).powi(2);
            }
        }
        let mean: Vec<f32> = mean.iter().map(|&m| m as f32).collect();
        // A coordinate that never moves (a dead unit) gets weight 1 instead of a division by zero.
        let inv_std: Vec<f32> =
            var.iter().map(|&s| (s / n as f64).sqrt()).map(|sd| if sd > 1e-6 { (1.0 / sd) as f32 } else { 1.0 }).collect();

        let mut model = Self { dim, mean, inv_std, weights: vec![0.0; CLASSES * dim], bias: [0.0; CLASSES] };
        let mut velocity_w = vec![0.0f32; CLASSES * dim];
        let mut velocity_b = [0.0f32; CLASSES];
        let mut grad_w = vec![0.0f32; CLASSES * dim];
        let mut x = vec![0.0f32; dim];
        let mut losses = Vec::with_capacity(config.epochs);
        let batch_size = config.batch_size.max(1);
        let mut order: Vec<usize> = (0..n).collect();
        let mut rng = SplitMix64::new(config.seed);

        for _ in 0..config.epochs {
            for i in (1..n).rev() {
                order.swap(i, rng.below(i + 1));
            }
            let mut loss_sum = 0.0f64;
            for batch in order.chunks(batch_size) {
                grad_w.iter_mut().for_each(|g| *g = 0.0);
                let mut grad_b = [0.0f32; CLASSES];
                for &i in batch {
                    model.standardize(train.row(i), &mut x);
                    let p = model.softmax(&x);
                    let label = usize::from(train.labels[i]);
                    loss_sum -= f64::from(p[label].max(1e-12).ln());
                    for c in 0..CLASSES {
                        let err = p[c] - if c == label { 1.0 } else { 0.0 };
                        grad_b[c] += err;
                        for (g, &xv) in grad_w[c * dim..(c + 1) * dim].iter_mut().zip(&x) {
                            *g += err * xv;
                        }
                    }
                }
                let scale = config.learning_rate / batch.len() as f32;
                for ((w, v), g) in model.weights.iter_mut().zip(&mut velocity_w).zip(&grad_w) {
                    *v = config.momentum * *v - scale * g;
                    *w += *v;
                }
                for c in 0..CLASSES {
                    velocity_b[c] = config.momentum * velocity_b[c] - scale * grad_b[c];
                    model.bias[c] += velocity_b[c];
                }
            }
            losses.push((loss_sum / n as f64) as f32);
        }
        (model, losses)
    }

    pub fn probabilities(&self, code: &[f32]) -> Result<ClassScores, PredictError> {
        if code.len() != self.dim {
            return Err(PredictError::CodeSize { expected: self.dim, found: code.len() });
        }
        if code.iter().any(|v| !v.is_finite()) {
            return Err(PredictError::NotFinite);
        }
        let mut x = vec![0.0; self.dim];
        self.standardize(code, &mut x);
        Ok(self.softmax(&x))
    }

    /// Mean cross-entropy on labelled codes.
    pub fn loss(&self, codes: &Codes) -> f32 {
        let mut x = vec![0.0; self.dim];
        let sum: f64 = (0..codes.len())
            .map(|i| {
                self.standardize(codes.row(i), &mut x);
                -f64::from(self.softmax(&x)[usize::from(codes.labels[i])].max(1e-12).ln())
            })
            .sum();
        (sum / codes.len() as f64) as f32
    }

    fn standardize(&self, code: &[f32], out: &mut [f32]) {
        for (((o, &v), m), s) in out.iter_mut().zip(code).zip(&self.mean).zip(&self.inv_std) {
            *o = (v - m) * s;
        }
    }

    fn softmax(&self, x: &[f32]) -> ClassScores {
        let mut logits = self.bias;
        for (c, logit) in logits.iter_mut().enumerate() {
            *logit += self.weights[c * self.dim..(c + 1) * self.dim].iter().zip(x).map(|(w, v)| w * v).sum::<f32>();
        }
        let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let mut sum = 0.0;
        for l in &mut logits {
            *l = (*l - max).exp();
            sum += *l;
        }
        logits.map(|l| l / sum)
    }
}

/// Accuracy and the confusion matrix of predictions against true labels.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Evaluation {
    pub accuracy: f32,
    /// `confusion[true_digit][predicted_digit]` counts.
    pub confusion: [[u32; CLASSES]; CLASSES],
}

impl Evaluation {
    pub fn new(labels: &[u8], predictions: &[u8]) -> Self {
        let mut confusion = [[0u32; CLASSES]; CLASSES];
        for (&t, &p) in labels.iter().zip(predictions) {
            confusion[usize::from(t)][usize::from(p)] += 1;
        }
        let correct: u32 = (0..CLASSES).map(|d| confusion[d][d]).sum();
        let accuracy = if labels.is_empty() { 0.0 } else { correct as f32 / labels.len() as f32 };
        Self { accuracy, confusion }
    }
}

/// Predicts every code of `test` with `predict` (in parallel natively) and scores the result.
pub fn evaluate(
    test: &Codes,
    predict: impl Fn(&[f32]) -> Result<ClassScores, PredictError> + Sync,
) -> Result<Evaluation, PredictError> {
    let one = |i: usize| predict(test.row(i)).map(|s| argmax(&s));
    #[cfg(not(target_arch = "wasm32"))]
    let predictions: Result<Vec<u8>, _> = {
        use rayon::prelude::*;
        (0..test.len()).into_par_iter().map(one).collect()
    };
    #[cfg(target_arch = "wasm32")]
    let predictions: Result<Vec<u8>, _> = (0..test.len()).map(one).collect();
    Ok(Evaluation::new(&test.labels, &predictions?))
}

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

/// Codes on the straight line from `a` to `b`, both ends included.
pub fn interpolate(a: &[f32], b: &[f32], points: usize) -> Vec<f32> {
    let points = points.max(2);
    (0..points)
        .flat_map(|i| {
            let t = i as f32 / (points - 1) as f32;
            a.iter().zip(b).map(move |(x, y)| x + t * (y - x))
        })
        .collect()
}
