// The page of `cnnkit serve`: draw a digit or give a photo and see what the network sees.
// Plain JavaScript, no build step and no library. It talks to the server's own /v1/
// routes only: /v1/model once, /v1/predict while a stroke is drawn (one request in
// flight at a time: a new drawing waits for the answer to the last), /v1/explain when
// a stroke ends, a photo arrives or a class is clicked, and with an index /v1/search
// and its thumbnails.
//
// The page is a list of panels (PANELS), each an object that renders its part of an
// explanation and empties itself. A new input or Clear empties them all; an answer
// fills them all. Another panel is one more object in the list and its section in
// index.html.
"use strict";

const state = {
  token: sessionStorage.getItem("cnnkit-token") || "",
  model: null,
  input: null, // the image explained: { blob, name, source } (source: "draw" or "photo")
  target: null, // the class whose evidence is shown; null: the top class
  generation: 0, // bumped by every new input and by Clear: older answers are dropped
  busy: false, // a /v1/predict request is in flight
  dirty: false, // the drawing changed since the last request
  sent: 0, // requests sent; a prediction is shown only if no later answer was shown
  shown: 0,
  explaining: 0, // the newest explain's number: only its answer is shown
  searches: 0, // searches sent; only the newest one's answer is shown
};

const $ = (id) => document.getElementById(id);

function element(tag, className, text) {
  const made = document.createElement(tag);
  if (className) made.className = className;
  if (text !== undefined) made.textContent = text;
  return made;
}

// The server ----------------------------------------------------------------------------

async function send(path, body) {
  const headers = state.token ? { Authorization: `Bearer ${state.token}` } : {};
  const response = await fetch(path, { method: body ? "POST" : "GET", headers, body });
  if (response.status === 401) {
    $("token-form").hidden = false;
    throw new Error("this server wants a token: enter it above");
  }
  if (!response.ok) {
    const answer = await response.json();
    throw new Error(answer.error || `HTTP ${response.status}`);
  }
  return response;
}

async function call(path, body) {
  return (await send(path, body)).json();
}

function formWith(blob, name) {
  const form = new FormData();
  form.append("image", blob, name);
  return form;
}

// Whether the answer to prediction number ``seq`` is the newest yet (an explain sent when
// a stroke ends may come back before a predict sent during the stroke). An explanation is
// shown if no newer explain was sent: the predict that a stroke's last move leaves
// pending is sent after it, and must not hide the finished drawing's explanation.
function newest(seq) {
  if (seq < state.shown) return false;
  state.shown = seq;
  return true;
}

// Pictures ------------------------------------------------------------------------------

async function pngImage(base64) {
  const image = new Image();
  image.src = `data:image/png;base64,${base64}`;
  await image.decode();
  return image;
}

function canvasOf(width, height, className) {
  const canvas = element("canvas", className);
  canvas.width = width;
  canvas.height = height;
  return canvas;
}

// The RGBA pixels of an image at its own size.
function pixelsOf(image) {
  const context = canvasOf(image.naturalWidth, image.naturalHeight).getContext("2d");
  context.drawImage(image, 0, 0);
  return context.getImageData(0, 0, image.naturalWidth, image.naturalHeight);
}

// A value in [0, 1] as a colour of a heat scale (black, purple, red, orange, pale yellow).
const HEAT = [
  [0, 0, 4],
  [87, 16, 110],
  [188, 55, 84],
  [249, 142, 9],
  [252, 255, 164],
];

function heatColour(value) {
  const at = Math.min(Math.max(value, 0), 1) * (HEAT.length - 1);
  const low = Math.min(Math.floor(at), HEAT.length - 2);
  const part = at - low;
  return HEAT[low].map((c, k) => c + (HEAT[low + 1][k] - c) * part);
}

