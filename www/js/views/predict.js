// Showing what the predictors found: accuracies, the confusion matrix, and the three likeliest
// digits for the drawing. DOM only; the numbers come from the wasm Lab.
import { DIGIT_COLORS } from './latentmap.js';
import { $ } from './ui.js';
const percent = (v) => `${(100 * v).toFixed(1)}%`;

export class PredictView {
  #report = null;
  #method = 'knn';

  constructor() {
    $('confusion-method').addEventListener('change', (e) => {
      this.#method = e.target.value;
      this.#drawConfusion();
    });
    this.#buildConfusion();
    this.#buildLegend();
  }

  /** report: the Lab's PredictorReport (copied out of wasm), or null while there is none. */
  showReport(report, caption) {
    this.#report = report;
    const knn = $('accuracy-knn');
    const linear = $('accuracy-linear');
    knn.value = report ? percent(report.knnAccuracy) : '–';
    knn.dataset.value = report ? String(report.knnAccuracy) : '';
    linear.value = report ? percent(report.linearAccuracy) : '–';
    linear.dataset.value = report ? String(report.linearAccuracy) : '';
    $('predict-caption').textContent = caption;
    this.#drawConfusion();
  }

  /**
   * Both predictors' three best guesses for the drawing, or a line saying why there are none;
   * `ink`: the pad's ink version they were read from (its `data-ink`), kept as each list's.
   */
  showGuesses(reading, why = '', ink = '') {
    for (const method of ['knn', 'linear']) {
      const list = $(`guesses-${method}`);
      list.replaceChildren();
      list.dataset.top = '';
      list.dataset.ink = String(ink);
      if (!reading) continue;
      const ranked = [...reading[method]].map((p, d) => ({ d, p })).sort((a, b) => b.p - a.p).slice(0, 3);
      list.dataset.top = String(ranked[0].d);
      for (const { d, p } of ranked) {
        const li = document.createElement('li');
        const bar = document.createElement('span');
        bar.className = 'guess-bar';
        bar.style.width = `${Math.round(100 * p)}%`;
        bar.style.background = DIGIT_COLORS[d];
        li.append(`${d}`, bar, ` ${percent(p)}`);
        list.append(li);
      }
    }
    $('guesses-note').textContent = reading ? '' : why;
  }

  #buildConfusion() {
    const table = $('confusion');
    const head = table.createTHead().insertRow();
    head.append(cell('th', 'true'));
    for (let p = 0; p < 10; p++) head.append(cell('th', String(p)));
    const body = table.createTBody();
    for (let t = 0; t < 10; t++) {
      const row = body.insertRow();
      row.append(cell('th', String(t)));
      for (let p = 0; p < 10; p++) row.insertCell();
    }
  }

  #drawConfusion() {
    const rows = $('confusion').tBodies[0].rows;
    const counts = this.#report ? (this.#method === 'knn' ? this.#report.knnConfusion : this.#report.linearConfusion) : null;
    for (let t = 0; t < 10; t++) {
      const total = counts ? counts.slice(10 * t, 10 * t + 10).reduce((a, b) => a + b, 0) : 0;
      for (let p = 0; p < 10; p++) {
        const td = rows[t].cells[p + 1];
        const n = counts ? counts[10 * t + p] : null;
        td.textContent = n == null ? '' : String(n);
        // Shade by the share of the true digit's images: the diagonal should be dark.
        const share = total ? n / total : 0;
        td.style.background = n ? `rgba(${t === p ? '37, 99, 235' : '234, 88, 12'}, ${Math.min(1, 0.08 + share)})` : '';
        td.style.color = share > 0.5 ? '#fff' : '';
      }
    }
  }

  #buildLegend() {
    const legend = $('map-legend');
    DIGIT_COLORS.forEach((color, d) => {
      const item = document.createElement('span');
      const swatch = document.createElement('i');
      swatch.style.background = color;
      item.append(swatch, String(d));
      legend.append(item);
    });
  }
}

function cell(tag, text) {
  const el = document.createElement(tag);
  el.textContent = text;
  return el;
}
