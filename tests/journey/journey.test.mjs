// The page's core journey, as a new user takes it, in one browser engine (LAB_ENGINE: chromium,
// firefox or webkit; ./build.sh test-journey runs it once per engine and prints each result):
// open the page and wait for it to be ready, train the default run to a test MSE below 0.03,
// draw a digit and see it reconstructed and read, load a model file and refuse a corrupt one
// with the model kept, the Content-Security-Policy holding, no page error; the page kept for
// offline use, and the next visit opening from that copy and training; then the same page in a
// phone-sized window. In Firefox, also its WebGPU (off by default on Linux; on with two prefs
// and Mesa's lavapipe): both models train a few steps with the same losses as on the CPU.
//
// The browser's language is "C", which is not a valid BCP 47 tag: WebKit reports it where the
// system's locale is C.UTF-8 (build.sh runs it in that locale), and the other two are made
// to report it, so that the page is shown to work with such a language in every engine.
//
// The rest of the page tests run in Chromium only (tests/page); this file is the part every
// engine must pass. Each engine's differences are in tests/support/engines.mjs.
//
//   LAB_ENGINE=firefox LAB_URL=http://127.0.0.1:8000/ LAB_MODEL_FILE=model.bin node --test tests/journey/
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { ENGINES, openEngine } from '../support/engines.mjs';
import { canvasStatsIn, isDrawn, tryInjectionIn, wholeDrawingReadIn } from '../support/inpage.mjs';

const ENGINE = process.env.LAB_ENGINE ?? 'chromium';
const LAB_URL = process.env.LAB_URL ?? 'http://127.0.0.1:8000/';
const MODEL_FILE = process.env.LAB_MODEL_FILE;
const ARTIFACTS = join(dirname(fileURLToPath(import.meta.url)), '../artifacts/journey');
const INVALID_LANGUAGE = 'C';
const PHONE = { width: 390, height: 844 };
// The page's phone layout is below 760 px; WebKit's MiniBrowser goes no narrower than 447 px
// (tests/support/engines.mjs), still a large phone's width.
const PHONE_WIDEST = 450;
// Waits end before their tests' time limits, so that a failure says where the page stood.
const READY_MS = 90_000;
const RUN_MS = 300_000;
const LIMIT_MS = READY_MS + RUN_MS;

assert.ok(ENGINES.includes(ENGINE), `LAB_ENGINE must be one of ${ENGINES.join(', ')} (got ${ENGINE})`);

let session;
let scratch;
// Set once the page is ready: the tests after the first need it, and fail at once without it.
let opened = false;
const needsPage = () => assert.ok(opened, 'the page never got ready: see the first test');

before(async () => {
  assert.ok(MODEL_FILE && existsSync(MODEL_FILE), `LAB_MODEL_FILE must name a conv model file (got ${MODEL_FILE})`);
  await mkdir(ARTIFACTS, { recursive: true });
  scratch = await mkdtemp(join(tmpdir(), 'autoencoder-lab-journey-'));
  // WebKit's language is its environment's; the other two are told to report the same.
  session = await openEngine(ENGINE, { viewport: { width: 1280, height: 1000 }, language: ENGINE === 'webkit' ? undefined : INVALID_LANGUAGE });
});

after(async () => {
  await session?.close();
  if (scratch) await rm(scratch, { recursive: true, force: true });
});

/** Where the page stands, for a failure's message. */
async function where(s = session) {
  const [state, status, progress] = await Promise.all([
    s.evaluate(() => document.body.dataset.state),
    s.text('#status-message'),
    s.text('#progress-text'),
  ]).catch((err) => [`unreadable (${err.message})`]);
  return `state ${state}, status "${status}", progress "${progress}"; problems: ${JSON.stringify(await s.problems())}`;
}

function waitForState(states, timeout = READY_MS, s = session) {
  return s.waitFor((wanted) => wanted.includes(document.body.dataset.state), [states].flat(), {
    timeout,
    what: `the page to be ${states}`,
    describe: () => where(s),
  });
}

/** Whether the first canvas matching `selector` is drawn (tests/support/inpage.mjs). */
async function drawn(s, selector) {
  const [stats] = await s.evaluate(canvasStatsIn, selector);
  return isDrawn(stats);
}

