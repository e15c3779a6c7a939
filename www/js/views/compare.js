// The seed's experiment, live: both autoencoders trained in this tab on the same batches in the
// same order (same data, same seed, so the same shuffles), one chart with both loss curves, a
// table of what each reached, and a conclusion drawn from those numbers. The fair variant gives
// both the same code size, to separate architecture from the 3-number bottleneck; "as the seed
// wrote it" puts a ReLU on the dense model's code, which with some seeds dies (codefacts.js).
import { LossChart } from './chart.js';
import { codeText, deadCodeSentence } from '../shared/codetext.js';
import { KNN_K, LINEAR_EPOCHS, PREDICT_TRAIN } from '../shared/constants.js';
import { formatLoss, formatNumber, modelName } from '../shared/format.js';
import { $ } from './ui.js';

const MODELS = ['dense', 'conv'];
const STEPS_PER_CALL = 4;

// As psnr in src/evaluate.rs, floor included (f32::MIN_POSITIVE), so the page and the command line
// give a perfect reconstruction the same finite figure.
const F32_MIN_POSITIVE = 2 ** -126;
const psnr = (mse) => 10 * Math.log10(1 / Math.max(mse, F32_MIN_POSITIVE));

export class Compare {
  #chart;
  #stop = false;
  #results = new Map(); // variant ("seed", "seed-relu" or the shared code size) -> finished rows, this session

