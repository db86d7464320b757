// The page: model pickers filled from /models, classification of one text or a batch by one model or
// two side by side, and live charts drawn from the service's Prometheus metrics.

import { ApiClient, ApiError, resolveApiBase } from "./api.js";
import { renderBarChart, renderRateChart } from "./charts.js";
import { wireAudio } from "./audio.js";
import { translationPairs, wireTranslate } from "./translate.js";
import {
  batchHistograms,
  bucketBars,
  combineHistograms,
  emptyHistogram,
  histogramDelta,
  parsePrometheus,
  requestTotals,
} from "./metrics.js";

const POLL_MS = 2000;
const RATE_POINTS = 60; // two minutes of readings
const BATCH_WINDOW_MS = 60_000;

const EXAMPLES = {
  positive: "A gorgeous, witty, seductive movie.",
  negative: "The plot is a tired mess and the jokes fall flat.",
  batch: [
    "a delightful, beautifully acted triumph",
    "an utterly boring, stupid and pointless mess",
    "The first hour drags, but the finale is genuinely moving.",
    "one of the best movies of the year, moving and funny",
  ].join("\n"),
};

const $ = (id) => /** @type {HTMLElement} */ (document.getElementById(id));

/**
 * @typedef {{family: string, task?: string, name: string, version: string, default: boolean, runner: string,
 *   pipeline: string, created_at: string, metrics: any, evaluation: any, params: any, data_sha256: string | null}} ModelInfo
 */

const state = {
  /** @type {ApiClient | null} */ api: null,
  /** @type {ModelInfo[]} */ models: [],
  /** @type {Record<string, {default_model: string, routes: string[]}>} */ tasks: {},
  defaultFamily: "",
  modelsLoaded: false,
  modelsLoading: false,
  run: 0,
  /** @type {AbortController | null} */ inFlight: null,
};

// ---- small helpers ---------------------------------------------------------------------------------

/**
 * @param {string} tag
 * @param {Record<string, string | number | boolean | undefined>} [attrs]
 * @param {(Node | string | null | undefined | false)[]} [children]
 */
function h(tag, attrs = {}, children = []) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === false) continue;
    if (key === "class") node.className = String(value);
    else if (key === "style") node.setAttribute("style", String(value));
    else node.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children) if (child !== null && child !== undefined && child !== false) node.append(child);
  return node;
}

// /models lists every served model with its task. The classify form posts to the sentiment task, so its
// pickers offer that task's models; the table shows every task's models with the routes that serve them.
const CLASSIFY_TASK = "sentiment";
const taskOf = (m) => m.task ?? CLASSIFY_TASK; // servers before tasks existed served sentiment only
const classifiers = () => state.models.filter((m) => taskOf(m) === CLASSIFY_TASK);
const isTaskDefault = (m) => m.default && (state.tasks[taskOf(m)]?.default_model ?? state.defaultFamily) === m.family;

const plural = (n, noun) => `${n.toLocaleString("en")} ${noun}${n === 1 ? "" : "es"}`;
const percent = (p) => `${(100 * p).toFixed(1)}%`;
const accuracyOf = (m) => (typeof m?.metrics?.test?.accuracy === "number" ? m.metrics.test.accuracy : null);
const accuracyText = (m) => (accuracyOf(m) === null ? "test accuracy n/a" : `test accuracy ${percent(accuracyOf(m))}`);
const ms = (value) => (value >= 100 ? `${Math.round(value)} ms` : `${value.toFixed(1)} ms`);

function formatRate(value) {
  if (value >= 100) return value.toFixed(0);
  if (value >= 10) return value.toFixed(1);
  return value.toFixed(2);
}

// ---- errors ----------------------------------------------------------------------------------------

/** @param {string} message @param {string} [source] what the message is about, to clear it when that recovers */
function showError(message, source = "") {
  const box = $("error");
  box.textContent = message;
  box.dataset.source = source;
  box.hidden = false;
}

function clearError() {
  const box = $("error");
  box.textContent = "";
  box.hidden = true;
}

function messageOf(err) {
  if (err instanceof ApiError) return err.message;
  console.error(err);
  return `Something went wrong in the page: ${err?.message ?? err}`;
}

function setStatus(kind, text) {
  const status = $("status");
  status.dataset.state = kind;
  status.textContent = text;
}

// ---- models ----------------------------------------------------------------------------------------

