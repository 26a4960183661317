// The elevtts playground: speaks through this server's stream-input WebSocket and plays the
// audio while it streams (Web Audio for PCM and G.711, MediaSource for MP3), with live figures,
// word highlighting from the alignment, a timeline, and downloads. Plain JS, no dependencies.
"use strict";

const $ = (id) => document.getElementById(id);

// Formats the page can play while they stream. Opus (Ogg) has no MediaSource support in
// Chromium, so it is left out here (the API still serves it).
const PCM_RATES = [8000, 16000, 22050, 24000, 32000, 44100, 48000];
const MP3_FORMATS = ["mp3_22050_32", "mp3_24000_48", "mp3_44100_32", "mp3_44100_64", "mp3_44100_96",
  "mp3_44100_128", "mp3_44100_192"];
// PCM is the default: Web Audio plays it reliably everywhere, headless Chromium included.
const DEFAULT_FORMAT = "pcm_22050";

const CLOSE_WORDS = {
  1000: "The server finished and closed the connection normally.",
  1001: "The server is shutting down.",
  1006: "The connection was lost without a goodbye: the server stopped, refused the handshake, or the network dropped.",
  1008: "The server refused the input",
  1009: "A message was too big for the server",
  1011: "The server had an internal error (it is in the server's log)",
  1013: "The server is busy; try again shortly",
};

// State kept only in this page's memory (the key included).
const state = {
  apiKey: "",
  run: null,
  previousTimeline: null,
  // What the page did, for anyone (and the browser test) to read: window.playground.
  stats: { framesReceived: 0, audioBytes: 0, sourcesStarted: 0, highlightChanges: [], runs: 0, lastClose: null },
};
window.playground = state.stats;

// -- setup -----------------------------------------------------------------------------------

function socketBase() {
  return `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}`;
}

function formatChoices() {
  const mp3 = window.MediaSource && MediaSource.isTypeSupported("audio/mpeg") ? MP3_FORMATS : [];
  return [...PCM_RATES.map((rate) => `pcm_${rate}`), "ulaw_8000", "alaw_8000", ...mp3];
}

async function loadVoices() {
  const headers = state.apiKey ? { "xi-api-key": state.apiKey } : {};
  const response = await fetch("/v1/voices", { headers });
  if (response.status === 401) {
    $("key-row").hidden = false;
    const body = await response.json().catch(() => ({}));
    const detail = body.detail || {};
    showError(state.apiKey
      ? `The server refused the API key: ${detail.message || "invalid key"}.`
      : "This server needs an API key: enter it below.");
    return;
  }
  if (!response.ok) {
    showError(`Could not list the voices (HTTP ${response.status}).`);
    return;
  }
  const { voices } = await response.json();
  const select = $("voice");
  const chosen = select.value;
  select.replaceChildren(...voices.map((voice) => new Option(`${voice.name} (${voice.voice_id})`, voice.voice_id)));
  const preferred = voices.find((v) => v.voice_id === chosen) || voices.find((v) => v.voice_id === "joe") || voices[0];
  if (preferred) select.value = preferred.voice_id;
  showError(null);
}

function setup() {
  $("origin").textContent = location.origin;
  $("socket-url").textContent = `${socketBase()}/v1/text-to-speech/{voice_id}/stream-input`;
  $("format").replaceChildren(...formatChoices().map((name) => new Option(name, name)));
  $("format").value = DEFAULT_FORMAT;
  $("speed").addEventListener("input", () => { $("speed-value").textContent = Number($("speed").value).toFixed(2); });
  $("api-key").addEventListener("input", () => { state.apiKey = $("api-key").value; });
  $("load-voices").addEventListener("click", () => { state.apiKey = $("api-key").value; loadVoices(); });
  $("speak").addEventListener("click", () => startRun());
  $("compare").addEventListener("change", () => drawTimelines());
  $("flush-now").addEventListener("click", () => state.run && state.run.send({ text: " ", flush: true }));
  $("end-input").addEventListener("click", () => state.run && state.run.endInput());
  $("stop").addEventListener("click", () => state.run && state.run.stop("Stopped."));
  loadVoices().catch((error) => showError(`Could not reach the server: ${error.message}.`));
  requestAnimationFrame(highlightLoop);
}

