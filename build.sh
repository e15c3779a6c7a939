#!/usr/bin/env bash
# The one entry point: build, serve, test, train and benchmark the autoencoder lab.
#
#   ./build.sh serve        build what the page needs and serve www/ on http://127.0.0.1:8000 (WebGPU's
#                           module builds behind the server; the page trains on the CPU until then)
#   ./build.sh build        build everything the page needs into www/pkg, www/pkg-cpu, www/data,
#                           www/vendor, www/icons and www/offline-files.js
#   ./build.sh test         every test: native, the Rust tests in wasm and the wasm modules in the browser,
#                           the page (playwright), the page's core journey in Chromium, Firefox and WebKit
#   ./build.sh test-journey the core journey alone, once per engine (LAB_ENGINES="firefox webkit" picks)
#   ./build.sh test-wasm    the crate's Rust tests compiled to wasm32, in headless Chromium (wasm-bindgen-test)
#   ./build.sh fuzz         the parsers fed 100,000 malformed inputs each (FUZZ_CASES, FUZZ_SEED to change)
#   ./build.sh train ...    native training, e.g. ./build.sh train --model conv --epochs 1
#   ./build.sh bench ...    native training throughput, e.g. ./build.sh bench --model dense
#   ./build.sh bench-web    the page's training throughput in headless Chromium, WebGPU and CPU backends
#                           (--engine firefox: in Firefox ESR; --backends webgpu --per-call 8: see --help)
#   ./build.sh bench-start  how long the page takes to be ready to train, and the wasm it fetched by then
#
# The page needs a server rather than file://: browsers refuse to fetch wasm and data files from
# file:// pages, and serve .wasm with the wrong MIME type from most file systems.
#
# Nothing here downloads a tool binary: the wasm target, wasm-bindgen and Chromium come from the
# package registries (crates.io, Debian, npm) and are cached under $LAB_CACHE, outside the clone,
# so a fresh clone does not rebuild burn from nothing.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$ROOT"

LAB_CACHE="${LAB_CACHE:-$HOME/.cache/autoencoder-lab}"
NATIVE_TARGET="$LAB_CACHE/target"
WASM_TARGET="$LAB_CACHE/wasm-target"
TOOLS="$LAB_CACHE/tools"
CRATE=autoencoder_lab
PORT="${PORT:-8000}"

log() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