class ModelPicker {
  /** @param {"a" | "b"} id */
  constructor(id) {
    this.family = /** @type {HTMLSelectElement} */ ($(`family-${id}`));
    this.version = /** @type {HTMLSelectElement} */ ($(`version-${id}`));
    this.note = $(`note-${id}`);
    this.family.addEventListener("change", () => this.fillVersions());
    this.version.addEventListener("change", () => this.describe());
  }

  /** @param {string} preferredFamily */
  fill(preferredFamily) {
    const families = [...new Set(classifiers().map((m) => m.family))];
    const previous = this.family.value;
    this.family.replaceChildren(
      ...families.map((family) => {
        const suffix = family === state.defaultFamily ? " (default)" : "";
        return h("option", { value: family }, [`${family}${suffix}`]);
      }),
    );
    const wanted = families.includes(previous) ? previous : preferredFamily;
    if (families.includes(wanted)) this.family.value = wanted;
    this.family.disabled = this.version.disabled = families.length === 0;
    this.fillVersions();
  }

  fillVersions() {
    const versions = classifiers()
      .filter((m) => m.family === this.family.value)
      .sort((a, b) => Number(b.default) - Number(a.default) || b.created_at.localeCompare(a.created_at));
    this.version.replaceChildren(
      ...versions.map((m) => {
        const acc = accuracyOf(m);
        const text = `${m.version}${acc === null ? "" : ` · ${percent(acc)}`}${m.default ? " (default)" : ""}`;
        return h("option", { value: m.version }, [text]);
      }),
    );
    this.describe();
  }

  /** @returns {ModelInfo | undefined} */
  selected() {
    return classifiers().find((m) => m.family === this.family.value && m.version === this.version.value);
  }

  describe() {
    const m = this.selected();
    this.note.replaceChildren();
    if (!m) return;
    this.note.append(
      h("strong", {}, [accuracyText(m)]),
      ` · ${m.pipeline} on the ${m.runner} runner · trained ${m.created_at.slice(0, 10)}`,
    );
  }
}

const pickerA = new ModelPicker("a");
const pickerB = new ModelPicker("b");

async function loadModels() {
  if (state.modelsLoading || !state.api) return;
  state.modelsLoading = true;
  try {
    const { data } = await state.api.post("/models", {});
    state.models = Array.isArray(data.models) ? data.models : [];
    state.tasks = data.tasks && typeof data.tasks === "object" ? data.tasks : {};
    state.defaultFamily = state.tasks[CLASSIFY_TASK]?.default_model ?? data.default_family ?? classifiers()[0]?.family ?? "";
    state.modelsLoaded = true;
    translateCard?.fill(translationPairs(state.models));
    audioCard?.fill(state.tasks);
    pickerA.fill(state.defaultFamily);
    const other = classifiers().find((m) => m.family !== pickerA.family.value)?.family ?? state.defaultFamily;
    pickerB.fill(other);
    if (pickerB.family.value === pickerA.family.value) {
      // one family only: compare against another version of it, if there is one
      const alt = [...pickerB.version.options].find((o) => o.value !== pickerA.version.value);
      if (alt) pickerB.version.value = alt.value;
      pickerB.describe();
    }
    renderModelsTable();
    // a "cannot reach" from an earlier attempt is no longer true
    if ($("error").dataset.source === "models") clearError();
  } catch (err) {
    $("models").replaceChildren(h("p", { class: "hint" }, ["The model list could not be loaded."]));
    if (!state.modelsLoaded) {
      for (const select of document.querySelectorAll("#family-a, #version-a, #family-b, #version-b")) {
        select.replaceChildren(h("option", {}, ["unavailable"]));
      }
    }
    showError(messageOf(err), "models");
  } finally {
    state.modelsLoading = false;
  }
}

