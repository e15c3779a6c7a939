//! The command line refuses bad input with one line naming the fix, never a panic trace.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// A fresh folder for one test, removed when the test ends, passed or failed: `Drop` also runs
/// while a failed assertion unwinds. (The `tempfile` crate does the same, but adding it changes
/// the features of a crate burn depends on, which rebuilds all of burn for the tests.)
struct TestDir(PathBuf);

impl TestDir {
    fn new(name: &str) -> Self {
        let path = std::env::temp_dir().join(format!("ae-lab-{name}-{}", std::process::id()));
        // A folder left by a killed run of the same process id would mix in old files.
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).unwrap();
        Self(path)
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TestDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn run(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_autoencoder-lab"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("the binary runs")
}

fn assert_refused(args: &[&str], expect: &str) {
    let out = run(args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{args:?} succeeded");
    assert!(stderr.contains(expect), "{args:?}: {stderr}");
    assert!(!stderr.contains("panicked"), "{args:?} panicked: {stderr}");
    assert!(!stderr.contains("RUST_BACKTRACE"), "{args:?}: {stderr}");
}

#[test]
fn unknown_model_is_refused() {
    assert_refused(&["train", "--model", "foo"], "invalid model type \"foo\"");
}

#[test]
fn a_latent_size_past_the_model_files_limit_is_refused_in_one_line() {
    let out = run(&["train", "--latent", "5000"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "a 5000-number code was trained");
    assert_eq!(stderr.trim(), "error: latent size must be at most 4096, not 5000");
    // The widest code a model file may hold is still one a run may train.
    assert_refused(&["train", "--latent", &u32::MAX.to_string()], "latent size must be at most 4096");
}

#[test]
fn zero_epochs_and_zero_batch_are_refused() {
    assert_refused(&["train", "--epochs", "0"], "--epochs");
    assert_refused(&["train", "--batch-size", "0"], "--batch-size");
}

#[test]
fn negative_learning_rate_is_refused() {
    assert_refused(&["train", "--learning-rate=-0.1"], "learning rate must be a positive number");
}

#[test]
fn missing_data_names_the_file_and_the_fix() {
    let dir = TestDir::new("missing");
    let out = run(&["train", "--data-dir", dir.path().to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(stderr.starts_with("error: ") && stderr.contains("train-images-idx3-ubyte.gz"), "{stderr}");
}

#[test]
fn corrupted_data_is_refused_in_one_line() {
    let folder = TestDir::new("corrupt");
    let dir = folder.path();
    let source = concat!(env!("CARGO_MANIFEST_DIR"), "/data/mnist");
    for name in ["train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"] {
        std::fs::copy(format!("{source}/{name}"), dir.join(name)).unwrap();
    }
    // Cut the training labels short, as an interrupted copy would.
    let labels = dir.join("train-labels-idx1-ubyte.gz");
    let bytes = std::fs::read(&labels).unwrap();
    std::fs::write(&labels, &bytes[..bytes.len() / 3]).unwrap();
    let out = run(&["train", "--data-dir", dir.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(stderr.contains("train-labels-idx1-ubyte.gz") && stderr.contains("corrupted"), "{stderr}");
}

#[test]
fn eval_of_a_foreign_file_is_refused() {
    let dir = TestDir::new("foreign");
    let path = dir.path().join("foreign.bin");
    std::fs::write(&path, b"not a model").unwrap();
    assert_refused(&["eval", "--load", path.to_str().unwrap()], "not a model file");
}

#[test]
fn a_short_training_run_writes_a_report_and_a_model_that_eval_reads() {
    let dir = TestDir::new("run");
    let (report, model) = (dir.path().join("report.json"), dir.path().join("model.bin"));
    let out = run(&[
        "train", "--model", "dense", "--epochs", "2", "--train-limit", "256",
        "--report", report.to_str().unwrap(), "--save", model.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let report: serde_json::Value = serde_json::from_slice(&std::fs::read(&report).unwrap()).unwrap();
    assert_eq!(report["model"], "dense");
    assert_eq!(report["parameters"], 219_891);
    let epochs = report["per_epoch"].as_array().unwrap();
    assert_eq!(epochs.len(), 2);
    for key in ["epoch", "mean_train_loss", "min_batch_loss", "test_mse", "psnr", "images_per_sec"] {
        assert!(epochs[1][key].is_number(), "per_epoch lacks {key}: {report}");
    }
    let trained = epochs[1]["test_mse"].as_f64().unwrap();
    assert!(trained < report["initial_test_mse"].as_f64().unwrap());

    let out = run(&["eval", "--load", model.to_str().unwrap(), "--predict-train", "1000"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let eval: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(eval["model"], "dense");
    assert!((eval["test_mse"].as_f64().unwrap() - trained).abs() < 1e-5, "{eval} vs {trained}");
    // Both predictors are scored on all 10,000 test codes.
    assert_eq!(eval["predict_train_images"], 1000);
    for method in ["knn", "linear"] {
        let accuracy = eval[method]["accuracy"].as_f64().unwrap();
        assert!((0.0..=1.0).contains(&accuracy), "{method}: {accuracy}");
        let counted: u64 = eval[method]["confusion"].as_array().unwrap().iter().flat_map(|r| r.as_array().unwrap()).map(|n| n.as_u64().unwrap()).sum();
        assert_eq!(counted, 10_000, "{method} confusion matrix");
    }
}

#[test]
fn bench_prints_one_json_object() {
    let out = run(&["bench", "--model", "dense", "--warmup", "2", "--steps", "5", "--train-limit", "320", "--json"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let bench: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(bench["model"], "dense");
    assert_eq!(bench["batch_size"], 32);
    assert!(bench["images_per_sec"].as_f64().unwrap() > 0.0);
    assert!(bench["backend"].as_str().unwrap().contains("flex"));
}

#[test]
fn a_bad_code_activation_is_refused_in_one_line() {
    for (args, expect) in [
        (&["train", "--model", "dense", "--code-activation", "tanh"][..], "invalid code activation \"tanh\""),
        (&["train", "--model", "conv", "--code-activation", "linear"][..], "the conv model's code always has the seed's ReLU"),
    ] {
        assert_refused(args, expect);
        let stderr = String::from_utf8_lossy(&run(args).stderr).into_owned();
        // The reason is on the one error line (clap may add its hint to try --help below it).
        let errors: Vec<&str> = stderr.lines().filter(|l| l.starts_with("error")).collect();
        assert_eq!(errors.len(), 1, "{stderr}");
        assert!(errors[0].contains(expect), "{stderr}");
        assert!(stderr.lines().filter(|l| !l.trim().is_empty()).all(|l| l.starts_with("error") || l.contains("--help")), "{stderr}");
    }
}

#[test]
fn a_relu_code_is_trained_reported_saved_and_read_back_by_eval() {
    let dir = TestDir::new("relu");
    let (report, model) = (dir.path().join("report.json"), dir.path().join("model.bin"));
    let out = run(&[
        "train", "--model", "dense", "--code-activation", "relu", "--epochs", "2", "--train-limit", "256",
        "--report", report.to_str().unwrap(), "--save", model.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let report: serde_json::Value = serde_json::from_slice(&std::fs::read(&report).unwrap()).unwrap();
    assert_eq!(report["code_activation"], "relu");
    assert_eq!(report["parameters"], 219_891);
    let epochs = report["per_epoch"].as_array().unwrap();
    for epoch in epochs {
        assert_eq!(epoch["code_units"], 3, "{report}");
        assert!(epoch["dead_code_units"].as_u64().unwrap() <= 3, "{report}");
        // The run's lowest batch loss so far: never above this epoch's lowest.
        assert!(epoch["min_train_loss"].as_f64().unwrap() <= epoch["min_batch_loss"].as_f64().unwrap(), "{report}");
    }
    assert!(epochs[1]["min_train_loss"].as_f64().unwrap() <= epochs[0]["min_train_loss"].as_f64().unwrap());

    let out = run(&["eval", "--load", model.to_str().unwrap(), "--predict-train", "500"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let eval: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(eval["code_activation"], "relu");
    assert_eq!(eval["code_units"], 3);
    assert_eq!(eval["dead_code_units"], epochs[1]["dead_code_units"], "{eval}");

    // Without the option the dense code stays linear.
    let out = run(&["train", "--model", "dense", "--epochs", "1", "--train-limit", "64", "--save", model.to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let out = run(&["eval", "--load", model.to_str().unwrap(), "--predict-train", "100"]);
    let eval: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(eval["code_activation"], "linear");
    assert_eq!(eval["dead_code_units"], 0);
}
