// Keeping models: Download, Load model file, the finished model kept in this browser and
// offered on the next visit.
import { modelChanged } from './model.js';
import { checkpointOf } from './recovery.js';
import { app, can, chart, message, setMode, view } from './state.js';
import { downloadFile, keepModel, keptModel, readFile } from '../data/store.js';
import { stopLoop } from './training.js';
import { formatNumber } from '../views/ui.js';

// Mirrors MAX_FILE_BYTES in src/checkpoint.rs (64 MiB), which refuses larger files anyway:
// checked here on the file's size, so a huge file is refused before it is read into memory.
const MAX_MODEL_FILE = 64 * 1024 * 1024;

function trainingSummary() {
  return {
    steps: app.trainedSteps,
    epochs: app.snap?.epoch ?? 0,
    train_images: app.snap?.trainCount ?? 0,
    batch_size: app.applied?.batchSize,
    learning_rate: app.applied?.learningRate,
    seed: app.applied?.seed,
    backend: app.labBackend,
    test_mse: app.lastTestMse,
    smoothed_train_loss: chart.latestSmoothed,
    saved_by: 'page',
  };
}

/** The current model as a model file, with how it was trained. */
export async function modelBytes() {
  return app.lab.save(JSON.stringify(trainingSummary()));
}

export async function onSaveModel() {
  if (!app.modelReady) return;
  try {
    const bytes = await modelBytes();
    downloadFile(bytes, `${app.snap.model}-autoencoder-${app.trainedSteps}-steps.bin`);
    view.setKeepStatus(`Downloaded the ${app.snap.model} model (${formatNumber(bytes.length)} bytes).`);
  } catch (err) {
    view.setKeepStatus(`Could not save the model: ${message(err)}`);
  }
}

export async function onLoadModel(e) {
  const file = e.target.files?.[0];
  e.target.value = ''; // choosing the same file again must fire `change` again
  if (file) await loadModelBytes(() => readFile(file, MAX_MODEL_FILE), file.name);
}

/** Loads a model file into the current Lab; a bad file leaves the current model as it was. */
async function loadModelBytes(getBytes, name) {
  if (!can('loadModel')) {
    view.setKeepStatus('Wait until the page is ready (or pause training), then load the file.');
    return;
  }
  const settings = app.applied;
  // Said at once, so that the line never shows the last file's outcome while this one loads.
  view.setKeepStatus(`Loading ${name}…`);
  setMode('busy');
  await stopLoop();
  try {
    const bytes = await getBytes();
    const summaryText = await app.lab.load(bytes, settings.model, settings.batchSize, settings.learningRate, settings.seed);
    app.snap = app.lab.snap;
    await modelChanged(settings, name);
    const summary = JSON.parse(summaryText || 'null');
    const trained = summary?.steps ? `, trained for ${formatNumber(summary.steps)} steps` : '';
    view.setKeepStatus(`Loaded ${name}: a ${app.snap.model} model${trained}. Train goes on from it with Resume or Step; Train starts a fresh one.`);
    view.setStatus(`Loaded ${name}.`);
  } catch (err) {
    const hint = /was asked for/.test(message(err)) ? ' Choose that model in the Training panel, then load the file again.' : '';
    view.setKeepStatus(`Could not load ${name}: ${message(err)}.${hint} The current model is unchanged.`);
    view.setStatus(`Could not load ${name}: the current model is unchanged.`, 'error');
  }
  setMode('idle');
}

/** The finished model stays in this browser, offered on the next visit. */
export async function keepInBrowser() {
  try {
    const bytes = await modelBytes();
    // The same read serves as the checkpoint, which the loop would otherwise read again next.
    app.checkpoint = checkpointOf(bytes);
    await keepModel(app.snap.model, bytes, trainingSummary());
  } catch (err) {
    // Keeping is a convenience: say why it did not happen, but do not stop anything.
    view.setKeepStatus(`This browser did not keep the model: ${message(err)}`);
  }
}

export async function offerKeptModels() {
  const kept = new Map();
  try {
    for (const kind of ['dense', 'conv']) kept.set(kind, await keptModel(kind));
  } catch {
    // no storage here: nothing to offer
  }
  const offers = [...kept].filter(([, model]) => model).map(([kind, model]) => ({
    kind,
    label: `Load the ${kind} model kept on ${new Date(model.savedAt).toLocaleString()} (${formatNumber(model.summary?.steps ?? 0)} steps)`,
  }));
  view.offerKeptModels(offers, async (kind) => {
    if (app.applied?.model !== kind) {
      view.setKeepStatus(`Choose the ${kind === 'conv' ? 'convolutional' : 'dense'} model and press Reset first, then load it.`);
      return;
    }
    await loadModelBytes(async () => kept.get(kind).bytes, `the kept ${kind} model`);
  });
}