function renderModelsTable() {
  const container = $("models");
  if (state.models.length === 0) {
    container.replaceChildren(h("p", { class: "hint" }, ["The service reports no models."]));
    return;
  }
  // Each domain's test split (make evaluate): accuracy, its 95% interval and calibration error.
  const domains = [...new Set(state.models.flatMap((m) => Object.keys(m.evaluation?.domains ?? {})))];
  const head = h("tr", {}, [
    h("th", { scope: "col" }, ["Model"]),
    h("th", { scope: "col" }, ["Version"]),
    ...domains.map((d) => h("th", { scope: "col", class: "num" }, [d])),
    h("th", { scope: "col" }, ["Runner"]),
  ]);
  const domainCell = (m, d) => {
    const r = m.evaluation?.domains?.[d];
    if (typeof r?.accuracy !== "number") return h("td", { class: "num muted" }, ["–"]);
    const [low, high] = r.ci95 ?? [r.accuracy, r.accuracy];
    return h(
      "td",
      {
        class: "num",
        "data-testid": "model-domain-accuracy",
        "data-domain": d,
        title: `${r.n} test texts; 95% interval ${percent(low)}–${percent(high)}; calibration error (ECE) ${r.ece}`,
      },
      [percent(r.accuracy), h("div", { class: "sub" }, [`${percent(low)}–${percent(high)}`])],
    );
  };
  const rows = state.models.map((m) =>
    h("tr", { "data-testid": "model-row", "data-family": m.family }, [
      h("th", { scope: "row" }, [
        h("span", { class: "family" }, [m.family]),
        isTaskDefault(m) ? h("span", { class: "badge" }, ["default"]) : null,
        m.gate_passed === false ? h("span", { class: "badge warn", title: "below its accuracy gate" }, ["gate failed"]) : null,
        h("div", { class: "sub" }, [
          [taskOf(m), m.pipeline, (state.tasks[taskOf(m)]?.routes ?? []).join(", ")].filter(Boolean).join(" · "),
        ]),
      ]),
      h("td", {}, [
        h("code", { title: `${m.name}:${m.version}` }, [m.version]),
        m.default ? null : h("div", { class: "sub" }, ["on request"]),
      ]),
      ...domains.map((d) => domainCell(m, d)),
      h("td", {}, [m.runner]),
    ]),
  );
  container.replaceChildren(
    h("table", { class: "models" }, [
      h("caption", { class: "sr-only" }, ["Served models and their accuracy on each domain's test split"]),
      h("thead", {}, [head]),
      h("tbody", {}, rows),
    ]),
  );
}

// ---- classification --------------------------------------------------------------------------------

/** Lines → texts. Blank lines are dropped; an input with no text at all goes to the service as is,
 *  so that the service's own validation message is what the person sees. */
function textsOf(value) {
  const lines = value.split(/\r?\n/).filter((line) => line.trim() !== "");
  return lines.length > 0 ? lines : [value];
}

function updateTextCount() {
  const value = /** @type {HTMLTextAreaElement} */ ($("text")).value;
  const n = value.trim() === "" ? 0 : textsOf(value).length;
  $("text-count").textContent = n === 0 ? "" : n === 1 ? "1 text" : `${n} texts · one batch request`;
}

/**
 * @param {string[]} texts
 * @param {ModelInfo | undefined} model
 * @param {AbortSignal} signal
 */
async function predict(texts, model, signal) {
  const batch = texts.length > 1;
  /** @type {Record<string, unknown>} */
  const body = batch ? { texts } : { text: texts[0] };
  if (model) {
    body.model = model.family;
    body.version = model.version;
  }
  const { data, roundTripMs } = await state.api.post(batch ? "/sentiment/batch" : "/sentiment", body, signal);
  const predictions = batch ? data.predictions : [{ label: data.label, probabilities: data.probabilities }];
  return {
    texts,
    predictions,
    model: data.model,
    family: data.family,
    degraded: data.degraded === true,
    elapsedMs: data.elapsed_ms,
    roundTripMs,
  };
}

function setBusy(busy) {
  const button = /** @type {HTMLButtonElement} */ ($("submit"));
  button.dataset.busy = String(busy);
  button.querySelector('[data-role="label"]').textContent = busy ? "Classifying…" : "Classify";
  $("results").setAttribute("aria-busy", String(busy));
}

