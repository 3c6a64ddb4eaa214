// paddle_dx diagnosis assistant: plain JavaScript, no external resources (works offline).
"use strict";

const $ = (sel, root = document) => root.querySelector(sel);
const state = { info: null };

function setStatus(text, isError = false) {
  const el = $("#status");
  el.textContent = text;
  el.classList.toggle("error", isError);
}

async function loadInfo() {
  const res = await fetch("/api/info");
  state.info = await res.json();
  const i = state.info;
  $("#model-info").textContent = `Model ${i.arch || ""} - classes: ${i.class_names.join(", ")}`;
  $("#limits").textContent = `Up to ${i.limits.max_files} images per upload, ` +
    `${(i.limits.max_file_bytes / 1048576).toFixed(0)} MB and ` +
    `${(i.limits.max_pixels / 1e6).toFixed(0)} megapixels each.`;
  $("#speech-status").textContent = i.speech ? "" : (i.speech_message || "Speech unavailable.");
  const auto = $("#speak-on-appear");
  auto.disabled = !i.speech;
  auto.checked = i.speech && localStorage.getItem("speakOnAppear") === "1";
  auto.addEventListener("change", () => localStorage.setItem("speakOnAppear", auto.checked ? "1" : "0"));
}

function percent(p) { return (100 * p).toFixed(1) + " %"; }

function renderResult(r) {
  const node = $("#result-template").content.firstElementChild.cloneNode(true);
  $(".name", node).textContent = r.name;
  if (r.error) {
    node.classList.add("failed");
    $(".error", node).textContent = r.error;
    $(".picture", node).remove();
    $(".prediction", node).remove();
    $(".speak", node).remove();
    return node;
  }
  node.dataset.className = r.class_name;
  $(".class-name", node).textContent = r.class_name;
  $(".probability", node).textContent = percent(r.probability);
  $(".sentence", node).textContent = r.sentence;
  if (r.preview_png) $(".preview", node).src = r.preview_png;
  const toggle = $(".gradcam-toggle", node);
  if (r.gradcam_png) {
    $(".gradcam", node).src = r.gradcam_png;
    toggle.addEventListener("change", () => {
      $(".gradcam", node).hidden = !toggle.checked;
      $(".preview", node).hidden = toggle.checked;
    });
  } else {
    $(".toggle", node).remove();
  }
  const body = $(".probs tbody", node);
  for (const name of state.info.class_names) {
    const p = r.probs[name];
    const row = document.createElement("tr");
    row.className = "prob" + (name === r.class_name ? " top" : "");
    row.dataset.className = name;
    row.dataset.prob = String(p);
    const label = document.createElement("td");
    label.className = "label";
    label.textContent = name;
    const barCell = document.createElement("td");
    const bar = document.createElement("div");
    bar.className = "bar";
    bar.style.width = (100 * p).toFixed(2) + "%";
    bar.setAttribute("role", "img");
    bar.setAttribute("aria-label", `${name} ${percent(p)}`);
    barCell.appendChild(bar);
    const value = document.createElement("td");
    value.className = "value";
    value.textContent = percent(p);
    row.append(label, barCell, value);
    body.appendChild(row);
  }
  const speak = $(".speak", node);
  if (!state.info.speech) {
    speak.disabled = true;
    speak.title = state.info.speech_message || "Speech unavailable";
  }
  speak.addEventListener("click", () => speakResult(r, speak));
  return node;
}

// advice: add the next-step sentence (r.spoken); wait: resolve when the audio has ended, so
// results spoken as they appear follow one another instead of talking over each other
async function speakResult(r, button, advice = false, wait = false) {
  button.disabled = true;
  try {
    const res = await fetch("/api/speak", {
      method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ class_name: r.class_name, probability: r.probability, advice }),
    });
    if (!res.ok) throw new Error((await res.json()).error);
    const url = URL.createObjectURL(await res.blob());
    const audio = new Audio(url);
    const ended = new Promise((resolve) => audio.addEventListener("ended", resolve));
    ended.then(() => URL.revokeObjectURL(url));
    button.dataset.spoken = "1";
    button.dataset.spokenText = advice ? r.spoken : r.sentence;
    await audio.play();
    if (wait) await ended;
  } catch (err) {
    setStatus("Speech failed: " + err.message, true);
  } finally {
    button.disabled = false;
  }
}

async function upload(files) {
  if (!files.length) return;
  await infoReady;
  const form = new FormData();
  for (const f of files) form.append("images", f, f.name);
  form.append("gradcam", "1");
  form.append("preview", "1");
  setStatus(`Analysing ${files.length} image(s)...`);
  try {
    const res = await fetch("/api/predict", { method: "POST", body: form });
    const data = await res.json();
    if (!res.ok) { setStatus(data.error || `Error ${res.status}`, true); return; }
    const list = $("#results");
    const nodes = data.results.map(renderResult);
    list.replaceChildren(...nodes);
    setStatus(`Done: ${data.results.length} image(s). ${data.disclaimer}`);
    document.body.dataset.done = String(Date.now());
    if ($("#speak-on-appear").checked && state.info.speech) await speakInTurn(data.results, nodes);
  } catch (err) {
    setStatus("Upload failed: " + err.message, true);
  }
}

async function speakInTurn(results, nodes) {
  for (let i = 0; i < results.length; i++) {
    if (results[i].error) continue;
    await speakResult(results[i], $(".speak", nodes[i]), true, true);
  }
  document.body.dataset.spokenAll = String(Date.now());
}

function setupDrop() {
  const zone = $("#drop-zone");
  zone.addEventListener("dragover", (e) => { e.preventDefault(); zone.classList.add("dragging"); });
  zone.addEventListener("dragleave", () => zone.classList.remove("dragging"));
  zone.addEventListener("drop", (e) => {
    e.preventDefault();
    zone.classList.remove("dragging");
    upload([...e.dataTransfer.files]);
  });
  $("#file-input").addEventListener("change", (e) => { upload([...e.target.files]); e.target.value = ""; });
}

const infoReady = loadInfo().catch((err) => setStatus("Cannot reach the server: " + err.message, true));
setupDrop();
