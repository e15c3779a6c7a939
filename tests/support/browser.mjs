// Launches Debian's Chromium headless with a working WebGPU adapter on machines without a GPU,
// shared by the module tests, the page tests and the benchmarks. SwiftShader (a CPU Vulkan) backs
// WebGPU; without --use-vulkan=swiftshader the adapter request never resolves.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

export const CHROMIUM_PATH = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

export const LAB_URL = process.env.LAB_URL ?? 'http://127.0.0.1:8000/';

// The background-networking flags keep Chromium from calling out to a closed network at start.
export const CHROMIUM_ARGS = [
  '--headless=new',
  '--no-sandbox',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--enable-unsafe-webgpu',
  '--enable-features=Vulkan',
  '--use-vulkan=swiftshader',
  '--use-webgpu-adapter=swiftshader',
];

/**
 * Starts Chromium with a fresh profile in a temporary directory.
 * Playwright refuses --user-data-dir in `args`, so the profile goes through
 * launchPersistentContext, which passes it as that flag.
 * `webgpu: false` starts it with no WebGPU adapter. Returns { context, close }; close() also
 * deletes the profile.
 */
export async function launchBrowser({ viewport = { width: 1280, height: 1000 }, webgpu = true } = {}) {
  const userDataDir = await mkdtemp(join(tmpdir(), 'autoencoder-lab-chromium-'));
  let context;
  try {
    context = await chromium.launchPersistentContext(userDataDir, {
      executablePath: CHROMIUM_PATH,
      // headless: false keeps Playwright from adding its own --headless flag; ours is in CHROMIUM_ARGS.
      headless: false,
      // Without the WebGPU and Vulkan flags Chromium here has navigator.gpu but no adapter: a
      // browser without WebGPU, as far as a page can tell.
      args: webgpu ? CHROMIUM_ARGS : CHROMIUM_ARGS.filter((a) => !/webgpu|vulkan/i.test(a)),
      viewport,
    });
  } catch (err) {
    await rm(userDataDir, { recursive: true, force: true });
    throw new Error(`could not start ${CHROMIUM_PATH} (install it with apt-get install chromium): ${err.message}`);
  }
  return {
    context,
    async close() {
      await context.close().catch(() => {});
      await rm(userDataDir, { recursive: true, force: true });
    },
  };
}

/** Fails with a message that names the fix when nothing serves the page. */
export async function assertServerUp(url = LAB_URL) {
  try {
    const res = await fetch(url);
    if (!res.ok) throw new Error(`HTTP ${res.status}`);
  } catch (err) {
    throw new Error(
      `nothing serves the lab at ${url} (${err.cause?.message ?? err.message}); start it with ` +
        `./build.sh serve or python3 -m http.server 8000 --bind 127.0.0.1 --directory www, ` +
        `or set LAB_URL`,
    );
  }
}
