//! The native command line: train, evaluate and benchmark the autoencoders on the full MNIST.
//! (The page's data chunks are written by `tools/export-web-data.mjs`.)

#[cfg(target_arch = "wasm32")]
fn main() {}

#[cfg(not(target_arch = "wasm32"))]
fn main() -> std::process::ExitCode {
    cli::main()
}

#[cfg(not(target_arch = "wasm32"))]
mod cli {
    use std::path::PathBuf;
    use std::process::ExitCode;
    use std::time::Instant;

    use anyhow::{Context, Result, anyhow};
    use autoencoder_lab::data::{DEFAULT_DATA_DIR, Mnist, MnistSet};
    use autoencoder_lab::evaluate::{encode_set, evaluate, psnr, test_pass};
    use autoencoder_lab::model::{CodeActivation, ModelKind};
    use autoencoder_lab::model_file;
    use autoencoder_lab::predict::{self, Knn, LinearClassifier, LinearConfig, dead_code_units};
    use autoencoder_lab::train::{Trainer, TrainingConfig};
    use burn::prelude::*;
    use clap::{Args, Parser, Subcommand, ValueEnum};
    use indicatif::{ProgressBar, ProgressStyle};
    use pollster::block_on;
    use serde_json::json;

    /// Evaluation batch: large batches keep the per-kernel overhead small; no gradients are kept.
    const EVAL_BATCH: usize = 1000;

    #[derive(Parser)]
    #[command(version, about = "Dense and convolutional MNIST autoencoders in Burn")]
    struct Cli {
        #[command(subcommand)]
        command: Command,
        /// Keep x86's slow subnormal arithmetic instead of flushing subnormals to zero.
        #[arg(long, global = true)]
        keep_subnormals: bool,
    }

    #[derive(Subcommand)]
    enum Command {
        /// Train a model on MNIST and report per-epoch losses, test MSE and speed.
        Train(TrainArgs),
        /// Evaluate a saved model on the MNIST test set.
        Eval(EvalArgs),
        /// Measure steady-state training throughput (images per second).
        Bench(BenchArgs),
    }

    #[derive(Clone, Copy, ValueEnum)]
    enum DeviceChoice {
        /// burn's flex backend: pure Rust, SIMD, multi-threaded (the fastest CPU backend here).
        Cpu,
        /// burn's wgpu backend on the machine's GPU (Vulkan, Metal or DX12).
        Wgpu,
    }

    #[derive(Args)]
    struct Common {
        /// Which autoencoder.
        #[arg(long, default_value = "conv")]
        model: ModelKind,
        #[arg(long, value_enum, default_value = "cpu")]
        device: DeviceChoice,
        /// Images per step.
        #[arg(long, default_value_t = 32, value_parser = clap::value_parser!(u32).range(1..))]
        batch_size: u32,
        #[arg(long, default_value_t = 1e-3)]
        learning_rate: f64,
        /// Seeds the initial weights and the shuffle of each epoch.
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// Latent size (default: the seed's, 3 for dense and 64 for conv).
        #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
        latent: Option<u32>,
        /// What follows the code layer: `linear` or `relu` (the seed's text). For the dense model
        /// only (default linear); the conv model's code always has the seed's ReLU, so `linear` is
        /// refused there.
        #[arg(long)]
        code_activation: Option<CodeActivation>,
        /// Train on the first N training images only.
        #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
        train_limit: Option<u32>,
        /// Folder holding the four MNIST .gz files.
        #[arg(long, default_value = DEFAULT_DATA_DIR)]
        data_dir: PathBuf,
    }

    #[derive(Args)]
    struct TrainArgs {
        #[command(flatten)]
        common: Common,
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
        epochs: u32,
        /// Write a JSON report of the run here.
        #[arg(long)]
        report: Option<PathBuf>,
        /// Save the trained model here (the page loads the same format).
        #[arg(long)]
        save: Option<PathBuf>,
    }

    #[derive(Args)]
    struct EvalArgs {
        /// A model file written by `train --save`.
        #[arg(long)]
        load: PathBuf,
        #[arg(long, value_enum, default_value = "cpu")]
        device: DeviceChoice,
        #[arg(long, default_value = DEFAULT_DATA_DIR)]
        data_dir: PathBuf,
        /// Neighbours in the k-NN vote on latent codes.
        #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..))]
        k: u32,
        /// Fit the predictors on the codes of the first N training images (default: all 60,000).
        #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
        predict_train: Option<u32>,
    }

    #[derive(Args)]
    struct BenchArgs {
        #[command(flatten)]
        common: Common,
        /// Untimed steps first (kernel compilation, allocator warm-up).
        #[arg(long, default_value_t = 50)]
        warmup: u32,
        /// Timed steps.
        #[arg(long, default_value_t = 300, value_parser = clap::value_parser!(u32).range(1..))]
        steps: u32,
        /// Print one JSON object instead of a sentence.
        #[arg(long)]
        json: bool,
    }

