// Review page: keys for the verdict forms, hold-to-unblur and a colour toggle for what is shielded
// (the time it shows unblurred reported for the reviewer's exposure counters), and the heat map
// of where the model looked (fetched on demand, drawn as SVG cells by attribute: the CSP allows
// no style attribute).
(function () {
  "use strict";
  // The image, the text boxes over it and the text read in it: revealed together, as boxes and
  // highlights are read against each other, and one state leaves nothing half revealed.
  const shielded = document.querySelectorAll(".shielded");
  const help = document.getElementById("help");
  const revealButton = document.getElementById("reveal");

  const colourButton = document.getElementById("colour");
  const job = document.querySelector(".job");
  const subject = document.getElementById("subject");

  // Seconds the image shows unblurred (held revealed, or always at the blur level "none"), sent
  // to the dashboard for the reviewer's exposure counters: at each release, every 15 s while it
  // lasts, and when the page goes. Only the reviewer holding the job reports.
  const reportUrl = job && job.dataset.unblurred;
  const csrfField = document.querySelector("#verdict input[name=csrf]");
  const neverBlurred = subject !== null && subject.classList.contains("blur-none");
  let clearSince = null;
  let unreported = 0;

  function clearNow(on) {
    const now = performance.now();
    if (clearSince !== null) unreported += (now - clearSince) / 1000;
    clearSince = on ? now : null;
  }

  function report(leaving) {
    if (!reportUrl || !csrfField) return;
    if (clearSince !== null) clearNow(true);
    if (unreported < 0.05) return;
    const form = new FormData();
    form.append("csrf", csrfField.value);
    form.append("seconds", unreported.toFixed(2));
    unreported = 0;
    if (leaving && navigator.sendBeacon) navigator.sendBeacon(reportUrl, form);
    else fetch(reportUrl, { method: "POST", body: form, keepalive: true });
  }

  function reveal(on) {
    for (const element of shielded) {
      element.classList.toggle("revealed", on);
      element.classList.toggle("shielded", !on);
    }
    if (!neverBlurred && on !== (clearSince !== null)) {
      clearNow(on);
      if (!on) report(false);
    }
  }

  function colour(on) {
    for (const element of shielded) element.classList.toggle("coloured", on);
    if (colourButton) {
      colourButton.setAttribute("aria-pressed", String(on));
      colourButton.textContent = on ? "Back to grayscale" : "Show colour";
    }
  }

  if (neverBlurred && !document.hidden) clearNow(true);
  document.addEventListener("visibilitychange", function () {
    if (document.hidden) { reveal(false); if (neverBlurred) clearNow(false); report(true); }
    else if (neverBlurred) clearNow(true);
  });
  window.addEventListener("pagehide", function () { clearNow(false); report(true); });
  setInterval(function () { if (clearSince !== null) report(false); }, 15000);
  if (colourButton) {
    colourButton.addEventListener("click", function () { colour(colourButton.getAttribute("aria-pressed") !== "true"); });
  }

  function press(id) {
    const button = document.getElementById(id);
    if (button) button.click();
  }

  function skip() {
    const form = document.getElementById("skip");
    if (form) form.requestSubmit();
  }

  document.addEventListener("keydown", function (event) {
    if (event.target instanceof HTMLInputElement || event.target instanceof HTMLSelectElement || event.ctrlKey || event.metaKey || event.altKey) return;
    if (event.key === " ") { event.preventDefault(); reveal(true); return; }
    if (event.repeat) return;
    if (event.key === "a") press("approve");
    else if (event.key === "r") press("remove");
    else if (event.key === "s") skip();
    else if (event.key === "c" && colourButton) colourButton.click();
    else if (event.key === "?") { if (help) help.hidden = !help.hidden; }
    else if (event.key === "Escape" && help) help.hidden = true;
  });
  document.addEventListener("keyup", function (event) { if (event.key === " ") reveal(false); });
  window.addEventListener("blur", function () { reveal(false); });

  if (revealButton) {
    revealButton.addEventListener("pointerdown", function () { reveal(true); });
    for (const name of ["pointerup", "pointerleave", "pointercancel"]) {
      revealButton.addEventListener(name, function () { reveal(false); });
    }
  }

  const heat = document.getElementById("heat");
  const heatToggle = document.getElementById("heat-toggle");
  const heatLabel = document.getElementById("heat-label");
  const heatStatus = document.getElementById("heat-status");
  const saliency = document.getElementById("saliency");
  let maps = null; // the job's maps, fetched once (made once per event and model version)

  function loadMaps() {
    if (!maps) {
      maps = fetch(saliency.dataset.url, { headers: { accept: "application/json" } }).then(async function (r) {
        const body = await r.json().catch(function () { return {}; });
        if (!r.ok) throw new Error(typeof body.detail === "string" ? body.detail : "HTTP " + r.status);
        return body;
      });
      maps.catch(function () { maps = null; }); // a failure may be asked again
    }
    return maps;
  }

  function draw(found, label) {
    heat.replaceChildren();
    const map = found.maps[label];
    if (!map) {
      heatStatus.textContent = label + ": no occlusion map, " + (found.without_map[label] || "none was made") + ".";
      return false;
    }
    const top = Math.max(0, ...map.cells.flat());
    map.cells.forEach(function (row, y) {
      row.forEach(function (value, x) {
        if (value <= 0 || top <= 0) return;
        const cell = document.createElementNS("http://www.w3.org/2000/svg", "rect");
        cell.setAttribute("x", x); cell.setAttribute("y", y);
        cell.setAttribute("width", 1); cell.setAttribute("height", 1);
        cell.setAttribute("fill-opacity", (0.7 * value / top).toFixed(3));
        heat.appendChild(cell);
      });
    });
    heatStatus.textContent = label + " (score " + map.score.toFixed(3) + "): " +
      (top > 0 ? "red where hiding that part lowered the score most" : "hiding no part lowered the score") +
      "; " + found.copies + " copies, " + found.method + ", " + found.seconds.toFixed(1) + " s" +
      (found.cached ? " (kept)" : "") + ".";
    return true;
  }

  async function showHeat(on) {
    heatToggle.setAttribute("aria-pressed", on ? "true" : "false");
    heatToggle.textContent = on ? "Hide heat map" : "Show heat map";
    heat.classList.add("off");
    if (!on) { heatStatus.textContent = ""; return; }
    heatStatus.textContent = "Scoring occluded copies of the image with the models that decided (a few seconds)…";
    try {
      const found = await loadMaps();
      if (heatToggle.getAttribute("aria-pressed") !== "true") return;
      if (draw(found, heatLabel.value)) heat.classList.remove("off");
    } catch (error) {
      heatStatus.textContent = "No heat map: " + error.message;
    }
  }

  if (heat && heatToggle && heatLabel && saliency) {
    heatToggle.addEventListener("click", function () {
      showHeat(heatToggle.getAttribute("aria-pressed") !== "true");
    });
    heatLabel.addEventListener("change", function () {
      if (heatToggle.getAttribute("aria-pressed") === "true") showHeat(true);
    });
  }
})();
