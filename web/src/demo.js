// The /demo page: pick a file, a look, stickers and music; upload; follow the progress; compare the
// renditions with the original and play the HLS rendition (hls.js, bundled; native HLS where there is no MSE).
import Hls from "hls.js/light";

const KEY_STORE = "notes-media-demo.api-key";
const API = new URL(".", location.href); // the page is /demo: the API is its parent
const $ = (id) => document.getElementById(id);
const lang = (navigator.language || "en").toLowerCase().startsWith("zh") ? "zh" : "en";

const els = {
  form: $("editor"), key: $("api-key"), keyHint: $("key-hint"), file: $("file"),
  looks: document.querySelector("[data-testid=looks]"), intensity: $("intensity"), intensityValue: $("intensity-value"),
  tray: document.querySelector("[data-testid=sticker-tray]"), selected: document.querySelector("[data-testid=selected-sticker]"),
  scale: $("sticker-scale"), scaleValue: $("sticker-scale-value"), remove: $("sticker-remove"),
  musicPanel: $("music-panel"), music: $("music"), musicPreview: $("music-preview"),
  volume: $("music-volume"), volumeValue: $("music-volume-value"),
  upload: $("upload"), progress: $("progress"), status: $("status"), error: $("error"),
  stage: $("stage"), layer: $("sticker-layer"), stageEmpty: $("stage-empty"),
  resultsPanel: $("results-panel"), results: $("results"), files: $("files"),
};

const state = {
  file: null, kind: null, url: null, // the chosen file, "photo" | "video", its object URL
  looks: new Map(), stickers: new Map(), tracks: new Map(), // catalogue items by id
  placed: [], // {item, x, y, scale, el}: x, y where the sticker's anchor lands, as fractions of the frame
  selected: null, busy: false, hls: null,
};

const title = (item) => (item.title && (item.title[lang] || item.title.en)) || item.id;
const clamp = (v, lo = 0, hi = 1) => Math.min(hi, Math.max(lo, v));
const round = (v) => Math.round(v * 10000) / 10000;

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (name === "text") node.textContent = value;
    else if (name in node && typeof value !== "string") node[name] = value;
    else node.setAttribute(name, value === true ? "" : value);
  }
  node.append(...children);
  return node;
}

function say(message) {
  els.status.textContent = message;
}

function fail(message) {
  els.error.textContent = message;
  els.error.hidden = !message;
}

function bytes(n) {
  if (!n && n !== 0) return "";
  return n < 1024 * 1024 ? `${(n / 1024).toFixed(1)} kB` : `${(n / 1024 / 1024).toFixed(2)} MB`;
}

// --- the API ---------------------------------------------------------------------------------------------

function headers() {
  return { Authorization: `Bearer ${els.key.value.trim()}` };
}

async function api(path, options = {}) {
  const res = await fetch(new URL(path, API), options);
  const body = res.status === 204 ? null : await res.json().catch(() => null);
  if (!res.ok) {
    const err = body && body.error ? body.error : { code: `http_${res.status}`, message: res.statusText };
    throw Object.assign(new Error(`${err.message} (${err.code})`), { code: err.code, status: res.status });
  }
  return body;
}

// --- API key ---------------------------------------------------------------------------------------------

function setupKey() {
  const devKey = document.querySelector("meta[name=demo-dev-key]")?.content || "";
  const stored = localStorage.getItem(KEY_STORE) || "";
  els.key.value = stored || devKey;
  if (!stored && devKey) els.keyHint.textContent = "The development key of media-service dev is filled in.";
  els.key.addEventListener("input", () => {
    localStorage.setItem(KEY_STORE, els.key.value.trim());
    refreshUpload();
  });
}

// --- catalogue -------------------------------------------------------------------------------------------