// -- messages --------------------------------------------------------------------------------

function showError(text) {
  $("error").hidden = !text;
  $("error").textContent = text || "";
}

function setStatus(text) {
  $("status").textContent = text;
}

function settings() {
  const schedule = $("schedule").value.split(/[\s,]+/).filter(Boolean).map(Number);
  return {
    voice: $("voice").value,
    format: $("format").value,
    mode: $("mode").value,
    rate: Math.max(0.5, Number($("rate").value) || 6),
    flush: $("flush").value,
    autoMode: $("auto-mode").checked,
    schedule,
    voiceSettings: {
      stability: Number($("stability").value),
      similarity_boost: Number($("similarity").value),
      style: Number($("style").value),
      use_speaker_boost: $("speaker-boost").checked,
      speed: Number($("speed").value),
    },
    text: $("text").value,
  };
}

// Sentences, each with the spaces after it, so that nothing of the text is lost.
function sentences(text) {
  return text.match(/[^.!?]+(?:[.!?]+["')\]]*|$)\s*/g) || [];
}

// The messages a run sends after its opener, as [message, delay before it in ms].
function plan(config) {
  const steps = [];
  const flushEach = config.flush === "sentence";
  if (config.mode === "paste") {
    if (flushEach) {
      for (const sentence of sentences(config.text)) steps.push([{ text: sentence.trimEnd() + " ", flush: true }, 0]);
    } else {
      steps.push([{ text: config.text.trim() + " ", flush: config.flush === "end" }, 0]);
    }
  } else {
    const words = config.text.split(/\s+/).filter(Boolean);
    words.forEach((word, index) => {
      const last = index === words.length - 1;
      const flush = (flushEach && /[.!?]["')\]]*$/.test(word)) || (last && config.flush !== "manual");
      steps.push([{ text: word + " ", flush }, index === 0 ? 0 : 1000 / config.rate]);
    });
  }
  return steps;
}

// -- audio -----------------------------------------------------------------------------------

function parseFormat(name) {
  const [codec, rate, kbps] = name.split("_");
  return { name, codec, rate: Number(rate), kbps: Number(kbps) || null };
}

const MP3_BITRATES = {
  1: [0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320],
  2: [0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160],
};
const MP3_RATES = { 3: [44100, 48000, 32000], 2: [22050, 24000, 16000], 0: [11025, 12000, 8000] };

// Seconds of MP3 (layer III) audio in whole frames; the remainder waits for the next chunk.
class Mp3Meter {
  constructor() { this.pending = new Uint8Array(0); this.seconds = 0; }
  feed(bytes) {
    const data = new Uint8Array(this.pending.length + bytes.length);
    data.set(this.pending); data.set(bytes, this.pending.length);
    let at = 0;
    while (at + 4 <= data.length) {
      if (data[at] === 0x49 && data[at + 1] === 0x44 && data[at + 2] === 0x33) {  // "ID3" tag
        if (at + 10 > data.length) break;
        const size = ((data[at + 6] & 0x7f) << 21) | ((data[at + 7] & 0x7f) << 14) | ((data[at + 8] & 0x7f) << 7) | (data[at + 9] & 0x7f);
        at += 10 + size; continue;
      }
      const version = (data[at + 1] >> 3) & 3;
      const rateIndex = (data[at + 2] >> 2) & 3;
      const bitrateIndex = data[at + 2] >> 4;
      if (data[at] !== 0xff || (data[at + 1] & 0xe0) !== 0xe0 || version === 1 || rateIndex === 3 || bitrateIndex === 0 || bitrateIndex === 15) {
        at += 1; continue;  // not a frame header: resync
      }
      const mpeg1 = version === 3;
      const rate = MP3_RATES[version][rateIndex];
      const bitrate = MP3_BITRATES[mpeg1 ? 1 : 2][bitrateIndex] * 1000;
      const samples = mpeg1 ? 1152 : 576;
      const length = Math.floor(samples / 8 * bitrate / rate) + ((data[at + 2] >> 1) & 1);
      if (at + length > data.length) break;
      this.seconds += samples / rate;
      at += length;
    }
    this.pending = data.slice(at);
  }
}

// Plays PCM (16-bit little-endian) or G.711 chunks back to back on one AudioContext.
class WebAudioPlayer {
  constructor(format) {
    this.format = format;
    this.context = new AudioContext();
    this.nextStart = 0;
    this.spans = [];  // [context time, stream time, duration]: which audio plays when
    this.odd = null;
  }
  duration(bytes) {
    return this.format.codec === "pcm" ? Math.floor(bytes.length / 2) / this.format.rate : bytes.length / this.format.rate;
  }
  samples(bytes) {
    if (this.format.codec !== "pcm") return Float32Array.from(bytes, this.format.codec === "ulaw" ? ulaw : alaw);
    if (this.odd !== null) { const joined = new Uint8Array(bytes.length + 1); joined[0] = this.odd; joined.set(bytes, 1); bytes = joined; this.odd = null; }
    if (bytes.length % 2) { this.odd = bytes[bytes.length - 1]; bytes = bytes.subarray(0, bytes.length - 1); }
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.length);
    const out = new Float32Array(bytes.length / 2);
    for (let i = 0; i < out.length; i++) out[i] = view.getInt16(i * 2, true) / 32768;
    return out;
  }
  play(bytes, streamTime) {
    const samples = this.samples(bytes);
    if (!samples.length) return;
    const buffer = this.context.createBuffer(1, samples.length, this.format.rate);
    buffer.copyToChannel(samples, 0);
    const source = this.context.createBufferSource();
    source.buffer = buffer;
    source.connect(this.context.destination);
    const start = Math.max(this.nextStart, this.context.currentTime + 0.05);
    source.start(start);
    state.stats.sourcesStarted += 1;
    this.spans.push([start, streamTime, buffer.duration]);
    this.nextStart = start + buffer.duration;
  }
  // The stream time playing now, or null between chunks.
  now() {
    const t = this.context.currentTime;
    for (const [start, streamTime, duration] of this.spans) {
      if (t >= start && t < start + duration) return streamTime + (t - start);
    }
    return null;
  }
  playing() { return this.context.currentTime < this.nextStart; }
  finish() {}
  stop() { this.context.close(); }
}

function ulaw(byte) {
  byte = ~byte & 0xff;
  const sign = byte & 0x80, exponent = (byte >> 4) & 7, mantissa = byte & 0x0f;
  const magnitude = (((mantissa << 3) + 0x84) << exponent) - 0x84;
  return (sign ? -magnitude : magnitude) / 32768;
}

function alaw(byte) {
  byte ^= 0x55;
  const sign = byte & 0x80, exponent = (byte >> 4) & 7, mantissa = byte & 0x0f;
  let magnitude = exponent === 0 ? (mantissa << 4) + 8 : ((mantissa << 4) + 0x108) << (exponent - 1);
  return (sign ? magnitude : -magnitude) / 32768;
}

// Plays MP3 through MediaSource on the page's <audio> element as the chunks arrive.
class MediaSourcePlayer {
  constructor(format) {
    this.format = format;
    this.element = $("player");
    this.meter = new Mp3Meter();
    this.queue = [];
    this.ended = false;
    this.source = new MediaSource();
    this.element.src = URL.createObjectURL(this.source);
    this.source.addEventListener("sourceopen", () => {
      this.buffer = this.source.addSourceBuffer("audio/mpeg");
      this.buffer.mode = "sequence";
      this.buffer.addEventListener("updateend", () => this.pump());
      this.pump();
    });
  }
  duration(bytes) { const before = this.meter.seconds; this.meter.feed(bytes); return this.meter.seconds - before; }
  play(bytes) {
    this.queue.push(bytes);
    this.pump();
    if (this.element.paused) this.element.play().then(() => { state.stats.sourcesStarted += 1; }).catch(() => {});
  }
  pump() {
    if (!this.buffer || this.buffer.updating) return;
    if (this.queue.length) { this.buffer.appendBuffer(this.queue.shift()); return; }
    if (this.ended && this.source.readyState === "open") this.source.endOfStream();
  }
  now() { return this.element.paused ? null : this.element.currentTime; }
  playing() { return !this.element.paused && !this.element.ended; }
  finish() { this.ended = true; this.pump(); }
  stop() { this.element.pause(); }
}

// -- a run -----------------------------------------------------------------------------------

class Run {
  constructor(config) {
    this.config = config;
    this.format = parseFormat(config.format);
    this.player = this.format.codec === "mp3" ? new MediaSourcePlayer(this.format) : new WebAudioPlayer(this.format);
    this.audio = [];
    this.audioSeconds = 0;
    this.frames = 0;
    this.events = [];  // the timeline: {t, kind: "text"|"audio", flush, text, duration}
    this.words = [];  // {text, start, end, element}
    this.partial = null;
    this.pendingFlushes = [];
    this.flushLatencies = [];
    this.firstTextAt = null;
    this.ttfb = null;
    this.done = false;
    this.timers = [];
    this.started = performance.now();
  }

  url() {
    const query = new URLSearchParams({ output_format: this.format.name, auto_mode: String(this.config.autoMode), sync_alignment: "true" });
    if (this.config.flush === "manual") query.set("inactivity_timeout", "180");
    return `${socketBase()}/v1/text-to-speech/${encodeURIComponent(this.config.voice)}/stream-input?${query}`;
  }

  open() {
    this.socket = new WebSocket(this.url());
    this.socket.addEventListener("open", () => this.opened());
    this.socket.addEventListener("message", (event) => this.received(event.data));
    this.socket.addEventListener("close", (event) => this.closed(event));
  }

  opened() {
    const opener = { text: " ", voice_settings: this.config.voiceSettings };
    if (this.config.schedule.length) opener.generation_config = { chunk_length_schedule: this.config.schedule };
    if (state.apiKey) opener.xi_api_key = state.apiKey;
    this.socket.send(JSON.stringify(opener));
    setStatus("Connected: sending text…");
    let delay = 0;
    for (const [message, wait] of plan(this.config)) {
      delay += wait;
      this.timers.push(setTimeout(() => this.send(message), delay));
    }
    if (this.config.flush !== "manual") this.timers.push(setTimeout(() => this.endInput(), delay));
  }

  send(message) {
    if (!this.socket || this.socket.readyState !== WebSocket.OPEN) return;
    this.socket.send(JSON.stringify(message));
    const t = performance.now() - this.started;
    if (message.text.trim() && this.firstTextAt === null) this.firstTextAt = t;
    if (message.flush) this.pendingFlushes.push(t);
    this.events.push({ t, kind: "text", flush: Boolean(message.flush), text: message.text });
    drawTimelines();
  }

  endInput() {
    if (!this.socket || this.socket.readyState !== WebSocket.OPEN) return;
    this.socket.send(JSON.stringify({ text: "" }));
    this.events.push({ t: performance.now() - this.started, kind: "text", flush: false, text: "(end of input)" });
    $("flush-now").disabled = $("end-input").disabled = true;
    setStatus("Input ended: the server speaks the rest.");
  }

  received(data) {
    let frame;
    try { frame = JSON.parse(data); } catch { showError("The server sent a frame that is not JSON."); return; }
    if (frame.error) {
      const words = frame.error === "invalid_api_key" ? "The server refused the API key" : "The server reported an error";
      showError(`${words}: ${frame.message} (${frame.error}, close ${frame.code}).`);
      return;
    }
    if (frame.audio) this.audioFrame(frame);
    if (frame.isFinal) { this.done = true; this.player.finish(); setStatus("Done: the last audio has arrived."); }
  }

  audioFrame(frame) {
    const t = performance.now() - this.started;
    const bytes = Uint8Array.from(atob(frame.audio), (c) => c.charCodeAt(0));
    const offset = this.audioSeconds;  // the frame's start in the stream
    const duration = this.player.duration(bytes);
    this.audio.push(bytes);
    this.audioSeconds += duration;
    this.frames += 1;
    state.stats.framesReceived += 1;
    state.stats.audioBytes += bytes.length;
    if (this.ttfb === null && this.firstTextAt !== null) this.ttfb = t - this.firstTextAt;
    for (const sentAt of this.pendingFlushes.splice(0)) this.flushLatencies.push(t - sentAt);
    this.events.push({ t, kind: "audio", duration: duration * 1000, bytes: bytes.length });
    this.addAlignment(frame.alignment || frame.normalizedAlignment, offset);
    this.player.play(bytes, offset);
    this.showFigures();
    drawTimelines();
  }

  // Words from the frame's character timings (relative to the frame), on the stream's clock.
  addAlignment(alignment, offset) {
    if (!alignment) return;
    const { chars, charStartTimesMs: starts } = alignment;
    const durations = alignment.charDurationsMs || alignment.charsDurationsMs || [];
    chars.forEach((char, i) => {
      const start = offset + starts[i] / 1000, end = start + (durations[i] || 0) / 1000;
      if (/\s/.test(char)) { this.closeWord(); return; }
      if (!this.partial) this.partial = { text: "", start, end };
      this.partial.text += char;
      this.partial.end = Math.max(this.partial.end, end);
    });
  }

  closeWord() {
    if (!this.partial) return;
    const element = document.createElement("span");
    element.textContent = this.partial.text;
    $("words").append(element, " ");
    this.words.push({ ...this.partial, element });
    this.partial = null;
  }

  showFigures() {
    $("ttfb").textContent = this.ttfb === null ? "–" : `${Math.round(this.ttfb)} ms`;
    $("audio-received").textContent = this.frames ? `${this.audioSeconds.toFixed(2)} s` : "–";
    $("frames").textContent = String(this.frames);
    const elapsed = (performance.now() - this.started - (this.firstTextAt || 0)) / 1000;
    $("rtf").textContent = this.frames && elapsed > 0 ? `${(this.audioSeconds / elapsed).toFixed(1)}x` : "–";
    $("flush-latencies").textContent = this.flushLatencies.length
      ? this.flushLatencies.map((ms, i) => `#${i + 1} ${Math.round(ms)} ms`).join(", ") : "–";
  }

  closed(event) {
    this.closeWord();
    this.timers.forEach(clearTimeout);
    state.stats.lastClose = { code: event.code, reason: event.reason };
    const words = CLOSE_WORDS[event.code] || `The connection closed with code ${event.code}`;
    if (event.code !== 1000 && !this.stopped) {
      const already = $("error").hidden ? "" : $("error").textContent + " ";
      showError(`${already}${words}${event.reason && event.code !== 1000 ? `: ${event.reason}` : ""}.`.replace(/\.\.$/, "."));
    }
    if (event.code === 1000 || this.stopped) setStatus(this.stopped ? this.stoppedWords : (this.done ? "Done." : words));
    else setStatus("Stopped by the server.");
    this.player.finish();
    this.showFigures();
    offerDownloads(this);
    $("speak").disabled = false;
    $("flush-now").disabled = $("end-input").disabled = $("stop").disabled = true;
  }

  stop(words) {
    this.stopped = true;
    this.stoppedWords = words;
    this.timers.forEach(clearTimeout);
    this.player.stop();
    if (this.socket) this.socket.close(1000);
  }
}

function startRun() {
  if (state.run && !state.run.socket) return;
  const config = settings();
  if (!config.text.trim()) { showError("There is no text to speak."); return; }
  if (!config.voice) { showError("No voice to speak with: the voice list did not load."); return; }
  if (state.run) {
    if (state.run.socket.readyState <= WebSocket.OPEN) state.run.stop("Replaced by a new run.");
    else state.run.player.stop();
    state.previousTimeline = state.run.events;
  }
  showError(null);
  $("words").replaceChildren();
  for (const id of ["download-audio", "download-srt", "download-vtt"]) $(id).removeAttribute("href");
  state.stats.runs += 1;
  state.run = new Run(config);
  state.run.showFigures();
  $("speak").disabled = true;
  $("stop").disabled = false;
  $("flush-now").disabled = $("end-input").disabled = config.flush !== "manual";
  setStatus("Connecting…");
  state.run.open();
  drawTimelines();
}

// -- highlighting ----------------------------------------------------------------------------

function highlightLoop() {
  const run = state.run;
  if (run) {
    const now = run.player.now();
    const index = now === null ? -1 : run.words.findIndex((word) => now >= word.start && now < word.end);
    if (index !== run.highlighted) {
      if (run.highlighted >= 0 && run.words[run.highlighted]) {
        run.words[run.highlighted].element.classList.remove("now");
        run.words[run.highlighted].element.classList.add("spoken");
      }
      if (index >= 0) {
        run.words[index].element.classList.add("now");
        state.stats.highlightChanges.push({ word: run.words[index].text, at: now });
      }
      run.highlighted = index;
    }
  }
  requestAnimationFrame(highlightLoop);
}

// -- timeline --------------------------------------------------------------------------------

const SVG = "http://www.w3.org/2000/svg";

function svgElement(name, attributes, title) {
  const element = document.createElementNS(SVG, name);
  for (const [key, value] of Object.entries(attributes)) element.setAttribute(key, value);
  if (title) { const t = document.createElementNS(SVG, "title"); t.textContent = title; element.append(t); }
  return element;
}

function timelineEnd(events) {
  return events.reduce((end, e) => Math.max(end, e.t + (e.duration || 0)), 0);
}

// Lanes: text sent (a mark per message, flushes taller and orange), then audio: each chunk is a
// bar from its arrival, as long as the audio it holds, on alternating rows so neighbours stay apart.
function drawTimeline(container, events, span, label) {
  const width = 1000, left = 78, height = 118;
  const x = (ms) => left + (ms / span) * (width - left - 12);
  const svg = svgElement("svg", { viewBox: `0 0 ${width} ${height}`, role: "img", "aria-label": `timeline of ${label}` });
  const text = (content, attributes) => { const t = svgElement("text", attributes); t.textContent = content; svg.append(t); };
  text(label, { x: 4, y: 13, class: "lane-label run-label" });
  text("text sent", { x: 4, y: 40, class: "lane-label" });
  text("audio", { x: 4, y: 80, class: "lane-label" });
  const step = niceStep(span);
  for (let ms = 0; ms <= span; ms += step) {
    svg.append(svgElement("line", { x1: x(ms), x2: x(ms), y1: 20, y2: 102, class: "grid" }));
    text(ms >= 1000 ? `${ms / 1000} s` : `${ms} ms`, { x: x(ms), y: 114, class: "axis", "text-anchor": "middle" });
  }
  let row = 0;
  for (const e of events) {
    if (e.kind === "text") {
      const title = `${Math.round(e.t)} ms: sent ${JSON.stringify(e.text)}${e.flush ? " with flush: true" : ""}`;
      const top = e.flush ? 22 : 28;
      svg.append(svgElement("line", { x1: x(e.t), x2: x(e.t), y1: top, y2: 48, class: e.flush ? "sent flush" : "sent" }, title));
    } else {
      const title = `${Math.round(e.t)} ms: received ${Math.round(e.duration)} ms of audio (${e.bytes} bytes)`;
      const y = row ? 80 : 60;
      row = 1 - row;
      svg.append(svgElement("rect", { x: x(e.t), y, width: Math.max(1.5, x(e.t + e.duration) - x(e.t)), height: 16, class: "chunk" }, title));
      svg.append(svgElement("line", { x1: x(e.t), x2: x(e.t), y1: y - 2, y2: y + 18, class: "arrival" }));
    }
  }
  container.replaceChildren(svg);
}

function niceStep(span) {
  const raw = span / 8;
  const power = 10 ** Math.floor(Math.log10(raw));
  return [1, 2, 5, 10].map((m) => m * power).find((s) => s >= raw);
}

function drawTimelines() {
  const events = state.run ? state.run.events : [];
  const previous = $("compare").checked ? state.previousTimeline : null;
  const span = Math.max(500, timelineEnd(events), previous ? timelineEnd(previous) : 0);
  drawTimeline($("timeline"), events, span, "this run");
  if (previous) drawTimeline($("timeline-previous"), previous, span, "previous run");
  else $("timeline-previous").replaceChildren();
}

// -- downloads -------------------------------------------------------------------------------

function offerDownloads(run) {
  if (!run.audio.length) return;
  const format = run.format;
  let blob;
  if (format.codec === "mp3") {
    blob = new Blob(run.audio, { type: "audio/mpeg" });
    $("download-audio").download = "speech.mp3";
  } else {
    blob = new Blob([wavHeader(run.audio, format), ...run.audio], { type: "audio/wav" });
    $("download-audio").download = "speech.wav";
  }
  $("download-audio").href = URL.createObjectURL(blob);
  const cues = subtitleCues(run.words);
  if (!cues.length) return;
  $("download-srt").href = URL.createObjectURL(new Blob([toSrt(cues)], { type: "application/x-subrip" }));
  $("download-vtt").href = URL.createObjectURL(new Blob([toVtt(cues)], { type: "text/vtt" }));
}

function wavHeader(chunks, format) {
  const length = chunks.reduce((sum, c) => sum + c.length, 0);
  const pcm = format.codec === "pcm";
  const bytesPerSample = pcm ? 2 : 1;
  const header = new DataView(new ArrayBuffer(44));
  const text = (at, s) => [...s].forEach((c, i) => header.setUint8(at + i, c.charCodeAt(0)));
  text(0, "RIFF"); header.setUint32(4, 36 + length, true); text(8, "WAVE");
  text(12, "fmt "); header.setUint32(16, 16, true);
  header.setUint16(20, pcm ? 1 : format.codec === "alaw" ? 6 : 7, true);  // PCM, A-law, mu-law
  header.setUint16(22, 1, true); header.setUint32(24, format.rate, true);
  header.setUint32(28, format.rate * bytesPerSample, true); header.setUint16(32, bytesPerSample, true);
  header.setUint16(34, bytesPerSample * 8, true);
  text(36, "data"); header.setUint32(40, length, true);
  return header.buffer;
}

// Words into cues of at most two lines of 42 characters and 5 seconds; a sentence's end ends a cue.
const LINE_CHARS = 42;

function subtitleCues(words) {
  const cues = [];
  let current = [];
  for (const word of words) {
    const text = [...current, word].map((w) => w.text).join(" ");
    if (current.length && (text.length > 2 * LINE_CHARS || word.end - current[0].start > 5)) { cues.push(current); current = []; }
    current.push(word);
    if (/[.!?]["')\]]*$/.test(word.text)) { cues.push(current); current = []; }
  }
  if (current.length) cues.push(current);
  return cues.map((group) => ({ start: group[0].start, end: group[group.length - 1].end, text: lines(group.map((w) => w.text)) }));
}

// Words into lines of at most LINE_CHARS (a longer word gets its own line).
function lines(words) {
  const out = [];
  for (const word of words) {
    const last = out.length - 1;
    if (last >= 0 && out[last].length + 1 + word.length <= LINE_CHARS) out[last] += ` ${word}`;
    else out.push(word);
  }
  return out.join("\n");
}

function timestamp(seconds, separator) {
  const ms = Math.round(seconds * 1000);
  const pad = (n, w = 2) => String(n).padStart(w, "0");
  return `${pad(Math.floor(ms / 3600000))}:${pad(Math.floor(ms / 60000) % 60)}:${pad(Math.floor(ms / 1000) % 60)}${separator}${pad(ms % 1000, 3)}`;
}

function toSrt(cues) {
  return cues.map((c, i) => `${i + 1}\n${timestamp(c.start, ",")} --> ${timestamp(c.end, ",")}\n${c.text}\n`).join("\n");
}

function toVtt(cues) {
  const escape = (s) => s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
  return "WEBVTT\n\n" + cues.map((c) => `${timestamp(c.start, ".")} --> ${timestamp(c.end, ".")}\n${escape(c.text)}\n`).join("\n");
}

setup();