/**
 * The "Keep training while this tab is hidden" line: its checkbox a checkbox's size, and its
 * words on at most two lines inside the card, beside the box.
 */
function checkLine(s) {
  return s.evaluate(() => {
    const label = document.querySelector('#train-hidden').closest('label');
    const box = document.querySelector('#train-hidden').getBoundingClientRect();
    const words = document.createRange();
    words.selectNodeContents(label);
    words.setStartAfter(document.querySelector('#train-hidden'));
    const lines = new Set([...words.getClientRects()].filter((r) => r.width > 0).map((r) => Math.round(r.top)));
    const text = words.getBoundingClientRect();
    const card = label.parentElement.getBoundingClientRect();
    const fontSize = parseFloat(getComputedStyle(label).fontSize);
    return { boxWidth: box.width, fontSize, lines: lines.size, textRight: text.right, cardRight: card.right, textLeft: text.left, boxRight: box.right };
  });
}

function assertCheckLine(line, where) {
  assert.ok(line.boxWidth <= 2 * line.fontSize, `${where}: the checkbox is ${line.boxWidth}px wide`);
  assert.ok(line.lines >= 1 && line.lines <= 2, `${where}: the label's words take ${line.lines} lines`);
  assert.ok(line.textLeft >= line.boxRight - 1, `${where}: the words start after the box`);
  assert.ok(line.textRight <= line.cardRight + 1, `${where}: the words run out of the card (${line.textRight} > ${line.cardRight})`);
}

test(`${ENGINE}: the page opens and gets ready with the browser language "${INVALID_LANGUAGE}", under its Content-Security-Policy`, { timeout: LIMIT_MS }, async () => {
  await session.goto(LAB_URL);
  await waitForState('ready');
  // What the browser reports, from Navigator's own getter: the page puts a valid tag in front of it.
  const reported = await session.evaluate(() => Object.getOwnPropertyDescriptor(Navigator.prototype, 'language').get.call(navigator));
  assert.equal(reported, INVALID_LANGUAGE, 'the browser reports a language that is not a valid tag');
  assert.match(await session.text('#backend-info'), /Backend: CPU|No WebGPU here/);
  // An injected inline script and inline handler are refused, and the refusal is reported.
  const { injectedRan, handlerRan } = await session.evaluate(tryInjectionIn);
  assert.deepEqual({ injectedRan, handlerRan }, { injectedRan: false, handlerRan: false }, 'an injected inline script ran');
  const violations = await session.violations();
  assert.ok(violations.some((d) => d.startsWith('script-src')), `no script-src violation reported: ${violations}`);
  assertCheckLine(await checkLine(session), 'a desktop window');
  opened = true;
});

test(`${ENGINE}: the default run trains to a test MSE below 0.03`, { timeout: LIMIT_MS }, async () => {
  needsPage();
  const fields = await session.evaluate(() => ['model', 'subset', 'epochs'].map((id) => document.getElementById(id).value));
  assert.deepEqual(fields, ['conv', '10000', '2'], 'the defaults this journey is about');
  await session.click('#train');
  await session.waitFor(() => document.getElementById('status-message').textContent.startsWith('Done'), undefined, {
    timeout: RUN_MS,
    what: 'the run to be done',
    describe: () => where(),
  });
  await waitForState('ready');
  const mse = Number(await session.evaluate(() => document.getElementById('latest-test').dataset.value));
  assert.ok(mse > 0 && mse < 0.03, `test MSE ${mse}`);
  // Read once the status says Done: the progress line must say so too, not the last step's line.
  const progress = await session.text('#progress-text');
  assert.match(progress, /^2 epochs done · [\d,]+ images\/s/);
  const workers = await session.evaluate(() => document.getElementById('backend-info').dataset.cpuWorkers);
  const cores = await session.evaluate(() => navigator.hardwareConcurrency);
  // What this engine offers here, for the README's table of engines.
  console.log(`# ${ENGINE}: test MSE ${mse.toFixed(4)}; "${progress}"; ${workers} CPU worker(s), the browser reports ${cores} cores`);
  assert.match(await session.text('#status-message'), /^Done: 2 epochs, 626 steps/);
});