async function loadCatalogue() {
  const [filters, stickers, music] = await Promise.all(["v1/filters", "v1/stickers", "v1/music"].map((p) => api(p)));
  for (const look of filters.items) {
    state.looks.set(look.id, look);
    els.looks.append(el("label", { class: "look", title: title(look) },
      el("input", { type: "radio", name: "look", value: look.id, "data-testid": "look", "data-look-id": look.id }),
      el("img", { src: look.preview_url, alt: "", loading: "lazy", width: "96", height: "72" }),
      el("span", { class: "name", text: title(look) })));
  }
  for (const sticker of stickers.items) {
    state.stickers.set(sticker.id, sticker);
    const button = el("button", { type: "button", class: "sticker", "data-testid": "sticker",
                                  "data-sticker-id": sticker.id, "aria-label": `Add sticker: ${title(sticker)}`,
                                  title: title(sticker), disabled: true },
      el("img", { src: sticker.preview_url, alt: "", draggable: "false" }));
    trayDrag(button, sticker);
    els.tray.append(button);
  }
  for (const track of music.items) {
    state.tracks.set(track.id, track);
    els.music.append(el("option", { value: track.id, text: `${title(track)} · ${track.artist} (${Math.round(track.duration)} s)` }));
  }
}

function setupLook() {
  els.looks.addEventListener("change", () => {
    const look = state.looks.get(currentLook());
    els.intensity.disabled = !look;
    if (look) els.intensity.value = look.intensity ?? 1;
    showIntensity();
  });
  els.intensity.addEventListener("input", showIntensity);
}

function currentLook() {
  return els.looks.querySelector("input[name=look]:checked")?.value || "";
}

function showIntensity() {
  els.intensityValue.textContent = els.intensity.disabled ? "–" : Number(els.intensity.value).toFixed(2);
}

// --- the file and its preview ----------------------------------------------------------------------------

function kindOf(file) {
  if (file.type.startsWith("video/")) return "video";
  if (file.type.startsWith("image/")) return "photo";
  return /\.(mp4|mov|m4v|webm)$/i.test(file.name) ? "video" : "photo";
}

function setupFile() {
  els.file.addEventListener("change", () => {
    const file = els.file.files[0];
    if (!file) return;
    if (state.url) URL.revokeObjectURL(state.url);
    state.file = file;
    state.kind = kindOf(file);
    state.url = URL.createObjectURL(file);
    for (const placed of [...state.placed]) removeSticker(placed);
    els.stage.querySelector(".preview")?.remove();
    const preview = state.kind === "video"
      ? el("video", { class: "preview", "data-testid": "preview", src: state.url, muted: true, loop: true,
                      autoplay: true, playsinline: true, "aria-label": `Preview of ${file.name}` })
      : el("img", { class: "preview", "data-testid": "preview", src: state.url, alt: `Preview of ${file.name}` });
    preview.addEventListener("error", () => say("This browser cannot preview the file; it can still be uploaded."));
    els.stage.prepend(preview);
    els.stage.hidden = false;
    els.stageEmpty.hidden = true;
    els.musicPanel.hidden = state.kind !== "video";
    for (const button of els.tray.querySelectorAll("button")) button.disabled = false;
    fail("");
    say(`${state.kind === "video" ? "Video" : "Photo"} ${file.name} (${bytes(file.size)}) chosen.`);
    refreshUpload();
  });
}

// --- stickers: dragged from the tray onto the picture, then moved around ---------------------------------

function stageRect() {
  return els.layer.getBoundingClientRect();
}

function inside(rect, x, y) {
  return x >= rect.left && x <= rect.right && y >= rect.top && y <= rect.bottom;
}

