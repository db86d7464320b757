// Reading the service's Prometheus text: a small parser and the two things the page draws from it,
// request counters of the public endpoints and the adaptive batch-size histogram of the runners.

/** The entry service's public prediction endpoints, whose requests the page counts. */
export const PREDICTION_ENDPOINTS = ["/sentiment", "/sentiment/batch"];

/**
 * @typedef {{name: string, labels: Record<string, string>, value: number}} Sample
 * @typedef {{buckets: Map<number, number>, sum: number, count: number}} Histogram  cumulative buckets by `le`
 */

/**
 * Parse the Prometheus text exposition format into samples; comments and malformed lines are skipped.
 * @param {string} text
 * @returns {Sample[]}
 */
export function parsePrometheus(text) {
  const samples = [];
  for (const raw of text.split("\n")) {
    const line = raw.trim();
    if (line === "" || line.startsWith("#")) continue;
    const sample = parseLine(line);
    if (sample) samples.push(sample);
  }
  return samples;
}

/** @param {string} line @returns {Sample | null} */
function parseLine(line) {
  const nameMatch = /^[A-Za-z_:][A-Za-z0-9_:]*/.exec(line);
  if (!nameMatch) return null;
  const name = nameMatch[0];
  let i = name.length;
  /** @type {Record<string, string>} */
  const labels = {};
  if (line[i] === "{") {
    i += 1;
    for (;;) {
      while (line[i] === " " || line[i] === ",") i += 1;
      if (i >= line.length) return null;
      if (line[i] === "}") {
        i += 1;
        break;
      }
      const eq = line.indexOf("=", i);
      if (eq < 0 || line[eq + 1] !== '"') return null;
      const key = line.slice(i, eq).trim();
      let value = "";
      let k = eq + 2;
      while (k < line.length && line[k] !== '"') {
        if (line[k] === "\\" && k + 1 < line.length) {
          const c = line[k + 1];
          value += c === "n" ? "\n" : c;
          k += 2;
        } else {
          value += line[k];
          k += 1;
        }
      }
      if (k >= line.length) return null; // unterminated label value
      labels[key] = value;
      i = k + 1;
    }
  }
  const valueText = line.slice(i).trim().split(/\s+/)[0];
  const value = parseNumber(valueText);
  if (value === null) return null;
  return { name, labels, value };
}

/** @param {string | undefined} text @returns {number | null} */
function parseNumber(text) {
  if (text === undefined || text === "") return null;
  if (text === "+Inf" || text === "Inf") return Infinity;
  if (text === "-Inf") return -Infinity;
  if (text === "NaN") return NaN;
  const value = Number(text);
  return Number.isNaN(value) ? null : value;
}

/**
 * Requests answered by the public prediction endpoints, summed over status codes (any metrics
 * namespace: the counter is `<namespace>_request_total`).
 * @param {Sample[]} samples
 * @param {string[]} [endpoints]
 * @returns {{found: boolean, total: number, errors: number}}
 */
export function requestTotals(samples, endpoints = PREDICTION_ENDPOINTS) {
  let found = false;
  let total = 0;
  let errors = 0;
  for (const s of samples) {
    if (!s.name.endsWith("_request_total") || !endpoints.includes(s.labels.endpoint)) continue;
    found = true;
    total += s.value;
    if (!String(s.labels.http_response_code ?? "").startsWith("2")) errors += s.value;
  }
  return { found, total, errors };
}

/**
 * The runners' batch-size histograms (inputs per model call, bundle_runner_batch_inputs), one per
 * runner and task, summed over workers. BentoML's own adaptive_batch_size counts requests,
 * and the entry service sends one request per coalesced group, so it would understate the batches.
 * @param {Sample[]} samples
 * @returns {Map<string, Histogram>} keyed by "runner" or "runner.task" when a runner serves several tasks
 */
export function batchHistograms(samples) {
  /** @type {Map<string, {runner: string, method: string, hist: Histogram}>} */
  const groups = new Map();
  for (const s of samples) {
    const part = /^bundle_runner_batch_inputs_(bucket|sum|count)$/.exec(s.name)?.[1];
    if (!part) continue;
    const runner = s.labels.runner || "runner";
    const method = s.labels.task || s.labels.method || "";
    const id = `${runner}\u0000${method}`;
    let group = groups.get(id);
    if (!group) {
      group = { runner, method, hist: emptyHistogram() };
      groups.set(id, group);
    }
    if (part === "bucket") {
      const le = s.labels.le === "+Inf" ? Infinity : Number(s.labels.le);
      if (Number.isNaN(le)) continue;
      group.hist.buckets.set(le, (group.hist.buckets.get(le) ?? 0) + s.value);
    } else {
      group.hist[part] += s.value;
    }
  }
  const methodsPerRunner = new Map();
  for (const g of groups.values()) methodsPerRunner.set(g.runner, (methodsPerRunner.get(g.runner) ?? 0) + 1);
  /** @type {Map<string, Histogram>} */
  const result = new Map();
  for (const g of groups.values()) {
    const key = methodsPerRunner.get(g.runner) > 1 && g.method ? `${g.runner}.${g.method}` : g.runner;
    result.set(key, g.hist);
  }
  return result;
}

/** @returns {Histogram} */
export function emptyHistogram() {
  return { buckets: new Map(), sum: 0, count: 0 };
}

/** @param {Iterable<Histogram>} hists @returns {Histogram} */
export function combineHistograms(hists) {
  const out = emptyHistogram();
  for (const h of hists) {
    for (const [le, v] of h.buckets) out.buckets.set(le, (out.buckets.get(le) ?? 0) + v);
    out.sum += h.sum;
    out.count += h.count;
  }
  return out;
}

/**
 * What happened between two readings of the same histogram. A counter that went down means the
 * service restarted; then the newer reading is all there is.
 * @param {Histogram} now
 * @param {Histogram} before
 * @returns {Histogram}
 */
export function histogramDelta(now, before) {
  if (now.count < before.count) return now;
  const out = emptyHistogram();
  for (const [le, v] of now.buckets) out.buckets.set(le, Math.max(0, v - (before.buckets.get(le) ?? 0)));
  out.sum = Math.max(0, now.sum - before.sum);
  out.count = now.count - before.count;
  return out;
}

/**
 * Cumulative buckets → one bar per bucket: how many batches had a size in (previous le, le].
 * @param {Histogram} hist
 * @returns {{label: string, count: number}[]}
 */
export function bucketBars(hist) {
  const bounds = [...hist.buckets.keys()].sort((a, b) => a - b);
  const bars = [];
  let previous = 0;
  let previousCumulative = 0;
  for (const le of bounds) {
    const cumulative = hist.buckets.get(le) ?? 0;
    const count = Math.max(0, cumulative - previousCumulative);
    bars.push({ label: bucketLabel(previous, le), count });
    previous = le;
    previousCumulative = cumulative;
  }
  // A trailing +Inf bucket that never fills only adds noise to the chart.
  if (bars.length > 1 && bounds.at(-1) === Infinity && bars.at(-1).count === 0) bars.pop();
  return bars;
}

/** Batch sizes are whole numbers: the bucket (2, 4] holds sizes 3 and 4. */
function bucketLabel(previous, le) {
  if (le === Infinity) return `>${formatBound(previous)}`;
  const low = Math.floor(previous) + 1;
  const high = Math.floor(le);
  return low >= high ? formatBound(high) : `${low}–${formatBound(high)}`;
}

/** @param {number} n */
function formatBound(n) {
  return n >= 1000 ? `${n / 1000}k` : String(n);
}
