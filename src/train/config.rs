//! How a run trains, and the checks that refuse values no run can use.

use burn::prelude::*;

use super::TrainError;
use crate::model::{CodeActivation, MAX_LATENT, ModelKind};

/// How a run trains; the seed's choices are the defaults. `TrainingConfig::new(model)` takes
/// them all, and `with_*` or struct update syntax changes one.
#[derive(Config, Debug, PartialEq)]
pub struct TrainingConfig {
    pub model: ModelKind,
    /// Images per step (the seed's 32).
    #[config(default = 32)]
    pub batch_size: usize,
    /// Adam's learning rate (the seed's 1e-3).
    #[config(default = 1e-3)]
    pub learning_rate: f64,
    /// Seeds the initial weights and each epoch's shuffle.
    #[config(default = 0)]
    pub seed: u64,
    /// Latent size (1 to [`MAX_LATENT`]); `None` keeps the seed's (3 for dense, 64 for conv).
    pub latent: Option<usize>,
    /// What follows the code layer; `None` keeps the model's default (linear for dense, the
    /// seed's ReLU for conv, which has no other).
    pub code_activation: Option<CodeActivation>,
}

impl TrainingConfig {
    /// The code activation the model gets: the one asked for, or the model's default.
    pub fn effective_code_activation(&self) -> CodeActivation {
        self.code_activation.unwrap_or(self.model.default_code_activation())
    }

    /// Refuses values no run can use, saying which and why.
    pub fn validate(&self) -> Result<(), TrainError> {
        let bad = |msg: String| Err(TrainError::Config(msg));
        if self.batch_size == 0 {
            return bad("batch size must be at least 1".into());
        }
        if !(self.learning_rate.is_finite() && self.learning_rate > 0.0) {
            return bad(format!("learning rate must be a positive number, not {}", self.learning_rate));
        }
        match self.latent {
            Some(0) => return bad("latent size must be at least 1".into()),
            Some(latent) if latent > MAX_LATENT => {
                return bad(format!("latent size must be at most {MAX_LATENT}, not {latent}"));
            }
            _ => {}
        }
        self.model.check_code_activation(self.effective_code_activation()).map_err(TrainError::Config)
    }
}