// Draw ``image`` on ``canvas``, and over it the heat of ``heat`` (a grayscale PNG of the
// same size), each pixel's heat as opaque as it is strong; without ``image``, the heat alone.
function drawHeat(canvas, heat, image) {
  canvas.width = heat.naturalWidth;
  canvas.height = heat.naturalHeight;
  const context = canvas.getContext("2d");
  const strengths = pixelsOf(heat).data;
  let picture;
  if (image) {
    context.drawImage(image, 0, 0, canvas.width, canvas.height);
    picture = context.getImageData(0, 0, canvas.width, canvas.height);
  } else {
    picture = context.createImageData(canvas.width, canvas.height);
  }
  const data = picture.data;
  for (let i = 0; i < data.length; i += 4) {
    const value = strengths[i] / 255;
    const colour = heatColour(value);
    const alpha = image ? 0.75 * value : 1;
    for (let k = 0; k < 3; k++) data[i + k] = data[i + k] * (1 - alpha) + colour[k] * alpha;
    data[i + 3] = 255;
  }
  context.putImageData(picture, 0, 0);
}

function drawImageOn(canvas, image) {
  canvas.width = image.naturalWidth;
  canvas.height = image.naturalHeight;
  canvas.getContext("2d").drawImage(image, 0, 0);
}

// Panels --------------------------------------------------------------------------------
// Each panel: reset() empties it and shows its empty state; render(answer) prepares its
// view of an explanation and resolves to a function that shows it (called only if no
// newer input came meanwhile).

function showEmpty(section, isEmpty) {
  section.querySelector("[data-empty]").hidden = !isEmpty;
}

const resultPanel = {
  section: () => $("result-panel"),
  reset() {
    $("bars").replaceChildren();
    $("caution").hidden = true;
    $("novelty-note").hidden = true;
    $("status").textContent = "";
    showEmpty(this.section(), true);
  },
  async render(answer) {
    return () => {
      showTop(answer.top, answer.ms, answer.target);
      $("caution").textContent = answer.caution ? `Caution: ${answer.caution}.` : "";
      $("caution").hidden = !answer.caution;
      $("novelty-note").textContent = answer.novelty_note || "";
      $("novelty-note").hidden = !answer.novelty_note;
    };
  },
};

function barItem({ class: name, probability }, target) {
  const button = element("button", "bar");
  button.type = "button";
  button.setAttribute("aria-pressed", String(name === target));
  button.title = `Show the evidence for ${name}`;
  const label = element("span", "bar-label");
  const percent = `${(100 * probability).toFixed(1)}%`;
  label.append(element("span", "bar-name", name), element("span", "bar-percent", percent));
  const track = element("span", "bar-track");
  const fill = element("span", "bar-fill");
  fill.style.width = percent;
  track.append(fill);
  button.append(label, track);
  button.addEventListener("click", () => explainClass(name));
  const item = element("li");
  item.append(button);
  return item;
}

// The top classes as bars; ``target``: the class whose evidence is shown (none while the
// bars follow a stroke).
function showTop(top, ms, target) {
  $("bars").replaceChildren(...top.map((entry) => barItem(entry, target)));
  $("status").textContent = `answered in ${ms.toFixed(1)} ms`;
  showEmpty(resultPanel.section(), false);
}

const seenPanel = {
  section: () => $("seen-panel"),
  reset() {
    $("seen").hidden = true;
    showEmpty(this.section(), true);
  },
  async render(answer) {
    const [input, gradcam, saliency] = await Promise.all(
      [answer.input, answer.gradcam, answer.saliency].map((png) => png && pngImage(png)),
    );
    const [channels, height, width] = state.model.input_shape;
    return () => {
      drawImageOn($("net-input"), input);
      $("net-input-caption").textContent =
        `${width} x ${height} pixels, ${channels === 1 ? "grayscale" : "colour"}, ` +
        `as ${state.model.model} received it`;
      $("gradcam").parentElement.hidden = !gradcam;
      if (gradcam) drawHeat($("gradcam"), gradcam, input);
      $("gradcam-caption").textContent =
        `Grad-CAM: where ${answer.gradcam_layer}'s maps hold the evidence for ` +
        `"${answer.target}"`;
      drawHeat($("saliency"), saliency);
      $("saliency-caption").textContent = `Saliency: the pixels that move "${answer.target}" most`;
      $("seen").hidden = false;
      showEmpty(this.section(), false);
    };
  },
};

