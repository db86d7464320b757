// HTTP client for the sentiment service: where the service is, how to call it, and how every failure
// becomes one sentence a person can act on.

/** A failed call, with a `kind` the page can react to and a `message` it can show as is. */
export class ApiError extends Error {
  /**
   * @param {"input" | "not_found" | "busy" | "timeout" | "unreachable" | "server" | "config"} kind
   * @param {string} message
   * @param {number} [status] HTTP status, 0 when no answer came back
   */
  constructor(kind, message, status = 0) {
    super(message);
    this.name = "ApiError";
    this.kind = kind;
    this.status = status;
  }
}

/**
 * The service's base URL. By default the page talks to the origin that served it (the service serves
 * this page at /ui/). `?api=http://host:port` points a page hosted elsewhere at a service; that service
 * must then allow the page's origin (CORS, configuration.yaml).
 * @param {Location | URL} location
 * @returns {string} base URL without a trailing slash
 */
export function resolveApiBase(location) {
  const param = new URLSearchParams(location.search).get("api");
  if (param !== null && param.trim() !== "") {
    let url;
    try {
      url = new URL(param.trim());
    } catch {
      throw new ApiError("config", `"?api=${param}" is not a URL; use for example ?api=http://localhost:3000`);
    }
    if (url.protocol !== "http:" && url.protocol !== "https:") {
      throw new ApiError("config", `"?api=${param}" must be an http:// or https:// URL`);
    }
    return (url.origin + url.pathname).replace(/\/+$/, "");
  }
  if (location.protocol === "http:" || location.protocol === "https:") return location.origin;
  return "http://localhost:3000"; // opened from a file: assume a local service on the default port
}

const REQUEST_TIMEOUT_MS = 70_000; // the service answers 504 after its own 60 s; this is the last resort

export class ApiClient {
  /** @param {string} base */
  constructor(base) {
    this.base = base;
  }

  /**
   * POST a JSON body; resolves with the JSON answer and the round-trip time in milliseconds.
   * @param {string} path
   * @param {unknown} body
   * @param {AbortSignal} [signal]
   * @returns {Promise<{data: any, roundTripMs: number}>}
   */
  async post(path, body, signal) {
    const init = { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body), signal };
    return this.#postFor(path, init);
  }

  /**
   * POST a multipart form (file uploads); resolves like post().
   * @param {string} path
   * @param {FormData} form
   * @returns {Promise<{data: any, roundTripMs: number}>}
   */
  async postForm(path, form) {
    return this.#postFor(path, { method: "POST", body: form }); // the browser sets the multipart boundary
  }

  /** A POST's JSON answer and round-trip time, or the ApiError its status means. @param {string} path @param {RequestInit} init */
  async #postFor(path, init) {
    const started = performance.now();
    const response = await this.#fetch(path, init);
    const text = await response.text();
    const data = parseJson(text);
    const roundTripMs = performance.now() - started;
    if (!response.ok) throw errorFor(response.status, data, text);
    if (data === undefined) {
      throw new ApiError("server", `The service answered ${path} with something that is not JSON.`, response.status);
    }
    return { data, roundTripMs };
  }

  /**
   * GET a text resource (the Prometheus metrics).
   * @param {string} path
   * @returns {Promise<string>}
   */
  async getText(path) {
    const response = await this.#fetch(path, { method: "GET" });
    const text = await response.text();
    if (!response.ok) throw errorFor(response.status, parseJson(text), text);
    return text;
  }

  /** @param {string} path @param {RequestInit} init */
  async #fetch(path, init) {
    const timeout = AbortSignal.timeout(REQUEST_TIMEOUT_MS);
    const signal = init.signal ? AbortSignal.any([init.signal, timeout]) : timeout;
    try {
      return await fetch(this.base + path, { ...init, signal, cache: "no-store" });
    } catch (err) {
      if (init.signal?.aborted) throw err; // cancelled by the page itself: not an error to show
      if (timeout.aborted) {
        throw new ApiError("timeout", `The service did not answer within ${REQUEST_TIMEOUT_MS / 1000} s; try again.`);
      }
      throw new ApiError("unreachable", this.unreachableMessage());
    }
  }

  unreachableMessage() {
    let message = `Cannot reach the service at ${this.base}. Is it running?`;
    const here = globalThis.location?.origin;
    if (here && here !== "null" && new URL(this.base).origin !== here) {
      message +=
        ` This page comes from ${here}, so the service must also allow that origin` +
        " (CORS allow-list in configuration.yaml).";
    }
    return message;
  }
}

/** @param {string} text */
function parseJson(text) {
  if (!text) return undefined;
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

/**
 * One sentence for a non-2xx answer.
 * @param {number} status
 * @param {any} data
 * @param {string} text
 */
export function errorFor(status, data, text) {
  const said = typeof data?.error === "string" && data.error ? data.error : "";
  if (status === 429 || status === 503) {
    return new ApiError("busy", `The service is busy, try again in a moment (HTTP ${status}).`, status);
  }
  if (status === 504) {
    return new ApiError(
      "timeout",
      "The service took too long to answer (HTTP 504); try again, or send fewer texts at once.",
      status,
    );
  }
  if (status === 404) return new ApiError("not_found", said || "Not found (HTTP 404).", status);
  if (status >= 400 && status < 500) {
    return new ApiError("input", said || `The service refused the request (HTTP ${status}).`, status);
  }
  const detail = said || (text && text.length < 200 ? text.trim() : "");
  return new ApiError("server", `The service failed (HTTP ${status})${detail ? `: ${detail}` : "."}`, status);
}
