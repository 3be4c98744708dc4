// Consentry widget kind "checkbox": adds an unticked WhatsApp consent box
// to an existing form. On that form's submit, if ticked and the phone field
// has a value, the opt-in is sent with fetch keepalive. The host form is
// never blocked or prevented.

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
  hr.root.appendChild(h("div", { class: "cs-check cs-inline", lang: LANGTAG }, [
    box,
    h("label", { for: "cs-consent", id: "cs-notice", class: "cs-notice", text: String(CFG.notice || "") }),
    hp.box
  ]));
  // Right after the phone field; if the field sits inside a <label>, after
  // that label (so the label's click forwarding cannot reach our box).
  var at = field.parentNode.tagName === "LABEL" ? field.parentNode : field;
  at.parentNode.insertBefore(hr.host, at.nextSibling);

  var sent = "";
  form.addEventListener("submit", function () {
    var num = String(field.value || "").trim();
    if (!box.checked || !num || num === sent) return;
    sent = num;
    emit("submit", { topics: [] });
    post(num, [], hp.input.value, true).then(function (r) {
      if (r.ok) {
        sset(OPTIN_KEY, String(Date.now()));
        emit("optin", { status: r.status, topics: [] });
        pushDL("generate_lead");
      } else {
        sent = "";
        emit("error", { code: r.code });
      }
    });
  });

  hook({ open: function () {}, close: function () {}, root: hr.root, host: hr.host });
  emit("ready");
  return true;
}
