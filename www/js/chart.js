// A hand-drawn loss chart on a canvas: training loss per step (raw, faint; smoothed, solid) and
// test MSE per epoch as points, on a log-scale y axis (loss falls by orders of magnitude).
// The canvas carries data-points / data-test-points / data-first-loss / data-last-smoothed so a
// page test can read what is plotted without reading pixels.

// Exponential moving average weight, debiased like TensorBoard's smoothing so the first points
// are not pulled towards 0.
const SMOOTHING = 0.85;

const COLORS = {
  axis: '#8a94a6',
  grid: '#e6e9ef',
  text: '#4a5568',
};

// One curve per model; the compare view gives each model its own hue.
export const SERIES_COLORS = {
  blue: { raw: 'rgba(59, 130, 246, 0.28)', smooth: '#2563eb', test: '#ea580c' },
  green: { raw: 'rgba(22, 163, 74, 0.25)', smooth: '#15803d', test: '#15803d' },
  purple: { raw: 'rgba(147, 51, 234, 0.25)', smooth: '#7e22ce', test: '#7e22ce' },
};

// Room for tick labels and axis titles; the top grows with the legend's rows.
const PAD = { left: 58, right: 16, bottom: 40 };
const LEGEND_ROW = 18;

export class LossChart {
  #canvas;
  #ctx;
  // Per curve: raw loss per step (step i + 1 is losses[i]), its smoothing, and test points.
  #series;
  #legend;
  #frame = 0;
  #emptyText = 'Press Train: the loss appears here as the model learns.';

