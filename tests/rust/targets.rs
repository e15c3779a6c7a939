//! Every Rust test file is a test target: cargo runs a file under tests/rust (native) or
//! tests/wasm (wasm32, in the browser) only where Cargo.toml names it in a `[[test]]` entry, so a
//! file without one would never run. A test is a file `NAME.rs`, or a folder `NAME/` whose
//! `main.rs` declares the rest of the folder as its modules (tests/wasm/browser/).

use std::path::Path;

#[test]
fn every_test_in_tests_rust_and_tests_wasm_is_a_test_target_in_cargo_toml() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let manifest = std::fs::read_to_string(root.join("Cargo.toml")).unwrap();
    for folder in ["tests/rust", "tests/wasm"] {
        let mut targets: Vec<(String, String)> = std::fs::read_dir(root.join(folder))
            .unwrap()
            .filter_map(|entry| {
                let entry = entry.unwrap();
                let name = entry.file_name().to_string_lossy().into_owned();
                if entry.file_type().unwrap().is_dir() {
                    let main = format!("{folder}/{name}/main.rs");
                    assert!(root.join(&main).is_file(), "{folder}/{name}/ is a folder of tests without a main.rs");
                    Some((name, main))
                } else {
                    let stem = name.strip_suffix(".rs")?.to_string();
                    Some((stem, format!("{folder}/{name}")))
                }
            })
            .collect();
        targets.sort();
        assert!(!targets.is_empty(), "no tests found in {folder}");
        for (name, path) in targets {
            let entry = format!("[[test]]\nname = \"{name}\"\npath = \"{path}\"\n");
            assert!(manifest.contains(&entry), "{path} has no [[test]] entry in Cargo.toml; add:\n{entry}");
        }
    }
}
