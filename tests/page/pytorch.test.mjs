// PyTorch's door in the page, as a person uses it, in headless Chromium on the CPU backend: the
// study's conv model trained in PyTorch (tests/fixtures/pytorch/, tools/pytorch_interop.py) opens
// with Load model file and shows its reconstructions, its dead code numbers, its predictors and
// map; Download for PyTorch gives its state_dict back; a dense file takes the form's code
// activation and says so; a foreign file is refused naming the tensor, the model kept.
import assert from 'node:assert/strict';
import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { LAB_URL } from '../support/browser.mjs';
import { ARTIFACTS, browserForFile, canvasStats, isDrawn, testNoProblems, waitForState } from '../support/pagekit.mjs';
import { maxAbsDiff, readSafetensors, writeSafetensors } from '../support/safetensors.mjs';

const READY_MS = 120_000;
const RUN_MS = 300_000;
const fixturePath = (name) => new URL(`../fixtures/pytorch/${name}`, import.meta.url).pathname;

let page;
const problems = browserForFile(async (opened) => {
  page = opened.page;
  await mkdir(ARTIFACTS, { recursive: true });
});

const keepStatus = () => page.locator('#keep-status').innerText();

/** What the page says of its model. */
async function modelShown() {
  return {
    model: await page.locator('#fact-model').innerText(),
    parameters: await page.locator('#fact-parameters').innerText(),
    latent: await page.locator('#fact-latent').innerText(),
  };
}

/** Loads `file` (a path, or { name, mimeType, buffer }) with Load model file; returns what the Keep panel said. */
async function loadFile(file) {
  await page.setInputFiles('#load-model', file);
  await page.waitForFunction(() => /^(Loaded|Could not load)/.test(document.getElementById('keep-status').textContent), null, {
    timeout: 60_000,
  });
  await waitForState(page, 'ready', READY_MS);
  return keepStatus();
}

test('a PyTorch-trained conv model opens in the page: reconstructions, dead code numbers, predictors and map', { timeout: RUN_MS }, async () => {
  await page.goto(`${LAB_URL}?backend=cpu`);
  await waitForState(page, 'ready', READY_MS);
  // The form asks for the dense model: the file's tensors say conv, and the page follows them.
  await page.selectOption('#model', 'dense');
  await page.selectOption('#subset', '1000');
  await page.click('#reset');
  await page.waitForFunction(() => document.getElementById('fact-model').textContent.startsWith('dense'));
  await waitForState(page, 'ready', READY_MS);

  const said = await loadFile(fixturePath('conv.safetensors'));
  assert.match(said, /^Loaded conv\.safetensors: a PyTorch conv model with a 64-number code \(encoder\/decoder names\)\. /);
  assert.match(await page.locator('#status-message').innerText(), /^Loaded conv\.safetensors: a PyTorch conv model/);
  assert.equal(await page.locator('#model').inputValue(), 'conv', 'the form shows the model the file holds');
  assert.equal(await page.locator('#fact-model').innerText(), 'convolutional');
  // Its dead code numbers are counted at once, as for any loaded model.
  assert.match(await page.locator('#fact-latent').innerText(), /^64 numbers \(ReLU\), \d+ dead$/);
  const outputs = await canvasStats(page, '#recon-grid canvas.output');
  assert.ok(outputs.length > 0 && outputs.every(isDrawn), 'its reconstructions are drawn');

  await page.click('#fit-predictors');
  await page.waitForFunction(() => document.getElementById('accuracy-knn').dataset.value !== '', null, { timeout: RUN_MS });
  await waitForState(page, 'ready', READY_MS);
  // Chance is 10%; PyTorch's 300 steps give codes that sort most digits.
  const knn = Number(await page.locator('#accuracy-knn').getAttribute('data-value'));
  assert.ok(knn > 0.5, `k-NN accuracy ${knn}`);
  assert.equal(await page.locator('#latent-map').getAttribute('data-points'), '1000', 'every test digit is on the map');
  await page.screenshot({ path: join(ARTIFACTS, 'page-pytorch.png'), fullPage: true });
});

test('Download for PyTorch gives the state_dict back, in PyTorch names and layout', { timeout: 60_000 }, async () => {
  const [download] = await Promise.all([page.waitForEvent('download'), page.click('#save-pytorch')]);
  assert.match(download.suggestedFilename(), /^conv-autoencoder-0-steps\.safetensors$/);
  const path = join(ARTIFACTS, 'downloaded-conv.safetensors');
  await download.saveAs(path);
  const bytes = await readFile(path);
  const header = bytes.subarray(8, 8 + Number(bytes.readBigUInt64LE(0))).toString('utf8');
  assert.match(header, /^\{.*"encoder\.0\.weight":\{[^}]*"dtype":"F32"[^}]*"shape":\[16,1,3,3\]/);
  // Not trained since it was loaded: PyTorch's own tensors, to the bit.
  const theirs = readSafetensors(await readFile(fixturePath('conv.safetensors')));
  const ours = readSafetensors(bytes);
  assert.deepEqual(ours.names, theirs.names);
  for (const name of theirs.names) assert.equal(maxAbsDiff(ours.tensors[name].values, theirs.tensors[name].values), 0, name);
  assert.match(await keepStatus(), /^Downloaded the conv model for PyTorch .*strict=True/);
});

test('a foreign safetensors file is refused naming the tensor, and the model stays', { timeout: RUN_MS }, async () => {
  const before = await modelShown();
  const { tensors, metadata } = readSafetensors(await readFile(fixturePath('conv.safetensors')));
  delete tensors['decoder.4.bias'];
  const said = await loadFile({ name: 'missing.safetensors', mimeType: 'application/octet-stream', buffer: writeSafetensors(tensors, metadata) });
  assert.match(said, /^Could not load missing\.safetensors: .*"decoder\.4\.bias" is missing.*\. The current model is unchanged\.$/);
  assert.deepEqual(await modelShown(), before);
});

test("a PyTorch dense model takes the form's code activation, and the page says so", { timeout: RUN_MS }, async () => {
  await page.selectOption('#model', 'dense');
  await page.selectOption('#codeActivation', 'relu');
  const said = await loadFile(fixturePath('dense.safetensors'));
  assert.match(said, /^Loaded dense\.safetensors: a PyTorch dense model with a 3-number code .*relu code, as the Training panel's code activation says \(the file cannot say it\)/);
  assert.match(await page.locator('#fact-latent').innerText(), /^3 numbers \(ReLU\)/);
});

testNoProblems(problems);
