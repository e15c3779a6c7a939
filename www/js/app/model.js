// The one owner of the page's Lab and its model: every way a model comes to be (made fresh at
// start-up, by Train or Reset; loaded from a file; restored from the checkpoint after a lost
// worker; compare mode's own pair) goes through makeModel, and every model the page then shows
// through adoptModel, which starts over what depends on it (the chart, the facts, the
// reconstruction grid, the predictors). The Lab the page trains changes only in adoptLab.
import { chunksFor } from '../data/data.js';
import { poolSize } from '../lab/pool.js';
import { GRID_DIGITS, TEST_IMAGES } from '../shared/constants.js';
import { BACKEND_NAMES, formatNumber, modelName } from '../shared/format.js';
import { createLab, showBackendInfo } from './backend.js';
import { measureDeadCode, showCode } from './codefacts.js';
import { defaultInterpolationEnds, drawing, forgetOldModel } from './insight.js';
import { keepOffline } from './offline.js';
import { app, chunks, page, updateSettingsNote } from './state.js';

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
  if (all.some((e) => !chunks.has(e.file))) page.view.setStatus('Fetching MNIST…');
  const fresh = all.some((e) => !chunks.has(e.file));
  await chunks.fetchAll(all, showFetchProgress);
  // The chunks fetched go into the copy kept for offline use (app/offline.js), in the background.
  if (fresh) keepOffline();
}

/** Gives `lab` the (cached) chunks of `entries`. Chunks are copied: the page keeps them. */
export async function addChunks(lab, { test, train }) {
  for (const e of test) await lab.addData('test', chunks.get(e.file));
  for (const e of train) await lab.addData('train', chunks.get(e.file));
}

/**
 * Puts a model in `lab` for `settings`: the model file `bytes` if given (resolves to its training
 * summary, JSON; the code's activation is the file's, or for a PyTorch dense model whose file
 * cannot say it, `fileCode`: the form's), else a fresh one whose code has `latent` numbers (0:
 * the model's own size).
 */
export function makeModel(lab, settings, { bytes = null, latent = 0, fileCode = '' } = {}) {
  const { model, batchSize, learningRate, seed, codeActivation } = settings;
  if (bytes) return lab.load(bytes, { model, batchSize, learningRate, seed, codeActivation: fileCode });
  return lab.reset({ model, batchSize, learningRate, seed, latent, codeActivation });
}

/** `lab` becomes the page's Lab, with no model yet and no data; the old one is freed. */
export async function adoptLab(lab) {
  const old = app.lab;
  Object.assign(app, { lab, labBackend: lab.backend, labFiles: '', modelReady: false });
  // The old Lab's GPU buffers go now, not when the garbage collector gets to them.
  if (old !== lab) await old?.free();
}

/** The page has no Lab (its worker is gone) until adoptLab gives it one. */
export function dropLab() {
  Object.assign(app, { lab: null, labFiles: '', modelReady: false });
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
    page.view.setStatus(`Starting the ${BACKEND_NAMES[settings.backend]} backend…`);
    const lab = await createLab(app.worker, settings.backend, settings, fallBackToCpu ? 'WebGPU did not start' : null);
    settings = { ...settings, backend: lab.backend };
    await adoptLab(lab);
  }
  showBackendInfo(settings.backend);

  const entries = entriesFor(settings);
  await fetchChunks(entries);
  const lab = app.lab;
  app.modelReady = false;
  await loadData(lab, entries);
  await makeModel(lab, settings);
  await adoptModel(settings);
}

/**
 * Loads the model file `bytes` (named `name` on the page) into the page's Lab, with the current
 * model's training settings; resolves to the file's training summary (JSON). A PyTorch file is
 * whichever model its tensors show, a dense one with the form's code activation unless its
 * metadata says one. A bad file throws and leaves the current model as it was.
 */
