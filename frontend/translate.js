// The Translate card: the language pairs the service serves (from /models: models of the translation
// task, labelled with their source and target), text in, translations out with the model and the time.

/** @typedef {{source: string, target: string, family: string}} Pair */

/**
 * The pairs served, one per (source, target), from the /models listing.
 * @param {Array<{task?: string, default: boolean, family: string, labels?: Record<string, string>}>} models
 * @returns {Pair[]}
 */
export function translationPairs(models) {
  const pairs = new Map();
  for (const m of models) {
    const source = m.labels?.source;
    const target = m.labels?.target;
    if (m.task !== "translation" || !m.default || !source || !target) continue;
    if (!pairs.has(`${source}-${target}`)) pairs.set(`${source}-${target}`, { source, target, family: m.family });
  }
  return [...pairs.values()].sort((a, b) => `${a.source}${a.target}`.localeCompare(`${b.source}${b.target}`));
}

const el = (tag, attrs = {}, text = "") => {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, value);
  if (text) node.textContent = text;
  return node;
};

/**
 * Wire the card. ``api()`` returns the ApiClient (or null before it exists); ``messageOf`` turns an error
 * into a sentence.
 * @param {{api: () => any, messageOf: (err: unknown) => string}} deps
 */
export function wireTranslate({ api, messageOf }) {
  const form = /** @type {HTMLFormElement} */ (document.getElementById("translate-form"));
  const input = /** @type {HTMLTextAreaElement} */ (document.getElementById("translate-text"));
  const select = /** @type {HTMLSelectElement} */ (document.getElementById("translate-pair"));
  const button = /** @type {HTMLButtonElement} */ (document.getElementById("translate-submit"));
  const error = /** @type {HTMLElement} */ (document.getElementById("translate-error"));
  const results = /** @type {HTMLElement} */ (document.getElementById("translate-results"));

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const texts = input.value.split("\n").map((t) => t.trim()).filter(Boolean);
    error.hidden = true;
    if (texts.length === 0) {
      error.textContent = "Type a text to translate.";
      error.hidden = false;
      return;
    }
    const [source, target] = select.value.split("-");
    button.disabled = true;
    results.setAttribute("aria-busy", "true");
    try {
      const { data, roundTripMs } = await api().post("/translate", { texts, source, target });
      const list = el("ol", { class: "translations", "data-testid": "translations" });
      data.translations.forEach((translation, i) => {
        const item = el("li");
        item.append(el("p", { class: "source-text" }, texts[i]), el("p", { "data-testid": "translation" }, translation));
        list.append(item);
      });
      const meta = el(
        "p",
        { class: "hint", "data-testid": "translate-model" },
        `${data.model} · ${data.elapsed_ms.toFixed(1)} ms in the service, ${roundTripMs.toFixed(0)} ms round trip`,
      );
      results.replaceChildren(list, meta);
    } catch (err) {
      error.textContent = messageOf(err);
      error.hidden = false;
    } finally {
      button.disabled = false;
      results.setAttribute("aria-busy", "false");
    }
  });

  return {
    /** @param {Pair[]} pairs */
    fill(pairs) {
      const card = /** @type {HTMLElement} */ (document.getElementById("translate-card"));
      card.hidden = pairs.length === 0;
      select.replaceChildren(
        ...pairs.map((p) => el("option", { value: `${p.source}-${p.target}` }, `${p.source} → ${p.target}`)),
      );
      select.disabled = button.disabled = pairs.length === 0;
    },
  };
}