const layersPanel = {
  section: () => $("layers-panel"),
  reset() {
    $("layers").replaceChildren();
    showEmpty(this.section(), true);
  },
  async render(answer) {
    const sprites = await Promise.all(answer.layers.map((layer) => pngImage(layer.png)));
    return () => {
      const last = answer.layers.length - 1;
      $("layers").replaceChildren(
        ...answer.layers.map((layer, k) => layerItem(layer, sprites[k], k === last)),
      );
      showEmpty(this.section(), false);
    };
  },
};

// A layer's heading and its maps (or its row of units, labelled with the classes when
// it is the ``last`` layer and has one unit per class).
function layerItem(layer, sprite, last) {
  const item = element("li", "layer");
  item.dataset.name = layer.name;
  const head = element("div", "layer-head");
  const maps = layer.maps && layer.maps < layer.shape[0] ? `, ${layer.maps} maps shown` : "";
  head.append(
    element("strong", "layer-name", layer.name),
    element("span", "layer-kind", layer.kind),
    element("span", "layer-shape", layer.shape.join(" x ")),
    element("span", "layer-units", `${layer.units.toLocaleString("en")} units${maps}`),
    element("span", "layer-range", `${layer.range[0]} to ${layer.range[1]}`),
  );
  const body = element("div", layer.maps ? "layer-maps" : "layer-row");
  body.append(...(layer.maps ? mapCanvases(layer, sprite) : [unitRow(sprite)]));
  if (last && isClassLayer(layer)) body.append(classLabels());
  item.append(head, body);
  return item;
}

const MAX_LABELLED = 20; // classes that fit as labels under a row of units on a phone

// Whether a layer's units are the classes, one each, few enough to label.
function isClassLayer(layer) {
  const classes = state.model.classes.length;
  return !layer.maps && layer.units === classes && classes <= MAX_LABELLED;
}

function classLabels() {
  const labels = element("div", "unit-labels");
  labels.append(...state.model.classes.map((name) => element("span", "", name)));
  return labels;
}

// A layer's maps, cut from its PNG (its maps side by side), each shown at least 40 px wide.
function mapCanvases(layer, sprite) {
  const [, height, width] = layer.shape;
  const shown = Math.min(96, Math.max(40, 2 * width));
  return Array.from({ length: layer.maps }, (_, k) => {
    const canvas = canvasOf(width, height, "map");
    canvas.getContext("2d").drawImage(sprite, k * width, 0, width, height, 0, 0, width, height);
    canvas.style.width = `${shown}px`;
    return canvas;
  });
}

function unitRow(sprite) {
  const canvas = canvasOf(sprite.naturalWidth, 1, "units");
  canvas.getContext("2d").drawImage(sprite, 0, 0);
  return canvas;
}

const searchPanel = {
  section: () => $("search-panel"),
  reset() {
    state.searches++; // a search in flight is for an input that is gone
    for (const image of $("neighbours").querySelectorAll("img")) URL.revokeObjectURL(image.src);
    $("neighbours").replaceChildren();
    $("search-caption").textContent = "";
    showEmpty(this.section(), true);
  },
  async render() {
    return () => {}; // its own request (showNeighbours), sent once per new image
  },
};

const PANELS = [resultPanel, seenPanel, layersPanel, searchPanel];

function resetPanels() {
  for (const panel of PANELS) panel.reset();
}

// Show an answer in every panel, unless ``current()`` says it is no longer wanted by the
// time its pictures are decoded.
async function showPanels(answer, current) {
  const shows = await Promise.all(PANELS.map((panel) => panel.render(answer)));
  if (current()) for (const show of shows) show();
}

// <main aria-busy="true"> while an explanation is awaited (the tests wait on it too).
function setBusy(busy) {
  document.querySelector("main").setAttribute("aria-busy", String(busy));
}

// The thumbnails come from /v1/thumbnails by item id, fetched with the token (an <img>
// cannot send it) and shown as blob: URLs.
async function neighbourFigure(hit) {
  const figure = element("figure");
  const image = element("img");
  image.src = URL.createObjectURL(await (await send(hit.thumbnail)).blob());
  image.alt = `item ${hit.id}`;
  figure.append(image, element("figcaption", "", `${hit.label ?? hit.name}: ${hit.similarity.toFixed(3)}`));
  return figure;
}

