//! `train` (a fresh model, or one loaded to train on) and `bench` (training throughput).

use std::path::Path;
use std::time::Instant;

use anyhow::{Context, Result};
use autoencoder_lab::data::{Mnist, MnistSet};
use autoencoder_lab::evaluate::{psnr, test_pass};
use autoencoder_lab::predict::dead_code_units;
use autoencoder_lab::train::{Trainer, TrainingConfig};
use burn::prelude::*;
use indicatif::{ProgressBar, ProgressStyle};
use pollster::block_on;
use serde_json::json;

use super::files::{self, Opened};
use super::{BenchArgs, Common, EVAL_BATCH, TrainArgs, config, device, training_set};

/// What `train` and `bench` both start from: checked settings, the data, a device and a model
/// (fresh, or `train --load`'s) with a fresh optimizer.
struct Run {
    config: TrainingConfig,
    mnist: Mnist,
    train_set: MnistSet,
    device: Device,
    backend: &'static str,
    trainer: Trainer,
}

/// `load` continues training the model in that file: its kind, code size and code activation
/// replace the settings' (which are checked against it, not before).
fn start_run(common: &Common, load: Option<&Path>) -> Result<Run> {
    let mut config = config(common);
    if load.is_none() {
        config.validate()?;
    }
    let mnist = Mnist::load(&common.data_dir)?;
    let train_set = training_set(&mnist, common);
    let (device, backend) = device(common.device)?;
    let trainer = match load {
        None => Trainer::new(config.clone(), &device, train_set.len())?,
        Some(path) => {
            let Opened { model, imported, .. } = files::open(path, common.code_activation, &device)?;
            let read = imported.unwrap_or_else(|| format!("the lab's {} model file", model.kind()));
            eprintln!("continuing from {}: {read}", path.display());
            config.model = model.kind();
            config.latent = Some(model.latent_size());
            config.code_activation = Some(model.code_activation());
            config.validate()?;
            Trainer::resume(config.clone(), model, device.clone(), train_set.len())
        }
    };
    Ok(Run { config, mnist, train_set, device, backend, trainer })
}

