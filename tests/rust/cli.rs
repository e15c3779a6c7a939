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

// --- PyTorch's state_dicts (src/pytorch/) through the command line ------------------------------

fn pytorch_fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/pytorch").join(name)
}

fn tensors(path: &Path) -> autoencoder_lab::pytorch::Safetensors {
    autoencoder_lab::pytorch::read(&std::fs::read(path).unwrap()).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn eval_json(args: &[&str]) -> (serde_json::Value, String) {
    let out = run(args);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{args:?}: {stderr}");
    (serde_json::from_slice(&out.stdout).unwrap(), stderr)
}

#[test]
fn eval_opens_a_pytorch_state_dict_and_says_what_it_assumed() {
    let dense = pytorch_fixture("dense.safetensors");
    let (eval, stderr) = eval_json(&["eval", "--load", dense.to_str().unwrap(), "--predict-train", "200"]);
    assert_eq!((&eval["model"], &eval["latent"], &eval["code_activation"]), (&"dense".into(), &3.into(), &"linear".into()));
    assert_eq!(eval["parameters"], 219_891);
    assert!(eval["test_mse"].as_f64().unwrap() < 0.1, "a trained model: {eval}");
    for said in [&stderr, eval["imported"].as_str().unwrap()] {
        assert!(said.contains("PyTorch dense model") && said.contains("linear code is assumed"), "{said}");
    }

    let (eval, stderr) = eval_json(&["eval", "--load", dense.to_str().unwrap(), "--predict-train", "200", "--code-activation", "relu"]);
    assert_eq!(eval["code_activation"], "relu");
    assert!(!stderr.contains("assumed"), "{stderr}");

    let conv = pytorch_fixture("conv.safetensors");
    let (eval, _) = eval_json(&["eval", "--load", conv.to_str().unwrap(), "--predict-train", "200"]);
    assert_eq!((&eval["model"], &eval["latent"], &eval["code_activation"]), (&"conv".into(), &64.into(), &"relu".into()));
    assert_refused(&["eval", "--load", conv.to_str().unwrap(), "--code-activation", "linear"], "linear code activation is for the dense model only");
}

#[test]
fn export_converts_both_ways_and_keeps_pytorchs_tensors_to_the_bit() {
    let dir = TestDir::new("export");
    for kind in ["dense", "conv"] {
        let fixture = pytorch_fixture(&format!("{kind}.safetensors"));
        let (ours, back) = (dir.path().join(format!("{kind}.bin")), dir.path().join(format!("{kind}.safetensors")));
        for (from, to) in [(&fixture, &ours), (&ours, &back)] {
            let out = run(&["export", "--load", from.to_str().unwrap(), "--out", to.to_str().unwrap()]);
            assert!(out.status.success(), "{kind}: {}", String::from_utf8_lossy(&out.stderr));
        }
        assert!(std::fs::read(&ours).unwrap().starts_with(b"AELAB"), "{kind}: the lab's own format");
        let (theirs, exported) = (tensors(&fixture), tensors(&back));
        // The same names (PyTorch's file lays the bytes out by name, ours by layer: both are valid).
        let names = |f: &autoencoder_lab::pytorch::Safetensors| {
            let mut names: Vec<String> = f.tensors.iter().map(|t| t.name.clone()).collect();
            names.sort();
            names
        };
        assert_eq!(names(&exported), names(&theirs), "{kind}: PyTorch's names");
        for tensor in &theirs.tensors {
            assert_eq!(exported.get(&tensor.name), Some(tensor), "{kind}: {} changed on the way", tensor.name);
        }
        assert_eq!(exported.metadata.get("model").map(String::as_str), Some(kind));
    }
}

#[test]
fn train_continues_a_pytorch_model_and_saves_it_for_pytorch() {
    let dir = TestDir::new("train-pytorch");
    let (fixture, saved) = (pytorch_fixture("dense.safetensors"), dir.path().join("trained.safetensors"));
    let out = run(&[
        "train", "--load", fixture.to_str().unwrap(), "--code-activation", "relu", "--epochs", "1", "--train-limit", "64",
        "--save", saved.to_str().unwrap(),
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("continuing from") && stderr.contains("PyTorch dense model"), "{stderr}");
    // --model's default (conv) gave way to the file's model.
    assert!(stderr.contains("training the dense autoencoder (219891 parameters, relu code)"), "{stderr}");

    let (before, after) = (tensors(&fixture), tensors(&saved));
    let weight = |f: &autoencoder_lab::pytorch::Safetensors| f.get("encoder.0.weight").unwrap().clone();
    assert_eq!(weight(&after).shape, [128, 784], "PyTorch's [out, in]");
    assert_ne!(weight(&after).values, weight(&before).values, "two training steps changed nothing");
    // The code activation the file could not say travels in the export's metadata, and is read back.
    assert_eq!(after.metadata.get("code_activation").map(String::as_str), Some("relu"));
    let (eval, stderr) = eval_json(&["eval", "--load", saved.to_str().unwrap(), "--predict-train", "100"]);
    assert_eq!(eval["code_activation"], "relu");
    assert!(stderr.contains("from the file's metadata"), "{stderr}");
}

#[test]
fn a_foreign_safetensors_file_is_refused_naming_the_tensor() {
    use autoencoder_lab::pytorch;
    let dir = TestDir::new("pytorch-foreign");
    let mut file = tensors(&pytorch_fixture("dense.safetensors"));
    file.tensors.retain(|t| t.name != "decoder.6.bias");
    let missing = dir.path().join("missing.safetensors");
    std::fs::write(&missing, pytorch::write(&file.tensors, &file.metadata)).unwrap();
    assert_refused(&["eval", "--load", missing.to_str().unwrap()], "\"decoder.6.bias\" is missing");
    assert_refused(&["train", "--load", missing.to_str().unwrap(), "--train-limit", "64"], "\"decoder.6.bias\" is missing");

    // The lab's own file records its code activation: asking for one there is a mistake, said.
    let ours = dir.path().join("ours.bin");
    let out = run(&["export", "--load", pytorch_fixture("dense.safetensors").to_str().unwrap(), "--out", ours.to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_refused(&["eval", "--load", ours.to_str().unwrap(), "--code-activation", "relu"], "records its code activation");
}
