// What the model learned, shown: the drawing pad's reconstruction, the predictors read from the
// codes (accuracies, confusion matrix, guesses for the drawing), the latent map of the test
// digits (a pick decodes that point) and the interpolation between two test digits, whose ends
// are picked by clicking a digit of the grid or the map.
//
// The views it draws on (the pad, the map, the interpolation strip, the predictors' panel) are
// built by main.js and handed in through `page`; main.js also wires their events here: the pad's
// ink to `drawing`, a map pick to `mapPick`, a picked digit to `pickEnd`, a slot to `setActiveEnd`.
import { WorkerGone } from '../lab/labworker.js';
import { GRID_DIGITS, IMAGE_PIXELS, KNN_K, LINEAR_EPOCHS, PREDICT_TRAIN } from '../shared/constants.js';
import { formatNumber, message } from '../shared/format.js';
import { latestWins } from '../shared/latest.js';
import { knowDeadCode } from './codefacts.js';
import { app, can, page, predictorsFresh, setMode } from './state.js';

const INTERPOLATION_POINTS = 8;

/** Reconstructs the pad's drawing (and reads it, once the predictors are fitted). */
export const drawing = latestWins(reconstructDrawing);
/** Decodes the picked map point; while one decode runs, only the newest pick waits. */
export const mapPick = latestWins(decodePick);

// The interpolation's ends (test image numbers) and the end the next pick fills.
const ends = [null, null];
let activeEnd = 0;

// The last reconstruction, shown beside a newer input until its own comes: { output, steps }, the
// model's training steps when it was asked for.
let lastDrawing = null;

async function reconstructDrawing() {
  if (page.pad.isEmpty || !app.worker || app.lostWhy) {
    lastDrawing = null;
    page.view.showDrawing(null, null, 'draw a digit');
    page.predictView.showGuesses(null, 'Draw a digit to see what the predictors make of it.', page.pad.version);
    page.latentMap.mark(null);
    return;
  }
  let input;
  const ink = page.pad.version;
  try {
    input = await app.worker.prepareDrawing(page.pad.ink(), page.pad.width, page.pad.height);
  } catch (err) {
    // prepareDrawing refuses an empty pad ("nothing drawn"): say what to do.
    lastDrawing = null;
    page.view.showDrawing(null, null, /nothing drawn/i.test(message(err)) ? 'draw a digit' : message(err));
    return;
  }
  if (drawing.superseded()) return; // drawn on meanwhile: take the newer ink
  page.view.showDrawing(input, lastDrawing?.output ?? null, undefined, lastDrawing?.steps ?? null);
  try {
    if (!app.modelReady) {
      page.view.showDrawing(input, null, 'model loading…');
      return;
    }
    const steps = app.trainedSteps;
    const result = predictorsFresh()
      ? await app.lab.read(input).then((reading) => ({ output: reading.reconstruction, reading }))
      : { output: await app.lab.reconstruct(input), reading: null };
    lastDrawing = { output: result.output, steps };
    if (!drawing.superseded() && !page.pad.isEmpty) {
      page.view.showDrawing(input, result.output, undefined, steps);
      page.predictView.showGuesses(result.reading, guessesWhy(), ink);
      page.latentMap.mark(result.reading ? [result.reading.x, result.reading.y] : null);
    }
  } catch (err) {
    if (!(err instanceof WorkerGone)) page.view.setStatus(`Could not reconstruct the drawing: ${message(err)}`, 'error');
  }
}

function guessesWhy() {
  if (app.predictorsStep === null) return 'Fit the predictors to see guesses for your drawing.';
  if (!predictorsFresh()) return 'The model changed since the predictors were fitted: fit them again.';
  return '';
}

/**
 * A new model: the predictors, the map and the interpolation start over, and the drawing's last
 * reconstruction, the old model's, is not shown again beside the next input.
 */
export function forgetOldModel() {
  lastDrawing = null;
  app.predictorsStep = null;
  page.predictView.showReport(null, "Fit the predictors to read digits from this model's codes.");
  page.latentMap.clear('Fit the predictors to place the test digits on the map.');
  page.view.showMapDecoded(null, 'click the map');
  page.interpView.showStrip(null);
}

/** The Fit predictors button. */
export async function fitPredictors() {
  if (!can('fitPredictors')) return;
  const previous = app.mode;
  setMode('busy');
  page.view.setStatus('Fitting the predictors: encoding the images…');
  const report = await fitAndMap();
  if (report) {
    page.view.setStatus(`Predictors fitted: ${accuracies(report)} on the test digits. Draw a digit to see their guesses, or click the map.`);
  }
  setMode(previous);
}