pub fn train(args: TrainArgs) -> Result<()> {
    let Run { config, mnist, train_set, device, backend, mut trainer } = start_run(&args.common, args.load.as_deref())?;
    let parameters = trainer.model().num_params();
    let code_activation = trainer.model().code_activation();
    eprintln!(
        "training the {} autoencoder ({parameters} parameters, {code_activation} code) on {} images, {} epochs, batch {}, Adam {}, backend {backend}",
        config.model,
        train_set.len(),
        args.epochs,
        config.batch_size,
        config.learning_rate
    );
    // The test MSE and the dead code numbers, from one pass over the test set.
    let measure = |trainer: &Trainer| -> Result<(f32, usize)> {
        let pass = block_on(test_pass(&block_on(trainer.inference_model())?, &mnist.test, EVAL_BATCH, &device))?;
        Ok((pass.mse, dead_code_units(&pass.codes)))
    };
    let (initial_test_mse, initial_dead_code_units) = measure(&trainer)?;
    // The lowest batch loss of the run so far: the seed's "minimum training loss".
    let mut min_train_loss = f32::INFINITY;

    let batches = trainer.batches_per_epoch() as u64;
    let mut per_epoch = Vec::new();
    for epoch in 1..=args.epochs as usize {
        let bar = ProgressBar::new(batches).with_style(
            ProgressStyle::with_template("epoch {prefix} [{bar:30}] {pos}/{len} batches  {msg}  ETA {eta}")
                .expect("the template is valid")
                .progress_chars("=> "),
        );
        bar.set_prefix(format!("{epoch}/{}", args.epochs));
        let started = Instant::now();
        let mut losses = Vec::with_capacity(batches as usize);
        while trainer.epoch() < epoch {
            // Read the losses back every 20 steps: often enough for the bar, rarely enough
            // not to stall the device.
            let chunk = block_on(trainer.run(&train_set, 20))?;
            losses.extend_from_slice(&chunk);
            let images = (losses.len() * config.batch_size).min(train_set.len());
            bar.set_message(format!(
                "loss {:.4}  {:.0} img/s",
                chunk.last().copied().unwrap_or(f32::NAN),
                images as f64 / started.elapsed().as_secs_f64()
            ));
            bar.inc(chunk.len() as u64);
        }
        let seconds = started.elapsed().as_secs_f64();
        bar.finish_and_clear();
        let (mse, dead) = measure(&trainer)?;
        let mean = losses.iter().map(|&l| f64::from(l)).sum::<f64>() / losses.len() as f64;
        let min = losses.iter().copied().fold(f32::INFINITY, f32::min);
        min_train_loss = min_train_loss.min(min);
        let images_per_sec = train_set.len() as f64 / seconds;
        let code_units = trainer.model().latent_size();
        eprintln!(
            "epoch {epoch}: mean train loss {mean:.4}, min batch loss {min:.4}, test MSE {mse:.4}, PSNR {:.2} dB, {dead} of {code_units} code numbers dead, {images_per_sec:.0} images/s",
            psnr(mse)
        );
        per_epoch.push(json!({
            "epoch": epoch,
            "mean_train_loss": mean,
            "min_batch_loss": min,
            "min_train_loss": min_train_loss,
            "test_mse": mse,
            "dead_code_units": dead,
            "code_units": code_units,
            "psnr": psnr(mse),
            "images_per_sec": images_per_sec,
            "seconds": seconds,
        }));
    }

    let report = json!({
        "model": config.model,
        "parameters": parameters,
        "latent": trainer.model().latent_size(),
        "code_activation": code_activation,
        "backend": backend,
        "train_images": train_set.len(),
        "test_images": mnist.test.len(),
        "batch_size": config.batch_size,
        "learning_rate": config.learning_rate,
        "seed": config.seed,
        "initial_test_mse": initial_test_mse,
        "initial_dead_code_units": initial_dead_code_units,
        "per_epoch": per_epoch,
    });
    if let Some(path) = &args.report {
        let text = serde_json::to_string_pretty(&report).expect("a JSON value serializes");
        std::fs::write(path, text + "\n").with_context(|| format!("cannot write the report to {}", path.display()))?;
    }
    if let Some(path) = &args.save {
        let summary = json!({
            "epochs": args.epochs,
            "train_images": train_set.len(),
            "batch_size": config.batch_size,
            "learning_rate": config.learning_rate,
            "seed": config.seed,
            "test_mse": per_epoch.last().map(|e| e["test_mse"].clone()),
            "backend": backend,
        });
        let format = files::save(path, &block_on(trainer.inference_model())?, summary)?;
        eprintln!("saved the model to {} as {format}", path.display());
    }
    Ok(())
}

pub fn bench(args: BenchArgs, flush_subnormals: bool) -> Result<()> {
    if args.gpu_step {
        return bench_gpu_step(args);
    }
    let Run { config, train_set, backend, mut trainer, .. } = start_run(&args.common, None)?;
    // One step at a time with the loss read after each, as a training loop that reports every
    // batch does (and as the PyTorch reference figures were measured).
    let step = |trainer: &mut Trainer| -> Result<usize> {
        let losses = block_on(trainer.run(&train_set, 1))?;
        Ok(losses.len())
    };
    for _ in 0..args.warmup {
        step(&mut trainer)?;
    }
    let started = Instant::now();
    let mut steps = 0;
    while steps < args.steps as usize {
        steps += step(&mut trainer)?;
    }
    let seconds = started.elapsed().as_secs_f64();
    let images_per_sec = (steps * config.batch_size) as f64 / seconds;
    let threads = rayon::current_num_threads();
    let cores_per_step = trainer.cores_for(config.batch_size);
    if args.json {
        println!(
            "{}",
            json!({
                "model": config.model,
                "backend": backend,
                "batch_size": config.batch_size,
                "images_per_sec": images_per_sec,
                "steps": steps,
                "warmup_steps": args.warmup,
                "seconds": seconds,
                "threads": threads,
                "cores_per_step": cores_per_step,
                "flush_subnormals": flush_subnormals,
            })
        );
    } else {
        println!(
            "{} on {backend}: {images_per_sec:.0} images/s at batch {} ({steps} steps after {} warm-up, {threads} threads, each step on {cores_per_step}, subnormals {})",
            config.model,
            config.batch_size,
            args.warmup,
            if flush_subnormals { "flushed to zero" } else { "kept" }
        );
    }
    Ok(())
}

