// Consentry widget kind "popup": a modal opt-in dialog opened by triggers.
// While it is open the host page is inert (no clicks, no focus, hidden
// from screen readers) and does not scroll; closing gives it all back and
// returns focus where it was.

function start() {
  ready(mountPopup);
}

function mountPopup() {
  if (window.Consentry && window.Consentry[ID]) return; // script included twice
  var hr = mkHost(true), root = hr.root;
  var isOpen = false, fired = false, prev = null, downOnBackdrop = false;
  var inerted = [], overflow = null;

  var closeBtn = h("button", { type: "button", id: "cs-close", class: "cs-x", "aria-label": t("close"), onclick: function () { close("button"); } }, [icon("x")]);
  var dlg = h("div", { id: "cs-dialog", class: "cs-dlg", role: "dialog", "aria-modal": "true", "aria-labelledby": "cs-title", tabindex: "-1", lang: LANGTAG, dir: DIR }, [
    header(), optinForm(), closeBtn
  ]);
  var ov = h("div", { id: "cs-overlay", class: "cs-ov", hidden: true }, [dlg]);
  ov.addEventListener("mousedown", function (e) { downOnBackdrop = e.target === ov; });
  ov.addEventListener("click", function (e) {
    if (e.target === ov && downOnBackdrop) close("backdrop");
  });
  root.appendChild(ov);
  document.body.appendChild(hr.host);

  function focusables() {
    return Array.prototype.filter.call(
      dlg.querySelectorAll("a[href],button,input,select,textarea,[tabindex]"),
      function (el) { return el.tabIndex >= 0 && !el.disabled && el.getClientRects().length; }
    );
  }

  // Focus trap and Escape, on window capture so page handlers cannot eat them.
  function onKey(e) {
    if (e.key === "Escape" || e.key === "Esc") {
      e.preventDefault();
      close("escape");
      return;
    }
    if (e.key !== "Tab") return;
    var f = focusables();
    if (!f.length) return;
    var i = f.indexOf(root.activeElement);
    if (e.shiftKey && i <= 0) {
      e.preventDefault();
      f[f.length - 1].focus();
    } else if (!e.shiftKey && (i < 0 || i === f.length - 1)) {
      e.preventDefault();
      f[0].focus();
    }
  }

  // lockHost makes everything else on the page inert and stops it scrolling;
  // unlockHost undoes exactly what lockHost did.
  function lockHost() {
    Array.prototype.forEach.call(document.body.children, function (el) {
      if (el !== hr.host && !el.hasAttribute("inert") && el.tagName !== "SCRIPT") {
        el.setAttribute("inert", "");
        inerted.push(el);
      }
    });
    var d = document.documentElement;
    overflow = [d.style.getPropertyValue("overflow"), d.style.getPropertyPriority("overflow")];
    d.style.setProperty("overflow", "hidden", "important");
  }
  function unlockHost() {
    inerted.forEach(function (el) { el.removeAttribute("inert"); });
    inerted = [];
    if (overflow) document.documentElement.style.setProperty("overflow", overflow[0], overflow[1]);
    overflow = null;
  }

  function open(via) {
    if (isOpen) return;
    var other = activeDialog();
    if (other && other.id !== ID) {
      if (other.modal) return; // another Consentry pop-up is open
      other.close();
    }
    isOpen = fired = true;
    stopTriggers();
    prev = document.activeElement;
    setDialog({ id: ID, modal: true, close: function () { close("other"); } });
    lockHost();
    ov.hidden = false;
    window.addEventListener("keydown", onKey, true);
    // On touch screens focus the dialog itself so the keyboard does not pop up.
    var first = dlg.querySelector("#cs-phone") || focusables()[0];
    (coarse() || !first ? dlg : first).focus();
    emit("open", { via: via || "api" });
    pushDL("consentry_open");
  }

  function close(via) {
    if (!isOpen) return;
    isOpen = false;
    ov.hidden = true;
    unlockHost();
    setDialog(null);
    window.removeEventListener("keydown", onKey, true);
    sset(DISMISS_KEY, String(Date.now()));
    if (prev && prev.focus && prev !== document.body) {
      try { prev.focus(); } catch (e) { /* element gone */ }
    }
    prev = null;
    emit("close", { via: via || "api" });
    pushDL("consentry_close");
  }

  // Triggers: the first one that fires opens the dialog (once per page).
  var timer = 0, exitOn = !!TRIG.exit_intent && !coarse();
  var delay = +TRIG.delay_s || 0, pct = +TRIG.scroll_pct || 0;
  function fire(via) {
    if (!fired && !isOpen) open(via);
  }
  function onScroll() {
    var d = document.documentElement, max = Math.max(d.scrollHeight, document.body.scrollHeight) - window.innerHeight;
    if (max > 0 && (window.pageYOffset || d.scrollTop) / max * 100 >= pct) fire("scroll");
  }
  function onOut(e) {
    if (e.clientY <= 0 && !e.relatedTarget) fire("exit_intent");
  }
  function stopTriggers() {
    clearTimeout(timer);
    window.removeEventListener("scroll", onScroll);
    document.removeEventListener("mouseout", onOut);
  }

  hook({ open: function () { open("api"); }, close: function () { close("api"); }, root: root, host: hr.host });
  emit("ready");

  var last = +sget(DISMISS_KEY) || 0;
  var snoozed = last && Date.now() - last < (+CFG.frequency_days || 0) * 864e5;
  // Auto-open unless excluded by URL, dismissed recently or already opted in.
  if (urlOk() && !snoozed && !sget(OPTIN_KEY)) {
    if (delay > 0) timer = setTimeout(function () { fire("delay"); }, delay * 1000);
    if (pct > 0) {
      window.addEventListener("scroll", onScroll, { passive: true });
      onScroll();
    }
    if (exitOn) document.addEventListener("mouseout", onOut);
    if (!(delay > 0) && !(pct > 0) && !TRIG.exit_intent) fire("load");
  }
}
