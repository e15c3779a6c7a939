//! The native command line (src/cli/): train, evaluate, benchmark and convert the autoencoders.
//! (The page's data chunks are written by `tools/export-web-data.mjs`.)

#[cfg(not(target_arch = "wasm32"))]
mod cli;

#[cfg(target_arch = "wasm32")]
fn main() {}

#[cfg(not(target_arch = "wasm32"))]
fn main() -> std::process::ExitCode {
    cli::main()
}
