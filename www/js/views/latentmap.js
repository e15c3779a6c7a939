// The latent map: test digits' codes as points on a plane, coloured by digit, with the drawn
// digit marked. Pointer down or drag on the map asks for the decoder's image at that point; a
// click also picks the test digit nearest to it (an interpolation end).
// The canvas carries data-points, data-picked ("x,y" of the last pick) and data-digit (the
// nearest test digit's number) for page tests.

// Ten hues that stay apart for common colour-vision deficiencies (Tableau 10).
export const DIGIT_COLORS = [
  '#4e79a7', '#f28e2b', '#e15759', '#76b7b2', '#59a14f',
  '#edc948', '#b07aa1', '#ff9da7', '#9c755f', '#bab0ac',
];

const PAD = 28;

export class LatentMap {
  #canvas;
  #ctx;
  #points = null; // Float32Array [x0, y0, x1, y1, ...]
  #labels = null;
  #bounds = null; // { x0, x1, y0, y1 } in code space, with a margin
  #marker = null; // the drawn digit's point
  #picked = null;
  #axes = ['', ''];
  #emptyText = 'Fit the predictors to place the test digits on the map.';
  #digit = null; // the test digit nearest to the last click
  #onPick;

  /**
   * onPick(x, y): called with code-space coordinates while the pointer is down on the map;
   * onDigit(i): a click picked test digit i, the nearest on screen.
   */
  constructor(canvas, { onPick, onDigit }) {
    this.#canvas = canvas;
    this.#ctx = canvas.getContext('2d');
    this.#onPick = onPick;
    canvas.addEventListener('click', (e) => {
      const i = this.#nearest(e);
      if (i === null) return;
      this.#digit = i;
      this.#publish();
      onDigit(i);
    });
    canvas.style.touchAction = 'none'; // a drag on the map must not scroll the page
    canvas.addEventListener('pointerdown', (e) => {
      if (!this.#points) return;
      canvas.setPointerCapture(e.pointerId);
      this.#pick(e);
    });
    canvas.addEventListener('pointermove', (e) => {
      if (canvas.hasPointerCapture(e.pointerId)) this.#pick(e);
    });
    new ResizeObserver(() => this.#draw()).observe(canvas);
    this.#publish();
  }

  /** points: Float32Array of 2n coordinates; labels: n digits; axes: the two axis titles. */
  show(points, labels, axes) {
    this.#points = points;
    this.#labels = labels;
    this.#axes = axes;
    this.#picked = null;
    this.#digit = null;
    let [x0, x1, y0, y1] = [Infinity, -Infinity, Infinity, -Infinity];
    for (let i = 0; i < points.length; i += 2) {
      x0 = Math.min(x0, points[i]);
      x1 = Math.max(x1, points[i]);
      y0 = Math.min(y0, points[i + 1]);
      y1 = Math.max(y1, points[i + 1]);
    }
    // A margin lets a person decode a little past the data, and keeps a flat axis drawable.
    const mx = Math.max((x1 - x0) * 0.08, 1e-3);
    const my = Math.max((y1 - y0) * 0.08, 1e-3);
    this.#bounds = { x0: x0 - mx, x1: x1 + mx, y0: y0 - my, y1: y1 + my };
    this.#publish();
    this.#draw();
  }

  clear(emptyText) {
    this.#points = null;
    this.#labels = null;
    this.#marker = null;
    this.#picked = null;
    this.#digit = null;
    if (emptyText) this.#emptyText = emptyText;
    this.#publish();
    this.#draw();
  }

  /** The drawn digit's point, or null to remove it. */
  mark(point) {
    this.#marker = point;
    this.#draw();
  }

  /** The test digit drawn nearest to the pointer event, or null with no points. */
  #nearest(e) {
    if (!this.#points) return null;
    const rect = this.#canvas.getBoundingClientRect();
    const { sx, sy } = this.#toScreen(rect.width, rect.height);
    const [px, py] = [e.clientX - rect.left, e.clientY - rect.top];
    let best = null;
    let bestD = Infinity;
    for (let i = 0; i < this.#labels.length; i++) {
      const d = (sx(this.#points[2 * i]) - px) ** 2 + (sy(this.#points[2 * i + 1]) - py) ** 2;
      if (d < bestD) [best, bestD] = [i, d];
    }
    return best;
  }

  /** Code space to CSS pixels on a map of `w` x `h`. */
  #toScreen(w, h) {
    const { x0, x1, y0, y1 } = this.#bounds;
    return {
      sx: (x) => PAD + ((x - x0) / (x1 - x0)) * (w - 2 * PAD),
      sy: (y) => h - PAD - ((y - y0) / (y1 - y0)) * (h - 2 * PAD),
    };
  }

  #pick(e) {
    const rect = this.#canvas.getBoundingClientRect();
    const { x0, x1, y0, y1 } = this.#bounds;
    const fx = (e.clientX - rect.left - PAD) / Math.max(1, rect.width - 2 * PAD);
    const fy = 1 - (e.clientY - rect.top - PAD) / Math.max(1, rect.height - 2 * PAD);
    const x = x0 + Math.min(1, Math.max(0, fx)) * (x1 - x0);
    const y = y0 + Math.min(1, Math.max(0, fy)) * (y1 - y0);
    this.#picked = [x, y];
    this.#publish();
    this.#draw();
    this.#onPick(x, y);
  }

  #publish() {
    const d = this.#canvas.dataset;
    d.points = String(this.#points ? this.#points.length / 2 : 0);
    d.picked = this.#picked ? this.#picked.map((v) => v.toFixed(4)).join(',') : '';
    d.digit = this.#digit === null ? '' : String(this.#digit);
  }

  #draw() {
    const ctx = this.#ctx;
    const size = clearCanvas(this.#canvas, ctx);
    if (!size) return;
    const { width: w, height: h } = size;
    ctx.font = '12px system-ui, sans-serif';
    ctx.strokeStyle = '#8a94a6';
    ctx.strokeRect(PAD + 0.5, PAD + 0.5, w - 2 * PAD, h - 2 * PAD);
    ctx.fillStyle = '#4a5568';
    if (!this.#points) {
      ctx.textAlign = 'center';
      ctx.textBaseline = 'middle';
      ctx.fillText(this.#emptyText, w / 2, h / 2, w - 2 * PAD - 8);
      return;
    }
    const { sx, sy } = this.#toScreen(w, h);
    const pts = this.#points;
    for (let i = 0; i < this.#labels.length; i++) {
      ctx.fillStyle = DIGIT_COLORS[this.#labels[i]];
      ctx.fillRect(sx(pts[2 * i]) - 1.5, sy(pts[2 * i + 1]) - 1.5, 3, 3);
    }
    ctx.fillStyle = '#4a5568';
    ctx.textAlign = 'center';
    ctx.textBaseline = 'bottom';
    ctx.fillText(this.#axes[0], w / 2, h - 6);
    ctx.save();
    ctx.translate(12, h / 2);
    ctx.rotate(-Math.PI / 2);
    ctx.textBaseline = 'middle';
    ctx.fillText(this.#axes[1], 0, 0);
    ctx.restore();
    if (this.#picked) crosshair(ctx, sx(this.#picked[0]), sy(this.#picked[1]), '#111827');
    if (this.#marker) {
      ctx.beginPath();
      ctx.arc(sx(this.#marker[0]), sy(this.#marker[1]), 7, 0, 2 * Math.PI);
      ctx.lineWidth = 3;
      ctx.strokeStyle = '#111827';
      ctx.stroke();
      ctx.lineWidth = 1.5;
      ctx.strokeStyle = '#fff';
      ctx.stroke();
      ctx.fillStyle = '#111827';
      ctx.textAlign = 'left';
      ctx.textBaseline = 'middle';
      ctx.fillText('your digit', sx(this.#marker[0]) + 10, sy(this.#marker[1]));
    }
  }
}

function crosshair(ctx, x, y, color) {
  ctx.strokeStyle = color;
  ctx.lineWidth = 1.5;
  ctx.beginPath();
  ctx.moveTo(x - 8, y);
  ctx.lineTo(x + 8, y);
  ctx.moveTo(x, y - 8);
  ctx.lineTo(x, y + 8);
  ctx.stroke();
}

/**
 * Sizes `canvas`'s pixels to its layout size at the screen's pixel ratio (sharp on high-DPI
 * screens), clears it, and scales `ctx` so drawing is in CSS pixels. Returns the size in CSS
 * pixels, or null while the canvas is not laid out (nothing to draw).
 */
function clearCanvas(canvas, ctx) {
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
