// Consentry widget: the opt-in form shared by the popup and form kinds.

// header renders the business name heading (id cs-title) and subtitle.
function header() {
  return h("div", { class: "cs-hd" }, [
    h("span", { class: "cs-badge" }, [icon("wa")]),
    h("div", {}, [
      h("h2", { id: "cs-title", class: "cs-title", text: NAME }),
      h("p", { class: "cs-sub", text: t("sub") })
    ])
  ]);
}

// optinForm returns a container holding the form; after a successful
// opt-in the form is replaced by the success view (id cs-success).
function optinForm() {
  var wrap = h("div", { class: "cs-body" });
  var busy = false;

  var phone = h("input", {
    id: "cs-phone", name: "phone", type: "tel", autocomplete: "tel", inputmode: "tel",
    class: "cs-input", placeholder: CFG.country_code ? "+" + CFG.country_code : null,
    "aria-required": "true"
  });
  var phoneRow = h("div", { class: "cs-field" }, [
    h("label", { for: "cs-phone", class: "cs-label", text: t("phone") }),
    phone
  ]);

  var topicBoxes = TOPICS.map(function (tp, i) {
    return h("input", { type: "checkbox", id: "cs-topic-" + i, name: "topics", value: String(tp.id), class: "cs-cbx" });
  });
  var topics = TOPICS.length ? h("fieldset", { class: "cs-topics", "aria-describedby": "cs-topics-hint" }, [
    h("legend", { class: "cs-label", text: t("topics") }),
    h("div", { class: "cs-tlist" }, TOPICS.map(function (tp, i) {
      return h("div", { class: "cs-check" }, [
        topicBoxes[i],
        h("label", { for: "cs-topic-" + i, text: String(tp.label || tp.id) })
      ]);
    })),
    h("p", { id: "cs-topics-hint", class: "cs-hint", text: t("topicsHint") })
  ]) : null;

  var consent = h("input", { type: "checkbox", id: "cs-consent", name: "consent", class: "cs-cbx", "aria-required": "true" });
  var consentRow = h("div", { class: "cs-check cs-consent" }, [
    consent,
    h("label", { for: "cs-consent", id: "cs-notice", class: "cs-notice", text: String(CFG.notice || "") })
  ]);

  var hp = honeypot();
  var formErr = h("div", { class: "cs-ferr-slot" });
  var btn = h("button", { type: "submit", id: "cs-submit", class: "cs-btn", text: t("send") });

  var form = h("form", { id: "cs-form", class: "cs-form", novalidate: true, lang: LANGTAG, dir: DIR, onsubmit: submit }, [
    phoneRow, topics, consentRow, hp.box, formErr, btn
  ]);
  wrap.appendChild(form);

  // Typing or ticking clears that field's error.
  phone.addEventListener("input", function () { fieldErr(phone, phoneRow, ""); });
  consent.addEventListener("change", function () { fieldErr(consent, consentRow, ""); });

  function submit(ev) {
    ev.preventDefault();
    if (busy) return;
    var num = phone.value.trim();
    fieldErr(phone, phoneRow, num ? "" : t("needPhone"));
    fieldErr(consent, consentRow, consent.checked ? "" : t("needConsent"));
    formErr.textContent = "";
    if (!num || !consent.checked) {
      emit("error", { code: num ? "consent_required" : "phone_required" });
      (num ? consent : phone).focus();
      return;
    }
    var chosen = topicBoxes.filter(function (b) { return b.checked; }).map(function (b) { return b.value; });
    busy = true;
    btn.setAttribute("aria-disabled", "true");
    btn.textContent = t("sending");
    emit("submit", { topics: chosen });
    post(num, chosen, hp.input.value, false).then(function (r) {
      busy = false;
      btn.removeAttribute("aria-disabled");
      btn.textContent = t("send");
      if (r.ok) {
        wrap.replaceChild(success(r), form);
        wrap.firstChild.focus();
        sset(OPTIN_KEY, String(Date.now()));
        emit("optin", { status: r.status, topics: chosen });
        pushDL("generate_lead");
        return;
      }
      emit("error", { code: r.code });
      if (r.http === 422 && r.field === "phone") {
        fieldErr(phone, phoneRow, r.msg || t("badPhone"));
        phone.focus();
      } else {
        formErr.appendChild(h("div", { id: "cs-form-err", class: "cs-ferr", role: "alert", text: r.http === 429 ? t("rate") : r.http === 422 && r.msg ? r.msg : t("fail") }));
      }
    });
  }
  return wrap;
}

// fieldErr shows (msg) or clears (empty msg) the inline error after row.
// Error elements: id "<input id>-err", class cs-err, role alert.
function fieldErr(input, row, msg) {
  var id = input.id + "-err";
  var old = row.querySelector(".cs-err");
  if (old) row.removeChild(old);
  if (!msg) {
    input.removeAttribute("aria-invalid");
    input.removeAttribute("aria-describedby");
    return;
  }
  row.appendChild(h("div", { id: id, class: "cs-err", role: "alert", text: msg }));
  input.setAttribute("aria-invalid", "true");
  input.setAttribute("aria-describedby", id);
}

// success renders the confirmed / pending (double opt-in) state.
function success(r) {
  var pending = r.status === "pending";
  return h("div", { id: "cs-success", class: "cs-success", role: "status", tabindex: "-1", "data-status": r.status, lang: LANGTAG, dir: DIR }, [
    h("span", { class: "cs-okic" }, [icon("ok")]),
    h("p", { class: "cs-okt", text: t(pending ? "pendT" : "okT") }),
    h("p", { class: "cs-okp", text: t(pending ? "pend" : "ok") }),
    pending && r.confirm ? extLink(r.confirm, "cs-confirm", "cs-btn cs-confirm", [icon("wa"), h("span", { text: t("confirm") })]) : null
  ]);
}
