//! Telling digits from codes: a k-nearest-neighbour vote, a softmax classifier on the frozen
//! codes, and the accuracy and confusion matrix of either on labelled codes.

use super::{Codes, PredictError};
use crate::data::NUM_CLASSES;
use crate::rng::SplitMix64;

/// Probabilities (or vote shares) of the ten digits.
pub type ClassScores = [f32; NUM_CLASSES];

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
        let mut scores = [0.0; NUM_CLASSES];
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
    /// `[NUM_CLASSES, dim]`
    weights: Vec<f32>,
    bias: [f32; NUM_CLASSES],
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

        let mut model = Self { dim, mean, inv_std, weights: vec![0.0; NUM_CLASSES * dim], bias: [0.0; NUM_CLASSES] };
        let mut velocity_w = vec![0.0f32; NUM_CLASSES * dim];
        let mut velocity_b = [0.0f32; NUM_CLASSES];
        let mut grad_w = vec![0.0f32; NUM_CLASSES * dim];
        let mut x = vec![0.0f32; dim];
        let mut losses = Vec::with_capacity(config.epochs);
        let batch_size = config.batch_size.max(1);
        let mut order: Vec<usize> = (0..n).collect();
        let mut rng = SplitMix64::new(config.seed);

        for _ in 0..config.epochs {
            rng.shuffle(&mut order);
            let mut loss_sum = 0.0f64;
            for batch in order.chunks(batch_size) {
                grad_w.iter_mut().for_each(|g| *g = 0.0);
                let mut grad_b = [0.0f32; NUM_CLASSES];
                for &i in batch {
                    model.standardize(train.row(i), &mut x);
                    let p = model.softmax(&x);
                    let label = usize::from(train.labels[i]);
                    loss_sum -= f64::from(p[label].max(1e-12).ln());
                    for c in 0..NUM_CLASSES {
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
                for c in 0..NUM_CLASSES {
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
    pub confusion: [[u32; NUM_CLASSES]; NUM_CLASSES],
}

impl Evaluation {
    pub fn new(labels: &[u8], predictions: &[u8]) -> Self {
        let mut confusion = [[0u32; NUM_CLASSES]; NUM_CLASSES];
        for (&t, &p) in labels.iter().zip(predictions) {
            confusion[usize::from(t)][usize::from(p)] += 1;
        }
        let correct: u32 = (0..NUM_CLASSES).map(|d| confusion[d][d]).sum();
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

