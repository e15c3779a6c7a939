//! The native command line: train, evaluate, benchmark and convert the autoencoders' files.
//! `mod.rs` holds the arguments and the shared settings; `run` trains and benchmarks, `eval`
//! evaluates and exports, `files` opens and writes a model in either format (the lab's own model
//! file, or PyTorch's safetensors).

mod eval;
mod files;
mod run;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Result, anyhow};
use autoencoder_lab::data::{DEFAULT_DATA_DIR, Mnist, MnistSet};
use autoencoder_lab::model::{CodeActivation, ModelKind};
use autoencoder_lab::train::TrainingConfig;
use burn::prelude::*;
use clap::{Args, Parser, Subcommand, ValueEnum};

/// Evaluation batch: large batches keep the per-kernel overhead small; no gradients are kept.
pub(crate) const EVAL_BATCH: usize = 1000;

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
    /// Convert a model file between the lab's own format and PyTorch's safetensors (either way),
    /// without MNIST: e.g. the page's download into a state_dict for PyTorch.
    Export(ExportArgs),
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
    /// refused there. With `train --load` of a PyTorch state_dict, the code activation its
    /// tensors cannot show.
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
    /// Save the trained model here: a name ending .safetensors writes a PyTorch state_dict of
    /// the study's encoder and decoder modules, any other the lab's own model file (the page
    /// loads both).
    #[arg(long)]
    save: Option<PathBuf>,
    /// Continue training this model (the lab's model file, or a PyTorch state_dict in
    /// safetensors): its model, code size and code activation replace --model and --latent.
    #[arg(long)]
    load: Option<PathBuf>,
}

#[derive(Args)]
struct EvalArgs {
    /// A model file written by `train --save`, or a PyTorch state_dict in safetensors.
    #[arg(long)]
    load: PathBuf,
    #[command(flatten)]
    code: CodeChoice,
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

/// The code activation of a PyTorch state_dict, which its tensors cannot show.
#[derive(Args)]
struct CodeChoice {
    /// For a safetensors file's dense model: `linear` (the default, said when taken) or `relu`.
    /// The lab's own model file records its code activation, and a file the lab exported says it
    /// in its metadata.
    #[arg(long)]
    code_activation: Option<CodeActivation>,
}

#[derive(Args)]
struct ExportArgs {
    /// The model to convert: the lab's model file or a PyTorch state_dict in safetensors.
    #[arg(long)]
    load: PathBuf,
    /// Where to write it: a name ending .safetensors gets PyTorch's layout and names, any other
    /// the lab's own model file.
    #[arg(long)]
    out: PathBuf,
    #[command(flatten)]
    code: CodeChoice,
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
    /// Time the hand-written GPU step alone (src/gpu_step; either model on `--device wgpu`),
    /// without the trainer around it.
    #[arg(long)]
    gpu_step: bool,
    /// With `--gpu-step`: steps launched before their losses are read, in one read.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    per_call: u32,
    /// With `--gpu-step`: time each of a step's launches alone instead (each launched `--steps`
    /// times back to back, then waited for), to see which kernels the GPU's time goes to.
    #[arg(long)]
    kernels: bool,
    /// With `--gpu-step`: launch every step's kernels one by one, as the first step is, instead of
    /// replaying each step as it was recorded, to see what the replay saves the host.
    #[arg(long)]
    launch_each: bool,
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    if !cli.keep_subnormals {
        flush_subnormals_to_zero();
    }
    let flush = !cli.keep_subnormals;
    let outcome = match cli.command {
        Command::Train(args) => run::train(args),
        Command::Eval(args) => eval::eval(args),
        Command::Bench(args) => run::bench(args, flush),
        Command::Export(args) => eval::export(args),
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
            .tasks_max(autoencoder_lab::gpu_step::TASKS_PER_SUBMIT)
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
