// Consentry widget kind "checkbox": adds an unticked WhatsApp consent box
// to an existing form. When the person submits that form with the box
// ticked, the checkout waits (briefly) for the opt-in to be recorded and
// then goes on. If it was not recorded (invalid number, network failure,
// rate limit) the person is told so beside the box and chooses: fix and
// try again, or continue without WhatsApp updates. The consent is never
// dropped silently, and an unticked box never holds the checkout up.

function start() {
  ready(function () {
    if (attachBox()) return;
    // Single-page apps may render the form later: watch for it for a while.
    var mo = new MutationObserver(function () { if (attachBox()) mo.disconnect(); });
    mo.observe(document.documentElement, { childList: true, subtree: true });
    setTimeout(function () { mo.disconnect(); }, 30000);
  });
}

function qs(scope, sel) {
  try { return sel ? scope.querySelector(sel) : null; } catch (e) { return null; }
}

var FLAG = "__consentry_" + ID;

function attachBox() {
  var form = qs(document, CFG.form_selector);
  if (form && form.tagName !== "FORM") form = form.closest("form") || form.querySelector("form");
  var field = qs(form || document, CFG.phone_selector);
  if (!form && field) form = field.form;
  if (!form || !field || form[FLAG]) return !!(form && form[FLAG]);
  form[FLAG] = true;

  var hr = mkHost(false);
  hr.host.style.setProperty("font", "inherit");
  hr.host.style.setProperty("color", "inherit");
  hr.host.style.setProperty("margin", "8px 0");
  var box = h("input", { type: "checkbox", id: "cs-consent", name: "consentry_consent", class: "cs-cbx" });
  var hp = honeypot();
  // The message area is a live region from the start, so what is put in
  // it later is announced.
  var msg = h("div", { id: "cs-cb-msg", class: "cs-cbm", "aria-live": "polite" });
  hr.root.appendChild(h("div", { class: "cs-inline", lang: LANGTAG, dir: DIR }, [
    h("div", { class: "cs-check" }, [
      box,
      h("label", { for: "cs-consent", id: "cs-notice", class: "cs-notice", text: String(CFG.notice || "") })
    ]),
    hp.box,
    msg
  ]));
  // Right after the phone field; if the field sits inside a <label>, after
  // that label (so the label's click forwarding cannot reach our box).
  var at = field.parentNode.tagName === "LABEL" ? field.parentNode : field;
  at.parentNode.insertBefore(hr.host, at.nextSibling);

  var recorded = "", busy = false, pass = false, submitter = null;

  function show(kids, cls) {
    while (msg.firstChild) msg.removeChild(msg.firstChild);
    msg.className = "cs-cbm" + (cls ? " " + cls : "");
    (kids || []).forEach(function (k) { msg.appendChild(k); });
  }

  // proceed lets the host form submit as the person asked, once.
  function proceed() {
    pass = true;
    var s = submitter && submitter.form === form ? submitter : null;
    // requestSubmit dispatches submit synchronously; pass must not outlive
    // it (a form that fails its own validation sends no submit event).
    try {
      if (form.requestSubmit) form.requestSubmit(s || undefined);
      else form.submit();
    } finally {
      pass = false;
    }
  }

  function failed(r) {
    var why = r.http === 422 && r.field === "phone" ? t("cbBad") : r.http === 429 ? t("rate") : t("fail");
    var box2 = h("div", { id: "cs-cb-err", class: "cs-cberr", role: "alert", tabindex: "-1" }, [
      h("p", { class: "cs-cbt", text: t("cbNot") }),
      h("p", { text: why }),
      h("div", { class: "cs-cbb" }, [
        h("button", { type: "button", id: "cs-cb-retry", class: "cs-b2", text: t("retry"), onclick: function () { show(); proceed0(); } }),
        h("button", { type: "button", id: "cs-cb-skip", class: "cs-b2", text: t("skip"), onclick: function () {
          box.checked = false;
          show();
          emit("skip", { code: r.code });
          proceed();
        } })
      ])
    ]);
    show([box2]);
    if (r.http === 422 && r.field === "phone") field.setAttribute("aria-invalid", "true");
    box2.focus();
  }

  // proceed0 retries: the submit handler below runs again.
  function proceed0() {
    var s = submitter && submitter.form === form ? submitter : null;
    if (form.requestSubmit) form.requestSubmit(s || undefined);
    else record();
  }

  function record() {
    var num = String(field.value || "").trim();
    busy = true;
    show([h("p", { role: "status", text: t("cbSaving") })], "cs-cbwait");
    emit("submit", { topics: [] });
    post(num, [], hp.input.value, false).then(function (r) {
      busy = false;
      if (r.ok) {
        recorded = num;
        field.removeAttribute("aria-invalid");
        show();
        sset(OPTIN_KEY, String(Date.now()));
        emit("optin", { status: r.status, topics: [] });
        pushDL("generate_lead");
        proceed();
        return;
      }
      emit("error", { code: r.code, recorded: false });
      failed(r);
    });
  }

  // Capture phase on window: this runs before the host page's own submit
  // handlers, so they see only the submission that goes on.
  window.addEventListener("submit", function (e) {
    if (e.target !== form) return;
    if (pass) {
      pass = false;
      return;
    }
    var num = String(field.value || "").trim();
    if (!box.checked || !num || num === recorded) return;
    e.preventDefault();
    e.stopImmediatePropagation();
    submitter = e.submitter || null;
    if (!busy) record();
  }, true);

  hook({ open: function () {}, close: function () {}, root: hr.root, host: hr.host });
  emit("ready");
  return true;
}
