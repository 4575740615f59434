// The rating page: fetch a trial, show it pixel for pixel, time the choice
// from the moment all three images are on screen, vote, and swap to the
// prefetched next trial at once. Talks to the rater API with the session the
// join form opened (CSRF token in the header).
(() => {
  "use strict";
  const config = document.getElementById("rating-config").dataset;
  const csrf = document.querySelector("input[name=csrfmiddlewaretoken]").value;
  const $ = (id) => document.getElementById(id);
  const images = { reference: $("reference-img"), left: $("left-img"), right: $("right-img") };
  const buttons = { left: $("choose-left"), right: $("choose-right") };
  let current = null;   // the trial on screen
  let upcoming = null;  // a promise of the next trial (prefetched), or null
  let shownAt = 0;      // performance.now() when all three images were displayed
  let busy = true;
  let done = 0;         // rated trials, as the server last said

  function status(text) { $("status").textContent = text; }

  // A prefetched trial was issued before the last vote, so its count can be
  // one behind: never move the bar backwards.
  function setProgress(progress) {
    done = Math.max(done, progress.done);
    const percent = progress.quota ? Math.min(100, (100 * done) / progress.quota) : 0;
    $("progress-bar").style.width = percent + "%";
    $("progress").setAttribute("aria-valuenow", String(Math.round(percent)));
    status(`${done} of ${progress.quota} done`);
  }

  function preload(url) {
    const image = new Image();
    image.src = url;
    return image.decode().then(() => image);
  }

  // Fetch the next trial and decode its images, so showing it costs nothing.
  function fetchTrial() {
    return fetch(config.nextUrl, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then((response) => {
        if (response.status === 204) return null;
        if (!response.ok) throw new Error(`next pair: HTTP ${response.status}`);
        return response.json();
      })
      .then((trial) => {
        if (!trial) return null;
        return Promise.all([trial.reference.url, trial.left.url, trial.right.url].map(preload)).then(
          (decoded) => ({ trial, decoded }),
        );
      });
  }

  function showTrial(item) {
    if (!item) {
      window.location.assign(config.finishUrl);
      return;
    }
    current = item.trial;
    const ratio = window.devicePixelRatio || 1;
    ["reference", "left", "right"].forEach((key, index) => {
      const source = item.decoded[index];
      const element = images[key];
      element.src = source.src;
      // Native resolution: one image pixel per device pixel, never rescaled.
      element.style.width = source.naturalWidth / ratio + "px";
      element.style.height = source.naturalHeight / ratio + "px";
      element.width = source.naturalWidth;
      element.height = source.naturalHeight;
    });
    $("phase-banner").hidden = current.phase !== "training";
    setProgress(current.progress);
    requestAnimationFrame(() => {
      shownAt = performance.now();
      busy = false;
      buttons.left.disabled = buttons.right.disabled = false;
      $("stage").setAttribute("aria-busy", "false");
    });
    upcoming = fetchTrial();  // prefetch while the rater looks
  }

  function showFeedback(feedback) {
    const box = $("feedback");
    box.textContent = feedback.message;
    box.className = "feedback " + (feedback.correct ? "ok" : "bad");
    box.hidden = false;
    return new Promise((resolve) => setTimeout(() => { box.hidden = true; resolve(); }, 1500));
  }

  function choose(side) {
    if (busy || !current) return;
    busy = true;
    buttons.left.disabled = buttons.right.disabled = true;
    $("stage").setAttribute("aria-busy", "true");
    const responseMs = Math.round(performance.now() - shownAt);
    fetch(config.voteUrl, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", Accept: "application/json", "X-CSRFToken": csrf },
      body: JSON.stringify({ assignment: current.assignment, choice: side, response_ms: responseMs }),
    })
      .then((response) => response.json().then((body) => ({ response, body })))
      .then(({ response, body }) => {
        if (response.status === 429) {  // too fast: keep this trial
          status(body.error.message);
          busy = false;
          buttons.left.disabled = buttons.right.disabled = false;
          return null;
        }
        if (!response.ok) throw new Error(body.error ? body.error.message : `vote: HTTP ${response.status}`);
        setProgress(body.progress);
        const next = upcoming || fetchTrial();
        upcoming = null;
        return (body.feedback ? showFeedback(body.feedback) : Promise.resolve()).then(() => next).then(showTrial);
      })
      .catch(fail);
  }

  function fail(error) {
    status(`Something went wrong (${error.message}). Reload the page to continue.`);
  }

  // Magnifier: the pointer's spot on any of the three images, shown 3x on all three.
  const ZOOM = 3;
  const loupes = Object.values(images).map((image) => image.previousElementSibling);
  let magnifying = false;

  function setMagnifier(on) {
    magnifying = on;
    $("magnifier-toggle").setAttribute("aria-pressed", String(on));
    if (!on) loupes.forEach((loupe) => { loupe.hidden = true; });
  }

  function magnify(event) {
    if (!magnifying) return;
    const box = event.currentTarget.getBoundingClientRect();
    const fx = (event.clientX - box.left) / box.width;
    const fy = (event.clientY - box.top) / box.height;
    Object.values(images).forEach((image, index) => {
      const loupe = loupes[index];
      const width = image.getBoundingClientRect().width;
      const height = image.getBoundingClientRect().height;
      const size = loupe.offsetWidth || 120;
      loupe.hidden = false;
      loupe.style.left = fx * width - size / 2 + "px";
      loupe.style.top = fy * height - size / 2 + "px";
      loupe.style.backgroundImage = `url("${image.src}")`;
      loupe.style.backgroundSize = `${width * ZOOM}px ${height * ZOOM}px`;
      loupe.style.backgroundPosition = `${size / 2 - fx * width * ZOOM}px ${size / 2 - fy * height * ZOOM}px`;
    });
  }

  Object.values(images).forEach((image) => {
    image.addEventListener("mousemove", magnify);
    image.addEventListener("mouseleave", () => loupes.forEach((loupe) => { loupe.hidden = true; }));
  });
  $("magnifier-toggle").addEventListener("click", () => setMagnifier(!magnifying));

  buttons.left.addEventListener("click", () => choose("left"));
  buttons.right.addEventListener("click", () => choose("right"));
  document.addEventListener("keydown", (event) => {
    if (event.key === "ArrowLeft") { event.preventDefault(); choose("left"); }
    if (event.key === "ArrowRight") { event.preventDefault(); choose("right"); }
    if (event.key === "z" || event.key === "Z") setMagnifier(!magnifying);
  });
  fetchTrial().then(showTrial).catch(fail);
})();