    pub fn main() -> ExitCode {
        let cli = Cli::parse();
        if !cli.keep_subnormals {
            flush_subnormals_to_zero();
        }
        let flush = !cli.keep_subnormals;
        let outcome = match cli.command {
            Command::Train(args) => train(args),
            Command::Eval(args) => eval(args),
            Command::Bench(args) => bench(args, flush),
        };
        match outcome {
            Ok(()) => ExitCode::SUCCESS,
            Err(error) => {
                // `{:#}` puts a context and its cause on the one line: "cannot read FILE: why".
                eprintln!("error: {error:#}");
                ExitCode::FAILURE
            }
        }
    }

    /// Adam's moment estimates for weights that rarely get a gradient (the dense model's border
    /// pixels) decay through the subnormal range, where x86 arithmetic is many times slower.
    /// Flushing them to zero changes no loss visibly and speeds CPU training up, as PyTorch's
    /// `set_flush_denormal` does. MXCSR is per thread, so the worker pool's threads set it too.
    fn flush_subnormals_to_zero() {
        fn set() {
            #[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
            #[allow(deprecated)] // the intrinsics are deprecated for asm!, but remain correct
            unsafe {
                #[cfg(target_arch = "x86")]
                use std::arch::x86::{_mm_getcsr, _mm_setcsr};
                #[cfg(target_arch = "x86_64")]
                use std::arch::x86_64::{_mm_getcsr, _mm_setcsr};
                const FTZ: u32 = 1 << 15;
                const DAZ: u32 = 1 << 6;
                _mm_setcsr(_mm_getcsr() | FTZ | DAZ);
            }
        }
        set();
        // Fails only if the pool already exists, in which case its threads keep their mode.
        let _ = rayon::ThreadPoolBuilder::new().start_handler(|_| set()).build_global();
    }

    fn device(choice: DeviceChoice) -> Result<(Device, &'static str)> {
        match choice {
            DeviceChoice::Cpu => Ok((Device::flex(), "flex (CPU)")),
            #[cfg(feature = "webgpu")]
            DeviceChoice::Wgpu => Device::wgpu_options()
                .init()
                .map(|d| (d, "wgpu"))
                .map_err(|e| anyhow!("no usable GPU for --device wgpu ({e}); use --device cpu")),
            #[cfg(not(feature = "webgpu"))]
            DeviceChoice::Wgpu => Err(anyhow!("built without the `webgpu` feature: use --device cpu")),
        }
    }

    fn config(common: &Common) -> TrainingConfig {
        TrainingConfig::new(common.model)
            .with_batch_size(common.batch_size as usize)
            .with_learning_rate(common.learning_rate)
            .with_seed(common.seed)
            .with_latent(common.latent.map(|l| l as usize))
            .with_code_activation(common.code_activation)
    }

    fn training_set(mnist: &Mnist, common: &Common) -> MnistSet {
        match common.train_limit {
            Some(n) => mnist.train.take(n as usize),
            None => mnist.train.clone(),
        }
    }

    /// What `train` and `bench` both start from: checked settings, the data, a device and a fresh
    /// model with its optimizer.
    struct Run {
        config: TrainingConfig,
        mnist: Mnist,
        train_set: MnistSet,
        device: Device,
        backend: &'static str,
        trainer: Trainer,
    }

    fn start_run(common: &Common) -> Result<Run> {
        let config = config(common);
        config.validate()?;
        let mnist = Mnist::load(&common.data_dir)?;
        let train_set = training_set(&mnist, common);
        let (device, backend) = device(common.device)?;
        let trainer = Trainer::new(config.clone(), &device, train_set.len())?;
        Ok(Run { config, mnist, train_set, device, backend, trainer })
    }

    fn train(args: TrainArgs) -> Result<()> {
        let Run { config, mnist, train_set, device, backend, mut trainer } = start_run(&args.common)?;
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
            let pass = block_on(test_pass(&trainer.inference_model(), &mnist.test, EVAL_BATCH, &device))?;
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
            let bytes = model_file::save(&trainer.inference_model(), summary)?;
            std::fs::write(path, bytes).with_context(|| format!("cannot save the model to {}", path.display()))?;
            eprintln!("saved the model to {}", path.display());
        }
        Ok(())
    }

    fn eval(args: EvalArgs) -> Result<()> {
        const HINT: &str = "write one with `train --save FILE`";
        let bytes = std::fs::read(&args.load).map_err(|e| anyhow!("cannot read {}: {e}; {HINT}", args.load.display()))?;
        let (device, backend) = device(args.device)?;
        let (model, header) = model_file::load(&bytes, None, &device).with_context(|| args.load.display().to_string())?;
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
        println!(
            "{}",
            json!({
                "model": header.model,
                "parameters": header.parameters,
                "latent": header.latent,
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
                "training": header.training,
            })
        );
        Ok(())
    }

    fn bench(args: BenchArgs, flush_subnormals: bool) -> Result<()> {
        let Run { config, train_set, backend, mut trainer, .. } = start_run(&args.common)?;
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
}
