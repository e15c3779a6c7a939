//! `eval`: a model's test error, dead code numbers and digit prediction from its codes; `export`:
//! a model file converted between the lab's format and PyTorch's.

use anyhow::Result;
use autoencoder_lab::data::Mnist;
use autoencoder_lab::evaluate::{encode_set, evaluate, psnr};
use autoencoder_lab::predict::{self, Knn, LinearClassifier, LinearConfig, dead_code_units};
use burn::prelude::*;
use pollster::block_on;
use serde_json::json;

use super::files::{self, Opened};
use super::{EVAL_BATCH, EvalArgs, ExportArgs, device};

pub fn eval(args: EvalArgs) -> Result<()> {
    let (device, backend) = device(args.device)?;
    let Opened { model, training, imported } = files::open(&args.load, args.code.code_activation, &device)?;
    if let Some(imported) = &imported {
        eprintln!("read {}", imported);
    }
    let mnist = Mnist::load(&args.data_dir)?;
    let mse = block_on(evaluate(&model, &mnist.test, EVAL_BATCH, &device))?;

    // Digit prediction from the codes: how well the unsupervised code sorts digits.
    let train = mnist.train.take(args.predict_train.map_or(mnist.train.len(), |n| n as usize).min(mnist.train.len()));
    let train_codes = block_on(encode_set(&model, &train, EVAL_BATCH, &device))?;
    let test_codes = block_on(encode_set(&model, &mnist.test, EVAL_BATCH, &device))?;
    let dead = dead_code_units(&test_codes);
    let knn = Knn::new(train_codes.clone(), args.k as usize);
    let knn_eval = predict::evaluate(&test_codes, |c| knn.scores(c))?;
    let (linear, linear_losses) = LinearClassifier::fit(&train_codes, LinearConfig::default());
    let linear_eval = predict::evaluate(&test_codes, |c| linear.probabilities(c))?;
    let mut report = json!({
            "model": model.kind(),
            "parameters": model.num_params(),
            "latent": model.latent_size(),
            "code_activation": model.code_activation(),
            "backend": backend,
            "test_images": mnist.test.len(),
            "test_mse": mse,
            "psnr": psnr(mse),
            "dead_code_units": dead,
            "code_units": test_codes.dim(),
            "predict_train_images": train.len(),
            "knn": { "k": knn.k(), "accuracy": knn_eval.accuracy, "confusion": knn_eval.confusion },
            "linear": { "accuracy": linear_eval.accuracy, "epoch_losses": linear_losses, "confusion": linear_eval.confusion },
            "training": training,
    });
    // What a PyTorch file could and could not say, for a script reading the report.
    if let Some(imported) = imported {
        report["imported"] = imported.into();
    }
    println!("{report}");
    Ok(())
}

pub fn export(args: ExportArgs) -> Result<()> {
    let Opened { model, training, imported } = files::open(&args.load, args.code.code_activation, &Device::flex())?;
    if let Some(imported) = &imported {
        eprintln!("read {}", imported);
    }
    let format = files::save(&args.out, &model, training)?;
    eprintln!("wrote the {} model to {} as {format}", model.kind(), args.out.display());
    Ok(())
}