// Searches have their own count: a predict answered while a search is in flight must
// not keep the search of the finished drawing from being shown.
async function showNeighbours(blob, name) {
  const mine = ++state.searches;
  const answer = await call("/v1/search?top=8", formWith(blob, name));
  const figures = await Promise.all(answer.hits.map(neighbourFigure));
  if (mine !== state.searches) return; // a newer image's search was sent, or Clear
  for (const image of $("neighbours").querySelectorAll("img")) URL.revokeObjectURL(image.src);
  $("neighbours").replaceChildren(...figures);
  $("search-caption").textContent =
    `The ${answer.hits.length} nearest of ${state.model.search.items.toLocaleString("en")} ` +
    `images (${state.model.search.collection}) by the cosine similarity of the network's ` +
    "features; the label is the collection's.";
  showEmpty(searchPanel.section(), false);
}

// Inputs and errors ---------------------------------------------------------------------

// An error shown under the input it belongs to ("draw" or "photo"), or in the status line.
function showError(error, source) {
  const where = source ? $(`${source}-error`) : $("status");
  where.textContent = error.message;
  where.hidden = false;
  where.classList.add("error");
}

function hideErrors() {
  for (const id of ["draw-error", "photo-error"]) $(id).hidden = true;
  $("status").classList.remove("error");
}

// A new image, or none (Clear): every panel emptied, and answers to the old one dropped.
function startInput(input) {
  state.generation++;
  state.input = input;
  state.target = null;
  resetPanels();
  hideErrors();
  setBusy(false);
  if (!input || input.source !== "photo") hidePreview();
  if (!input || input.source !== "draw") clearDrawing();
}

// Explain the current image for state.target; ``search``: then look up its neighbours
// (once the image is known to be readable: an unreadable one is one error, not two).
async function explainInput(search) {
  const { blob, name, source } = state.input;
  const generation = state.generation;
  const seq = ++state.sent;
  state.explaining = seq;
  const current = () => generation === state.generation && seq === state.explaining;
  const query = state.target === null ? "" : `&class=${encodeURIComponent(state.target)}`;
  setBusy(true);
  try {
    const answer = await call(`/v1/explain?top=5${query}`, formWith(blob, name));
    if (!current()) return;
    state.shown = Math.max(state.shown, seq); // no older prediction's bars after it
    if (search && state.model.search) showNeighbours(blob, name).catch((e) => showError(e, source));
    await showPanels(answer, current);
  } catch (error) {
    if (!current()) return;
    resetPanels();
    showError(error, source);
  }
  if (current()) setBusy(false);
}

function explainClass(name) {
  if (!state.input) return;
  state.target = name;
  explainInput(false);
}

// Drawing -------------------------------------------------------------------------------

function canvasBlob() {
  return new Promise((resolve) => $("canvas").toBlob(resolve, "image/png"));
}

async function predictDrawing() {
  if (state.busy) {
    state.dirty = true; // the answer in flight triggers the next request
    return;
  }
  state.busy = true;
  state.dirty = false;
  const seq = ++state.sent;
  const generation = state.generation;
  try {
    const answer = await call("/v1/predict?top=5", formWith(await canvasBlob(), "drawing.png"));
    if (generation === state.generation && newest(seq)) showTop(answer.predictions[0].top, answer.ms);
  } catch (error) {
    if (generation === state.generation) showError(error, "draw");
  } finally {
    state.busy = false;
    if (state.dirty) predictDrawing();
  }
}

let drawing = null; // the canvas's 2-D context, for a digit model

function clearDrawing() {
  if (!drawing) return;
  drawing.fillStyle = "#000"; // MNIST's digits are white ink on black
  drawing.fillRect(0, 0, drawing.canvas.width, drawing.canvas.height);
}