  constructor() {
    this.#chart = new LossChart($('compare-chart'), {
      series: [
        { name: 'dense', color: 'purple' },
        { name: 'conv', color: 'green' },
      ],
      emptyText: 'Press Compare: both models train here on the same batches, step by step.',
    });
  }

  stop() {
    this.#stop = true;
  }

  /**
   * Trains both models for `settings.epochs` epochs. `choice` is { latent, denseActivation }
   * (latent 0: the seed's sizes); `makeLab(model)` resolves to a Lab with the data loaded and a
   * fresh model of that choice (a RemoteLab); `say(text)` reports progress. Resolves to the
   * table's rows.
   */
  async run({ settings, choice, makeLab, say }) {
    const { latent } = choice;
    this.#stop = false;
    this.#chart.clear();
    this.#showTable(null);
    this.#showConclusion(null);
    const labs = [];
    try {
      for (const model of MODELS) {
        say(`Comparing: making the ${modelName(model)} model…`);
        labs.push(await makeLab(model));
      }
      const rows = MODELS.map((model, i) => ({
        model,
        parameters: 0,
        latent: 0,
        steps: 0,
        lossSum: 0,
        minLoss: Infinity,
        ms: 0,
        testMse: null,
        knn: null,
        linear: null,
        dead: null,
        lab: labs[i],
      }));
      for (const row of rows) {
        row.parameters = row.lab.snap.parameterCount;
        row.latent = row.lab.snap.latentSize;
        row.activation = row.lab.snap.codeActivation;
      }
      const total = rows[0].lab.snap.batchesPerEpoch * settings.epochs;

      // Lockstep: a few steps of one model, then the same steps of the other.
      while (!this.#stop && rows[0].steps < total) {
        for (const [i, row] of rows.entries()) {
          const epochBefore = row.lab.snap.epoch;
          const losses = await row.lab.step(STEPS_PER_CALL);
          // The first call compiles kernels: leave it out of images/s.
          if (row.steps > 0) row.ms += row.lab.lastMs;
          else row.firstCall = losses.length;
          row.steps += losses.length;
          for (const l of losses) {
            row.lossSum += l;
            row.minLoss = Math.min(row.minLoss, l);
          }
          this.#chart.addLosses(losses, i);
          const epoch = row.lab.snap.epoch;
          if (epoch > epochBefore) {
            ({ testMse: row.testMse } = await row.lab.evaluate());
            this.#chart.addTestPoint(row.steps, epoch, row.testMse, i);
          }
        }
        say(`Comparing: step ${formatNumber(rows[0].steps)} of ${formatNumber(total)} for each model…`);
      }
      if (rows[0].steps === 0) throw new Error('stopped before the first step');

      for (const row of rows) {
        say(`Comparing: measuring the ${modelName(row.model)} model…`);
        ({ testMse: row.testMse } = await row.lab.evaluate());
        const report = await row.lab.fitPredictors(PREDICT_TRAIN, KNN_K, LINEAR_EPOCHS);
        row.knn = report.knnAccuracy;
        row.linear = report.linearAccuracy;
        row.dead = report.deadCodeUnits;
        const timedImages = (row.steps - row.firstCall) * settings.batchSize;
        row.imagesPerSec = row.ms > 0 ? (1000 * timedImages) / row.ms : null;
      }
      const variant = latent ? String(latent) : choice.denseActivation === 'relu' ? 'seed-relu' : 'seed';
      this.#results.set(variant, rows);
      this.#showTable(rows);
      this.#showConclusion(rows, latent);
      return rows;
    } finally {
      await Promise.all(labs.map((lab) => lab.free()));
    }
  }

  #showTable(rows) {
    const table = $('compare-table');
    table.dataset.filled = rows ? 'yes' : 'no';
    const get = (model) => rows?.find((r) => r.model === model);
    const lines = [
      ['Parameters', (r) => formatNumber(r.parameters)],
      ['Code size', (r) => String(r.latent)],
      ['Code', (r) => codeText(r.latent, r.activation, r.dead)],
      ['Steps', (r) => formatNumber(r.steps)],
      ['Mean training loss', (r) => formatLoss(r.lossSum / r.steps)],
      ['Min training loss', (r) => formatLoss(r.minLoss)],
      ['Test MSE', (r) => formatLoss(r.testMse)],
      ['PSNR', (r) => `${psnr(r.testMse).toFixed(1)} dB`],
      ['k-NN accuracy (k=5)', (r) => `${(100 * r.knn).toFixed(1)}%`],
      ['Linear accuracy', (r) => `${(100 * r.linear).toFixed(1)}%`],
      ['Images/s', (r) => (r.imagesPerSec ? formatNumber(Math.round(r.imagesPerSec)) : '–')],
    ];
    const body = table.tBodies[0];
    body.replaceChildren();
    for (const [label, show] of lines) {
      const tr = body.insertRow();
      const th = document.createElement('th');
      th.scope = 'row';
      th.textContent = label;
      tr.append(th);
      for (const model of MODELS) {
        const td = tr.insertCell();
        td.dataset.model = model;
        td.textContent = rows ? show(get(model)) : '–';
      }
    }
  }

  /** The conclusion, with data-dead-code naming each model whose whole code died (page tests). */
  #showConclusion(rows, latent) {
    const el = $('compare-conclusion');
    el.textContent = rows ? this.#conclusion(rows, latent) : '';
    el.dataset.deadCode = (rows ?? []).filter((r) => r.dead > 0 && r.dead === r.latent).map((r) => r.model).join(',');
  }

  #conclusion(rows, latent) {
    const [dense, conv] = rows;
    const better = conv.testMse < dense.testMse ? conv : dense;
    const worse = better === conv ? dense : conv;
    const ratio = worse.testMse / better.testMse;
    const parts = [
      `After ${formatNumber(dense.steps)} steps on the same batches, the ${modelName(better.model)} model reconstructs ` +
        `better: test MSE ${formatLoss(better.testMse)} against ${formatLoss(worse.testMse)} ` +
        `(${ratio.toFixed(1)}x lower), with ${formatNumber(better.parameters)} parameters against ` +
        `${formatNumber(worse.parameters)}.`,
      `Its codes also sort digits ${better.knn >= worse.knn ? 'better' : 'worse'}: k-NN accuracy ` +
        `${(100 * better.knn).toFixed(1)}% against ${(100 * worse.knn).toFixed(1)}%.`,
    ];
    const dead = rows.map((r) => deadCodeSentence(modelName(r.model), { units: r.latent, dead: r.dead })).filter(Boolean);
    parts.push(...dead);
    if (!latent) {
      parts.push(
        `But the codes differ in size (${dense.latent} numbers against ${conv.latent}): choose an equal code size ` +
          'and compare again to see how much of the gap is the architecture and how much the bottleneck.',
      );
    } else {
      parts.push(`Both codes hold ${latent} numbers here, so the gap is the architecture's.`);
      const seed = this.#results.get('seed');
      if (seed) {
        const seedRatio = seed[0].testMse / seed[1].testMse;
        const fairRatio = dense.testMse / conv.testMse;
        const share =
          fairRatio <= 1
            ? 'all of the seed\'s gap: at equal size the dense model does as well or better'
            : fairRatio < seedRatio
              ? 'part of the seed\'s gap, the architecture the rest'
              : 'none of the seed\'s gap: it is the architecture\'s';
        parts.push(
          `With the seed's code sizes the dense model's MSE was ${seedRatio.toFixed(1)}x the conv model's; ` +
            `at equal size it is ${fairRatio.toFixed(1)}x, so the code size accounts for ${share}.`,
        );
      }
    }
    if (dense.steps < 300) {
      parts.push('This was a short run: below a few hundred steps both models still sit near the average digit.');
    }
    return parts.join(' ');
  }
}