function trayDrag(button, sticker) {
  let drag = null;
  button.addEventListener("pointerdown", (e) => {
    if (button.disabled || e.button !== 0) return;
    e.preventDefault();
    button.setPointerCapture(e.pointerId);
    const rect = stageRect();
    const width = sticker.scale * rect.width;
    const ghost = el("img", { class: "ghost", src: sticker.preview_url, alt: "" });
    ghost.style.width = `${width}px`;
    ghost.style.transform = `translate(-${(sticker.anchor?.[0] ?? 0.5) * 100}%, -${(sticker.anchor?.[1] ?? 0.5) * 100}%)`;
    drag = { x0: e.clientX, y0: e.clientY, moved: false, ghost };
  });
  button.addEventListener("pointermove", (e) => {
    if (!drag) return;
    if (!drag.moved && Math.hypot(e.clientX - drag.x0, e.clientY - drag.y0) > 4) {
      drag.moved = true;
      document.body.append(drag.ghost);
    }
    drag.ghost.style.left = `${e.clientX}px`;
    drag.ghost.style.top = `${e.clientY}px`;
  });
  const end = (e, cancelled) => {
    if (!drag) return;
    const { moved, ghost } = drag;
    drag = null;
    ghost.remove();
    if (cancelled) return;
    const rect = stageRect();
    if (!moved) placeSticker(sticker, 0.5, 0.5);
    else if (inside(rect, e.clientX, e.clientY)) {
      placeSticker(sticker, (e.clientX - rect.left) / rect.width, (e.clientY - rect.top) / rect.height);
    }
  };
  button.addEventListener("pointerup", (e) => end(e, false));
  button.addEventListener("pointercancel", (e) => end(e, true));
  // Keyboard (Enter/Space) gives a click with no pointer: drop it in the middle.
  button.addEventListener("click", (e) => {
    if (e.detail === 0 && !button.disabled) placeSticker(sticker, 0.5, 0.5);
  });
}

function placeSticker(item, x, y) {
  const placed = { item, x: clamp(x), y: clamp(y), scale: item.scale, el: null };
  const node = el("img", { class: "placed", src: item.preview_url, alt: "", draggable: "false", tabindex: "0",
                           role: "button", "data-testid": "placed-sticker", "data-sticker-id": item.id,
                           "aria-label": `${title(item)} sticker: drag or use the arrow keys to move it, Delete removes it` });
  const [ax, ay] = item.anchor || [0.5, 0.5];
  node.style.transform = `translate(-${ax * 100}%, -${ay * 100}%)`;
  node.style.transformOrigin = `${ax * 100}% ${ay * 100}%`;
  placed.el = node;
  state.placed.push(placed);
  els.layer.append(node);
  layout(placed);
  moveDrag(placed);
  select(placed);
  node.focus({ preventScroll: true });
  say(`${title(item)} placed at ${Math.round(placed.x * 100)} %, ${Math.round(placed.y * 100)} %.`);
}

function layout(placed) {
  placed.el.style.left = `${placed.x * 100}%`;
  placed.el.style.top = `${placed.y * 100}%`;
  placed.el.style.width = `${placed.scale * 100}%`;
  placed.el.dataset.x = round(placed.x);
  placed.el.dataset.y = round(placed.y);
}

function moveDrag(placed) {
  const node = placed.el;
  let grab = null;
  node.addEventListener("pointerdown", (e) => {
    if (e.button !== 0) return;
    e.preventDefault();
    select(placed);
    node.setPointerCapture(e.pointerId);
    const rect = stageRect();
    // Where the pointer holds the sticker, relative to its anchor: it does not jump under the pointer.
    grab = { dx: e.clientX - (rect.left + placed.x * rect.width), dy: e.clientY - (rect.top + placed.y * rect.height) };
  });
  node.addEventListener("pointermove", (e) => {
    if (!grab) return;
    const rect = stageRect();
    placed.x = clamp((e.clientX - grab.dx - rect.left) / rect.width);
    placed.y = clamp((e.clientY - grab.dy - rect.top) / rect.height);
    layout(placed);
  });
  const release = () => { grab = null; };
  node.addEventListener("pointerup", release);
  node.addEventListener("pointercancel", release);
  node.addEventListener("focus", () => select(placed));
  node.addEventListener("keydown", (e) => {
    const step = e.shiftKey ? 0.05 : 0.01;
    const moves = { ArrowLeft: [-step, 0], ArrowRight: [step, 0], ArrowUp: [0, -step], ArrowDown: [0, step] };
    if (moves[e.key]) {
      placed.x = clamp(placed.x + moves[e.key][0]);
      placed.y = clamp(placed.y + moves[e.key][1]);
      layout(placed);
    } else if (e.key === "Delete" || e.key === "Backspace") {
      removeSticker(placed);
    } else {
      return;
    }
    e.preventDefault();
  });
}

