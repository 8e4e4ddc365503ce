// The page's wide canvas, for a digit model: write a whole number and see it read as you
// write (/v1/read: the reader of `cnnkit read`), a box and class over each digit, and
// every class's probability at each position. Its own input, apart from the digit
// canvas and the explain panels: a request while a stroke is drawn (debounced, one in
// flight at a time: a new stroke waits for the answer to the last) and one when it ends.
// Loaded before page.js, whose helpers ($, element, call, formWith) it uses once
// page.js calls setUpReading().
"use strict";

const reading = {
  context: null, // the wide canvas's 2-D context
  generation: 0, // bumped by Clear: older answers are dropped
  busy: false, // a /v1/read request is in flight
  dirty: false, // the writing changed since the last request
  timer: null, // the debounce of the next request
};

const READ_DEBOUNCE_MS = 120; // strokes closer than this are sent as one request

function readingBlob() {
  return new Promise((resolve) => $("number-canvas").toBlob(resolve, "image/png"));
}

function clearReadingOverlay() {
  const overlay = $("number-overlay");
  overlay.getContext("2d").clearRect(0, 0, overlay.width, overlay.height);
}

function resetReading() {
  reading.generation++;
  clearTimeout(reading.timer);
  const { context } = reading;
  context.fillStyle = "#000"; // white ink on black, as MNIST's digits
  context.fillRect(0, 0, context.canvas.width, context.canvas.height);
  clearReadingOverlay();
  $("number-text").textContent = "";
  $("number-status").textContent = "";
  $("number-probs").replaceChildren();
  $("number-read").hidden = true;
  $("number-empty").hidden = false;
  $("read-error").hidden = true;
}

// A box and its class over each digit read, in the canvas's own pixels (the image sent).
function drawReadBoxes(digits) {
  const overlay = $("number-overlay");
  const context = overlay.getContext("2d");
  context.clearRect(0, 0, overlay.width, overlay.height);
  context.lineWidth = 3;
  context.font = "bold 26px system-ui, sans-serif";
  context.textBaseline = "bottom";
  for (const digit of digits) {
    const [x0, y0, x1, y1] = digit.box;
    context.strokeStyle = "#ffb000";
    context.strokeRect(x0 - 3, y0 - 3, x1 - x0 + 6, y1 - y0 + 6);
    const label = `${digit.class}`;
    const width = context.measureText(label).width + 8;
    const top = Math.max(y0 - 3, 28);
    context.fillStyle = "#ffb000";
    context.fillRect(x0 - 3, top - 28, width, 28);
    context.fillStyle = "#000";
    context.fillText(label, x0 + 1, top - 1);
  }
}

// Every class's probability at each position: a column per digit, a row per class, each
// cell as dark as the class is probable; the class read in bold.
function probabilityTable(digits) {
  const table = element("table", "number-probs");
  const head = element("tr");
  head.append(element("th", "", "class"));
  digits.forEach((digit, k) => head.append(element("th", "", `${k + 1}`)));
  table.append(head);
  for (const name of state.model.classes) {
    const row = element("tr");
    row.append(element("th", "", name));
    for (const digit of digits) {
      const p = digit.probabilities[name];
      const cell = element("td", name === digit.class ? "read" : "", p >= 0.01 ? `${Math.round(100 * p)}` : "");
      cell.style.background = `rgba(59, 111, 216, ${p.toFixed(3)})`;
      if (p > 0.5) cell.style.color = "#fff";
      cell.title = `position ${digits.indexOf(digit) + 1}: ${name} ${(100 * p).toFixed(1)}%`;
      row.append(cell);
    }
    table.append(row);
  }
  return table;
}

function showReading(answer) {
  $("read-error").hidden = true;
  $("number-empty").hidden = true;
  $("number-read").hidden = false;
  $("number-text").textContent = answer.text || "(nothing read)";
  $("number-status").textContent = answer.text
    ? `${(100 * answer.confidence).toFixed(1)}% sure, read in ${answer.ms.toFixed(1)} ms`
    : `${answer.reason}`;
  drawReadBoxes(answer.digits);
  $("number-probs").replaceChildren(...(answer.digits.length ? [probabilityTable(answer.digits)] : []));
}

async function readNumber() {
  if (reading.busy) {
    reading.dirty = true; // the answer in flight triggers the next request
    return;
  }
  reading.busy = true;
  reading.dirty = false;
  const generation = reading.generation;
  $("number-panel-body").setAttribute("aria-busy", "true");
  try {
    const answer = await call("/v1/read", formWith(await readingBlob(), "number.png"));
    if (generation === reading.generation) showReading(answer);
  } catch (error) {
    if (generation === reading.generation) {
      $("read-error").textContent = error.message;
      $("read-error").hidden = false;
    }
  } finally {
    reading.busy = false;
    if (reading.dirty && generation === reading.generation) readNumber();
    else $("number-panel-body").setAttribute("aria-busy", "false");
  }
}

function readSoon() {
  clearTimeout(reading.timer);
  reading.timer = setTimeout(readNumber, READ_DEBOUNCE_MS);
}

function setUpReading() {
  const canvas = $("number-canvas");
  reading.context = canvas.getContext("2d");
  resetReading();
  // About an MNIST stroke, for digits as tall as the canvas (page.js draws).
  drawStrokes(canvas, reading.context, 14, { start: () => {}, move: readSoon, end: readSoon });
  $("number-clear").addEventListener("click", resetReading);
  $("number-panel").hidden = false;
}
