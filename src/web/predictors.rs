//! The `Lab`'s digit predictors and latent map: fitted on the current model's codes, then asked
//! about test images, map points, paths between codes and drawings.

use wasm_bindgen::prelude::*;

use super::{js_error, no_predictors};
use super::lab::{INFERENCE_BATCH, Lab, Predictors};
use super::reports::{PredictorReport, Reading};
use crate::data::IMAGE_PIXELS;
use crate::predict::{self, Knn, LinearClassifier, LinearConfig, Projection};
use crate::evaluate::encode_set;
use crate::train::read_floats;

#[wasm_bindgen]
impl Lab {
    /// Encodes up to `max_train` training images and every test image with the current model,
    /// fits both predictors on the training codes (`k` neighbours; `linear_epochs` epochs of the
    /// linear classifier), scores them on the test codes, and sets up the latent map (PCA).
    #[wasm_bindgen(js_name = fitPredictors)]
    pub async fn fit_predictors(&mut self, max_train: u32, k: u32, linear_epochs: u32) -> Result<PredictorReport, JsError> {
        let model = self.inference_model().await?;
        let steps = self.trainer.as_ref().map_or(0, |t| t.steps());
        if self.test.is_empty() {
            return Err(js_error("no test images are loaded"));
        }
        let train = self.train.take((max_train as usize).clamp(1, self.train.len().max(1)));
        let train_codes = encode_set(&model, &train, INFERENCE_BATCH, &self.device).await.map_err(js_error)?;
        let test_codes = encode_set(&model, &self.test, INFERENCE_BATCH, &self.device).await.map_err(js_error)?;
        let knn = Knn::new(train_codes.clone(), k.max(1) as usize);
        let config = LinearConfig { epochs: linear_epochs.max(1) as usize, ..LinearConfig::default() };
        let (linear, linear_losses) = LinearClassifier::fit(&train_codes, config);
        let knn_eval = predict::evaluate(&test_codes, |c| knn.scores(c)).map_err(js_error)?;
        let linear_eval = predict::evaluate(&test_codes, |c| linear.probabilities(c)).map_err(js_error)?;
        let projection = Projection::pca(&test_codes);
        let report = PredictorReport {
            knn_accuracy: knn_eval.accuracy,
            linear_accuracy: linear_eval.accuracy,
            k: knn.k() as u32,
            train_codes: train_codes.len() as u32,
            test_codes: test_codes.len() as u32,
            dead_code_units: predict::dead_code_units(&test_codes) as u32,
            knn_confusion: knn_eval.confusion.iter().flatten().copied().collect(),
            linear_confusion: linear_eval.confusion.iter().flatten().copied().collect(),
            linear_losses,
        };
        self.predictors = Some(Predictors { steps, knn, linear, test_codes, projection });
        Ok(report)
    }

    /// Whether predictors exist and were fitted on the model as it is now.
    #[wasm_bindgen(getter, js_name = predictorsFresh)]
    pub fn predictors_fresh(&self) -> bool {
        let steps = self.trainer.as_ref().map_or(0, |t| t.steps());
        self.predictors.as_ref().is_some_and(|p| p.steps == steps)
    }

    /// The latent map's projection: `"pca"`, or `"axes"` with code coordinates `x` and `y`.
    #[wasm_bindgen(js_name = setProjection)]
    pub fn set_projection(&mut self, kind: &str, x: u32, y: u32) -> Result<(), JsError> {
        let p = self.predictors.as_mut().ok_or_else(no_predictors)?;
        p.projection = match kind {
            "pca" => Projection::pca(&p.test_codes),
            "axes" => Projection::axes(&p.test_codes, x as usize, y as usize).map_err(|_| {
                js_error(format!("axes {x} and {y} must be two different coordinates below {}", p.test_codes.dim()))
            })?,
            other => return Err(js_error(format!("unknown projection {other:?}: choose \"pca\" or \"axes\""))),
        };
        Ok(())
    }

    /// The share of the codes' variance along each map axis (zeros for plain axes).
    #[wasm_bindgen(getter, js_name = mapExplained)]
    pub fn map_explained(&self) -> Vec<f32> {
        self.predictors.as_ref().map_or(vec![], |p| p.projection.explained.to_vec())
    }

    /// Every test image's code on the latent map, `[x0, y0, x1, y1, ...]` (labels: `testLabels`).
    #[wasm_bindgen(js_name = mapPoints)]
    pub fn map_points(&self) -> Result<Vec<f32>, JsError> {
        let p = self.predictors()?;
        Ok((0..p.test_codes.len()).flat_map(|i| p.projection.project(p.test_codes.row(i))).collect())
    }

    /// The decoder's image (784 pixels) of the map point (`x`, `y`).
    #[wasm_bindgen(js_name = decodePoint)]
    pub async fn decode_point(&self, x: f32, y: f32) -> Result<Vec<f32>, JsError> {
        let p = self.predictors()?;
        if !(x.is_finite() && y.is_finite()) {
            return Err(js_error("a map point must have finite coordinates"));
        }
        self.decode_codes(p.projection.unproject([x, y])).await
    }

    /// `points` images (784 pixels each, at most `predict::MAX_PATH_POINTS`) decoded along the
    /// straight line between the codes of test images `a` and `b`.
    pub async fn interpolate(&self, a: u32, b: u32, points: u32) -> Result<Vec<f32>, JsError> {
        let p = self.predictors()?;
        let n = p.test_codes.len();
        if a as usize >= n || b as usize >= n {
            return Err(js_error(format!("test images are numbered 0 to {}", n - 1)));
        }
        let path = predict::interpolate(p.test_codes.row(a as usize), p.test_codes.row(b as usize), points as usize)
            .map_err(js_error)?;
        self.decode_codes(path).await
    }

    /// Reconstruction, digit scores and map position of one image (784 pixels in [0, 1]).
    pub async fn read(&self, pixels: Vec<f32>) -> Result<Reading, JsError> {
        let p = self.predictors()?;
        let model = self.inference_model().await?;
        let images = self.images(&pixels)?;
        if images.len() != 1 || pixels.len() != IMAGE_PIXELS {
            return Err(js_error(format!("read takes one image of {IMAGE_PIXELS} pixels")));
        }
        let image = images.into_iter().next().expect("one image");
        let code = model.encode(image);
        let reconstruction = model.decode(code.clone());
        let code = read_floats(code).await.map_err(js_error)?;
        let reconstruction = read_floats(reconstruction).await.map_err(js_error)?;
        let knn = p.knn.scores(&code).map_err(js_error)?.to_vec();
        let linear = p.linear.probabilities(&code).map_err(js_error)?.to_vec();
        let [x, y] = p.projection.project(&code);
        Ok(Reading { reconstruction, knn, linear, x, y })
    }
}

