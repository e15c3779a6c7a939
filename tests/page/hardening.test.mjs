// The page against hostile input: its Content-Security-Policy is in force (an injected inline
// script does not run, and the page still trains on both backends under it), and model files
// mangled in the ways a fuzzer mangles them are refused without touching the model, its training
// or the models kept in the browser.
//
// LAB_MODEL_FILE: a conv model file written by the command line (build.sh trains one).
// LAB_SEED replays one set of mangled files; the seed in use is printed.
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { after, before, test } from 'node:test';
import { LAB_URL } from '../support/browser.mjs';
import { openLabPage, requireModelFile, setSettings, testNoProblems, waitForState } from '../support/pagekit.mjs';
import { seedFrom, splitmix } from '../support/random.mjs';

const MODEL_FILE = process.env.LAB_MODEL_FILE;
const SEED = seedFrom('LAB_SEED');
const READY_MS = 120_000;
const RUN_MS = 300_000;
const MANGLED_FILES = 24;

let browser;
let page;
const problems = [];

before(async () => {
  requireModelFile(MODEL_FILE);
  ({ browser, page } = await openLabPage(problems));
  console.log(`# mangled model files from seed ${SEED} (LAB_SEED=${SEED} replays them)`);
});

after(async () => {
  await browser?.close();
});

/**
 * Mangled copies of a model file, each one that must be refused: cut short, a header length
 * past the header, the header's JSON broken or naming another model or code size, garbage after
 * the marker, bytes flipped in the weights or appended to them.
 */
function mangle(whole, count, random) {
  const int = (n) => Math.floor(random() * n);
  const headerLength = whole.readUInt32LE(8);
  const headerEnd = 12 + headerLength;
  const header = whole.subarray(12, headerEnd).toString('utf8');
  const withHeader = (text) => {
    const json = Buffer.from(text, 'utf8');
    const length = Buffer.alloc(4);
    length.writeUInt32LE(json.length);
    return Buffer.concat([whole.subarray(0, 8), length, json, whole.subarray(headerEnd)]);
  };
  const kinds = [
    ['cut short', () => whole.subarray(0, int(whole.length - 1))],
    ['header length past the end', () => {
      const out = Buffer.from(whole);
      out.writeUInt32LE(whole.length + int(0xffffff00 - whole.length), 8);
      return out;
    }],
    ['header JSON broken', () => {
      const out = Buffer.from(whole);
      out[12 + int(Math.min(headerLength, 8))] = 0x7b ^ 0xff; // within the opening `{"model"`
      return out;
    }],
    ['header names the dense model', () => withHeader(header.replace('"model":"conv"', '"model":"dense"'))],
    ['header names another code size', () => {
      const latent = 1 + int(4095);
      return withHeader(header.replace(/"latent":\d+/, `"latent":${latent === 64 ? 65 : latent}`));
    }],
    ['garbage after the marker', () => Buffer.concat([whole.subarray(0, 8), Buffer.from(Array.from({ length: 64 + int(4096) }, () => int(256)))])],
    ['a weight byte flipped', () => {
      const out = Buffer.from(whole);
      const at = headerEnd + int(whole.length - headerEnd);
      out[at] ^= 1 << int(8);
      return out;
    }],
    ['bytes appended to the weights', () => Buffer.concat([whole, Buffer.from(Array.from({ length: 1 + int(64) }, () => int(256)))])],
  ];
  return Array.from({ length: count }, (_, i) => {
    const [what, make] = kinds[i % kinds.length];
    return { name: `mangled-${i}.bin`, what, buffer: make() };
  });
}

const status = () => page.locator('#status-message').innerText();
const keepStatus = () => page.locator('#keep-status').innerText();

async function stepOnce() {
  await page.click('#step');
  await page.waitForFunction(() => /^Trained one batch/.test(document.getElementById('status-message').textContent), null, {
    timeout: RUN_MS,
  });
  await waitForState(page, 'ready', READY_MS);
  return Number((await status()).match(/step ([\d,]+)/)[1].replace(/,/g, ''));
}