test(`${ENGINE}: a drawn digit is reconstructed and read`, { timeout: LIMIT_MS }, async () => {
  needsPage();
  await session.drawOn('#pad', [
    [0.5, 0.15],
    [0.5, 0.85],
  ]);
  await session.waitFor(wholeDrawingReadIn, undefined, {
    timeout: 60_000,
    what: 'a guess for the whole drawn digit',
    describe: () => where(),
  });
  assert.ok(await drawn(session, '#pad-output'), 'the drawing is reconstructed');
  assert.equal(await session.evaluate(() => document.getElementById('guesses-knn').dataset.top), '1', 'a drawn 1 is read as a 1');
  await session.screenshot(join(ARTIFACTS, `journey-${ENGINE}.png`));
});

test(`${ENGINE}: a model file loads, and a corrupt one is refused with the model kept`, { timeout: LIMIT_MS }, async () => {
  needsPage();
  const keepStatus = () => session.text('#keep-status');
  const load = async (path) => {
    const shown = await session.evaluate(() => document.getElementById('keep-status').textContent);
    await session.setFile('#load-model', path);
    await session.waitFor(
      (old) => {
        const now = document.getElementById('keep-status').textContent;
        return now !== old && /^(Loaded|Could not load)/.test(now);
      },
      shown,
      { timeout: 60_000, what: `${path} to be read`, describe: () => where() },
    );
    await waitForState('ready');
  };
  await load(MODEL_FILE);
  assert.match(await keepStatus(), /^Loaded .*a conv model/);
  const whole = await readFile(MODEL_FILE);
  const cut = join(scratch, 'cut.bin');
  await writeFile(cut, whole.subarray(0, whole.length >> 1));
  await load(cut);
  assert.match(await keepStatus(), /Could not load cut\.bin.*unchanged/);
  assert.match(await session.text('#fact-model'), /^conv/);
  // The loaded model is still there and still trains.
  await session.click('#step');
  await session.waitFor(() => /^Trained one batch/.test(document.getElementById('status-message').textContent), undefined, {
    timeout: RUN_MS,
    what: 'one step',
    describe: () => where(),
  });
  await waitForState('ready');
});

test(`${ENGINE}: no page errors, console errors or other policy violations`, async () => {
  needsPage();
  // The refusals of the injected script above are the browser's console errors that this test
  // caused; any other counts.
  const problems = (await session.problems()).filter((p) => !/Content.Security.Policy|inline script|inline event handler/i.test(p));
  assert.deepEqual(problems, []);
  const violations = await session.violations();
  assert.ok(violations.every((d) => d.startsWith('script-src')), `violations besides the injected script: ${violations}`);
});

test(`${ENGINE}: the page keeps itself for offline use, and the next visit opens from that copy and trains`, { timeout: LIMIT_MS }, async () => {
  needsPage();
  const line = () => document.getElementById('offline-info').dataset.state;
  await session.waitFor((want) => document.getElementById('offline-info').dataset.state === want, 'saved', {
    timeout: READY_MS,
    what: 'the page to be saved for offline use',
    describe: async () => `the offline line: ${await session.text('#offline-info')}; ${await where()}`,
  });
  await session.goto(LAB_URL);
  await waitForState('ready');
  // Said once the page has started and timed its backends, with the build the copy holds.
  await session.waitFor(() => !!document.getElementById('offline-info').dataset.version, undefined, {
    timeout: READY_MS,
    what: 'the copy to say its build',
    describe: async () => `the offline line: ${await session.text('#offline-info')}`,
  });
  assert.equal(await session.evaluate(line), 'cached');
  assert.match(await session.text('#offline-info'), /^Running from the copy saved in this browser \(build [0-9a-f]{12}\): it works without a network, with the data it has loaded \(10,000 training images\)\.$/);
  assert.equal(await session.evaluate(() => !!navigator.serviceWorker.controller), true, 'the page came through its service worker');
  // The training worker's scripts and wasm come through it too.
  await session.click('#step');
  await session.waitFor(() => /^Trained one batch/.test(document.getElementById('status-message').textContent), undefined, {
    timeout: RUN_MS,
    what: 'one step',
    describe: () => where(),
  });
  const problems = (await session.problems()).filter((p) => !/Content.Security.Policy|inline script|inline event handler/i.test(p));
  assert.deepEqual(problems, []);
});

