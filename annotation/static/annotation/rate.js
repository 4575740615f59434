// The rating page. It fetches the rater's trial, shows its images one image pixel on
// one device pixel on any screen, times the answer, and sends the vote until it lands;
// the vote's answer carries the next trial.
//
// Protocols (data-protocol): pairwise-fr picks one of two images against the reference
// (PIPAL), pairwise-nr one of two without it, optionally with the same patch of both
// enlarged below them (RankSRGAN §5.5); acr scores one image and dcr one image beside
// its reference on the study's scale (category buttons, or a slider); rank-k orders k
// images best first. The page's markup (rate.html) holds the controls of its protocol.
//
// Native pixels: the browser resamples an <img> or a small canvas whenever its box
// does not fall exactly on the device-pixel grid, which at a devicePixelRatio of 1.25
// or 1.5 (Windows laptops, browser zoom) is almost always. So the images are drawn
// on one canvas that covers the viewport at device resolution (its pixels are the
// screen's), each at a whole device-pixel position inside an empty slot the page lays
// out at the image's size. Where three images do not fit side by side, the page asks
// for a larger window (or, if the study allows, puts the reference above the pair).
//
// Resilience: a vote that fails for network reasons is retried with backoff until it
// lands; the single-use assignment makes a retry safe ("already voted" is success).
(() => {
  "use strict";
  const config = document.getElementById("rating-config").dataset;
  const csrf = document.querySelector("input[name=csrfmiddlewaretoken]").value;
  const $ = (id) => document.getElementById(id);
  const PROTOCOL = config.protocol;
  const PAIRWISE = PROTOCOL === "pairwise-fr" || PROTOCOL === "pairwise-nr";
  const RANKING = PROTOCOL === "rank-k";
  // Every place an image goes, by part: "reference", "left", "right", or "item-1".."item-k".
  const slots = {};
  document.querySelectorAll(".slot[data-part]").forEach((slot) => { slots[slot.dataset.part] = slot; });
  // pairwise-nr: where each image's enlarged patch goes.
  const zoomSlots = {};
  document.querySelectorAll(".zoom-slot[data-zoom-of]").forEach((slot) => { zoomSlots[slot.dataset.zoomOf] = slot; });
  const buttons = { left: $("choose-left"), right: $("choose-right"), tie: $("choose-tie") };
  const screenCanvas = $("screen");
  const narrowAllowed = config.narrowLayout === "1";

  let trial = null; // the trial on screen
  let pictures = null; // its decoded images, by part
  let parts = []; // the parts the trial shows
  let accepting = false; // a choice may be made now
  let shownAt = null; // performance.now() when the pair was first drawn at native size
  let visibleMs = 0; // time fully visible at native size
  let visibleSince = null;
  let layout = "side_by_side"; // or "stacked", or "refused" (the window is too small)
  let native = false; // every image drawn one image pixel per device pixel
  let viewingId = null; // the rater's current viewing report
  let calibration = null; // screen calibration, when the study asks for one
  let done = 0;
  const slider = $("scale-slider"); // acr/dcr on a continuous scale
  let sliderMoved = false; // an untouched slider is no answer: its starting point is the page's, not the rater's
  let rankOrder = []; // rank-k: the item numbers ranked so far, best first

  const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
  function status(text) { $("status").textContent = text; }

  function setProgress(progress) {
    done = progress.done;
    const percent = progress.quota ? Math.min(100, (100 * done) / progress.quota) : 0;
    $("progress-bar").style.width = percent + "%";
    $("progress").setAttribute("aria-valuenow", String(Math.round(percent)));
    status(`${done} of ${progress.quota} done`);
  }

  // --- network: every request retried until it gets an answer ------------------------

  // Wait for the connection to return (or ``ms`` at most), whichever comes first.
  function waitForConnection(ms) {
    return new Promise((resolve) => {
      const done = () => { window.removeEventListener("online", done); clearTimeout(timer); resolve(); };
      const timer = setTimeout(done, ms);
      window.addEventListener("online", done);
    });
  }

  // fetch() that keeps trying through network failures and server hiccups (5xx),
  // with exponential backoff; any other answer is returned to the caller.
  async function request(url, options = {}) {
    let delay = 1000;
    for (;;) {
      let response = null;
      try {
        response = await fetch(url, { credentials: "same-origin", ...options });
      } catch (error) {
        response = null;
      }
      if (response && response.status < 500) return response;
      status("Connection lost: your answer is kept and will be sent as soon as the connection returns…");
      await waitForConnection(delay);
      delay = Math.min(delay * 2, 15000);
    }
  }

  async function readJson(response) {
    try { return await response.json(); } catch (error) { return {}; }
  }

  // Decode an image, retrying while the network is down (never an uncaught decode error).
  async function loadPicture(url) {
    let delay = 1000;
    for (;;) {
      const image = new Image();
      image.src = url;
      try {
        await image.decode();
        return image;
      } catch (error) {
        status("Waiting for the images to load…");
        await waitForConnection(delay);
        delay = Math.min(delay * 2, 15000);
      }
    }
  }

  async function fetchTrial() {
    const response = await request(config.nextUrl, { headers: { Accept: "application/json" } });
    if (response.status === 204) return null;
    if (response.status === 401 || response.status === 403) { window.location.assign(config.finishUrl); return null; }
    if (!response.ok) throw new Error(`next trial: HTTP ${response.status}`);
    return readJson(response);
  }

  // --- layout and drawing at device resolution ------------------------------------------

  function cssSize(pixels) { return pixels / (window.devicePixelRatio || 1) + "px"; }

  // Size each slot to its image (in CSS px: device pixels / ratio), choose a layout that
  // holds them all at native size, and draw.
  function arrange() {
    if (!pictures) return;
    parts.forEach((part) => {
      slots[part].style.width = cssSize(pictures[part].naturalWidth);
      slots[part].style.height = cssSize(pictures[part].naturalHeight);
    });
    sizeZoomSlots();
    const fits = () => parts.every((part) => {
      const box = slots[part].getBoundingClientRect();
      return box.left >= 0 && box.right <= document.documentElement.clientWidth + 0.5;
    });
    layout = "side_by_side";
    $("stage").dataset.layout = layout;
    if (!fits()) {
      // rank-k's images wrap to rows (the page scrolls); a pair, or dcr's reference and image,
      // go one above the other only where the study allows it.
      layout = narrowAllowed || RANKING ? "stacked" : "refused";
      $("stage").dataset.layout = layout;
      if (layout === "stacked" && !fits()) layout = "refused";
    }
    $("too-small").hidden = layout !== "refused";
    $("stage").classList.toggle("refused", layout === "refused");
    if (PAIRWISE) labelSides();
    draw();
    reportViewing();
  }

  // pairwise-nr: the patch is enlarged by the largest whole factor that keeps it within the
  // narrower image's width, at least 2: whole, so each image pixel becomes a square of device
  // pixels (nothing interpolated), and no wider than the images, so the pair keeps its layout.
  function zoomFactor() {
    const width = Math.min(...Object.keys(zoomSlots).map((part) => pictures[part].naturalWidth));
    return Math.max(2, Math.floor(width / trial.zoom.size));
  }

  function sizeZoomSlots() {
    const zoomed = Boolean(trial && trial.zoom) && Object.keys(zoomSlots).every((part) => pictures[part]);
    Object.values(zoomSlots).forEach((box) => {
      box.hidden = !zoomed;
      if (!zoomed) return;
      const factor = zoomFactor();
      box.style.width = box.style.height = cssSize(trial.zoom.size * factor);
      box.dataset.factor = String(factor);
    });
  }

  // Labels follow the layout: left/right side by side, upper/lower when stacked in a column.
  function labelSides() {
    const left = slots.left.getBoundingClientRect();
    const right = slots.right.getBoundingClientRect();
    const column = right.top >= left.bottom - 1;
    buttons.left.querySelector(".side-name").textContent = column ? "Upper" : "Left";
    buttons.right.querySelector(".side-name").textContent = column ? "Lower" : "Right";
    buttons.left.setAttribute("aria-label", `Choose the ${column ? "upper" : "left"} image`);
    buttons.right.setAttribute("aria-label", `Choose the ${column ? "lower" : "right"} image`);
  }

  // The viewport canvas is 1:1 with the screen's pixels when its backing store has the
  // device size of its box; each image goes to a whole device-pixel position.
  function draw() {
    const ratio = window.devicePixelRatio || 1;
    const box = screenCanvas.getBoundingClientRect();
    const width = Math.round(box.width * ratio);
    const height = Math.round(box.height * ratio);
    if (screenCanvas.width !== width || screenCanvas.height !== height) {
      screenCanvas.width = width;
      screenCanvas.height = height;
    }
    const context = screenCanvas.getContext("2d");
    context.imageSmoothingEnabled = false;
    context.clearRect(0, 0, width, height);
    const oneToOne = Math.abs(box.width * ratio - width) < 0.02 && Math.abs(box.height * ratio - height) < 0.02;
    native = Boolean(pictures) && layout !== "refused" && oneToOne;
    if (!pictures || layout === "refused") { updateVisibility(); return; }
    const devicePosition = (element) => {
      const slot = element.getBoundingClientRect();
      const x = Math.round((slot.left - box.left) * ratio);
      const y = Math.round((slot.top - box.top) * ratio);
      element.dataset.deviceX = String(x);
      element.dataset.deviceY = String(y);
      return [x, y];
    };
    parts.forEach((part) => {
      const [x, y] = devicePosition(slots[part]);
      context.drawImage(pictures[part], x, y); // natural size: one image pixel per canvas pixel
    });
    Object.entries(zoomSlots).forEach(([part, zoomSlot]) => {
      if (zoomSlot.hidden) return;
      const [x, y] = devicePosition(zoomSlot);
      const { x: left, y: top, size } = trial.zoom;
      const side = size * Number(zoomSlot.dataset.factor);
      // Smoothing is off: a whole factor repeats each image pixel, one square of device pixels each.
      context.drawImage(pictures[part], left, top, size, size, x, y, side, side);
    });
    updateVisibility();
  }

  // --- timing: the response time from the first full view; visible time at native size

  function fullyVisible() {
    if (!pictures || layout === "refused" || !native || document.visibilityState !== "visible") return false;
    const width = document.documentElement.clientWidth;
    const height = document.documentElement.clientHeight;
    return parts.every((part) => {
      const box = slots[part].getBoundingClientRect();
      return box.left >= -0.5 && box.top >= -0.5 && box.right <= width + 0.5 && box.bottom <= height + 0.5;
    });
  }

  function updateVisibility() {
    const now = performance.now();
    // The response time runs from the first moment the pair was on screen at native size.
    if (accepting && native && shownAt === null && document.visibilityState === "visible") shownAt = now;
    const visible = accepting && fullyVisible();
    if (visible && visibleSince === null) {
      visibleSince = now;
    } else if (!visible && visibleSince !== null) {
      visibleMs += now - visibleSince;
      visibleSince = null;
    }
    const usable = accepting && layout !== "refused";
    document.querySelectorAll("[data-control]").forEach((control) => { control.disabled = !usable; });
    if (slider) $("scale-submit").disabled = !usable || !sliderMoved;
    if (RANKING) {
      $("rank-undo").disabled = !usable || rankOrder.length === 0;
      $("rank-submit").disabled = !usable || rankOrder.length !== parts.length;
    }
    $("stage").setAttribute("aria-busy", String(!usable));
  }

  function elapsedVisible() {
    return Math.round(visibleMs + (visibleSince === null ? 0 : performance.now() - visibleSince));
  }

  let redrawQueued = false;
  function redrawSoon() {
    if (redrawQueued) return;
    redrawQueued = true;
    requestAnimationFrame(() => { redrawQueued = false; arrange(); });
  }
  window.addEventListener("resize", redrawSoon);
  window.addEventListener("scroll", () => requestAnimationFrame(draw), { passive: true });
  document.addEventListener("visibilitychange", updateVisibility);
  // A zoom change alters devicePixelRatio: lay out again at the new ratio.
  (function watchRatio() {
    const query = window.matchMedia(`(resolution: ${window.devicePixelRatio || 1}dppx)`);
    query.addEventListener("change", () => { redrawSoon(); watchRatio(); }, { once: true });
  })();

  // --- viewing conditions ---------------------------------------------------------------

  let reported = "";
  let reportTimer = null;
  function reportViewing() {
    clearTimeout(reportTimer);
    reportTimer = setTimeout(sendViewing, 400);
  }

  async function sendViewing() {
    const conditions = {
      device_pixel_ratio: Math.round((window.devicePixelRatio || 1) * 10000) / 10000,
      screen_width: Math.max(1, Math.round(window.screen.width)),
      screen_height: Math.max(1, Math.round(window.screen.height)),
      viewport_width: Math.max(1, Math.round(window.innerWidth)),
      viewport_height: Math.max(1, Math.round(window.innerHeight)),
      // An estimate: the window's outer width over its inner width follows the zoom on desktops.
      zoom: window.outerWidth > 0 && window.innerWidth > 0
        ? Math.min(10, Math.max(0.1, Math.round((window.outerWidth / window.innerWidth) * 100) / 100)) : null,
      user_agent: navigator.userAgent.slice(0, 512),
      native,
      layout,
    };
    if (calibration) {
      conditions.px_per_mm = calibration.px_per_mm;
      conditions.viewing_distance_mm = calibration.viewing_distance_mm;
      conditions.px_per_degree = calibration.device_px_per_degree;
    }
    const key = JSON.stringify(conditions);
    if (key === reported) return;
    const response = await request(config.viewingUrl, {
      method: "POST",
      headers: { "Content-Type": "application/json", Accept: "application/json", "X-CSRFToken": csrf },
      body: key,
    });
    if (response.status === 201) {
      viewingId = (await readJson(response)).id;
      reported = key;
    }
  }

  // --- a trial on screen -----------------------------------------------------------------

  // The trial's pictures by part: a pair's reference (pairwise-fr), left and right; or dcr's
  // reference and the items, numbered from 1 in display order.
  function trialPictures(next) {
    const shown = {};
    if (next.reference && slots.reference) shown.reference = next.reference;
    if (PAIRWISE) {
      shown.left = next.left;
      shown.right = next.right;
    } else {
      next.items.forEach((item, index) => { shown[`item-${index + 1}`] = item; });
    }
    return shown;
  }

  async function show(next) {
    if (!next) { window.location.assign(config.finishUrl); return; }
    trial = next;
    accepting = false;
    const shown = trialPictures(next);
    parts = Object.keys(shown).filter((part) => slots[part]);
    const loaded = await Promise.all(parts.map((part) => loadPicture(shown[part].url)));
    pictures = {};
    parts.forEach((part, index) => {
      pictures[part] = loaded[index];
      slots[part].dataset.src = shown[part].url;
    });
    $("phase-banner").hidden = next.phase !== "training";
    if (PAIRWISE) buttons.tie.hidden = !next.allow_tie;
    document.querySelectorAll(".rank-item").forEach((item) => { item.hidden = !pictures[`item-${item.dataset.number}`]; });
    if (slider) {
      slider.value = slider.defaultValue;
      sliderMoved = false;
    }
    rankOrder = [];
    showRanking();
    setProgress(next.progress);
    shownAt = null;
    visibleMs = 0;
    visibleSince = null;
    accepting = true;
    arrange();
    requestAnimationFrame(updateVisibility);
  }

  // Send an answer: a pair's {choice}, a score's {score} or a ranking's {order}; ``chosen``
  // (a side, or the control that gave the score) is what practice feedback marks.
  async function submit(answer, chosen) {
    if (!accepting || !trial || layout === "refused") return;
    accepting = false;
    updateVisibility();
    if (document.activeElement && document.activeElement.blur) document.activeElement.blur();
    const sent = trial;
    const payload = {
      assignment: sent.assignment,
      ...answer,
      response_ms: Math.round(performance.now() - (shownAt ?? performance.now())),
      visible_ms: elapsedVisible(),
      native,
    };
    if (viewingId) payload.viewing = viewingId;
    const response = await request(config.voteUrl, {
      method: "POST",
      headers: { "Content-Type": "application/json", Accept: "application/json", "X-CSRFToken": csrf },
      body: JSON.stringify(payload),
    });
    const body = await readJson(response);
    const code = body.error ? body.error.code : "";
    if (response.status === 201) {
      setProgress(body.progress);
      if (body.feedback) await showFeedback(body.feedback, chosen);
      return show(body.next);
    }
    if (response.status === 429) { // too fast: the same trial stays
      status(body.error ? body.error.message : "Please slow down.");
      await sleep(400);
      accepting = true;
      updateVisibility();
      return undefined;
    }
    if (code === "already_voted" || response.status === 410) {
      // An earlier attempt landed (its answer was lost) or the pair expired: carry on.
      return show(await fetchTrial());
    }
    if (response.status === 401 || response.status === 403) { window.location.assign(config.finishUrl); return undefined; }
    status(`The vote was refused (${body.error ? body.error.message : `HTTP ${response.status}`}); fetching the ${PAIRWISE ? "pair" : "trial"} again…`);
    return show(await fetchTrial());
  }

  function choose(side) {
    if (side === "tie" && !(trial && trial.allow_tie)) return;
    submit({ choice: side }, side);
  }

  // Practice feedback marks the answer: a pair's right image (and the wrong pick), a
  // scale's chosen control as right or wrong; a ranking stays as given beside the message.
  function markAnswer(feedback, chosen) {
    if (PAIRWISE && feedback.correct_side) {
      const correct = feedback.correct_side;
      buttons[correct].classList.add("correct");
      buttons[correct].querySelector(".verdict").textContent =
        PROTOCOL === "pairwise-nr" ? "✓ the more natural one" : "✓ closer to the reference";
      buttons[correct].querySelector(".verdict").hidden = false;
      if (chosen !== correct && buttons[chosen] && chosen !== "tie") buttons[chosen].classList.add("wrong");
    } else if (chosen instanceof HTMLElement) {
      chosen.classList.add(feedback.correct ? "correct" : "wrong");
    }
  }

  function unmarkAnswers() {
    document.querySelectorAll(".correct, .wrong").forEach((element) => element.classList.remove("correct", "wrong"));
    document.querySelectorAll(".verdict").forEach((verdict) => { verdict.hidden = true; });
  }

  // Practice feedback: mark the answer, say why, and wait for the rater.
  function showFeedback(feedback, chosen) {
    markAnswer(feedback, chosen);
    $("feedback-text").textContent = feedback.message;
    $("feedback").className = "feedback " + (feedback.correct ? "ok" : "bad");
    $("feedback").hidden = false;
    $("continue").focus();
    return new Promise((resolve) => {
      const go = () => {
        $("continue").removeEventListener("click", go);
        document.removeEventListener("keydown", onKey, true);
        $("feedback").hidden = true;
        unmarkAnswers();
        $("continue").blur();
        resolve();
      };
      const onKey = (event) => {
        if (event.key === "Enter" || event.key === " ") { event.preventDefault(); event.stopPropagation(); go(); }
      };
      $("continue").addEventListener("click", go);
      document.addEventListener("keydown", onKey, true);
    });
  }

  // --- magnifier: mouse (Z toggles it) and touch (press and hold) ------------------------

  const ZOOM = 3;
  let magnifying = false;
  let holding = false;

  function setMagnifier(on) {
    magnifying = on;
    $("magnifier-toggle").setAttribute("aria-pressed", String(on));
    if (!on) hideLoupes();
  }

  function hideLoupes() { Object.values(slots).forEach((slot) => { slot.querySelector(".loupe").hidden = true; }); }

  function magnifyAt(slot, clientX, clientY) {
    const box = slot.getBoundingClientRect();
    const fx = Math.min(1, Math.max(0, (clientX - box.left) / box.width));
    const fy = Math.min(1, Math.max(0, (clientY - box.top) / box.height));
    parts.forEach((part) => {
      const host = slots[part];
      const loupe = host.querySelector(".loupe");
      const { width, height } = host.getBoundingClientRect();
      const size = loupe.offsetWidth || 120;
      loupe.hidden = false;
      loupe.style.left = fx * width - size / 2 + "px";
      loupe.style.top = fy * height - size / 2 + "px";
      loupe.style.backgroundImage = `url("${host.dataset.src}")`;
      loupe.style.backgroundSize = `${width * ZOOM}px ${height * ZOOM}px`;
      loupe.style.backgroundPosition = `${size / 2 - fx * width * ZOOM}px ${size / 2 - fy * height * ZOOM}px`;
    });
  }

  Object.values(slots).forEach((slot) => {
    let holdTimer = null;
    slot.addEventListener("pointermove", (event) => {
      if ((event.pointerType === "mouse" && magnifying) || holding) magnifyAt(slot, event.clientX, event.clientY);
    });
    slot.addEventListener("pointerleave", (event) => { if (event.pointerType === "mouse") hideLoupes(); });
    slot.addEventListener("pointerdown", (event) => {
      if (event.pointerType === "mouse") return;
      holdTimer = setTimeout(() => {
        holding = true;
        try {
          slot.setPointerCapture(event.pointerId); // keep the moves while the finger slides off the image
        } catch (error) {
          // the pointer is already gone: nothing to capture
        }
        magnifyAt(slot, event.clientX, event.clientY);
      }, 350);
    });
    const release = () => {
      clearTimeout(holdTimer);
      if (holding) setTimeout(() => { holding = false; hideLoupes(); }, 0);
    };
    slot.addEventListener("pointerup", release);
    slot.addEventListener("pointercancel", release);
    slot.addEventListener("contextmenu", (event) => event.preventDefault()); // a long press is the magnifier
  });
  $("magnifier-toggle").addEventListener("click", () => setMagnifier(!magnifying));

  // --- answering: a pair, a scale, a ranking ------------------------------------------------

  // A press that opened the magnifier is not a vote.
  if (PAIRWISE) {
    ["left", "right"].forEach((side) => {
      buttons[side].addEventListener("click", (event) => {
        if (holding) { event.preventDefault(); return; }
        choose(side);
      });
    });
    buttons.tie.addEventListener("click", () => choose("tie"));
  }

  function pairKey(event) {
    if (event.key === "ArrowLeft") { event.preventDefault(); choose("left"); }
    if (event.key === "ArrowRight") { event.preventDefault(); choose("right"); }
    if (event.key === "ArrowDown" && trial && trial.allow_tie) { event.preventDefault(); choose("tie"); }
  }

  // A scale: one button per category, or a slider between the end labels and Submit.
  document.querySelectorAll(".category").forEach((button) => {
    button.addEventListener("click", () => submit({ score: Number(button.dataset.score) }, button));
  });

  function submitSlider() {
    if (!sliderMoved) return;
    // To the step's precision: the browser's value may carry floating-point noise.
    submit({ score: Math.round(Number(slider.value) * 1e6) / 1e6 }, slider);
  }

  function moveSlider(steps) {
    if (!accepting || layout === "refused") return;
    if (steps > 0) slider.stepUp(steps); else slider.stepDown(-steps);
    sliderMoved = true;
    updateVisibility();
  }

  if (slider) {
    slider.addEventListener("input", () => { sliderMoved = true; updateVisibility(); });
    $("scale-submit").addEventListener("click", submitSlider);
  }

  const modified = (event) => event.ctrlKey || event.metaKey || event.altKey; // Ctrl+0 resets the zoom

  function scaleKey(event) {
    if (slider) {
      // The arrow keys move the slider wherever the focus is, one step each.
      if (event.key === "ArrowLeft" || event.key === "ArrowDown") { event.preventDefault(); moveSlider(-1); }
      if (event.key === "ArrowRight" || event.key === "ArrowUp") { event.preventDefault(); moveSlider(1); }
      if (event.key === "Enter") { event.preventDefault(); submitSlider(); }
      return;
    }
    const button = [...document.querySelectorAll(".category")].find((category) => category.dataset.key === event.key);
    if (button && !modified(event)) { event.preventDefault(); submit({ score: Number(button.dataset.score) }, button); }
  }

  // A ranking: picking an image ranks it next; picking a ranked one un-ranks it and those after.
  function rankPick(number) {
    if (!accepting || layout === "refused" || !pictures || !pictures[`item-${number}`]) return;
    const position = rankOrder.indexOf(number);
    if (position >= 0) rankOrder = rankOrder.slice(0, position);
    else rankOrder.push(number);
    showRanking();
  }

  function rankUndo() {
    if (!accepting || rankOrder.length === 0) return;
    rankOrder.pop();
    showRanking();
  }

  function submitRanking() {
    if (rankOrder.length !== parts.length) return;
    submit({ order: rankOrder.map((number) => trial.items[number - 1].id) }, null);
  }

  // Each image's badge and the list of the order so far (whose entries drag to reorder).
  function showRanking() {
    if (!RANKING) return;
    document.querySelectorAll(".rank-item").forEach((item) => {
      const number = Number(item.dataset.number);
      const rank = rankOrder.indexOf(number) + 1;
      const badge = item.querySelector(".rank-badge");
      badge.hidden = rank === 0;
      badge.textContent = rank ? String(rank) : "";
      item.classList.toggle("ranked", rank > 0);
      item.setAttribute("aria-label", rank
        ? `Image ${number}, ranked ${rank}: un-rank it and those after it` : `Image ${number}: rank it next`);
    });
    $("ranking-list").replaceChildren(...rankOrder.map((number, position) => {
      const entry = document.createElement("li");
      entry.draggable = true;
      entry.dataset.position = String(position);
      entry.dataset.number = String(number);
      entry.textContent = `${position + 1}. Image ${number}`;
      return entry;
    }));
    // A badge can widen its image's label and move the images: lay out and draw again.
    if (pictures) arrange(); else updateVisibility();
  }

  if (RANKING) {
    document.querySelectorAll(".rank-item").forEach((item) => {
      item.addEventListener("click", (event) => {
        if (holding) { event.preventDefault(); return; }
        rankPick(Number(item.dataset.number));
      });
    });
    $("rank-undo").addEventListener("click", rankUndo);
    $("rank-submit").addEventListener("click", submitRanking);
    // Drag and drop (HTML5 drag events): an entry dropped on another takes its place.
    const list = $("ranking-list");
    let dragged = null; // the dragged entry's position
    list.addEventListener("dragstart", (event) => {
      const entry = event.target.closest("li");
      if (!entry || !accepting) { event.preventDefault(); return; }
      dragged = Number(entry.dataset.position);
      entry.classList.add("dragging");
      event.dataTransfer.effectAllowed = "move";
      event.dataTransfer.setData("text/plain", entry.dataset.number);
    });
    list.addEventListener("dragover", (event) => {
      if (dragged === null) return;
      event.preventDefault(); // allows the drop
      event.dataTransfer.dropEffect = "move";
    });
    list.addEventListener("drop", (event) => {
      event.preventDefault();
      const target = event.target.closest("li");
      if (dragged === null || !target || !accepting) return;
      const [moved] = rankOrder.splice(dragged, 1);
      rankOrder.splice(Number(target.dataset.position), 0, moved);
      dragged = null;
      showRanking();
    });
    list.addEventListener("dragend", () => { dragged = null; showRanking(); });
  }

  function rankKey(event) {
    if (/^[1-9]$/.test(event.key) && !modified(event)) { event.preventDefault(); rankPick(Number(event.key)); }
    if (event.key === "Backspace") { event.preventDefault(); rankUndo(); }
    if (event.key === "Enter") { event.preventDefault(); submitRanking(); }
  }

  document.addEventListener("keydown", (event) => {
    if (!$("feedback").hidden) return;
    if (PAIRWISE) pairKey(event);
    else if (RANKING) rankKey(event);
    else scaleKey(event);
    if (event.key === "z" || event.key === "Z") setMagnifier(!magnifying);
  });

  // --- start -------------------------------------------------------------------------------

  async function calibrate() {
    if (config.calibrate !== "1" || !window.PipalCalibration) return;
    const key = `pipal-calibration:${config.study}`;
    const stored = sessionStorage.getItem(key);
    if (stored) { calibration = JSON.parse(stored); return; }
    const box = $("calibration");
    box.hidden = false;
    $("stage").hidden = true;
    status(`Screen calibration before the first ${PAIRWISE ? "pair" : "trial"}`);
    calibration = await window.PipalCalibration.run(box);
    sessionStorage.setItem(key, JSON.stringify(calibration));
    box.hidden = true;
    $("stage").hidden = false;
  }

  async function start() {
    try {
      await calibrate();
      await show(await fetchTrial());
    } catch (error) {
      status(`Something went wrong (${error.message}). Reload the page to continue.`);
    }
  }
  window.addEventListener("unhandledrejection", (event) => {
    event.preventDefault();
    status(`Something went wrong (${event.reason && event.reason.message}). Reload the page to continue.`);
  });
  start();
})();