// Strokes drawn on a canvas with pointer events (the mouse, a pen and a finger alike):
// white, round, ``width`` pixels wide; ``on.start`` as one begins, ``on.move`` as it
// grows (its first point included), ``on.end`` when it ends. The single digit's canvas
// and the wide one for numbers draw alike.
function drawStrokes(canvas, context, width, on) {
  context.strokeStyle = "#fff";
  context.lineWidth = width;
  context.lineCap = "round";
  context.lineJoin = "round";
  let last = null;
  const point = (event) => {
    const box = canvas.getBoundingClientRect();
    return [
      ((event.clientX - box.left) * canvas.width) / box.width,
      ((event.clientY - box.top) * canvas.height) / box.height,
    ];
  };
  const stroke = (to) => {
    context.beginPath();
    context.moveTo(...last);
    context.lineTo(...to);
    context.stroke();
    last = to;
  };
  canvas.addEventListener("pointerdown", (event) => {
    on.start();
    canvas.setPointerCapture(event.pointerId);
    last = point(event);
    stroke(last);
    on.move();
  });
  canvas.addEventListener("pointermove", (event) => {
    if (last === null) return;
    stroke(point(event));
    on.move();
  });
  const end = () => {
    if (last === null) return;
    last = null;
    on.end();
  };
  canvas.addEventListener("pointerup", end);
  canvas.addEventListener("pointercancel", end);
}

function setUpDrawing() {
  const canvas = $("canvas");
  drawing = canvas.getContext("2d");
  clearDrawing();
  drawStrokes(canvas, drawing, 18, {
    start: () => {
      if (state.input?.source !== "draw") startInput({ source: "draw", name: "drawing.png" });
      state.target = null; // a changed drawing is explained for its top class
    },
    move: predictDrawing,
    end: async () => {
      const input = state.input;
      input.blob = await canvasBlob();
      if (input === state.input) explainInput(true); // unless Clear came meanwhile
    },
  });
  $("clear").addEventListener("click", () => startInput(null));
  $("draw").hidden = false;
}

// Photos --------------------------------------------------------------------------------

function hidePreview() {
  const preview = $("preview");
  if (preview.src) URL.revokeObjectURL(preview.src);
  preview.removeAttribute("src");
  preview.hidden = true;
}

function takePhoto(file) {
  if (!file) return;
  startInput({ source: "photo", blob: file, name: file.name || "pasted image" });
  const preview = $("preview");
  preview.src = URL.createObjectURL(file);
  preview.hidden = false;
  explainInput(true);
}

function setUpPhotos(digits) {
  const drop = $("drop");
  drop.addEventListener("dragover", (event) => {
    event.preventDefault();
    drop.classList.add("over");
  });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (event) => {
    event.preventDefault();
    drop.classList.remove("over");
    takePhoto(event.dataTransfer.files[0]);
  });
  document.addEventListener("paste", (event) => {
    const file = [...event.clipboardData.files].find((f) => f.type.startsWith("image/"));
    takePhoto(file);
  });
  $("file").addEventListener("change", (event) => {
    takePhoto(event.target.files[0]);
    event.target.value = ""; // the same file chosen again is a new input
  });
  if (digits) $("photo-title").textContent = "Or give a photo of a digit";
  $("photo").hidden = false;
}

// Start ---------------------------------------------------------------------------------

function describeModel(m) {
  $("model-line").textContent =
    `${m.model}, trained on ${m.dataset}: ${m.classes.length} classes, ` +
    `${m.parameters.toLocaleString("en")} parameters, ` +
    `${m.connections.toLocaleString("en")} connections per image`;
  const start = m.preparation === "digit" ? "Draw a digit, or give a photo of one," : "Give a photo";
  for (const empty of document.querySelectorAll("[data-empty]")) {
    empty.textContent = `${start} to start.`;
  }
}

async function start() {
  try {
    state.model = await call("/v1/model");
  } catch (error) {
    $("model-line").textContent = "";
    showError(error);
    return;
  }
  describeModel(state.model);
  $("search-panel").hidden = !state.model.search;
  const digits = state.model.preparation === "digit";
  if (digits) setUpDrawing();
  if (digits) setUpReading(); // reading.js: the wide canvas, for a number
  setUpPhotos(digits);
  resetPanels();
}

$("token-form").addEventListener("submit", (event) => {
  event.preventDefault();
  state.token = $("token").value.trim();
  sessionStorage.setItem("cnnkit-token", state.token);
  $("token-form").hidden = true;
  $("status").textContent = "";
  $("status").classList.remove("error");
  if (!state.model) start();
});

start();