async function classify() {
  if (!state.api) return;
  const texts = textsOf(/** @type {HTMLTextAreaElement} */ ($("text")).value);
  const comparing = /** @type {HTMLInputElement} */ ($("compare")).checked;
  const sides = [{ id: "a", picker: pickerA }];
  if (comparing) sides.push({ id: "b", picker: pickerB });

  state.inFlight?.abort();
  const controller = new AbortController();
  state.inFlight = controller;
  const run = ++state.run;
  clearError();
  setBusy(true);

  const outcomes = await Promise.allSettled(sides.map((s) => predict(texts, s.picker.selected(), controller.signal)));
  if (run !== state.run) return; // a newer request took over
  setBusy(false);
  state.inFlight = null;

  const failures = outcomes
    .map((o, i) => (o.status === "rejected" ? { side: sides[i], message: messageOf(o.reason) } : null))
    .filter(Boolean);
  const distinct = [...new Set(failures.map((f) => f.message))];
  if (distinct.length === 1) showError(distinct[0]);
  else if (distinct.length > 1) showError(failures.map((f) => `Model ${f.side.id.toUpperCase()}: ${f.message}`).join(" "));

  if (failures.length === outcomes.length) {
    $("results").replaceChildren();
    return;
  }
  renderResults(
    sides.map((s, i) => ({ side: s.id, outcome: outcomes[i] })),
    comparing,
  );
}

/**
 * @param {{side: string, outcome: PromiseSettledResult<any>}[]} columns
 * @param {boolean} comparing
 */
function renderResults(columns, comparing) {
  const answered = columns.filter((c) => c.outcome.status === "fulfilled").map((c) => c.outcome.value);
  /** @type {Set<number>} */
  const disagree = new Set();
  if (comparing && answered.length === 2) {
    answered[0].predictions.forEach((p, i) => {
      if (p.label !== answered[1].predictions[i]?.label) disagree.add(i);
    });
  }
  const nodes = [];
  if (comparing && answered.length === 2) {
    const n = answered[0].predictions.length;
    const agree = n - disagree.size;
    const text =
      n === 1
        ? disagree.size
          ? "The two models disagree."
          : "The two models agree."
        : `The two models agree on ${agree} of ${n} texts.`;
    nodes.push(h("p", { class: `agreement ${disagree.size ? "differs" : "same"}`, "data-testid": "agreement" }, [text]));
  }
  const grid = h("div", { class: `result-grid ${comparing ? "two" : "one"}` });
  for (const column of columns) {
    grid.append(
      column.outcome.status === "fulfilled"
        ? resultColumn(column.side, column.outcome.value, comparing, disagree)
        : h("div", { class: "result-col failed", "data-testid": `result-${column.side}` }, [
            h("p", { class: "hint" }, [`Model ${column.side.toUpperCase()} gave no answer: see the message above.`]),
          ]),
    );
  }
  nodes.push(grid);
  $("results").replaceChildren(...nodes);
}

function resultColumn(side, result, comparing, disagree) {
  const info = state.models.find((m) => `${m.name}:${m.version}` === result.model);
  const header = h("header", { class: "result-head" }, [
    h("div", { class: "who" }, [
      comparing ? h("span", { class: `tag tag-${side}`, "aria-label": `Model ${side.toUpperCase()}` }, [side.toUpperCase()]) : null,
      h("span", { class: "result-model", "data-testid": "result-model", title: "the model that answered" }, [result.model]),
    ]),
    h("div", { class: "sub" }, [
      h("span", { "data-testid": "result-family" }, [result.family]),
      result.degraded
        ? h("span", { class: "tag tag-degraded", "data-testid": "result-degraded", title: "the routed model was overloaded; a cheaper model answered" }, [" degraded"])
        : "",
      info ? ` · ${accuracyText(info)}` : "",
    ]),
    h("p", { class: "timing", title: "time spent in the service, and from sending the request to reading the answer" }, [
      "server ",
      h("strong", { "data-testid": "server-ms" }, [ms(result.elapsedMs)]),
      " · round trip ",
      h("strong", { "data-testid": "roundtrip-ms" }, [ms(result.roundTripMs)]),
    ]),
  ]);
  const list = h(
    "ol",
    { class: "predictions" },
    result.predictions.map((p, i) => predictionItem(result.texts[i], p, disagree.has(i), result.texts.length > 1)),
  );
  return h("article", { class: "result-col", "data-testid": `result-${side}`, "aria-label": `Answer of ${result.model}` }, [
    header,
    list,
  ]);
}