test('the page is served and written with its Content-Security-Policy, and an injected inline script does not run', { timeout: READY_MS }, async () => {
  const response = await fetch(LAB_URL);
  const header = response.headers.get('content-security-policy');
  assert.match(header ?? '', /script-src 'self' 'wasm-unsafe-eval'/, 'the server sends the policy');
  assert.match(header, /frame-ancestors 'none'/);
  // 'wasm-unsafe-eval' is allowed; the quote before 'unsafe-eval' keeps it from matching.
  assert.doesNotMatch(header, /'unsafe-inline'|'unsafe-eval'/, 'no inline script or JS eval is allowed');
  await page.goto(LAB_URL);
  await waitForState(page, 'ready', READY_MS);
  const meta = await page.locator('meta[http-equiv="Content-Security-Policy"]').getAttribute('content');
  assert.ok(header.startsWith(meta), 'the header is the page meta tag’s policy, plus frame-ancestors');
  const outcome = await page.evaluate(
    () =>
      new Promise((resolve) => {
        const violations = [];
        document.addEventListener('securitypolicyviolation', (e) => violations.push(e.violatedDirective));
        const script = document.createElement('script');
        script.textContent = 'window.injectedRan = true;';
        document.head.append(script);
        const handler = document.createElement('img');
        handler.setAttribute('onerror', 'window.handlerRan = true;');
        handler.src = 'data:,not an image';
        document.body.append(handler);
        setTimeout(() => resolve({ injectedRan: window.injectedRan === true, handlerRan: window.handlerRan === true, violations }), 500);
      }),
  );
  assert.equal(outcome.injectedRan, false, 'an injected <script> ran');
  assert.equal(outcome.handlerRan, false, 'an injected inline event handler ran');
  assert.ok(outcome.violations.some((d) => d.startsWith('script-src')), `no script-src violation reported: ${outcome.violations}`);
  // The refusals are the browser's console errors that this test caused; any other counts.
  problems.splice(0, problems.length, ...problems.filter((p) => !/Content Security Policy/.test(p)));
});

for (const backend of ['cpu', 'webgpu']) {
  test(`under the policy the conv model trains on the ${backend === 'cpu' ? 'CPU' : 'WebGPU'} backend`, { timeout: RUN_MS }, async () => {
    await setSettings(page, { model: 'conv', backend });
    await page.click('#reset');
    await waitForState(page, 'ready', READY_MS);
    assert.equal(await stepOnce(), 1);
    assert.equal(await stepOnce(), 2);
    assert.match(await page.locator('#backend-info').innerText(), backend === 'cpu' ? /CPU/ : /WebGPU/);
  });
}

test(`${MANGLED_FILES} mangled model files are refused, and the model, its training and the kept models stay as they were`, { timeout: RUN_MS }, async () => {
  const whole = await readFile(MODEL_FILE);
  await setSettings(page, { model: 'conv', backend: 'cpu' });
  await page.click('#reset');
  await waitForState(page, 'ready', READY_MS);
  assert.equal(await stepOnce(), 1);
  assert.equal(await stepOnce(), 2);
  const before = {
    model: await page.locator('#fact-model').innerText(),
    parameters: await page.locator('#fact-parameters').innerText(),
    latent: await page.locator('#fact-latent').innerText(),
    kept: await page.locator('#kept-offer').innerText(),
  };
  for (const file of mangle(whole, MANGLED_FILES, splitmix(SEED))) {
    await page.setInputFiles('#load-model', { name: file.name, mimeType: 'application/octet-stream', buffer: file.buffer });
    await page.waitForFunction(
      (name) => new RegExp(`^(Loaded|Could not load) ${name}`).test(document.getElementById('keep-status').textContent),
      file.name.replace('.', '\\.'),
      { timeout: 60_000 },
    );
    await waitForState(page, 'ready', READY_MS);
    const said = await keepStatus();
    assert.match(said, /^Could not load .*The current model is unchanged\.$/, `${file.name} (${file.what}, ${file.buffer.length} bytes) was not refused: ${said}`);
  }
  assert.deepEqual(
    {
      model: await page.locator('#fact-model').innerText(),
      parameters: await page.locator('#fact-parameters').innerText(),
      latent: await page.locator('#fact-latent').innerText(),
      kept: await page.locator('#kept-offer').innerText(),
    },
    before,
  );
  // Training goes on from where it was: the next step is the third.
  assert.equal(await stepOnce(), 3);
  // And the untouched file still loads, so the refusals were about the mangling.
  await page.setInputFiles('#load-model', MODEL_FILE);
  await page.waitForFunction(() => /^(Loaded|Could not load)/.test(document.getElementById('keep-status').textContent), null, { timeout: 60_000 });
  assert.match(await keepStatus(), /^Loaded /);
});

testNoProblems(problems);
