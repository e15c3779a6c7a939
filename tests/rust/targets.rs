//! Every Rust test file is a test target: cargo runs a file under tests/rust only where
//! Cargo.toml names it in a `[[test]]` entry, so a file without one would never run.

use std::path::Path;

#[test]
fn every_file_in_tests_rust_is_a_test_target_in_cargo_toml() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let manifest = std::fs::read_to_string(root.join("Cargo.toml")).unwrap();
    let mut files: Vec<String> = std::fs::read_dir(root.join("tests/rust"))
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".rs"))
        .collect();
    files.sort();
    assert!(files.len() > 1, "no test files found in tests/rust: {files:?}");
    for file in files {
        let stem = file.trim_end_matches(".rs");
        let entry = format!("[[test]]\nname = \"{stem}\"\npath = \"tests/rust/{file}\"\n");
        assert!(manifest.contains(&entry), "tests/rust/{file} has no [[test]] entry in Cargo.toml; add:\n{entry}");
    }
}