apt_install() {
  log "installing Debian packages: $*"
  if [ ! -f "$LAB_CACHE/.apt-updated" ] || [ -n "$(find "$LAB_CACHE/.apt-updated" -mmin +1440)" ]; then
    apt-get update -qq
    mkdir -p "$LAB_CACHE" && touch "$LAB_CACHE/.apt-updated"
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

# The target directories are shared by every clone on the machine, so that none rebuilds burn, and
# cargo names this crate's build the same in each of them (its hash holds the path relative to the
# clone). So a build in one clone can find another clone's build of the crate fresh, by the other
# clone's file times, and hand it over. Where the last build in a target directory came from
# another clone, this crate's root file is touched: cargo then builds it from this clone's files.
claim_target() {
  local mark="$1/.last-clone"
  if [ "$(cat "$mark" 2>/dev/null)" != "$ROOT" ]; then
    touch "$ROOT/src/lib.rs" "$ROOT/src/main.rs"
    mkdir -p "$1" && printf '%s\n' "$ROOT" >"$mark"
  fi
}

native_cargo() {
  claim_target "$NATIVE_TARGET"
  CARGO_TARGET_DIR="$NATIVE_TARGET" cargo "$@"
}

# --- the wasm toolchain --------------------------------------------------------------------------
# Where rustup has the wasm32 target, use it. Otherwise build the wasm32 standard library from the
# source Debian ships with its Rust (rustc-web), since rustup cannot download the target offline.
WASM_ENV=()
WASM_BUILD_STD=()
WASM_TEST_FLAGS=()
ensure_wasm_toolchain() {
  if rustup target list --installed 2>/dev/null | grep -qx wasm32-unknown-unknown; then
    WASM_ENV=(env)
    return
  fi
  if [ ! -d /usr/lib/rustlib/src/rust/library ] || [ ! -x /usr/bin/rust-lld ]; then
    apt_install rustc-web cargo-web rust-web-src rust-web-llvm lld-22
  fi
  # Keep this environment identical from build to build: any change rebuilds all of burn.
  WASM_ENV=(env PATH="/usr/bin:$PATH" RUSTC_BOOTSTRAP=1 RUSTC=/usr/bin/rustc)
  WASM_BUILD_STD=(-Zbuild-std=std,panic_abort)
  # The wasm tests keep the panic strategy of everything they link (abort): without this cargo
  # builds a test's dependencies to unwind, that is burn again, beside the page's.
  WASM_TEST_FLAGS=(-Zpanic-abort-tests)
}

# Callers run ensure_wasm_toolchain first: it sets the flags they pass.
wasm_cargo() {
  claim_target "$WASM_TARGET"
  "${WASM_ENV[@]}" CARGO_TARGET_DIR="$WASM_TARGET" cargo "$@"
}

# wasm-bindgen's CLI must be exactly the version of the wasm-bindgen crate in Cargo.lock.
ensure_wasm_bindgen() {
  local want
  want=$(awk '/^name = "wasm-bindgen"$/ {getline; gsub(/[^0-9.]/, ""); print; exit}' Cargo.lock)
  [ -n "$want" ] || die "wasm-bindgen is missing from Cargo.lock"
  if [ "$("$TOOLS/bin/wasm-bindgen" --version 2>/dev/null | awk '{print $2}')" != "$want" ]; then
    log "installing wasm-bindgen-cli $want into $TOOLS (once; a few minutes)"
    # No --locked: one dependency version it locks is missing from the registry here.
    # opt-level 1: the CLI rewrites one file per build, which takes seconds at any level, while
    # compiling it at the release default (3) is most of a cold CI run's tool-install time.
    CARGO_PROFILE_RELEASE_OPT_LEVEL=1 CARGO_TARGET_DIR="$LAB_CACHE/tools-target" \
      cargo install -q wasm-bindgen-cli --version "$want" --root "$TOOLS"
  fi
}

ensure_chromium() {
  if [ ! -x /usr/bin/chromium ]; then
    apt_install chromium
  fi
}

# Mesa's lavapipe (a Vulkan on the CPU) and the Vulkan loader: a GPU for wgpu where there is none,
# natively (the hand-written GPU step's tests, `--device wgpu`) and for Firefox's WebGPU.
missing_vulkan() {
  [ -e /usr/share/vulkan/icd.d/lvp_icd.json ] || [ -e /usr/share/vulkan/icd.d/lvp_icd.x86_64.json ] || echo mesa-vulkan-drivers
  ldconfig -p | grep -q 'libvulkan\.so\.1' || echo libvulkan1
}

ensure_vulkan() {
  local missing
  missing=$(missing_vulkan)
  if [ -n "$missing" ]; then
    # shellcheck disable=SC2086 # one package name a word
    apt_install --no-install-recommends $missing
  fi
}

# wasm-bindgen-test-runner drives Chromium through WebDriver: Debian's chromedriver, built with
# its chromium (the same version).
ensure_chromedriver() {
  ensure_chromium
  if [ ! -x /usr/bin/chromedriver ]; then
    apt_install chromium-driver
  fi
}

# Firefox ESR and WebKitGTK (Safari's engine) for the journey in every engine, from Debian: the
# WebKit driver runs its browser on a virtual display (xvfb), and Mesa's lavapipe gives Firefox a
# software WebGPU adapter. About 35 s on a machine without them (apt-get update included).
ensure_engines() {
  local missing=()
  command -v firefox-esr >/dev/null || missing+=(firefox-esr)
  command -v WebKitWebDriver >/dev/null || missing+=(webkit2gtk-driver)
  command -v xvfb-run >/dev/null || missing+=(xvfb)
  command -v xauth >/dev/null || missing+=(xauth)
  # shellcheck disable=SC2207 # package names, one a word
  missing+=($(missing_vulkan))
  if [ ${#missing[@]} -gt 0 ]; then
    apt_install --no-install-recommends "${missing[@]}"
  fi
}

ensure_node_modules() {
  command -v npm >/dev/null || apt_install nodejs npm
  if [ ! -d node_modules/playwright-core ] || [ ! -d node_modules/uplot ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
    log "installing npm packages (uplot for the page; playwright-core, puppeteer-core and selenium-webdriver for its tests: they drive Debian's browsers and download none)"
    npm ci --no-audit --no-fund --silent
  fi
}

# --- build ---------------------------------------------------------------------------------------
# The page's two wasm modules, from the one crate: www/pkg has WebGPU (burn's wgpu and cubecl, with
# fusion) and the CPU; www/pkg-cpu has the CPU alone, a fifth of the bytes. The page trains on the
# CPU module until WebGPU is chosen (www/js/worker/worker.js). Each has a profile of its own, so
# that each has its own directory: both are autoencoder_lab.wasm.
#
# wasm-bindgen writes into a fresh folder that then takes the old one's place, so a page served
# while a module builds (`serve`) finds the old module whole or the new one whole, never a mix.
build_module() {
  local which=$1 profile dir
  case "$which" in
    webgpu) profile=web dir=www/pkg
      log "building the WebGPU module (profile 'web'; a cold build of burn takes 10-20 minutes)"
      wasm_cargo build --lib --profile web --features fusion --target wasm32-unknown-unknown "${WASM_BUILD_STD[@]}" ;;
    cpu) profile=web-cpu dir=www/pkg-cpu
      log "building the CPU module (profile 'web-cpu', without wgpu; 6-12 minutes cold)"
      wasm_cargo build --lib --profile web-cpu --no-default-features --target wasm32-unknown-unknown "${WASM_BUILD_STD[@]}" ;;
  esac
  rm -rf "$dir.new"
  "$TOOLS/bin/wasm-bindgen" --target web --no-typescript --out-dir "$dir.new" \
    "$WASM_TARGET/wasm32-unknown-unknown/$profile/$CRATE.wasm"
  rm -rf "$dir" && mv "$dir.new" "$dir"
}

build_wasm() {
  ensure_wasm_toolchain
  ensure_wasm_bindgen
  build_module webgpu
  build_module cpu
}

build_data() {
  # The chunks change only with the MNIST files or the script that writes them.
  if [ -f www/data/index.json ] && [ -z "$(find data/mnist tools/export-web-data.mjs -newer www/data/index.json)" ]; then
    return
  fi
  command -v node >/dev/null || apt_install nodejs
  log "writing the page's MNIST chunks into www/data"
  node tools/export-web-data.mjs --data-dir data/mnist --out www/data
}

# The page's one library from npm (uPlot, for the loss charts) is served from www/vendor, copied
# from node_modules: the page loads nothing from a CDN.
build_vendor() {
  ensure_node_modules
  mkdir -p www/vendor
  cp node_modules/uplot/dist/uPlot.esm.js node_modules/uplot/dist/uPlot.min.css node_modules/uplot/LICENSE www/vendor/
}

# What the page keeps for offline use: its icons (drawn by tools/icons.mjs) and the list of files
# its service worker (www/sw.js) keeps, each with its SHA-256, whose hash is the build's version.
# The list is written last, after everything it names, and every time: a hash of 20 MB takes
# well under a second, and a stale list would make the service worker refuse the build.
build_offline() {
  command -v node >/dev/null || apt_install nodejs
  if [ ! -f www/icons/icon-512.png ] || [ tools/icons.mjs -nt www/icons/icon-512.png ]; then
    node tools/icons.mjs www/icons >/dev/null
  fi
  node tools/offline-files.mjs www >&2
}

cmd_build() {
  build_wasm
  build_data
  build_vendor
  build_offline
  log "built: www/pkg ($(du -sh www/pkg | cut -f1)), www/pkg-cpu ($(du -sh www/pkg-cpu | cut -f1)), www/data ($(du -sh www/data | cut -f1)), www/vendor"
}

# The page's Content-Security-Policy goes out as a header too (tools/serve.py says why).
serve_www() {
  exec python3 "$ROOT/tools/serve.py" "$PORT" "$ROOT/www"
}

# The page trains as soon as the CPU module, the data and uPlot are there: the server starts then,
# and the WebGPU module (the larger build: burn's wgpu, cubecl and fusion) builds behind it. The
# page offers WebGPU once www/pkg appears (www/js/app/backend.js looks for it). A WebGPU module
# older than the sources is taken away first, so the page never pairs new JavaScript with an old
# module.
cmd_serve() {
  local started=$SECONDS
  ensure_wasm_toolchain
  ensure_wasm_bindgen
  build_module cpu
  build_data
  build_vendor
  local wasm=www/pkg/autoencoder_lab_bg.wasm
  if [ -f "$wasm" ] && [ -n "$(find src Cargo.toml Cargo.lock -newer "$wasm" -print -quit)" ]; then
    rm -rf www/pkg
  fi
  # The files the service worker keeps, listed now without a WebGPU module still to build, and
  # again once it is built: a new list is a new build, which the page then offers to take.
  build_offline
  local building=$LAB_CACHE/serve-webgpu.log
  # A process group of its own (set -m), so that stopping the server stops cargo too.
  set -m
  (
    if build_module webgpu >"$building" 2>&1 && build_offline 2>>"$building"; then
      log "the WebGPU module is built (www/pkg): the page offers WebGPU now"
    else
      log "the WebGPU module did not build (see $building): the page trains on the CPU"
    fi
  ) &
  local builder=$!
  set +m
  trap "kill -- -$builder 2>/dev/null || true" EXIT
  log "serving www/ on http://127.0.0.1:$PORT/ after $((SECONDS - started)) s (Ctrl-C to stop): the page trains on the CPU now"
  log "still building: the WebGPU module, behind the server (log: $building); the page offers WebGPU when it is done"
  python3 "$ROOT/tools/serve.py" "$PORT" "$ROOT/www"
}

# --- tests ---------------------------------------------------------------------------------------
# Tests and benchmarks serve on their own port, so a page already served on 8000 is not mistaken
# for this build's.
start_server() {
  PORT="${TEST_PORT:-8123}"
  # Already serving this build: `test` runs the page tests, then the journey.
  if [ -n "${SERVER_PID:-}" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
    return
  fi
  if curl -fsS -o /dev/null "http://127.0.0.1:$PORT/" 2>/dev/null; then
    die "port $PORT is already in use; set TEST_PORT to a free port"
  fi
  serve_www >/dev/null 2>&1 &
  SERVER_PID=$!
  trap 'kill $SERVER_PID 2>/dev/null || true' EXIT
  for _ in $(seq 50); do
    curl -fsS -o /dev/null "http://127.0.0.1:$PORT/" 2>/dev/null && return
    sleep 0.2
  done
  die "the page server did not start on port $PORT"
}

test_native() {
  ensure_vulkan # the GPU step's tests run on wgpu: lavapipe where there is no GPU
  log "native tests"
  native_cargo test --release
}

# The page's own wasm module (www/pkg), called from JavaScript in headless Chromium on WebGPU
# (SwiftShader where there is no GPU): tests/module/. `test_page` runs it with the page tests.
test_browser() {
  ensure_chromium
  ensure_node_modules
  cmd_build
  start_server
  log "module tests in headless Chromium (WebGPU on SwiftShader)"
  LAB_URL="http://127.0.0.1:$PORT/" node --test tests/module/
}

# The crate's Rust tests compiled to wasm32 (tests/wasm): what only Rust reaches inside the module
# (the hand-written CPU step against burn's autodiff on WebAssembly SIMD, the WebGPU device as
# Lab::create opens it, model files off the GPU), run by wasm-bindgen-test-runner in headless
# Chromium through chromedriver, with WebGPU on SwiftShader (tests/wasm/webdriver.json holds Chromium's flags,
# those of tests/support/browser.mjs). Built with the WebGPU module's profile, features and
# standard library, so they reuse its build of burn: after `build_wasm` they cost a compile of the
# crate and the tests, not of burn (a profile of their own compiled burn again: 20 minutes cold).
test_wasm() {
  ensure_wasm_toolchain
  ensure_wasm_bindgen
  ensure_chromedriver
  local test=(test --profile web --features fusion --target wasm32-unknown-unknown "${WASM_BUILD_STD[@]}" "${WASM_TEST_FLAGS[@]}" --test browser)
  log "building the Rust tests for wasm32 (the WebGPU module's profile: its build of burn)"
  wasm_cargo "${test[@]}" --no-run
  log "the Rust tests in wasm32, in headless Chromium (WebGPU on SwiftShader)"
  # The runner's default limit, 20 s for the whole run, is far too short for a software GPU
  # compiling its kernels on a busy machine.
  CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUNNER="$TOOLS/bin/wasm-bindgen-test-runner" \
    CHROMEDRIVER=/usr/bin/chromedriver WASM_BINDGEN_TEST_WEBDRIVER_JSON="$ROOT/tests/wasm/webdriver.json" \
    WASM_BINDGEN_TEST_TIMEOUT="${WASM_BINDGEN_TEST_TIMEOUT:-900}" \
    wasm_cargo "${test[@]}"
}

test_page() {
  ensure_chromium
  ensure_node_modules
  cmd_build
  log "Node tests of the page's modules (the data reader fuzzed against the chunks just written)"
  npm run --silent check:cycles # no import cycle in www/js (madge), so the page's layers stay apart
  node --test tests/unit/
  start_server
  # A model trained natively, for the page to load and read drawn digits with (about 10 s).
  local model="$ROOT/tests/artifacts/conv-10k.bin"
  mkdir -p "$(dirname "$model")"
  log "training a conv model on 10,000 images for the page tests to load"
  native_cargo run --release --quiet -- train --model conv --epochs 1 --train-limit 10000 --save "$model" >/dev/null
  rm -f "$ROOT/tests/artifacts/downloaded-conv.bin" # the page tests write it anew
  log "the module's tests and the page tests (playwright-core driving Debian's chromium)"
  LAB_URL="http://127.0.0.1:$PORT/" LAB_MODEL_FILE="$model" node --test tests/module/ tests/page/
  # The other way round: a model file the page wrote loads on the command line.
  log "checking that the page's downloaded model file loads natively"
  local report
  report=$(native_cargo run --release --quiet -- eval --load "$ROOT/tests/artifacts/downloaded-conv.bin" --predict-train 1000) \
    || die "the model file the page wrote did not load on the command line"
  grep -q '"model":"conv"' <<<"$report" || die "the command line read the page's model file as something else: $report"
}

# The page's core journey (tests/journey) once in each engine, each in a process of its own, so
# that one engine's failure or hang leaves the others' results; every engine's result is printed
# by name, and the run fails if any engine failed. WebKit runs on a virtual display in the locale
# C.UTF-8, so that its browser language is "C", not a valid BCP 47 tag (the other two are told to
# report it): the page must work in any locale. (Under plain LANG=C WebKit reports en-US.)
test_journey() {
  ensure_chromium
  ensure_engines
  ensure_node_modules
  cmd_build
  local model="$ROOT/tests/artifacts/conv-10k.bin"
  if [ ! -f "$model" ]; then
    mkdir -p "$(dirname "$model")"
    log "training a conv model on 10,000 images for the journey to load"
    native_cargo run --release --quiet -- train --model conv --epochs 1 --train-limit 10000 --save "$model" >/dev/null
  fi
  start_server
  local engine failed=() results=() started
  for engine in ${LAB_ENGINES:-chromium firefox webkit}; do
    log "the page's core journey in $engine"
    # A time limit, so that an engine that hangs fails by name rather than holding the run.
    local run=(timeout 900 env LAB_ENGINE="$engine" LAB_URL="http://127.0.0.1:$PORT/" LAB_MODEL_FILE="$model" node --test tests/journey/)
    [ "$engine" = webkit ] && run=(env -u LANGUAGE -u LC_MESSAGES LC_ALL=C.UTF-8 LANG=C.UTF-8 xvfb-run -a -s '-screen 0 1400x1000x24' "${run[@]}")
    started=$SECONDS
    if "${run[@]}"; then
      results+=("journey in $engine: passed ($((SECONDS - started)) s)")
    else
      results+=("journey in $engine: FAILED ($((SECONDS - started)) s)")
      failed+=("$engine")
    fi
  done
  printf '%s\n' "${results[@]}" >&2
  [ ${#failed[@]} -eq 0 ] || die "the page's core journey failed in: ${failed[*]}"
}

cmd_test() {
  test_native
  test_page
  test_wasm
  test_journey
}

# The fuzz test's default run is part of `test`; this is the long one, with the counts printed.
cmd_fuzz() {
  export FUZZ_CASES="${FUZZ_CASES:-100000}"
  log "fuzzing the parsers: $FUZZ_CASES inputs each"
  native_cargo test --release --test fuzz -- --nocapture "$@"
  # The PyTorch safetensors reader's fuzz lives with its other tests (tests/rust/pytorch.rs).
  native_cargo test --release --test pytorch fuzz -- --nocapture "$@"
}

# --- training and benchmarks ---------------------------------------------------------------------
cmd_bench_web() {
  ensure_chromium
  # `--engine firefox` measures Firefox ESR's WebGPU (on lavapipe where there is no GPU);
  # `--engine webkit` WebKitGTK's CPU pool, on a virtual display.
  local display=()
  case " $* " in *" --engine firefox "* | *" --engine=firefox "*) ensure_engines ;; esac
  case " $* " in *" --engine webkit "* | *" --engine=webkit "*) ensure_engines; display=(xvfb-run -a -s '-screen 0 1400x1000x24') ;; esac
  ensure_node_modules
  cmd_build
  # The command line's speed on this machine, now, for the browser/native ratio.
  local native="$LAB_CACHE/bench-native.jsonl"
  : >"$native"
  for model in dense conv; do
    log "native bench of the $model model (for the browser/native ratio)"
    native_cargo run --release --quiet -- bench --model "$model" --json >>"$native"
  done
  start_server
  LAB_URL="http://127.0.0.1:$PORT/" "${display[@]}" node tests/bench/bench.mjs --native "$native" "$@"
}

cmd_bench_start() {
  ensure_chromium
  ensure_node_modules
  cmd_build
  start_server
  LAB_URL="http://127.0.0.1:$PORT/" node tests/bench/startup.mjs "$@"
}

case "${1:-}" in
  build) cmd_build ;;
  serve) cmd_serve ;;
  test) shift; cmd_test "$@" ;;
  test-native) test_native ;;
  test-browser) test_browser ;;
  test-page) test_page ;;
  test-journey) test_journey ;;
  test-wasm) test_wasm ;;
  fuzz) shift; cmd_fuzz "$@" ;;
  train | eval | bench) native_cargo run --release --quiet -- "$@" ;;
  bench-web) shift; cmd_bench_web "$@" ;;
  bench-start) shift; cmd_bench_start "$@" ;;
  *) sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
esac
