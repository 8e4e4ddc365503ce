// The page of `cnnkit serve`: draw a digit or drop a photo and see what the network sees.
// Plain JavaScript, no build step and no library. It talks to the server's own /v1/
// routes only: /v1/model once, /v1/predict while a stroke is drawn (one request in
// flight at a time: a new drawing waits for the answer to the last), /v1/explain when
// a stroke ends or a photo arrives, and with an index /v1/search and its thumbnails.
"use strict";

const state = {
  token: sessionStorage.getItem("cnnkit-token") || "",
  model: null,
  busy: false, // a /v1/predict request is in flight
  dirty: false, // the drawing changed since the last request
  sent: 0, // requests sent; each answer is shown only if no later one was shown
  shown: 0,
  searches: 0, // searches sent; only the newest one's answer is shown
};

const $ = (id) => document.getElementById(id);

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

function showError(error) {
  $("status").textContent = error.message;
  $("status").classList.add("error");
}

function showTop(top, ms) {
  const bars = $("bars");
  bars.replaceChildren(
    ...top.map(({ class: name, probability }) => {
      const item = document.createElement("li");
      const label = document.createElement("div");
      label.className = "bar-label";
      const nameSpan = document.createElement("span");
      nameSpan.className = "bar-name";
      nameSpan.textContent = name;
      const percent = document.createElement("span");
      percent.textContent = `${(100 * probability).toFixed(1)}%`;
      label.append(nameSpan, percent);
      const track = document.createElement("div");
      track.className = "bar-track";
      const fill = document.createElement("div");
      fill.className = "bar-fill";
      fill.style.width = `${(100 * probability).toFixed(1)}%`;
      track.append(fill);
      item.append(label, track);
      return item;
    }),
  );
  $("status").classList.remove("error");
  $("status").textContent = `answered in ${ms.toFixed(1)} ms`;
}

function showSeen(answer) {
  const [channels, height, width] = state.model.input_shape;
  $("net-input").src = `data:image/png;base64,${answer.input}`;
  $("net-input-caption").textContent =
    `${width} x ${height} pixels, ${channels === 1 ? "grayscale" : "colour"}, ` +
    `as ${state.model.model} received it`;
  $("maps-title").textContent = answer.layer
    ? `First layer's feature maps (${answer.layer}: ${answer.maps.length})`
    : "This model has no convolution layer";
  $("maps").replaceChildren(
    ...answer.maps.map((png, k) => {
      const image = document.createElement("img");
      image.src = `data:image/png;base64,${png}`;
      image.alt = `feature map ${k + 1}`;
      return image;
    }),
  );
}

// The thumbnails come from /v1/thumbnails by item id, fetched with the token (an <img>
// cannot send it) and shown as blob: URLs.
async function neighbourFigure(hit) {
  const figure = document.createElement("figure");
  const image = document.createElement("img");
  image.src = URL.createObjectURL(await (await send(hit.thumbnail)).blob());
  image.alt = `item ${hit.id}`;
  const caption = document.createElement("figcaption");
  caption.textContent = `${hit.label ?? hit.name}: ${hit.similarity.toFixed(3)}`;
  figure.append(image, caption);
  return figure;
}

// Searches have their own count: a predict answered while a search is in flight must
// not keep the search of the finished drawing from being shown.
async function showNeighbours(blob, name) {
  const mine = ++state.searches;
  const answer = await call("/v1/search?top=8", formWith(blob, name));
  const figures = await Promise.all(answer.hits.map(neighbourFigure));
  if (mine !== state.searches) return; // a newer image's search was sent
  for (const image of $("neighbours").querySelectorAll("img")) URL.revokeObjectURL(image.src);
  $("neighbours").replaceChildren(...figures);
  $("search-caption").textContent =
    `The ${answer.hits.length} nearest of ${state.model.search.items.toLocaleString("en")} ` +
    `images (${state.model.search.collection}) by the cosine similarity of the network's ` +
    "features; the label is the collection's.";
}

// Whether the answer to request number ``seq`` is the newest yet (an explain sent when a
// stroke ends may come back before a predict sent during the stroke).
function newest(seq) {
  if (seq < state.shown) return false;
  state.shown = seq;
  return true;
}

function formWith(blob, name) {
  const form = new FormData();
  form.append("image", blob, name);
  return form;
}

async function explain(blob, name) {
  if (state.model.search) showNeighbours(blob, name).catch(showError);
  const seq = ++state.sent;
  try {
    const answer = await call("/v1/explain?top=5", formWith(blob, name));
    if (!newest(seq)) return;
    showTop(answer.top, answer.ms);
    showSeen(answer);
  } catch (error) {
    showError(error);
  }
}

// Drawing -----------------------------------------------------------------------------

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
  try {
    const answer = await call("/v1/predict?top=5", formWith(await canvasBlob(), "drawing.png"));
    if (newest(seq)) showTop(answer.predictions[0].top, answer.ms);
  } catch (error) {
    showError(error);
  } finally {
    state.busy = false;
    if (state.dirty) predictDrawing();
  }
}

function clearCanvas(context) {
  context.fillStyle = "#000"; // MNIST's digits are white ink on black
  context.fillRect(0, 0, context.canvas.width, context.canvas.height);
}

function setUpDrawing() {
  const canvas = $("canvas");
  const context = canvas.getContext("2d");
  clearCanvas(context);
  context.strokeStyle = "#fff";
  context.lineWidth = 18;
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
  // Pointer events cover the mouse, a pen and a finger alike.
  canvas.addEventListener("pointerdown", (event) => {
    canvas.setPointerCapture(event.pointerId);
    last = point(event);
    stroke(last);
    predictDrawing();
  });
  canvas.addEventListener("pointermove", (event) => {
    if (last === null) return;
    stroke(point(event));
    predictDrawing();
  });
  const end = async () => {
    if (last === null) return;
    last = null;
    explain(await canvasBlob(), "drawing.png");
  };
  canvas.addEventListener("pointerup", end);
  canvas.addEventListener("pointercancel", end);
  $("clear").addEventListener("click", () => {
    clearCanvas(context);
    $("bars").replaceChildren();
    $("status").textContent = "";
  });
  $("draw").hidden = false;
}

// Photos ------------------------------------------------------------------------------

function takePhoto(file) {
  if (!file) return;
  const preview = $("preview");
  if (preview.src) URL.revokeObjectURL(preview.src);
  preview.src = URL.createObjectURL(file);
  preview.hidden = false;
  explain(file, file.name || "pasted image");
}

function setUpPhotos() {
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
  $("file").addEventListener("change", (event) => takePhoto(event.target.files[0]));
  $("photo").hidden = false;
}

// Start -------------------------------------------------------------------------------

async function start() {
  try {
    state.model = await call("/v1/model");
  } catch (error) {
    $("model-line").textContent = "";
    showError(error);
    return;
  }
  const m = state.model;
  $("model-line").textContent =
    `${m.model}, trained on ${m.dataset}: ${m.classes.length} classes, ` +
    `${m.parameters.toLocaleString("en")} parameters, ` +
    `${m.connections.toLocaleString("en")} connections per image`;
  $("search-panel").hidden = !m.search;
  if (m.preparation === "digit") setUpDrawing();
  else setUpPhotos();
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