function select(placed) {
  state.selected = placed;
  for (const p of state.placed) p.el.classList.toggle("selected", p === placed);
  els.selected.hidden = !placed;
  if (placed) {
    els.scale.value = placed.scale;
    els.scaleValue.textContent = Number(placed.scale).toFixed(2);
  }
}

function removeSticker(placed) {
  placed.el.remove();
  state.placed = state.placed.filter((p) => p !== placed);
  select(state.placed.at(-1) || null);
}

function setupStickerControls() {
  els.scale.addEventListener("input", () => {
    if (!state.selected) return;
    state.selected.scale = Number(els.scale.value);
    els.scaleValue.textContent = state.selected.scale.toFixed(2);
    layout(state.selected);
  });
  els.remove.addEventListener("click", () => state.selected && removeSticker(state.selected));
}

// --- music -----------------------------------------------------------------------------------------------

function setupMusic() {
  els.music.addEventListener("change", () => {
    const track = state.tracks.get(els.music.value);
    els.musicPreview.hidden = !track;
    if (track) els.musicPreview.src = track.preview_url;
    else els.musicPreview.removeAttribute("src");
  });
  els.volume.addEventListener("input", () => { els.volumeValue.textContent = Number(els.volume.value).toFixed(2); });
}

// --- upload and progress ---------------------------------------------------------------------------------

function recipe() {
  const out = {};
  const look = currentLook();
  if (look) out.filter = { id: look, intensity: Number(els.intensity.value) };
  if (state.placed.length) {
    out.stickers = state.placed.map((p) => ({ id: p.item.id, x: round(p.x), y: round(p.y), scale: round(p.scale) }));
  }
  if (state.kind === "video" && els.music.value) out.music = { id: els.music.value, volume: Number(els.volume.value) };
  return out;
}

function refreshUpload() {
  els.upload.disabled = state.busy || !state.file || !els.key.value.trim();
}

async function upload(e) {
  e.preventDefault();
  if (!state.file || state.busy) return;
  state.busy = true;
  refreshUpload();
  fail("");
  els.progress.value = 0;
  els.progress.removeAttribute("data-status");
  say("Uploading…");
  try {
    const form = new FormData();
    form.append("file", state.file, state.file.name);
    form.append("recipe", JSON.stringify(recipe()));
    const media = await api("v1/media", { method: "POST", headers: headers(), body: form });
    els.form.dataset.mediaId = media.id;
    show(media);
    const final = await follow(media.id);
    if (final.status === "failed") throw new Error(`${final.error?.message || "Rendering failed"} (${final.error?.code})`);
    renderResults(await api(`v1/media/${media.id}`, { headers: headers() }));
  } catch (err) {
    fail(err.message || String(err));
    say("Stopped.");
  } finally {
    state.busy = false;
    refreshUpload();
  }
}

function show(snapshot) {
  els.progress.value = snapshot.status === "ready" ? 1 : snapshot.progress || 0;
  els.progress.dataset.status = snapshot.status;
  const percent = Math.round((snapshot.status === "ready" ? 1 : snapshot.progress || 0) * 100);
  say(`${snapshot.status[0].toUpperCase()}${snapshot.status.slice(1)} · ${percent} %`);
}