export async function loadModelFile(bytes, name) {
  const fileCode = page.view.readFields().codeActivation;
  const summaryText = await makeModel(app.lab, app.applied, { bytes, fileCode });
  // The file may hold the other model (a PyTorch file says which by its tensors): the form shows it.
  const settings = { ...app.applied, model: app.lab.snap.model };
  page.view.setField('model', settings.model);
  await adoptModel(settings, { loaded: name });
  return summaryText;
}

/**
 * A new Lab on `settings.backend` in the page's new `worker`, holding `kept` (a checkpoint: its
 * weights) or, with none, a fresh model; `fallBack` says why, should WebGPU not start again.
 */
export async function restoreModel(worker, settings, kept, fallBack) {
  app.worker = worker;
  const lab = await createLab(worker, settings.backend, settings, fallBack);
  await adoptLab(lab);
  app.lostWhy = null;
  await loadData(lab, entriesFor(settings));
  await makeModel(lab, settings, { bytes: kept?.bytes });
  await adoptModel(settings, { loaded: kept?.loaded ?? null, restoredSteps: kept?.steps ?? 0 });
}

/** Gives `lab` the chunks' images, unless it has exactly those already. */
export async function loadData(lab, entries) {
  const files = [...entries.test, ...entries.train].map((e) => e.file).join(',');
  if (app.labFiles === files && app.lab === lab) return;
  page.view.setStatus('Unpacking the images…');
  await lab.clearData();
  app.labFiles = '';
  await addChunks(lab, entries);
  app.labFiles = files;
  app.gridPixels = await lab.testPixels(0, GRID_DIGITS);
  app.testLabels = await lab.testLabels(0, lab.snap.testCount);
  page.view.showOriginals(app.gridPixels, app.testLabels.subarray(0, GRID_DIGITS));
  defaultInterpolationEnds();
}

/** A Lab of its own in the page's worker with `entries`' images and a fresh model: compare mode's. */
export async function labWithModel(entries, settings, { latent }) {
  const lab = await app.worker.createLab(app.labBackend);
  await addChunks(lab, entries);
  await makeModel(lab, settings, { latent });
  return lab;
}

/**
 * The page takes on the model its Lab now holds, made with `settings`: fresh, loaded from the
 * file named `loaded`, or, with `restoredSteps`, the checkpoint's weights after that many steps.
 * A fresh or loaded model starts the chart, facts and figures over (a loaded model's code is the
 * file's: the form shows it, and its dead code numbers are counted at once); a restored one keeps
 * the run's curve up to its steps. Either way the grid, the predictors and the drawing follow it.
 */
export async function adoptModel(settings, { loaded = null, restoredSteps = null } = {}) {
  const { view, chart } = page;
  const snap = (app.snap = app.lab.snap);
  const restored = restoredSteps !== null;
  const applied = { ...settings, backend: app.lab.backend, codeActivation: snap.codeActivation ?? settings.codeActivation };
  Object.assign(app, { loaded, applied, modelReady: true, trainedSteps: restored ? restoredSteps : 0, msPerStep: null });
  if (restored) {
    // The curve goes back to where the kept weights were; the steps after them are gone. The
    // run's test MSE and dead-code count stay: they are the run's these weights come from.
    chart.truncate(restoredSteps);
  } else {
    Object.assign(app, { lastTestMse: null, deadCode: null });
    if (loaded && snap.model === 'dense') view.setField('codeActivation', applied.codeActivation);
    chart.clear();
    view.setLatestLoss(null);
    view.setLatestTest(null);
    view.setFacts({
      model: modelName(snap.model),
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
    view.setProjectionChoices(snap.latentSize);
  }
  forgetOldModel();
  await refreshGrid();
  drawing();
  updateSettingsNote();
}

function showFetchProgress({ loadedBytes, totalBytes: total, doneChunks, totalChunks }) {
  if (totalChunks === 0) return;
  const mb = (n) => (n / 1e6).toFixed(1);
  page.view.setProgress(
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
  if (!page.pad.isEmpty) drawing();
  page.view.showReconstructions(
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