function predictionItem(text, prediction, disagrees, numbered) {
  const classes = Object.keys(prediction.probabilities).sort();
  const top = prediction.probabilities[prediction.label];
  return h("li", { class: `prediction${disagrees ? " disagree" : ""}`, "data-testid": "prediction", "data-label": prediction.label }, [
    h("div", { class: "pred-top" }, [
      h("span", { class: `label label-${prediction.label}`, "data-testid": "result-label" }, [prediction.label]),
      h("span", { class: "confidence" }, [percent(top)]),
      disagrees ? h("span", { class: "badge warn" }, ["models disagree"]) : null,
    ]),
    h("p", { class: `pred-text${numbered ? "" : " single"}`, title: text }, [text]),
    h(
      "div",
      { class: "bars" },
      classes.map((name) => {
        const p = prediction.probabilities[name];
        return h("div", { class: "bar-row" }, [
          h("span", { class: "bar-name" }, [name]),
          h(
            "div",
            {
              class: "bar",
              role: "meter",
              "aria-label": `probability ${name}`,
              "aria-valuemin": 0,
              "aria-valuemax": 1,
              "aria-valuenow": p,
              "aria-valuetext": percent(p),
              "data-testid": "probability-bar",
              "data-class": name,
            },
            [h("div", { class: `bar-fill fill-${name}`, style: `width: ${(100 * p).toFixed(2)}%` })],
          ),
          h("span", { class: "bar-value", "data-testid": `probability-${name}` }, [percent(p)]),
        ]);
      }),
    ),
  ]);
}

// ---- live metrics ----------------------------------------------------------------------------------

const live = {
  /** @type {{t: number, total: number} | null} */ lastTotals: null,
  /** @type {number[]} */ rates: [],
  /** @type {{t: number, hists: Map<string, import("./metrics.js").Histogram>}[]} */ history: [],
};

async function pollMetrics() {
  try {
    const text = await state.api.getText("/metrics");
    const now = performance.now();
    const samples = parsePrometheus(text);
    updateRequests(samples, now);
    updateBatches(samples, now);
    setStatus("online", state.modelsLoaded ? `online · ${classifiers().length} models` : "online");
    $("metrics-error").hidden = true;
    $("metrics-updated").textContent = `updated ${new Date().toLocaleTimeString()}`;
    $("metrics-updated").dataset.state = "live";
    if (!state.modelsLoaded) void loadModels();
  } catch (err) {
    setStatus("down", "unreachable");
    const box = $("metrics-error");
    box.textContent = `Metrics unavailable. ${messageOf(err)}`;
    box.hidden = false;
    $("metrics-updated").textContent = "not updating";
    $("metrics-updated").dataset.state = "stale";
  } finally {
    setTimeout(pollMetrics, POLL_MS);
  }
}

function updateRequests(samples, now) {
  const totals = requestTotals(samples);
  if (!totals.found) {
    $("rps-value").textContent = "–";
    $("requests-total").textContent = "no request counters in /metrics";
    return;
  }
  if (live.lastTotals) {
    const seconds = (now - live.lastTotals.t) / 1000;
    const delta = totals.total - live.lastTotals.total;
    const rate = delta < 0 || seconds <= 0 ? 0 : delta / seconds; // a drop means the service restarted
    live.rates.push(rate);
    if (live.rates.length > RATE_POINTS) live.rates.shift();
    $("rps-value").textContent = `${formatRate(rate)}`;
    $("rps-peak").textContent = formatRate(Math.max(...live.rates));
  }
  live.lastTotals = { t: now, total: totals.total };
  $("requests-total").textContent = Math.round(totals.total).toLocaleString("en");
  $("requests-errors").textContent = Math.round(totals.errors).toLocaleString("en");
  renderRateChart(/** @type {SVGSVGElement} */ (/** @type {unknown} */ ($("rps-chart"))), live.rates, {
    capacity: RATE_POINTS,
    unit: "Requests per second",
    intervalSeconds: POLL_MS / 1000,
  });
}

function updateBatches(samples, now) {
  const hists = batchHistograms(samples);
  live.history.push({ t: now, hists });
  // keep one reading at least a window old, so the window always spans the full minute once it can
  while (live.history.length > 2 && live.history[1].t <= now - BATCH_WINDOW_MS) live.history.shift();

  const select = /** @type {HTMLSelectElement} */ ($("runner-select"));
  const runners = [...hists.keys()].sort();
  const known = [...select.options].map((o) => o.value).slice(1);
  if (runners.join("\n") !== known.join("\n")) {
    const chosen = select.value;
    select.replaceChildren(h("option", { value: "" }, ["all runners"]), ...runners.map((r) => h("option", { value: r }, [r])));
    select.value = runners.includes(chosen) ? chosen : "";
  }
  drawBatches();
}