// Server-sent events need the key in a header, which EventSource cannot send: read the stream with fetch.
// If the stream breaks or is not there, poll.
async function follow(id) {
  try {
    const final = await listen(id);
    if (final) return final;
  } catch (err) {
    console.warn("events stream failed, polling instead", err);
  }
  return poll(id);
}

async function listen(id) {
  const res = await fetch(new URL(`v1/media/${id}/events`, API), { headers: { ...headers(), Accept: "text/event-stream" } });
  if (!res.ok || !res.body) throw new Error(`events: HTTP ${res.status}`);
  const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return null;
    buffer += value.replace(/\r\n?/g, "\n");
    let cut;
    while ((cut = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, cut);
      buffer = buffer.slice(cut + 2);
      let event = "message";
      let data = "";
      for (const line of block.split("\n")) {
        if (line.startsWith("event:")) event = line.slice(6).trim();
        else if (line.startsWith("data:")) data += line.slice(5).trim();
      }
      if (event === "deleted") throw Object.assign(new Error("The media was deleted."), { final: true });
      if (event !== "status" || !data) continue;
      const snapshot = JSON.parse(data);
      show(snapshot);
      if (snapshot.status === "ready" || snapshot.status === "failed") {
        reader.cancel().catch(() => {});
        return snapshot;
      }
    }
  }
}

async function poll(id) {
  for (;;) {
    const media = await api(`v1/media/${id}`, { headers: headers() });
    show(media);
    if (media.status === "ready" || media.status === "failed") return media;
    await new Promise((resolve) => setTimeout(resolve, 1000));
  }
}

// --- results ---------------------------------------------------------------------------------------------

function card(name, caption, media) {
  return el("figure", { class: "card", "data-testid": "result", "data-name": name }, media,
    el("figcaption", {}, el("strong", { text: name }), el("span", { text: caption })));
}

function size(r) {
  return [r.width && r.height ? `${r.width}×${r.height}` : "", bytes(r.bytes)].filter(Boolean).join(" · ");
}

function renderResults(media) {
  if (state.hls) {
    state.hls.destroy();
    state.hls = null;
  }
  els.results.replaceChildren();
  els.files.replaceChildren();
  const source = media.source || {};
  const original = state.kind === "video"
    ? el("video", { src: state.url, controls: true, muted: true, playsinline: true, "data-testid": "original" })
    : el("img", { src: state.url, alt: "The original", "data-testid": "original" });
  els.results.append(card("original", [source.format, size(source)].filter(Boolean).join(" · "), original));

  const byName = new Map(media.renditions.map((r) => [r.name, r]));
  if (media.kind === "video") {
    const poster = byName.get("poster.webp") || byName.get("poster.jpg");
    const hls = byName.get("hls");
    if (poster) {
      els.results.append(card(poster.name, size(poster),
        el("img", { src: poster.url, alt: "Poster", "data-testid": "rendition-img", "data-name": poster.name })));
    }
    if (hls) {
      const n = (hls.variants || []).length;
      els.results.append(card("hls", `${n} variant${n === 1 ? "" : "s"} · ${size(hls)}`, player(hls.url, poster?.url)));
    }
    coverPicker(media);
    const preview = media.renditions.find((r) => r.content_type === "image/webp" && r.name !== "poster.webp");
    if (preview) {
      els.results.append(card(preview.name, size(preview),
        el("img", { src: preview.url, alt: "Animated preview", "data-testid": "rendition-img", "data-name": preview.name })));
    }
  } else {
    const images = media.renditions.filter((r) => r.content_type.startsWith("image/"))
      .sort((a, b) => b.width - a.width || a.content_type.localeCompare(b.content_type));
    for (const r of images) {
      els.results.append(card(r.name, size(r),
        el("img", { src: r.url, alt: `Rendition ${r.name}`, "data-testid": "rendition-img", "data-name": r.name })));
    }
  }
  for (const r of media.renditions) {
    els.files.append(el("li", {}, el("a", { href: r.url, target: "_blank", rel: "noopener noreferrer", text: r.name }),
      ` ${r.content_type} ${size(r)}`));
  }
  els.resultsPanel.hidden = false;
  say(`Ready · ${media.renditions.length} renditions.`);
  els.resultsPanel.scrollIntoView({ behavior: "smooth", block: "start" });
}

