// The Listen card: a recording (uploaded, or captured from the microphone) sent to one of the audio
// endpoints — /transcribe (text and language), /sentiment/speech (transcript → sentiment) or /music/notes
// (notes, drawn as a small piano roll). Shown only when the service serves an audio task.

const el = (tag, attrs = {}, text = "") => {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, value);
  if (text) node.textContent = text;
  return node;
};
const SVG = "http://www.w3.org/2000/svg";
const svg = (tag, attrs = {}) => {
  const node = document.createElementNS(SVG, tag);
  for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, String(value));
  return node;
};

/**
 * 16-bit PCM WAV bytes of mono float samples: what the page sends after recording. Browsers record to
 * WebM/Opus, which the service's decoder does not read; a WAV every decoder reads.
 * @param {Float32Array} samples @param {number} rate
 * @returns {Blob}
 */
export function encodeWav(samples, rate) {
  const data = new DataView(new ArrayBuffer(44 + samples.length * 2));
  const text = (offset, s) => [...s].forEach((c, i) => data.setUint8(offset + i, c.charCodeAt(0)));
  text(0, "RIFF");
  data.setUint32(4, 36 + samples.length * 2, true);
  text(8, "WAVE");
  text(12, "fmt ");
  data.setUint32(16, 16, true);
  data.setUint16(20, 1, true); // PCM
  data.setUint16(22, 1, true); // mono
  data.setUint32(24, rate, true);
  data.setUint32(28, rate * 2, true);
  data.setUint16(32, 2, true);
  data.setUint16(34, 16, true);
  text(36, "data");
  data.setUint32(40, samples.length * 2, true);
  samples.forEach((x, i) => data.setInt16(44 + i * 2, Math.max(-1, Math.min(1, x)) * 0x7fff, true));
  return new Blob([data.buffer], { type: "audio/wav" });
}

/** Record from the microphone until stop() is called; resolves with a WAV blob. */
async function startRecording() {
  const stream = await navigator.mediaDevices.getUserMedia({ audio: true });
  const context = new AudioContext();
  const source = context.createMediaStreamSource(stream);
  // ScriptProcessor: deprecated but everywhere, and enough for a short clip without a worklet file
  const processor = context.createScriptProcessor(4096, 1, 1);
  /** @type {Float32Array[]} */
  const chunks = [];
  processor.onaudioprocess = (e) => chunks.push(new Float32Array(e.inputBuffer.getChannelData(0)));
  source.connect(processor);
  processor.connect(context.destination);
  return {
    async stop() {
      processor.disconnect();
      source.disconnect();
      stream.getTracks().forEach((t) => t.stop());
      await context.close();
      const samples = new Float32Array(chunks.reduce((n, c) => n + c.length, 0));
      let at = 0;
      for (const c of chunks) {
        samples.set(c, at);
        at += c.length;
      }
      return encodeWav(samples, context.sampleRate);
    },
  };
}

/**
 * A piano roll of notes: time across, pitch up.
 * @param {Array<{onset_s: number, offset_s: number, pitch_midi: number, pitch_name: string, confidence: number}>} notes
 */
export function pianoRoll(notes) {
  const width = 560;
  const height = 160;
  const roll = svg("svg", { viewBox: `0 0 ${width} ${height}`, class: "piano-roll", role: "img", "data-testid": "piano-roll" });
  if (notes.length === 0) return roll;
  const end = Math.max(...notes.map((n) => n.offset_s));
  const low = Math.min(...notes.map((n) => n.pitch_midi)) - 2;
  const high = Math.max(...notes.map((n) => n.pitch_midi)) + 2;
  const row = height / (high - low + 1);
  for (const n of notes) {
    const rect = svg("rect", {
      x: (n.onset_s / end) * width,
      y: (high - n.pitch_midi) * row,
      width: Math.max(2, ((n.offset_s - n.onset_s) / end) * width),
      height: Math.max(2, row - 1),
      rx: 2,
      opacity: 0.35 + 0.65 * n.confidence,
      "data-testid": "note",
    });
    rect.append(Object.assign(svg("title"), { textContent: `${n.pitch_name} ${n.onset_s.toFixed(2)}–${n.offset_s.toFixed(2)} s` }));
    roll.append(rect);
  }
  roll.setAttribute("aria-label", `${notes.length} notes from ${notes[0].pitch_name}`);
  return roll;
}

