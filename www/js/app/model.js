// Making a model: the backend's Lab, the subset's data (fetching only chunks not cached yet), a
// fresh or loaded model, and what starts over with it (the chart, the facts, the reconstruction
// grid, the predictors).
import { createLab, BACKEND_NAMES, showBackendInfo } from './backend.js';
import { measureDeadCode, showCode } from './codefacts.js';
import { GRID_DIGITS, TEST_IMAGES } from '../shared/constants.js';
import { chunksFor } from '../data/data.js';
import { poolSize } from '../lab/pool.js';
import { defaultInterpolationEnds, drawing, forgetOldModel, pad } from './insight.js';
import { app, chart, chunks, updateSettingsNote, view } from './state.js';
import { formatNumber } from '../views/ui.js';

// Before about this many steps both models sit near "the average digit" (README, compare mode:
// after 313 steps both are still leaving that plateau).
const EARLY_STEPS = 300;

/** The index entries `settings` trains and tests on: { test, train }. */
export function entriesFor(settings) {
  return { test: chunksFor(app.index.test, TEST_IMAGES), train: chunksFor(app.index.train, settings.subset) };
}

/** Fetches the chunks of `entries` not cached yet, showing progress. */
export async function fetchChunks({ test, train }) {
  const all = [...test, ...train];
  if (all.some((e) => !chunks.has(e.file))) view.setStatus('Fetching MNIST…');
  await chunks.fetchAll(all, showFetchProgress);
}

/** Gives `lab` the (cached) chunks of `entries`. Chunks are copied: the page keeps them. */
export async function addChunks(lab, { test, train }) {
  for (const e of test) await lab.addData('test', chunks.get(e.file));
  for (const e of train) await lab.addData('train', chunks.get(e.file));
}

/**
 * Makes the page match `settings`: the backend's Lab, the subset's data, and a fresh model.
 * Used at start-up and by Train and Reset.
 */
export async function prepare(settings, { fallBackToCpu = false } = {}) {
  // Until the old model is touched, a failure (no WebGPU, a corrupt chunk) leaves it usable.
  // A new Lab for a new backend, or for a model or batch size that a CPU pool of another size suits.
  const resize = app.lab?.backend === 'cpu' && settings.backend === 'cpu' && app.lab.workers !== poolSize(settings);
  if (!app.lab || app.labBackend !== settings.backend || resize) {
    view.setStatus(`Starting the ${BACKEND_NAMES[settings.backend]} backend…`);
    const lab = await createLab(app.worker, settings.backend, settings, fallBackToCpu ? 'WebGPU did not start' : null);
    settings = { ...settings, backend: lab.backend };
    const old = app.lab;
    app.modelReady = false;
    app.lab = lab;
    app.labBackend = lab.backend;
    app.labFiles = '';
    await old?.free(); // the old Lab's GPU buffers go now, not when the garbage collector gets to them
  }
  showBackendInfo(settings.backend);

  const entries = entriesFor(settings);
  await fetchChunks(entries);
  const lab = app.lab;
  app.modelReady = false;
  await loadData(lab, entries);
  await lab.reset(settings.model, settings.batchSize, settings.learningRate, settings.seed, 0, settings.codeActivation);
  app.snap = lab.snap;
  await modelChanged(settings, null);
}

/** Gives `lab` the chunks' images, unless it has exactly those already. */
export async function loadData(lab, entries) {
  const files = [...entries.test, ...entries.train].map((e) => e.file).join(',');
  if (app.labFiles === files && app.lab === lab) return;
  view.setStatus('Unpacking the images…');
  await lab.clearData();
  app.labFiles = '';
  await addChunks(lab, entries);
  app.labFiles = files;
  app.gridPixels = await lab.testPixels(0, GRID_DIGITS);
  app.testLabels = await lab.testLabels(0, lab.snap.testCount);
  view.showOriginals(app.gridPixels, app.testLabels.subarray(0, GRID_DIGITS));
  defaultInterpolationEnds();
}

/**
 * After a fresh or loaded model: the chart, facts, grid and predictors start over. A loaded
 * model's code is the file's: the form shows it, and its dead code numbers are counted at once.
 */
export async function modelChanged(settings, loaded) {
  const snap = app.snap;
  const applied = { ...settings, codeActivation: snap.codeActivation ?? settings.codeActivation };
  Object.assign(app, { loaded, applied, modelReady: true, trainedSteps: 0, msPerStep: null, lastTestMse: null, deadCode: null });
  if (loaded && snap.model === 'dense') view.setField('codeActivation', applied.codeActivation);
  chart.clear();
  view.setLatestLoss(null);
  view.setLatestTest(null);
  view.setFacts({
    model: snap.model === 'conv' ? 'convolutional' : snap.model,
    parameters: snap.parameterCount,
    images: `${formatNumber(snap.trainCount)} train, ${formatNumber(snap.testCount)} test`,
  });
  showCode();
  if (loaded) await measureDeadCode();
  view.setProgress(
    0,
    loaded
      ? `Loaded from ${loaded}: Resume or Step trains on from it, ${snap.batchesPerEpoch} batches of ${settings.batchSize} per epoch.`
      : `Not trained yet: ${snap.batchesPerEpoch} batches of ${settings.batchSize} per epoch.`,
  );
  forgetOldModel();
  view.setProjectionChoices(snap.latentSize);
  await refreshGrid();
  drawing();
  updateSettingsNote();
}

function showFetchProgress({ loadedBytes, totalBytes: total, doneChunks, totalChunks }) {
  if (totalChunks === 0) return;
  const mb = (n) => (n / 1e6).toFixed(1);
  view.setProgress(
    total ? loadedBytes / total : null,
    `Fetching data: ${doneChunks} of ${totalChunks} chunks, ${mb(loadedBytes)} of ${mb(total)} MB`,
  );
}

/** Reconstructs the grid's test digits with the model as it is now. */
export async function refreshGrid() {
  const lab = app.lab;
  if (!lab || !app.gridPixels) return;
  const t0 = performance.now();
  const steps = app.trainedSteps;
  const out = await lab.reconstruct(app.gridPixels);
  app.gridMs = performance.now() - t0;
  app.lastGridAt = performance.now();
  app.gridStep = steps;
  // The drawing's reconstruction follows the model too.
  if (!pad.isEmpty) drawing();
  view.showReconstructions(
    out,
    steps === 0 && app.loaded
      ? `Top: test digits. Bottom: rebuilt by the model loaded from ${app.loaded}, from its ${app.snap.latentSize}-number code.`
      : steps === 0
      ? "Top: test digits. Bottom: the untrained model's output, noise until it learns to copy the top row."
      : `Top: test digits. Bottom: rebuilt from a ${app.snap.latentSize}-number code after ${formatNumber(steps)} step${steps === 1 ? '' : 's'}.` +
          // What a short run looks like: a few hundred steps only start to leave the plateau.
          (steps < EARLY_STEPS ? ' At first every digit comes back as the same blurry average digit; shapes appear after a few hundred steps.' : ''),
  );
}
