// Loss curves drawn by uPlot (vendored into www/vendor/ by ./build.sh build): training loss per
// step (raw, faint; smoothed, solid) and test MSE per epoch as points, on a log-scale y axis
// (loss falls by orders of magnitude), sharp on high-DPI screens (uPlot scales its canvas by
// devicePixelRatio). The element carries data-points / data-test-points / data-first-loss /
// data-last-smoothed / data-last-test / data-series-points so a page test can read what is
// plotted without reading pixels.
import uPlot from '../../vendor/uPlot.esm.js';

// Exponential moving average weight, debiased like TensorBoard's smoothing so the first points
// are not pulled towards 0.
const SMOOTHING = 0.85;

const COLORS = { axis: '#8a94a6', grid: '#e6e9ef', text: '#4a5568' };
const FONT = '12px system-ui, sans-serif';

// One curve per model; the compare view gives each model its own hue.
const SERIES_COLORS = {
  blue: { raw: 'rgba(59, 130, 246, 0.28)', smooth: '#2563eb', test: '#ea580c' },
  green: { raw: 'rgba(22, 163, 74, 0.25)', smooth: '#15803d', test: '#15803d' },
  purple: { raw: 'rgba(147, 51, 234, 0.25)', smooth: '#7e22ce', test: '#7e22ce' },
};

export class LossChart {
  #host;
  #plot;
  #empty;
  // Per curve: raw loss per step (step i + 1 is losses[i]), its smoothing, its test points, and
  // `testColumn`, the test points as uPlot wants them (one value or null per step).
  #series;
  #steps = []; // the x values shared by every curve: 1, 2, ...
  #frame = 0;
  #emptyText = 'Press Train: the loss appears here as the model learns.';

  /**
   * `host`: an element the chart fills. `series`: the curves, each { name, color } with color a
   * key of SERIES_COLORS. One unnamed curve by default (the training panel); the compare view
   * names two.
   */
  constructor(host, { series = [{ name: '', color: 'blue' }], emptyText } = {}) {
    this.#host = host;
    if (emptyText) this.#emptyText = emptyText;
    this.#series = series.map(({ name, color }) => ({ name, colors: SERIES_COLORS[color], ...emptySeries() }));
    this.#empty = document.createElement('p');
    this.#empty.className = 'chart-empty';
    host.append(this.#empty);
    this.#plot = new uPlot(this.#options(), this.#data(), host);
    new ResizeObserver(() => this.#fit()).observe(host);
    this.#changed();
  }

  clear(emptyText = this.#emptyText) {
    for (const s of this.#series) Object.assign(s, emptySeries());
    this.#emptyText = emptyText;
    this.#changed();
  }

  /** Appends one loss per training step, in order, to curve `series`. */
  addLosses(losses, series = 0) {
    const s = this.#series[series];
    for (const loss of losses) {
      s.losses.push(loss);
      s.ema = SMOOTHING * s.ema + (1 - SMOOTHING) * loss;
      s.smoothed.push(s.ema / (1 - SMOOTHING ** s.losses.length));
      s.testColumn.push(null);
    }
    this.#changed();
  }

  /** Drops the first curve's points after `steps` (work lost with a GPU device). */
  truncate(steps) {
    const s = this.#series[0];
    if (s.losses.length <= steps) return;
    s.losses.length = steps;
    s.smoothed.length = steps;
    s.testColumn.length = steps;
    // The running average as it stood then (smoothed is it with the start-up bias removed).
    s.ema = steps ? s.smoothed[steps - 1] * (1 - SMOOTHING ** steps) : 0;
    s.tests = s.tests.filter((t) => t.step <= steps);
    this.#changed();
  }

  /** Marks the test MSE measured after `step` training steps (the end of `epoch`). */
  addTestPoint(step, epoch, mse, series = 0) {
    const s = this.#series[series];
    s.tests.push({ step, epoch, mse });
    s.testColumn[step - 1] = mse;
    this.#changed();
  }

  /** Steps plotted on the first curve. */
  get steps() {
    return this.#series[0].losses.length;
  }

  get latestSmoothed() {
    return this.#series[0].smoothed.at(-1) ?? null;
  }

  #changed() {
    this.#publish();
    // Many updates in one frame draw once.
    this.#frame ||= requestAnimationFrame(() => {
      this.#frame = 0;
      this.#plot.setData(this.#data());
      this.#empty.textContent = this.#emptyText;
      this.#empty.hidden = this.#series.some((s) => s.losses.length > 0);
    });
  }

