// Optional screen calibration before a rater's first trial, in the manner of
// the "virtual chinrest" (Li, Joo, Yeatman & Reinecke 2020, Sci. Rep. 10,
// doi:10.1038/s41598-019-57204-1) as jsPsych's plugin-virtual-chinrest runs it
// (see docs SPEC §7.3). This is our own code; only the procedure and its
// constants follow the paper and the plugin.
//
// 1. Card step: the rater resizes a picture of a credit card until it matches
//    a real card held against the screen, which gives CSS pixels per mm.
// 2. Blind-spot step: right eye covered, the left eye fixates a black square
//    while a red ball moves leftwards; the rater presses when the ball vanishes
//    into the blind spot (about 13.5° from the fovea). The ball's mean distance
//    from the square, in mm, gives the viewing distance.
// 3. The card's width in degrees of visual angle then gives pixels per degree.
//
// Usage:
//   PipalCalibration.run(container, options).then((result) => ...);
//     options: reps (5), ballSpeedPxPerSecond (default: the jsPsych pace, the
//     ball's path in 7 s), confirmDistance (true: show "about N cm, right?"
//     with a "measure again" button), signal (an AbortSignal: rejects with an
//     AbortError and cleans up).
//     result: card_width_px, px_per_mm, device_px_per_mm, square_x_px,
//     viewing_distance_mm, px_per_degree, device_px_per_degree,
//     blindspot_positions_px, device_pixel_ratio. Pixels are CSS pixels
//     unless named device_; blindspot_positions_px and square_x_px are ball
//     and square centres in CSS px from the stage's left edge.
//   PipalCalibration.compute({ cardWidthPx, squareXPx, ballXsPx, devicePixelRatio }, { round })
//     the same numbers from the formulas alone (round: false for full precision).
//
// Everything is built with plain DOM calls and textContent, nothing is fetched,
// and every listener, animation frame and element is removed when run() settles.
(() => {
  "use strict";

  // ---- Constants (and where each comes from) -------------------------------

  // ISO/IEC 7810 ID-1 card (credit card), 85.60 × 53.98 mm: jsPsych's
  // item_width_mm / item_height_mm defaults (SPEC §7.3).
  const CARD_WIDTH_MM = 85.6;
  const CARD_HEIGHT_MM = 53.98;
  // ID-1 corner radius (3.18 mm): cosmetic only, it never enters a formula.
  const CARD_CORNER_MM = 3.18;
  // The card's starting width: jsPsych's item_init_size default (SPEC §7.3).
  const INITIAL_CARD_WIDTH_PX = 250;
  // Slider range: ours. 100 CSS px is a 1.2 px/mm screen (far below any real
  // one); 900 px is a 10.5 px/mm screen, beyond today's densest CSS pixels.
  const MIN_CARD_WIDTH_PX = 100;
  const MAX_CARD_WIDTH_PX = 900;
  // The fixation square sits 180 mm from the stage's left edge, and the ball
  // starts at 0.6 of the square's distance: jsPsych drawBall(pos = 180) and
  // ballX = rectX * 0.6 (SPEC §7.3: "Square at x = px2mm·180; ball starts at
  // 0.6 of that").
  const SQUARE_DISTANCE_MM = 180;
  const BALL_START_FRACTION = 0.6;
  // The ball crosses from its start to the stage's left edge in 7 s and then
  // starts over: jsPsych's ball.animate(7000).loop() (SPEC §7.3, "7 s loop").
  const SWEEP_SECONDS = 7;
  // Horizontal angle between the fovea and the blind spot's edge: 13.5°,
  // jsPsych recordPosition() `angle = 13.5`, after Li et al. 2020.
  const BLINDSPOT_ANGLE_DEG = 13.5;
  // Measurements averaged: jsPsych blindspot_reps default (SPEC §7.3).
  const DEFAULT_REPS = 5;
  // Square side and ball diameter, CSS px: jsPsych rect(30, 30) and circle(30).
  const MARK_SIZE_PX = 30;
  // Ours: presses this soon after the ball (re)starts are ignored, so a double
  // tap or a bounced key cannot record the ball's starting point as a
  // measurement. (jsPsych only ignores held keys, which we also do.)
  const REFRACTORY_MS = 300;
  // Ours: room kept right of the square so it is never cut off.
  const STAGE_MARGIN_PX = 10;

  // ---- Pure math ------------------------------------------------------------

  const roundTo = (value, digits) => {
    const scale = 10 ** digits;
    return Math.round(value * scale) / scale;
  };
  const radians = (degrees) => (degrees * Math.PI) / 180;

  function positiveNumber(value, name) {
    const number = Number(value);
    if (!Number.isFinite(number) || number <= 0) throw new RangeError(`${name} must be a positive number`);
    return number;
  }

  // The formulas of SPEC §7.3. With { round: false } every number keeps full
  // precision (for checking the math); by default they are rounded as run()
  // reports them.
  function compute(input, { round = true } = {}) {
    if (!input || typeof input !== "object") throw new TypeError("compute() needs an object");
    const cardWidthPx = positiveNumber(input.cardWidthPx, "cardWidthPx");
    const squareXPx = positiveNumber(input.squareXPx, "squareXPx");
    const devicePixelRatio = positiveNumber(input.devicePixelRatio ?? 1, "devicePixelRatio");
    const ballXsPx = Array.from(input.ballXsPx || [], Number);
    if (!ballXsPx.length || !ballXsPx.every(Number.isFinite)) {
      throw new RangeError("ballXsPx must be a non-empty list of numbers");
    }

    const pxPerMm = cardWidthPx / CARD_WIDTH_MM;
    const meanBallXPx = ballXsPx.reduce((sum, x) => sum + x, 0) / ballXsPx.length;
    const blindspotOffsetMm = (squareXPx - meanBallXPx) / pxPerMm;
    if (!(blindspotOffsetMm > 0)) throw new RangeError("the ball positions must lie left of the square");
    const viewingDistanceMm = blindspotOffsetMm / Math.tan(radians(BLINDSPOT_ANGLE_DEG));
    const cardWidthDeg = (2 * Math.atan(CARD_WIDTH_MM / 2 / viewingDistanceMm) * 180) / Math.PI;
    // CSS pixels per degree. The study shows one image pixel per DEVICE pixel,
    // so the number that matters for the stimuli is the device one.
    const pxPerDegree = cardWidthPx / cardWidthDeg;

    const exact = {
      card_width_px: cardWidthPx,
      px_per_mm: pxPerMm,
      device_px_per_mm: pxPerMm * devicePixelRatio,
      square_x_px: squareXPx,
      viewing_distance_mm: viewingDistanceMm,
      px_per_degree: pxPerDegree,
      device_px_per_degree: pxPerDegree * devicePixelRatio,
      blindspot_positions_px: ballXsPx,
      device_pixel_ratio: devicePixelRatio,
    };
    if (!round) return exact;
    return {
      card_width_px: roundTo(exact.card_width_px, 2),
      px_per_mm: roundTo(exact.px_per_mm, 4),
      device_px_per_mm: roundTo(exact.device_px_per_mm, 4),
      square_x_px: roundTo(exact.square_x_px, 2),
      viewing_distance_mm: roundTo(exact.viewing_distance_mm, 1),
      px_per_degree: roundTo(exact.px_per_degree, 3),
      device_px_per_degree: roundTo(exact.device_px_per_degree, 3),
      blindspot_positions_px: ballXsPx.map((x) => roundTo(x, 2)),
      device_pixel_ratio: roundTo(exact.device_pixel_ratio, 4),
    };
  }

  // ---- DOM helpers ----------------------------------------------------------

  function element(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function button(text, className, label) {
    const node = element("button", className, text);
    node.type = "button";
    if (label) node.setAttribute("aria-label", label);
    return node;
  }

  function abortError() {
    return new DOMException("Calibration aborted", "AbortError");
  }

  // Browser zoom is reported as a devicePixelRatio that is not quite round
  // (1.100000023841858): four decimals keep every real ratio.
  const currentDevicePixelRatio = () => roundTo(window.devicePixelRatio || 1, 4);

  // ---- The procedure ---------------------------------------------------------

  function run(container, options = {}) {
    if (!(container instanceof Element)) return Promise.reject(new TypeError("run() needs a container element"));
    const reps = options.reps ?? DEFAULT_REPS;
    if (!Number.isInteger(reps) || reps < 1) return Promise.reject(new RangeError("reps must be a positive integer"));
    const speedOption = options.ballSpeedPxPerSecond ?? null;
    if (speedOption !== null && !(Number.isFinite(speedOption) && speedOption > 0)) {
      return Promise.reject(new RangeError("ballSpeedPxPerSecond must be a positive number"));
    }
    const confirmDistance = options.confirmDistance ?? true;
    const signal = options.signal;
    if (signal && signal.aborted) return Promise.reject(abortError());

    return new Promise((resolve, reject) => {
      // Listeners are added with an AbortController's signal, so removing
      // them is one abort(): run-wide ones in `listeners`, those of the step
      // on screen in `stepListeners` (replaced at every step change).
      const listeners = new AbortController();
      let stepListeners = null;
      let frame = 0; // pending requestAnimationFrame id
      let settled = false;

      const root = element("div", "calib-root");
      container.appendChild(root);

      function cleanup() {
        settled = true;
        listeners.abort();
        if (stepListeners) stepListeners.abort();
        cancelAnimationFrame(frame);
        root.remove();
      }
      function finish(result) {
        if (settled) return;
        cleanup();
        resolve(result);
      }
      function fail(error) {
        if (settled) return;
        cleanup();
        reject(error);
      }
      // An error in a handler rejects the promise instead of escaping.
      function guard(handler) {
        return (event) => {
          if (settled) return;
          try {
            handler(event);
          } catch (error) {
            fail(error);
          }
        };
      }
      if (signal) signal.addEventListener("abort", guard(() => fail(abortError())), { signal: listeners.signal });

      // State that outlives a step: the card measurement and the ratio it was
      // taken at.
      let cardWidthPx = INITIAL_CARD_WIDTH_PX;
      let devicePixelRatio = currentDevicePixelRatio();

      function showStep(title) {
        if (stepListeners) stepListeners.abort();
        stepListeners = new AbortController();
        cancelAnimationFrame(frame);
        root.replaceChildren();
        const section = element("section", "calib-step");
        const heading = element("h2", "calib-title", title);
        heading.tabIndex = -1; // focus target, so screen readers start at the step's top
        section.append(heading);
        root.append(section);
        return { section, heading };
      }
      // A listener that lives as long as the current step.
      function onStep(target, type, handler) {
        target.addEventListener(type, guard(handler), { signal: stepListeners.signal });
      }
      const isModified = (event) => event.ctrlKey || event.metaKey || event.altKey;
      // Keys typed into the host page's own fields (outside our root) are not ours.
      const isForeignField = (event) =>
        event.target instanceof Element &&
        !root.contains(event.target) &&
        (event.target.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(event.target.tagName));
      const ignoreKey = (event) => isModified(event) || isForeignField(event);

      // If the zoom (and so devicePixelRatio) changes after the card was
      // sized, the card's CSS pixels no longer span the same millimetres.
      function zoomChanged() {
        return currentDevicePixelRatio() !== devicePixelRatio;
      }

      // ---- 1. Card ----
      function cardStep(notice) {
        const { section, heading } = showStep("Screen size");
        if (notice) section.append(element("p", "calib-notice", notice));
        section.append(
          element(
            "p",
            "calib-text",
            "Hold a credit card (or any card of that size, such as a bank card or driving licence) " +
              "flat against the screen over the picture below, and change the picture's size until it " +
              "matches the card exactly.",
          ),
          element(
            "p",
            "calib-text",
            "Drag the red corner, use the slider or the − and + buttons, or press the − and + keys. " +
              "No card at hand? Measure the picture's width with a ruler: it should be 85.6 mm (3.37 in).",
          ),
        );

        const area = element("div", "calib-card-area");
        const card = element("div", "calib-card");
        card.setAttribute("role", "img");
        card.setAttribute("aria-label", "Picture of a credit card");
        card.append(element("div", "calib-card-chip"), element("div", "calib-card-stripe"));
        const handle = element("div", "calib-handle");
        handle.title = "Drag to resize";
        card.append(handle);
        area.append(card);

        const controls = element("div", "calib-size-controls");
        const smaller = button("−", "calib-button calib-step-button", "Smaller");
        const larger = button("+", "calib-button calib-step-button", "Larger");
        const label = element("label", "calib-slider-label");
        label.append(element("span", "calib-slider-text", "Card width"));
        const slider = element("input", "calib-slider");
        slider.type = "range";
        slider.min = String(MIN_CARD_WIDTH_PX);
        slider.max = String(MAX_CARD_WIDTH_PX);
        slider.step = "1";
        label.append(slider);
        controls.append(smaller, label, larger);

        const done = button("Done", "calib-button calib-primary");
        const actions = element("div", "calib-actions");
        actions.append(done);
        section.append(area, controls, actions);

        function setWidth(width) {
          cardWidthPx = Math.round(Math.min(MAX_CARD_WIDTH_PX, Math.max(MIN_CARD_WIDTH_PX, width)));
          const pxPerMm = cardWidthPx / CARD_WIDTH_MM;
          card.style.width = `${cardWidthPx}px`;
          card.style.height = `${(CARD_HEIGHT_MM * pxPerMm).toFixed(2)}px`;
          card.style.borderRadius = `${(CARD_CORNER_MM * pxPerMm).toFixed(2)}px`;
          slider.value = String(cardWidthPx);
          slider.setAttribute("aria-valuetext", `${cardWidthPx} pixels`);
          card.dataset.widthPx = String(cardWidthPx);
        }
        setWidth(cardWidthPx);

        onStep(slider, "input", () => setWidth(Number(slider.value)));
        onStep(smaller, "click", () => setWidth(cardWidthPx - 1));
        onStep(larger, "click", () => setWidth(cardWidthPx + 1));
        onStep(document, "keydown", (event) => {
          if (ignoreKey(event)) return; // Ctrl/Cmd + and − are the browser's zoom
          // The slider moves itself with the arrow keys (and PageUp/PageDown).
          const onSlider = event.target === slider;
          let delta = 0;
          if (event.key === "+" || event.key === "=") delta = 1;
          else if (event.key === "-" || event.key === "_" || event.key === "−") delta = -1;
          else if (!onSlider && (event.key === "ArrowRight" || event.key === "ArrowUp")) delta = 1;
          else if (!onSlider && (event.key === "ArrowLeft" || event.key === "ArrowDown")) delta = -1;
          if (!delta) return;
          event.preventDefault();
          setWidth(cardWidthPx + delta);
        });

        // Dragging the corner (mouse, pen or finger). The card is centred
        // horizontally and hangs from its top, so a horizontal move of dx
        // grows the width by 2·dx and a vertical move of dy grows the height
        // by dy: either way the corner stays under the pointer.
        let drag = null;
        onStep(handle, "pointerdown", (event) => {
          if (event.pointerType === "mouse" && event.button !== 0) return;
          event.preventDefault();
          handle.setPointerCapture(event.pointerId);
          drag = { id: event.pointerId, x: event.clientX, y: event.clientY, width: cardWidthPx };
          card.classList.add("calib-dragging");
        });
        onStep(handle, "pointermove", (event) => {
          if (!drag || event.pointerId !== drag.id) return;
          const dx = event.clientX - drag.x;
          const dy = event.clientY - drag.y;
          const grow = Math.abs(dx) >= Math.abs(dy) ? 2 * dx : dy * (CARD_WIDTH_MM / CARD_HEIGHT_MM);
          setWidth(drag.width + grow);
        });
        const endDrag = (event) => {
          if (!drag || event.pointerId !== drag.id) return;
          drag = null;
          card.classList.remove("calib-dragging");
        };
        onStep(handle, "pointerup", endDrag);
        onStep(handle, "pointercancel", endDrag);
        onStep(handle, "lostpointercapture", endDrag);

        onStep(done, "click", () => {
          devicePixelRatio = currentDevicePixelRatio();
          blindspotStep();
        });
        heading.focus();
      }

      // ---- 2. Blind spot ----
      function blindspotStep() {
        const { section, heading } = showStep("Viewing distance");
        const steps = element("ol", "calib-text calib-instructions");
        for (const line of [
          "Sit as you will during the study. Put your left hand on the space bar (on a touch screen, " +
            "get ready to tap the Now button).",
          "Cover your right eye with your right hand.",
          "Look at the black square with your left eye, and keep looking at it.",
          "The red ball moves to the left and will disappear for a moment. Press the space bar " +
            "(or tap Now) as soon as it disappears.",
        ]) {
          steps.append(element("li", "", line));
        }
        section.append(steps);
        const status = element("p", "calib-status", "Press the space bar or Start when you are ready.");
        status.setAttribute("aria-live", "polite");
        section.append(status);

        // Positions on the stage are CSS px from its left edge. The square
        // goes 180 mm from that edge, or as far right as the page allows: the
        // formulas only need where it really is, so a narrow screen loses
        // range, not accuracy.
        const pxPerMm = cardWidthPx / CARD_WIDTH_MM;
        const room = Math.max(section.clientWidth, 0) - MARK_SIZE_PX / 2 - STAGE_MARGIN_PX;
        const squareX = roundTo(Math.max(MARK_SIZE_PX * 4, Math.min(pxPerMm * SQUARE_DISTANCE_MM, room)), 2);
        const ballStartX = squareX * BALL_START_FRACTION;
        // The ball's centre travels from ballStartX to one radius from the
        // left edge (so it is always whole on screen).
        const ballEndX = MARK_SIZE_PX / 2;
        const speed = speedOption ?? (ballStartX - ballEndX) / SWEEP_SECONDS;

        const stage = element("div", "calib-stage");
        stage.style.width = `${Math.ceil(squareX + MARK_SIZE_PX / 2 + STAGE_MARGIN_PX)}px`;
        stage.style.height = `${MARK_SIZE_PX * 4}px`;
        const square = element("div", "calib-square");
        const ball = element("div", "calib-ball");
        for (const mark of [square, ball]) {
          mark.style.width = `${MARK_SIZE_PX}px`;
          mark.style.height = `${MARK_SIZE_PX}px`;
          mark.style.top = `${MARK_SIZE_PX * 1.5}px`;
        }
        // Placed by transform, as the ball is: `left` would be rounded to
        // layout units (1/64 px), a transform is not.
        square.style.transform = `translateX(${(squareX - MARK_SIZE_PX / 2).toFixed(3)}px)`;
        square.dataset.x = String(squareX);
        stage.append(square, ball);
        section.append(stage);

        const buttons = element("div", "calib-actions");
        const start = button("Start", "calib-button calib-primary");
        const now = button("Now", "calib-button calib-now", "Now: the ball has disappeared");
        now.hidden = true;
        buttons.append(start, now);
        section.append(buttons);

        const positions = [];
        let running = false;
        let sweepStart = 0; // performance.now() when the current sweep began
        let ballX = ballStartX; // the position last drawn, i.e. what the rater saw

        function place(x) {
          ballX = x;
          ball.style.transform = `translateX(${(x - MARK_SIZE_PX / 2).toFixed(3)}px)`;
          ball.dataset.x = String(x);
        }
        place(ballStartX); // shown still until the rater starts
        function restartSweep() {
          sweepStart = performance.now();
          place(ballStartX);
        }
        function tick() {
          const x = ballStartX - (speed * (performance.now() - sweepStart)) / 1000;
          if (x < ballEndX) restartSweep(); // loop, as jsPsych's animation does
          else place(x);
          frame = requestAnimationFrame(guard(tick));
        }
        function remaining() {
          status.textContent = `Remaining measurements: ${reps - positions.length}`;
        }

        function begin() {
          running = true;
          start.hidden = true;
          now.hidden = false;
          remaining();
          // On a short (landscape phone) screen, bring the stage and Now into view.
          buttons.scrollIntoView({ block: "nearest" });
          restartSweep();
          frame = requestAnimationFrame(guard(tick));
        }

        function press() {
          if (!running) return begin();
          if (performance.now() - sweepStart < REFRACTORY_MS) return;
          if (zoomChanged()) return cardStep("The page zoom changed, so please size the card again.");
          positions.push(roundTo(ballX, 2));
          remaining();
          if (positions.length < reps) return restartSweep();
          running = false;
          cancelAnimationFrame(frame);
          const result = compute({
            cardWidthPx,
            squareXPx: squareX,
            ballXsPx: positions,
            devicePixelRatio,
          });
          if (confirmDistance) reportStep(result);
          else finish(result);
        }

        // The space bar: keydown records (held keys repeat and are ignored);
        // preventDefault on both keydown and keyup stops the page scrolling
        // and stops a focused button from also being "clicked" by the key.
        onStep(document, "keydown", (event) => {
          if (event.key !== " " || ignoreKey(event)) return;
          event.preventDefault();
          if (!event.repeat) press();
        });
        onStep(document, "keyup", (event) => {
          if (event.key === " " && !ignoreKey(event)) event.preventDefault();
        });
        onStep(start, "click", () => {
          if (!running) begin();
        });
        // "Now" reacts on pointerdown, not click, which would only come when
        // the finger lifts. A click without a pointer (detail 0: Enter on the
        // focused button) is the keyboard way to press it.
        onStep(now, "pointerdown", (event) => {
          if (event.pointerType === "mouse" && event.button !== 0) return;
          event.preventDefault(); // no focus change, no double-tap zoom
          press();
        });
        onStep(now, "click", (event) => {
          if (event.detail === 0) press();
        });
        heading.focus();
      }

      // ---- 3. Sanity check: does the distance sound right? ----
      function reportStep(result) {
        const { section, heading } = showStep("Viewing distance");
        const cm = Math.round(result.viewing_distance_mm / 10);
        const inches = Math.round(result.viewing_distance_mm / 25.4);
        section.append(
          element("p", "calib-text calib-result", `You seem to be sitting about ${cm} cm (${inches} in) from the screen.`),
          element("p", "calib-text", "Does that seem about right?"),
        );
        const buttons = element("div", "calib-actions");
        const yes = button("Yes", "calib-button calib-primary");
        const again = button("No, measure again", "calib-button");
        buttons.append(yes, again);
        section.append(buttons);
        onStep(yes, "click", () => {
          if (zoomChanged()) cardStep("The page zoom changed, so please size the card again.");
          else finish(result);
        });
        onStep(again, "click", () => blindspotStep());
        heading.focus();
      }

      try {
        cardStep();
      } catch (error) {
        fail(error);
      }
    });
  }

  window.PipalCalibration = Object.freeze({
    run,
    compute,
    constants: Object.freeze({
      CARD_WIDTH_MM,
      CARD_HEIGHT_MM,
      INITIAL_CARD_WIDTH_PX,
      SQUARE_DISTANCE_MM,
      BALL_START_FRACTION,
      SWEEP_SECONDS,
      BLINDSPOT_ANGLE_DEG,
      DEFAULT_REPS,
      MARK_SIZE_PX,
      REFRACTORY_MS,
    }),
  });
})();