  /**
   * `series`: the curves, each { name, color } with color a key of SERIES_COLORS. One unnamed
   * curve by default (the training panel); the compare view names two.
   */
  constructor(canvas, { series = [{ name: '', color: 'blue' }], emptyText } = {}) {
    this.#canvas = canvas;
    this.#ctx = canvas.getContext('2d');
    if (emptyText) this.#emptyText = emptyText;
    this.#series = series.map(({ name, color }) => ({ name, colors: SERIES_COLORS[color], ...emptySeries() }));
    this.#legend = this.#series.flatMap(({ name, colors }) => {
      const who = name ? `${name}: ` : '';
      return [
        ...(name ? [] : [{ label: 'training loss per batch', color: colors.raw, mark: 'line' }]),
        { label: name ? `${who}training loss (smoothed)` : 'smoothed', color: colors.smooth, mark: 'line' },
        { label: `${who}test MSE (per epoch)`, color: colors.test, mark: 'dot' },
      ];
    });
    // Redraw at the new size when the layout changes, sharp on high-DPI screens.
    new ResizeObserver(() => this.#redrawNow()).observe(canvas);
    this.#publish();
  }

  clear(emptyText = this.#emptyText) {
    for (const s of this.#series) Object.assign(s, emptySeries());
    this.#emptyText = emptyText;
    this.#publish();
    this.redraw();
  }

  /** Appends one loss per training step, in order, to curve `series`. */
  addLosses(losses, series = 0) {
    const s = this.#series[series];
    for (const loss of losses) {
      s.losses.push(loss);
      s.ema = SMOOTHING * s.ema + (1 - SMOOTHING) * loss;
      s.smoothed.push(s.ema / (1 - SMOOTHING ** s.losses.length));
    }
    this.#publish();
    this.redraw();
  }

  /** Drops the first curve's points after `steps` (work lost with a GPU device). */
  truncate(steps) {
    const s = this.#series[0];
    if (s.losses.length <= steps) return;
    s.losses.length = steps;
    s.smoothed.length = steps;
    // The running average as it stood then (smoothed is it with the start-up bias removed).
    s.ema = steps ? s.smoothed[steps - 1] * (1 - SMOOTHING ** steps) : 0;
    s.tests = s.tests.filter((t) => t.step <= steps);
    this.#publish();
    this.redraw();
  }

  /** Marks the test MSE measured after `step` training steps (the end of `epoch`). */
  addTestPoint(step, epoch, mse, series = 0) {
    this.#series[series].tests.push({ step, epoch, mse });
    this.#publish();
    this.redraw();
  }

  /** Steps plotted on curve `series`. */
  stepsOf(series = 0) {
    return this.#series[series].losses.length;
  }

  get steps() {
    return this.stepsOf(0);
  }

  latestSmoothedOf(series = 0) {
    return this.#series[series].smoothed.at(-1) ?? null;
  }

  get latestSmoothed() {
    return this.latestSmoothedOf(0);
  }

  /** Draws on the next animation frame; many updates in one frame draw once. */
  redraw() {
    if (this.#frame) return;
    this.#frame = requestAnimationFrame(() => this.#redrawNow());
  }

  // data-points, data-first-loss, ... describe the first curve; data-series-points lists every
  // curve's count ("dense:120,conv:120") for the compare view.
  #publish() {
    const d = this.#canvas.dataset;
    const first = this.#series[0];
    d.points = String(first.losses.length);
    d.testPoints = String(first.tests.length);
    d.firstLoss = first.losses.length ? String(first.losses[0]) : '';
    d.lastSmoothed = first.smoothed.length ? String(first.smoothed.at(-1)) : '';
    d.lastTest = first.tests.length ? String(first.tests.at(-1).mse) : '';
    d.seriesPoints = this.#series.map((s) => `${s.name}:${s.losses.length}`).join(',');
  }

  #redrawNow() {
    this.#frame = 0;
    const ctx = this.#ctx;
    const size = clearCanvas(this.#canvas, ctx);
    if (!size) return;
    const { width, height } = size;
    ctx.font = '12px system-ui, sans-serif';

    const legendRows = layoutLegend(ctx, this.#legend, width - PAD.right - 8);
    const top = 12 + legendRows.length * LEGEND_ROW;
    const plot = {
      x: PAD.left,
      y: top,
      w: Math.max(10, width - PAD.left - PAD.right),
      h: Math.max(10, height - top - PAD.bottom),
    };
    const values = this.#series
      .flatMap((s) => [...s.losses, ...s.tests.map((t) => t.mse)])
      .filter((v) => v > 0 && Number.isFinite(v));
    const [yMin, yMax] = values.length ? logRange(values) : [0.01, 1];
    const xMax = Math.max(10, ...this.#series.flatMap((s) => [s.losses.length, ...s.tests.map((t) => t.step)]));
    const sx = (step) => plot.x + (step / xMax) * plot.w;
    const ly0 = Math.log10(yMin);
    const ly1 = Math.log10(yMax);
    const sy = (v) => plot.y + plot.h - ((Math.log10(Math.max(v, yMin)) - ly0) / (ly1 - ly0)) * plot.h;

    this.#drawAxes(ctx, plot, xMax, yMin, yMax, sx, sy);

    if (!values.length) {
      ctx.fillStyle = COLORS.text;
      ctx.textAlign = 'center';
      ctx.textBaseline = 'middle';
      const lines = wrapText(ctx, this.#emptyText, plot.w - 24);
      lines.forEach((line, i) => {
        ctx.fillText(line, plot.x + plot.w / 2, plot.y + plot.h / 2 + (i - (lines.length - 1) / 2) * 16);
      });
      drawLegend(ctx, legendRows, plot.x + plot.w);
      return;
    }

    ctx.save();
    ctx.beginPath();
    ctx.rect(plot.x, plot.y, plot.w, plot.h);
    ctx.clip();
    for (const s of this.#series) this.#drawRaw(ctx, plot, s, sx, sy);
    for (const s of this.#series) this.#drawLine(ctx, s, sx, sy, plot.w);
    ctx.restore();

    for (const s of this.#series) {
      for (const t of s.tests) {
        ctx.beginPath();
        ctx.arc(sx(t.step), sy(t.mse), 4.5, 0, 2 * Math.PI);
        ctx.fillStyle = s.colors.test;
        ctx.fill();
        ctx.lineWidth = 1.5;
        ctx.strokeStyle = '#fff';
        ctx.stroke();
      }
    }
    drawLegend(ctx, legendRows, plot.x + plot.w);
  }

  // Raw losses as a faint line; with more steps than pixels, as each pixel column's min-max span,
  // which keeps the noise band visible without drawing thousands of segments.
  #drawRaw(ctx, plot, { losses, colors }, sx, sy) {
    ctx.strokeStyle = colors.raw;
    ctx.lineWidth = 1;
    ctx.beginPath();
    if (losses.length <= plot.w) {
      losses.forEach((v, i) => (i ? ctx.lineTo(sx(i + 1), sy(v)) : ctx.moveTo(sx(i + 1), sy(v))));
    } else {
      const perColumn = losses.length / plot.w;
      for (let c = 0; c < plot.w; c++) {
        const from = Math.floor(c * perColumn);
        const to = Math.min(losses.length, Math.floor((c + 1) * perColumn) + 1);
        let lo = Infinity;
        let hi = -Infinity;
        for (let i = from; i < to; i++) {
          lo = Math.min(lo, losses[i]);
          hi = Math.max(hi, losses[i]);
        }
        const x = plot.x + c + 0.5;
        ctx.moveTo(x, sy(hi));
        ctx.lineTo(x, sy(lo) + 0.5);
      }
    }
    ctx.stroke();
  }

  #drawLine(ctx, { smoothed: series, colors }, sx, sy, columns) {
    ctx.strokeStyle = colors.smooth;
    ctx.lineWidth = 2;
    ctx.lineJoin = 'round';
    ctx.beginPath();
    // The smoothed line changes slowly: one point per pixel column is enough.
    const stride = Math.max(1, Math.floor(series.length / columns));
    for (let i = 0; i < series.length; i += stride) {
      const x = sx(i + 1);
      const y = sy(series[i]);
      i ? ctx.lineTo(x, y) : ctx.moveTo(x, y);
    }
    if (series.length) ctx.lineTo(sx(series.length), sy(series.at(-1)));
    ctx.stroke();
  }

  #drawAxes(ctx, plot, xMax, yMin, yMax, sx, sy) {
    ctx.lineWidth = 1;
    ctx.fillStyle = COLORS.text;

    // y: log ticks with grid lines
    ctx.textAlign = 'right';
    ctx.textBaseline = 'middle';
    for (const v of logTicks(yMin, yMax)) {
      const y = Math.round(sy(v)) + 0.5;
      ctx.strokeStyle = COLORS.grid;
      ctx.beginPath();
      ctx.moveTo(plot.x, y);
      ctx.lineTo(plot.x + plot.w, y);
      ctx.stroke();
      ctx.fillText(formatTick(v), plot.x - 6, y);
    }

    // x: steps
    ctx.textAlign = 'center';
    ctx.textBaseline = 'top';
    const xStep = niceStep(xMax / 6);
    for (let s = 0; s <= xMax + 1e-9; s += xStep) {
      const x = Math.round(sx(s)) + 0.5;
      ctx.strokeStyle = COLORS.axis;
      ctx.beginPath();
      ctx.moveTo(x, plot.y + plot.h);
      ctx.lineTo(x, plot.y + plot.h + 4);
      ctx.stroke();
      ctx.fillText(s.toLocaleString('en-US'), x, plot.y + plot.h + 6);
    }

    ctx.strokeStyle = COLORS.axis;
    ctx.beginPath();
    ctx.moveTo(plot.x + 0.5, plot.y);
    ctx.lineTo(plot.x + 0.5, plot.y + plot.h + 0.5);
    ctx.lineTo(plot.x + plot.w, plot.y + plot.h + 0.5);
    ctx.stroke();

    // axis titles
    ctx.fillText('training step', plot.x + plot.w / 2, plot.y + plot.h + 22);
    ctx.save();
    ctx.translate(14, plot.y + plot.h / 2);
    ctx.rotate(-Math.PI / 2);
    ctx.textBaseline = 'middle';
    ctx.fillText('loss (MSE, log scale)', 0, 0);
    ctx.restore();
  }

}

/**
 * Sizes `canvas`'s pixels to its layout size at the screen's pixel ratio (sharp on high-DPI
 * screens), clears it, and scales `ctx` so drawing is in CSS pixels. Returns the size in CSS
 * pixels, or null while the canvas is not laid out (nothing to draw).
 */
export function clearCanvas(canvas, ctx) {
  const dpr = window.devicePixelRatio || 1;
  const width = canvas.clientWidth;
  const height = canvas.clientHeight;
  if (width === 0 || height === 0) return null;
  if (canvas.width !== Math.round(width * dpr) || canvas.height !== Math.round(height * dpr)) {
    canvas.width = Math.round(width * dpr);
    canvas.height = Math.round(height * dpr);
  }
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  ctx.clearRect(0, 0, width, height);
  return { width, height };
}

function emptySeries() {
  return { losses: [], smoothed: [], ema: 0, tests: [] };
}

/** Legend items in right-aligned rows that fit `maxWidth`: one row on a wide chart. */
function layoutLegend(ctx, legend, maxWidth) {
  const rows = [[]];
  let used = 0;
  for (const item of legend) {
    const width = ctx.measureText(item.label).width + 22 + 14;
    if (rows.at(-1).length && used + width > maxWidth) {
      rows.push([]);
      used = 0;
    }
    rows.at(-1).push({ ...item, width });
    used += width;
  }
  return rows;
}

// Above the plot, so it never hides a line.
function drawLegend(ctx, rows, right) {
  ctx.textAlign = 'left';
  ctx.textBaseline = 'middle';
  rows.forEach((row, r) => {
    const y = 12 + r * LEGEND_ROW;
    let x = right - row.reduce((sum, item) => sum + item.width, 0) + 14;
    for (const item of row) {
      if (item.mark === 'line') {
        line(ctx, x, y, item.color, 2);
      } else {
        ctx.beginPath();
        ctx.arc(x + 9, y, 4.5, 0, 2 * Math.PI);
        ctx.fillStyle = item.color;
        ctx.fill();
      }
      ctx.fillStyle = COLORS.text;
      ctx.fillText(item.label, x + 22, y);
      x += item.width;
    }
  });
}

/** Splits `text` into lines no wider than `maxWidth`. */
function wrapText(ctx, text, maxWidth) {
  const lines = [];
  let current = '';
  for (const word of text.split(' ')) {
    const next = current ? `${current} ${word}` : word;
    if (current && ctx.measureText(next).width > maxWidth) {
      lines.push(current);
      current = word;
    } else {
      current = next;
    }
  }
  if (current) lines.push(current);
  return lines;
}

function line(ctx, x, y, color, width) {
  ctx.strokeStyle = color;
  ctx.lineWidth = width;
  ctx.beginPath();
  ctx.moveTo(x, y);
  ctx.lineTo(x + 18, y);
  ctx.stroke();
}

/** A y range in whole 1-2-5 steps around the values, at least a factor 2 tall. */
function logRange(values) {
  // A loop, not Math.min(...values): tens of thousands of steps overflow the argument list.
  let lo = Infinity;
  let hi = -Infinity;
  for (const v of values) {
    if (v < lo) lo = v;
    if (v > hi) hi = v;
  }
  lo = floorNice(lo);
  hi = ceilNice(hi);
  if (hi / lo < 2) hi = ceilNice(lo * 2.0001);
  return [lo, hi];
}

const MANTISSAS = [1, 2, 5];

function floorNice(v) {
  const e = Math.floor(Math.log10(v));
  const m = v / 10 ** e;
  const f = [...MANTISSAS].reverse().find((x) => x <= m + 1e-9) ?? 1;
  return f * 10 ** e;
}

function ceilNice(v) {
  const e = Math.floor(Math.log10(v));
  const m = v / 10 ** e;
  const c = MANTISSAS.find((x) => x >= m - 1e-9);
  return c ? c * 10 ** e : 10 ** (e + 1);
}

/** Tick values for a log axis: decades, then 2 and 5, then every integer mantissa if still sparse. */
function logTicks(lo, hi) {
  const candidates = (mantissas) => {
    const ticks = [];
    for (let e = Math.floor(Math.log10(lo)); e <= Math.ceil(Math.log10(hi)); e++) {
      for (const m of mantissas) {
        const v = m * 10 ** e;
        if (v >= lo * 0.999 && v <= hi * 1.001) ticks.push(v);
      }
    }
    return ticks;
  };
  let ticks = candidates([1]);
  if (ticks.length < 3) ticks = candidates([1, 2, 5]);
  if (ticks.length < 3) ticks = candidates([1, 2, 3, 4, 5, 6, 7, 8, 9]);
  if (ticks.length > 12) ticks = candidates([1]);
  return ticks;
}

function formatTick(v) {
  return Number(v.toPrecision(2)).toString();
}

function niceStep(raw) {
  const e = Math.floor(Math.log10(raw));
  const m = raw / 10 ** e;
  const nice = m <= 1 ? 1 : m <= 2 ? 2 : m <= 5 ? 5 : 10;
  return Math.max(1, nice * 10 ** e);
}