function drawBatches() {
  const chart = /** @type {SVGSVGElement} */ (/** @type {unknown} */ ($("batch-chart")));
  const caption = $("batch-caption");
  const latest = live.history.at(-1);
  if (!latest) return;
  if (latest.hists.size === 0) {
    renderBarChart(chart, [], { noun: "batches" });
    caption.textContent = "The service reports no adaptive batching metrics.";
    return;
  }
  const runner = /** @type {HTMLSelectElement} */ ($("runner-select")).value;
  const pick = (hists) => (runner ? hists.get(runner) ?? emptyHistogram() : combineHistograms(hists.values()));
  const current = pick(latest.hists);
  const oldest = live.history[0];
  const windowed = live.history.length > 1 ? histogramDelta(current, pick(oldest.hists)) : null;
  const seconds = Math.round((latest.t - oldest.t) / 1000);
  const mean = (hist) => (hist.count ? (hist.sum / hist.count).toFixed(1) : "–");
  let shown = current;
  let text;
  if (windowed && windowed.count > 0) {
    shown = windowed;
    text = `${plural(windowed.count, "batch")} in the last ${seconds} s · mean size ${mean(windowed)}`;
    chart.dataset.window = "recent";
  } else if (current.count > 0) {
    const quiet = windowed ? ` · none in the last ${seconds} s` : "";
    text = `${plural(current.count, "batch")} since start · mean size ${mean(current)}${quiet}`;
    chart.dataset.window = "since-start";
  } else {
    text = "No batches yet: classify something.";
    chart.dataset.window = "empty";
  }
  renderBarChart(chart, bucketBars(shown), { noun: "batches" });
  caption.textContent = text;
}

// ---- start -----------------------------------------------------------------------------------------

function wire() {
  const form = /** @type {HTMLFormElement} */ ($("classify-form"));
  const textarea = /** @type {HTMLTextAreaElement} */ ($("text"));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    void classify();
  });
  form.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) {
      event.preventDefault();
      form.requestSubmit();
    }
  });
  textarea.addEventListener("input", updateTextCount);
  for (const chip of document.querySelectorAll("[data-example]")) {
    chip.addEventListener("click", () => {
      textarea.value = EXAMPLES[/** @type {HTMLElement} */ (chip).dataset.example];
      updateTextCount();
      textarea.focus();
    });
  }
  const compare = /** @type {HTMLInputElement} */ ($("compare"));
  const syncCompare = () => {
    $("picker-b").hidden = !compare.checked;
    $("pickers").classList.toggle("two", compare.checked);
    document.querySelector('[data-testid="picker-a"] [data-role="title"]').textContent = compare.checked ? "Model A" : "Model";
  };
  compare.addEventListener("change", syncCompare);
  syncCompare();
  $("runner-select").addEventListener("change", drawBatches);

  $("api-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const value = /** @type {HTMLInputElement} */ ($("api-base")).value.trim();
    const url = new URL(window.location.href);
    if (value === "" || value.replace(/\/+$/, "") === window.location.origin) url.searchParams.delete("api");
    else url.searchParams.set("api", value);
    window.location.assign(url.toString());
  });
}

let translateCard = null;
let audioCard = null;

function start() {
  wire();
  translateCard = wireTranslate({ api: () => state.api, messageOf });
  audioCard = wireAudio({ api: () => state.api, messageOf });
  updateTextCount();
  let base;
  try {
    base = resolveApiBase(window.location);
  } catch (err) {
    showError(messageOf(err));
    setStatus("down", "no service");
    return;
  }
  state.api = new ApiClient(base);
  /** @type {HTMLInputElement} */ ($("api-base")).value = base;
  $("api-shown").textContent = base;
  $("link-docs").setAttribute("href", `${base}/`);
  $("link-spec").setAttribute("href", `${base}/docs.json`);
  $("link-metrics").setAttribute("href", `${base}/metrics`);
  renderRateChart(/** @type {SVGSVGElement} */ (/** @type {unknown} */ ($("rps-chart"))), [], {
    capacity: RATE_POINTS,
    unit: "Requests per second",
    intervalSeconds: POLL_MS / 1000,
  });
  renderBarChart(/** @type {SVGSVGElement} */ (/** @type {unknown} */ ($("batch-chart"))), [], { noun: "batches" });
  void loadModels();
  void pollMetrics();
}

start();