/// `bench --gpu-step`: the hand-written GPU step's speed, `per_call` steps launched and then
/// their losses read at once, on the training set's images in order, held on the GPU.
#[cfg(feature = "webgpu")]
fn bench_gpu_step(args: BenchArgs) -> Result<()> {
    use anyhow::anyhow;
    use autoencoder_lab::gpu_step::GpuStep;
    let Run { config, train_set, device, backend, trainer, .. } = start_run(&args.common, None)?;
    let mut step = GpuStep::for_model(trainer.model(), &device).ok_or_else(|| anyhow!("--gpu-step is for --device wgpu"))?;
    if args.launch_each {
        step.launch_each_step();
    }
    let launches = step.launches_per_step();
    let (batch, per_call) = (config.batch_size, args.per_call as usize);
    if args.kernels {
        let pixels = train_set.pixels_f32(0..batch.min(train_set.len()));
        let times = step.kernel_times(&pixels, args.steps as usize);
        let total: f64 = times.iter().map(|(_, ms)| ms).sum();
        if args.json {
            let kernels: Vec<_> = times.iter().map(|(name, ms)| json!({ "kernel": name, "ms": ms })).collect();
            println!("{}", json!({ "model": config.model, "backend": backend, "batch_size": batch, "repeats": args.steps, "kernels": kernels, "total_ms": total }));
        } else {
            println!("{} on {backend}, hand-written GPU step, each launch alone at batch {batch} (mean of {} back to back):", config.model, args.steps);
            for (name, ms) in &times {
                println!("  {name:<20} {ms:8.3} ms  {:5.1}%", 100.0 * ms / total);
            }
            println!("  {:<20} {total:8.3} ms", "sum");
        }
        return Ok(());
    }
    // The training set held on the GPU, as the trainer holds it; its images in order.
    step.hold_set(&train_set);
    let mut next = 0;
    // Launches `calls` steps and reads their losses; returns how many, and the time the
    // launches took the host (writing the images' indices, recording and submitting, not
    // waiting for the GPU).
    let mut call = |calls: usize| -> Result<(usize, f64)> {
        let launching = Instant::now();
        let batches: Vec<Vec<usize>> = (0..calls)
            .map(|_| {
                let images = (next..next + batch).map(|i| i % train_set.len()).collect();
                next += batch;
                images
            })
            .collect();
        let batches: Vec<&[usize]> = batches.iter().map(Vec::as_slice).collect();
        let losses = step.launch_held_steps(&batches, config.learning_rate).map_err(|e| anyhow!("the GPU step failed: {e}"))?;
        let host = launching.elapsed().as_secs_f64();
        let losses = block_on(step.read_losses(losses, calls)).map_err(|e| anyhow!("the GPU step failed: {e}"))?;
        Ok((losses.len(), host))
    };
    let mut warm = 0;
    while warm < args.warmup as usize {
        warm += call(per_call.min(args.warmup as usize - warm))?.0;
    }
    let started = Instant::now();
    let (mut steps, mut host) = (0, 0.0);
    while steps < args.steps as usize {
        let (done, launching) = call(per_call.min(args.steps as usize - steps))?;
        steps += done;
        host += launching;
    }
    let seconds = started.elapsed().as_secs_f64();
    let host_ms_per_step = 1000.0 * host / steps as f64;
    let images_per_sec = (steps * batch) as f64 / seconds;
    if args.json {
        println!(
            "{}",
            json!({
                "model": config.model,
                "backend": backend,
                "step": "gpu_step",
                "batch_size": batch,
                "images_per_sec": images_per_sec,
                "ms_per_step": 1000.0 * seconds / steps as f64,
                "launches_per_step": launches,
                "host_ms_per_step": host_ms_per_step,
                "steps_per_call": per_call,
                "replayed": step.recorded_calls() > 0,
                "steps": steps,
                "warmup_steps": args.warmup,
                "seconds": seconds,
            })
        );
    } else {
        println!(
            "{} on {backend}, hand-written GPU step: {images_per_sec:.0} images/s at batch {batch}, {:.2} ms a step, {host_ms_per_step:.3} of them the host's ({launches} launches, {}; {steps} steps after {} warm-up, {per_call} a call, losses read once a call)",
            config.model,
            1000.0 * seconds / steps as f64,
            if step.recorded_calls() > 0 { "replayed as recorded" } else { "each launched afresh" },
            args.warmup,
        );
    }
    Ok(())
}

#[cfg(not(feature = "webgpu"))]
fn bench_gpu_step(_: BenchArgs) -> Result<()> {
    Err(anyhow::anyhow!("built without the `webgpu` feature: no GPU step"))
}