  // data-points, data-first-loss, ... describe the first curve; data-series-points lists every
  // curve's count ("dense:120,conv:120") for the compare view.
  #publish() {
    const d = this.#host.dataset;
    const first = this.#series[0];
    d.points = String(first.losses.length);
    d.testPoints = String(first.tests.length);
    d.firstLoss = first.losses.length ? String(first.losses[0]) : '';
    d.lastSmoothed = first.smoothed.length ? String(first.smoothed.at(-1)) : '';
    d.lastTest = first.tests.length ? String(first.tests.at(-1).mse) : '';
    d.seriesPoints = this.#series.map((s) => `${s.name}:${s.losses.length}`).join(',');
  }

  // uPlot's aligned data: the shared steps, then per curve its raw, smoothed and test columns.
  #data() {
    const n = Math.max(0, ...this.#series.map((s) => s.losses.length));
    while (this.#steps.length < n) this.#steps.push(this.#steps.length + 1);
    this.#steps.length = n;
    return [this.#steps, ...this.#series.flatMap((s) => [s.losses, s.smoothed, s.testColumn])];
  }

  #options() {
    // Sized like the old hand-drawn chart's margins: tick labels, then the axis title.
    const axis = (label, more) => ({
      label,
      labelSize: 18,
      labelGap: 0,
      font: FONT,
      labelFont: FONT,
      stroke: COLORS.text,
      grid: { stroke: COLORS.grid, width: 1 },
      ticks: { stroke: COLORS.axis, width: 1 },
      ...more,
    });
    return {
      ...this.#size(),
      cursor: { show: false },
      legend: { live: false },
      scales: {
        x: { time: false, range: (u, min, max) => [0, Math.max(10, max ?? 0)] },
        y: { distr: 3, log: 10, range: (u, min, max) => (min > 0 ? uPlot.rangeLog(min, max, 10, false) : [0.01, 1]) },
      },
      axes: [
        axis('training step', { incrs: STEP_INCREMENTS, size: 28 }),
        axis('loss (MSE, log scale)', {
          size: 44,
          splits: (u, i, min, max) => logTicks(min, max),
          // uPlot passes null for ticks it leaves unlabelled for want of room.
          values: (u, ticks) => ticks.map((v) => (v == null ? '' : String(Number(v.toPrecision(2))))),
        }),
      ],
      series: [
        {},
        ...this.#series.flatMap(({ name, colors }) => {
          const who = name ? `${name}: ` : '';
          return [
            // The compare view's legend names only the smoothed curves and the test points.
            { label: 'training loss per batch', stroke: colors.raw, width: 1, points: { show: false }, class: name ? 'legend-hidden' : undefined },
            { label: name ? `${who}training loss (smoothed)` : 'smoothed', stroke: colors.smooth, width: 2, points: { show: false } },
            {
              label: `${who}test MSE (per epoch)`,
              stroke: colors.test,
              paths: () => null,
              points: { show: true, size: 9, width: 1.5, stroke: '#fff', fill: colors.test },
            },
          ];
        }),
      ],
    };
  }

  // The plot takes the host's size less the legend's rows below it.
  #size() {
    const legend = this.#plot?.root.querySelector('.u-legend')?.offsetHeight ?? 0;
    return { width: this.#host.clientWidth, height: Math.max(120, this.#host.clientHeight - legend) };
  }

  #fit() {
    if (this.#host.clientWidth === 0) return; // not laid out: nothing to draw
    this.#plot.setSize(this.#size());
  }
}

// Whole steps between x ticks: 1, 2, 5, 10, 20, 50, ...
const STEP_INCREMENTS = Array.from({ length: 24 }, (_, i) => [1, 2, 5][i % 3] * 10 ** Math.floor(i / 3));

/** Log-axis ticks: decades, or 1-2-5 (then every mantissa) where decades would be too few. */
function logTicks(lo, hi) {
  const candidates = (mantissas) => {
    const ticks = [];
    for (let e = Math.floor(Math.log10(lo)); e <= Math.ceil(Math.log10(hi)); e++) {
      for (const m of mantissas) {
        const v = Number((m * 10 ** e).toPrecision(2));
        if (v >= lo * 0.999 && v <= hi * 1.001) ticks.push(v);
      }
    }
    return ticks;
  };
  let ticks = candidates([1]);
  if (ticks.length < 3) ticks = candidates([1, 2, 5]);
  if (ticks.length < 3) ticks = candidates([1, 2, 3, 4, 5, 6, 7, 8, 9]);
  return ticks;
}

function emptySeries() {
  return { losses: [], smoothed: [], testColumn: [], ema: 0, tests: [] };
}