/** "k-NN 80.1%, linear 75.0%" */
export const accuracies = (report) =>
  `k-NN ${(100 * report.knnAccuracy).toFixed(1)}%, linear ${(100 * report.linearAccuracy).toFixed(1)}%`;

/**
 * Encodes the images, fits k-NN and the linear classifier, scores them, draws the map and the
 * interpolation between the picked ends. Also the end of every finished run, so that a run
 * leaves nothing waiting for a button. Resolves to the report, or null (said why) on failure.
 */
export async function fitAndMap() {
  let report = null;
  try {
    const lab = app.lab;
    const steps = app.trainedSteps;
    report = await lab.fitPredictors(PREDICT_TRAIN, KNN_K, LINEAR_EPOCHS);
    app.predictorsStep = steps;
    knowDeadCode(report.deadCodeUnits, steps);
    page.predictView.showReport(
      report,
      `Fitted on the codes of ${formatNumber(report.trainCodes)} training digits ` +
        (app.loaded && steps === 0 ? `of the model loaded from ${app.loaded}; ` : `after ${formatNumber(steps)} steps; `) +
        `accuracy on ${formatNumber(report.testCodes)} test digits (chance is 10%).`,
    );
    page.view.projection = 'pca';
    await showMap();
    await showInterpolation();
  } catch (err) {
    report = null;
    if (!(err instanceof WorkerGone)) page.view.setStatus(`Could not fit the predictors: ${message(err)}`, 'error');
  }
  drawing();
  return report;
}

export async function changeProjection() {
  if (!predictorsFresh()) return;
  const value = page.view.projection;
  const [a, b] = value === 'pca' ? [0, 0] : value.split(',').map(Number);
  try {
    await app.lab.setProjection(value === 'pca' ? 'pca' : 'axes', a, b);
    await showMap();
    drawing();
  } catch (err) {
    page.view.setStatus(`Could not change the map: ${message(err)}`, 'error');
  }
}

async function showMap() {
  const value = page.view.projection;
  const points = await app.lab.mapPoints();
  const explained = await app.lab.mapExplained();
  const axes =
    value === 'pca'
      ? [0, 1].map((i) => `principal direction ${i + 1} (${(100 * explained[i]).toFixed(0)}% of the variance)`)
      : value.split(',').map((a) => `code number ${Number(a) + 1}`);
  page.latentMap.show(points, app.testLabels, axes);
  page.view.showMapDecoded(null, 'click the map');
}

async function decodePick(x, y) {
  if (!predictorsFresh()) {
    page.view.showMapDecoded(null, 'fit the predictors again');
    return;
  }
  try {
    page.view.showMapDecoded(await app.lab.decodePoint(x, y));
  } catch (err) {
    page.view.setStatus(`Could not decode that point: ${message(err)}`, 'error');
  }
}

/** The Interpolate button. */
export async function interpolate() {
  if (!can('interpolate')) return;
  await showInterpolation().catch((err) => page.view.setStatus(`Could not interpolate: ${message(err)}`, 'error'));
}

async function showInterpolation() {
  const [a, b] = ends;
  if (a === null || b === null) {
    page.interpView.setError('Pick both ends first: click a digit in the reconstructions or on the map.');
    return;
  }
  page.interpView.setError('');
  if (!predictorsFresh()) return;
  page.interpView.showStrip(await app.lab.interpolate(a, b, INTERPOLATION_POINTS), INTERPOLATION_POINTS, [a, b]);
}

/** The ends a page starts with: the grid's first two test digits. */
export function defaultInterpolationEnds() {
  if (ends[0] !== null) return;
  pickEnd(0).then(() => pickEnd(1));
}

/** The interpolation end (0 or 1) the next picked digit fills. */
export function setActiveEnd(slot) {
  activeEnd = slot;
  page.interpView.setActive(slot);
}

/**
 * Test image `index` becomes the highlighted end, shown with its image and label; the other end
 * is highlighted next. With both ends and fresh predictors, the strip is redrawn at once.
 */
export async function pickEnd(index) {
  if (!app.testLabels || index >= app.testLabels.length || !app.lab) return;
  const slot = activeEnd;
  setActiveEnd(1 - slot);
  try {
    const pixels =
      index < GRID_DIGITS ? app.gridPixels.subarray(index * IMAGE_PIXELS, (index + 1) * IMAGE_PIXELS) : await app.lab.testPixels(index, 1);
    ends[slot] = index;
    page.interpView.showEnd(slot, { index, label: app.testLabels[index], pixels });
    if (can('interpolate') && ends.every((e) => e !== null)) await showInterpolation();
  } catch (err) {
    if (!(err instanceof WorkerGone)) page.view.setStatus(`Could not pick that digit: ${message(err)}`, 'error');
  }
}