// The video's cover candidates (scored frames, look and stickers on): picking one renders the poster there,
// on the server, without encoding the video again; the poster card follows.
async function coverPicker(media) {
  let found;
  try {
    found = await api(`v1/media/${media.id}/covers`, { headers: headers() });
  } catch (err) {
    console.warn("no cover candidates", err);
    return;
  }
  if (!found.items.length) return;
  const row = el("div", { class: "covers", role: "group", "aria-label": "Cover candidates" });
  const mark = (time) => {
    for (const b of row.querySelectorAll("button")) b.setAttribute("aria-pressed", String(Number(b.dataset.time) === time));
  };
  for (const c of found.items) {
    const button = el("button", { type: "button", class: "cover", "data-testid": "cover-candidate", "data-time": String(c.time),
                                  "data-index": String(c.index), title: `${c.time.toFixed(1)} s · score ${c.score.toFixed(2)}`,
                                  "aria-label": `Use the frame at ${c.time.toFixed(1)} s as the cover` },
      el("img", { src: c.url, alt: "", width: "72" }), el("span", { text: `${c.time.toFixed(1)} s` }));
    button.addEventListener("click", () => chooseCover(media.id, c, mark));
    row.append(button);
  }
  mark(found.cover.poster_time);
  els.results.append(card("cover", "pick a frame: the poster is cut there again", row));
}

async function chooseCover(id, candidate, mark) {
  say(`Cutting the poster at ${candidate.time.toFixed(1)} s…`);
  try {
    await api(`v1/media/${id}/cover`, { method: "PUT", headers: { ...headers(), "Content-Type": "application/json" },
                                         body: JSON.stringify({ candidate: candidate.index }) });
    for (let i = 0; i < 60; i += 1) {
      const media = await api(`v1/media/${id}`, { headers: headers() });
      if (!media.cover.pending) {
        const poster = media.renditions.find((r) => r.name === "poster.webp");
        const img = els.results.querySelector('[data-testid=rendition-img][data-name="poster.webp"]');
        if (poster && img) img.src = poster.url;
        mark(media.cover.poster_time);
        say(`Cover at ${media.cover.poster_time.toFixed(1)} s.`);
        return;
      }
      await new Promise((resolve) => setTimeout(resolve, 500));
    }
    fail("The new cover is taking too long.");
  } catch (err) {
    fail(err.message || String(err));
  }
}

function player(url, poster) {
  const video = el("video", { controls: true, muted: true, playsinline: true, preload: "auto", poster,
                              "data-testid": "hls-player", "aria-label": "HLS rendition" });
  if (Hls.isSupported()) {
    video.dataset.engine = "hls.js";
    const hls = new Hls({ enableWorker: false });
    hls.on(Hls.Events.ERROR, (_event, data) => {
      if (data.fatal) fail(`The player stopped: ${data.details}`);
    });
    hls.loadSource(url);
    hls.attachMedia(video);
    state.hls = hls;
  } else if (video.canPlayType("application/vnd.apple.mpegurl")) {
    video.dataset.engine = "native";
    video.src = url;
  } else {
    video.dataset.engine = "none";
    fail("This browser can play neither HLS nor Media Source Extensions.");
  }
  return video;
}

// --- start -----------------------------------------------------------------------------------------------

setupKey();
setupFile();
setupLook();
setupStickerControls();
setupMusic();
els.form.addEventListener("submit", upload);
loadCatalogue().then(() => {
  document.body.dataset.ready = "true";
}, (err) => fail(`Could not load the catalogue: ${err.message}`));
