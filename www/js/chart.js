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
  raw: 'rgba(59, 130, 246, 0.28)',
  smooth: '#2563eb',
  test: '#ea580c',
};

// Room for tick labels and axis titles; the top grows with the legend's rows.
const PAD = { left: 58, right: 16, bottom: 40 };
const LEGEND_ROW = 18;

const LEGEND = [
  { label: 'training loss per batch', color: COLORS.raw, mark: 'line' },
  { label: 'smoothed', color: COLORS.smooth, mark: 'line' },
  { label: 'test MSE (per epoch)', color: COLORS.test, mark: 'dot' },
];

export class LossChart {
  #canvas;
  #ctx;
  #losses = []; // raw loss per step; step i + 1 is losses[i]
  #smoothed = [];
  #ema = 0;
  #tests = []; // { step, epoch, mse }
  #frame = 0;
  #emptyText = 'Press Train: the loss appears here as the model learns.';

  constructor(canvas) {
    this.#canvas = canvas;
    this.#ctx = canvas.getContext('2d');
    // Redraw at the new size when the layout changes, sharp on high-DPI screens.
    new ResizeObserver(() => this.#redrawNow()).observe(canvas);
    this.#publish();
  }

  clear(emptyText = this.#emptyText) {
    this.#losses = [];
    this.#smoothed = [];
    this.#ema = 0;
    this.#tests = [];
    this.#emptyText = emptyText;
    this.#publish();
    this.redraw();
  }

  /** Appends one loss per training step, in order. */
  addLosses(losses) {
    for (const loss of losses) {
      this.#losses.push(loss);
      this.#ema = SMOOTHING * this.#ema + (1 - SMOOTHING) * loss;
      this.#smoothed.push(this.#ema / (1 - SMOOTHING ** this.#losses.length));
    }
    this.#publish();
    this.redraw();
  }

  /** Marks the test MSE measured after `step` training steps (the end of `epoch`). */
  addTestPoint(step, epoch, mse) {
    this.#tests.push({ step, epoch, mse });
    this.#publish();
    this.redraw();
  }

  get steps() {
    return this.#losses.length;
  }

  get latestSmoothed() {
    return this.#smoothed.at(-1) ?? null;
  }

  /** Draws on the next animation frame; many updates in one frame draw once. */
  redraw() {
    if (this.#frame) return;
    this.#frame = requestAnimationFrame(() => this.#redrawNow());
  }

  #publish() {
    const d = this.#canvas.dataset;
    d.points = String(this.#losses.length);
    d.testPoints = String(this.#tests.length);
    d.firstLoss = this.#losses.length ? String(this.#losses[0]) : '';
    d.lastSmoothed = this.#smoothed.length ? String(this.#smoothed.at(-1)) : '';
    d.lastTest = this.#tests.length ? String(this.#tests.at(-1).mse) : '';
  }

  #redrawNow() {
    this.#frame = 0;
    const canvas = this.#canvas;
    const dpr = window.devicePixelRatio || 1;
    const width = canvas.clientWidth;
    const height = canvas.clientHeight;
    if (width === 0 || height === 0) return;
    if (canvas.width !== Math.round(width * dpr) || canvas.height !== Math.round(height * dpr)) {
      canvas.width = Math.round(width * dpr);
      canvas.height = Math.round(height * dpr);
    }
    const ctx = this.#ctx;
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.clearRect(0, 0, width, height);
    ctx.font = '12px system-ui, sans-serif';

    const legendRows = layoutLegend(ctx, width - PAD.right - 8);
    const top = 12 + legendRows.length * LEGEND_ROW;
    const plot = {
      x: PAD.left,
      y: top,
      w: Math.max(10, width - PAD.left - PAD.right),
      h: Math.max(10, height - top - PAD.bottom),
    };
    const values = [...this.#losses, ...this.#tests.map((t) => t.mse)].filter((v) => v > 0 && Number.isFinite(v));
    const [yMin, yMax] = values.length ? logRange(values) : [0.01, 1];
    const xMax = Math.max(10, this.#losses.length, ...this.#tests.map((t) => t.step));
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
    this.#drawRaw(ctx, plot, sx, sy);
    this.#drawLine(ctx, this.#smoothed, sx, sy, plot.w);
    ctx.restore();

    for (const t of this.#tests) {
      ctx.beginPath();
      ctx.arc(sx(t.step), sy(t.mse), 4.5, 0, 2 * Math.PI);
      ctx.fillStyle = COLORS.test;
      ctx.fill();
      ctx.lineWidth = 1.5;
      ctx.strokeStyle = '#fff';
      ctx.stroke();
    }
    drawLegend(ctx, legendRows, plot.x + plot.w);
  }

  // Raw losses as a faint line; with more steps than pixels, as each pixel column's min-max span,
  // which keeps the noise band visible without drawing thousands of segments.
  #drawRaw(ctx, plot, sx, sy) {
    const losses = this.#losses;
    ctx.strokeStyle = COLORS.raw;
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

  #drawLine(ctx, series, sx, sy, columns) {
    ctx.strokeStyle = COLORS.smooth;
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

/** Legend items in right-aligned rows that fit `maxWidth`: one row on a wide chart. */
function layoutLegend(ctx, maxWidth) {
  const rows = [[]];
  let used = 0;
  for (const item of LEGEND) {
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