const ENDPOINTS = {
  transcribe: { route: "/transcribe", task: "speech", label: "Transcribe" },
  translate: { route: "/transcribe", task: "speech", label: "Translate to English" },
  sentiment: { route: "/sentiment/speech", task: "speech", label: "Sentiment of speech" },
  notes: { route: "/music/notes", task: "music", label: "Music → notes" },
};

/**
 * Wire the card.
 * @param {{api: () => any, messageOf: (err: unknown) => string}} deps
 */
export function wireAudio({ api, messageOf }) {
  const card = /** @type {HTMLElement} */ (document.getElementById("audio-card"));
  const form = /** @type {HTMLFormElement} */ (document.getElementById("audio-form"));
  const file = /** @type {HTMLInputElement} */ (document.getElementById("audio-file"));
  const mode = /** @type {HTMLSelectElement} */ (document.getElementById("audio-mode"));
  const record = /** @type {HTMLButtonElement} */ (document.getElementById("audio-record"));
  const button = /** @type {HTMLButtonElement} */ (document.getElementById("audio-submit"));
  const status = /** @type {HTMLElement} */ (document.getElementById("audio-status"));
  const error = /** @type {HTMLElement} */ (document.getElementById("audio-error"));
  const results = /** @type {HTMLElement} */ (document.getElementById("audio-results"));
  /** @type {Blob | null} */
  let recorded = null;
  let recorder = null;

  const fail = (message) => {
    error.textContent = message;
    error.hidden = false;
  };

  file.addEventListener("change", () => {
    recorded = null;
    status.textContent = file.files?.[0] ? `file: ${file.files[0].name}` : "";
  });

  record.addEventListener("click", async () => {
    error.hidden = true;
    if (recorder) {
      recorded = await recorder.stop();
      recorder = null;
      record.textContent = "Record";
      record.setAttribute("aria-pressed", "false");
      status.textContent = `recorded ${(recorded.size / 1024).toFixed(0)} KiB`;
      form.requestSubmit();
      return;
    }
    try {
      recorder = await startRecording();
    } catch (err) {
      fail(`The microphone is not available (${err?.message ?? err}); upload a file instead.`);
      return;
    }
    file.value = "";
    record.textContent = "Stop and send";
    record.setAttribute("aria-pressed", "true");
    status.textContent = "recording…";
  });

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    error.hidden = true;
    const clip = recorded ?? file.files?.[0] ?? null;
    if (!clip) return fail("Choose a recording to upload, or record one.");
    const chosen = ENDPOINTS[mode.value];
    const body = new FormData();
    body.append("audio", clip, clip instanceof File ? clip.name : "recording.wav");
    if (mode.value === "translate") body.append("task", "translate");
    button.disabled = true;
    results.setAttribute("aria-busy", "true");
    try {
      const { data, roundTripMs } = await api().postForm(chosen.route, body);
      const parts = [];
      if (chosen.task === "music") {
        parts.push(
          el("p", { "data-testid": "audio-notes" }, data.notes.length ? data.notes.map((n) => n.pitch_name).join(" ") : "no notes heard"),
          pianoRoll(data.notes),
        );
      } else {
        parts.push(el("p", { class: "transcript", "data-testid": "transcript" }, data.text || "(no speech heard)"));
        parts.push(el("p", { class: "hint", "data-testid": "audio-language" }, `language: ${data.language} · ${data.duration_s.toFixed(1)} s of audio`));
        if (mode.value === "sentiment") {
          parts.push(el("p", { "data-testid": "audio-sentiment" }, `${data.label} (${(data.probabilities[data.label] * 100).toFixed(0)}%)`));
        }
      }
      const who = data.models ? Object.entries(data.models).map(([k, v]) => `${k}: ${v}`).join(" · ") : data.model;
      parts.push(
        el("p", { class: "hint", "data-testid": "audio-model" }, `${who} · ${data.elapsed_ms.toFixed(0)} ms in the service, ${roundTripMs.toFixed(0)} ms round trip`),
      );
      results.replaceChildren(...parts);
    } catch (err) {
      fail(messageOf(err));
    } finally {
      button.disabled = false;
      results.setAttribute("aria-busy", "false");
    }
  });

  return {
    /** @param {Record<string, unknown>} tasks the served tasks, from /models */
    fill(tasks) {
      const served = Object.entries(ENDPOINTS).filter(([, e]) => e.task in tasks);
      card.hidden = served.length === 0;
      mode.replaceChildren(...served.map(([key, e]) => el("option", { value: key }, e.label)));
      button.disabled = served.length === 0;
    },
  };
}