test(`${ENGINE}: in a phone-sized window the page fits, a digit is drawn and reconstructed, and one step trains`, { timeout: LIMIT_MS }, async () => {
  const phone = await openEngine(ENGINE, { viewport: PHONE });
  try {
    await phone.goto(LAB_URL);
    await waitForState('ready', READY_MS, phone);
    const widths = await phone.evaluate(() => ({ page: document.documentElement.scrollWidth, window: document.documentElement.clientWidth }));
    assert.ok(widths.window <= PHONE_WIDEST, `the window is ${widths.window}px wide`);
    assert.ok(widths.page <= widths.window, `the page is ${widths.page}px wide in a ${widths.window}px window`);
    assertCheckLine(await checkLine(phone), 'a phone-sized window');
    await phone.drawOn('#pad', [
      [0.3, 0.2],
      [0.7, 0.2],
      [0.45, 0.85],
    ]);
    await phone.waitFor(() => document.getElementById('pad-output').dataset.empty === 'no', undefined, {
      timeout: 60_000,
      what: 'the drawing to be reconstructed',
      describe: () => where(phone),
    });
    // An untrained model's reconstruction is a flat grey: the model's input is what shows the stroke.
    assert.ok(await drawn(phone, '#pad-input'), 'the drawing is the model input');
    await phone.click('#step');
    await phone.waitFor(() => /^Trained one batch/.test(document.getElementById('status-message').textContent), undefined, {
      timeout: RUN_MS,
      what: 'one step',
      describe: () => where(phone),
    });
    await phone.screenshot(join(ARTIFACTS, `journey-${ENGINE}-phone.png`));
    assert.deepEqual(await phone.problems(), []);
  } finally {
    await phone.close();
  }
});

if (ENGINE === 'firefox') {
  test('firefox: WebGPU on Mesa lavapipe trains both models a few steps with the CPU losses, in the training worker', { timeout: LIMIT_MS }, async () => {
    const gpu = await openEngine('firefox', { webgpu: true });
    try {
      // The page on the CPU, so that nothing but this test uses WebGPU.
      await gpu.goto(new URL('?backend=cpu', LAB_URL).href);
      await waitForState('ready', READY_MS, gpu);
      // Through the page's own training worker, where WebGPU trains in the page: there each
      // step's losses come back through Firefox's slow completion poll, which the worker nudges
      // (www/js/worker/firefoxpoll.js), so this also checks that nudging leaves the losses alone.
      const result = await gpu.evaluate(async (steps) => {
        const { LabWorker } = await import(new URL('js/lab/labworker.js', location.href).href);
        const worker = new LabWorker({ name: 'journey test worker' });
        await worker.init('cpu');
        const index = await (await fetch('data/index.json')).json();
        const chunk = new Uint8Array(await (await fetch(`data/${index.train[0].file}`)).arrayBuffer());
        const adapter = await navigator.gpu?.requestAdapter();
        const losses = async (backend, model) => {
          const lab = await worker.createLab(backend);
          await lab.addData('train', chunk);
          await lab.reset({ model, batchSize: 32, learningRate: 1e-3, seed: 3 });
          const out = [];
          while (out.length < steps) out.push(...(await lab.step(steps - out.length)));
          await lab.free();
          return out;
        };
        const out = { adapter: adapter ? [adapter.info?.vendor, adapter.info?.architecture, adapter.info?.description].join('/') : null };
        for (const model of ['dense', 'conv']) out[model] = { cpu: await losses('cpu', model), webgpu: await losses('webgpu', model) };
        worker.terminate('the test is over');
        return out;
      }, 3);
      assert.ok(result.adapter !== null, 'Firefox with the WebGPU prefs has an adapter');
      console.log(`# firefox WebGPU adapter "${result.adapter}": ${JSON.stringify({ dense: result.dense, conv: result.conv })}`);
      for (const model of ['dense', 'conv']) {
        const { cpu, webgpu } = result[model];
        assert.equal(webgpu.length, cpu.length);
        for (const [step, c] of cpu.entries()) {
          // Sums run in another order on the GPU: equal up to float rounding, not bit for bit.
          assert.ok(Math.abs(c - webgpu[step]) <= 1e-3 * Math.abs(c), `${model} step ${step}: cpu ${cpu} webgpu ${webgpu}`);
        }
      }
      assert.deepEqual(await gpu.problems(), []);
    } finally {
      await gpu.close();
    }
  });
}
