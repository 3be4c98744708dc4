// Consentry widget kind "chat": floating WhatsApp button with a greeting.
// Phones open wa_url directly; desktops get a panel with the QR code,
// whose image is fetched only when the panel first opens. A dismissed
// greeting stays dismissed (a flag in localStorage, nothing personal).

function start() {
  ready(mountChat);
}

function isPhone() {
  return coarse() || window.innerWidth < 640 || /Android|iPhone|iPad|iPod|Mobile/i.test(navigator.userAgent);
}

function mountChat() {
  if (window.Consentry && window.Consentry[ID]) return;
  var hr = mkHost(true), root = hr.root;
  var wa = safeUrl(CFG.wa_url), qr = safeUrl(CFG.qr_svg_url);
  var isOpen = false;

  var fab = h("button", {
    type: "button", id: "cs-chat", class: "cs-fab", "aria-label": t("chat"),
    "aria-expanded": "false", "aria-controls": "cs-panel", onclick: toggle
  }, [icon("wa")]);

  var GREET_KEY = "consentry:" + ID + ":greeting";
  var bubble = CFG.greeting && !sget(GREET_KEY) ? h("div", { id: "cs-greeting", class: "cs-bub" }, [
    h("button", { type: "button", class: "cs-bubt", text: String(CFG.greeting), onclick: toggle }),
    h("button", { type: "button", id: "cs-greeting-close", class: "cs-bubx", "aria-label": t("close"), onclick: dismissGreeting }, [icon("x")])
  ]) : null;
  function dismissGreeting() {
    if (!bubble || bubble.hidden) return;
    bubble.hidden = true;
    sset(GREET_KEY, "1");
    fab.focus();
  }

  var panel = h("div", { id: "cs-panel", class: "cs-panel", role: "dialog", "aria-labelledby": "cs-title", tabindex: "-1", hidden: true }, [
    h("div", { class: "cs-ph" }, [
      h("span", { class: "cs-badge" }, [icon("wa")]),
      h("p", { id: "cs-title", class: "cs-title", text: NAME }),
      h("button", { type: "button", id: "cs-close", class: "cs-x", "aria-label": t("close"), onclick: function () { close("button"); } }, [icon("x")])
    ]),
    h("div", { class: "cs-pb" }, [
      qr ? h("img", { id: "cs-qr", class: "cs-qr", alt: t("qr"), width: "200", height: "200", hidden: true }) : null,
      h("p", { class: "cs-scan", text: t("scan") }),
      wa ? extLink(wa, "cs-web", "cs-btn cs-web", [h("span", { text: t("web") })]) : null
    ])
  ]);

  root.appendChild(h("div", { class: "cs-chat" + (LEFT ? " cs-left" : ""), lang: LANGTAG, dir: DIR }, [panel, bubble, fab]));
  document.body.appendChild(hr.host);

  function onKey(e) {
    if (e.key === "Escape" || e.key === "Esc") close("escape");
  }

  function toggle() {
    if (isOpen) return close("button");
    var other = activeDialog();
    if (other && other.modal) return;
    if (isPhone() && wa) {
      window.open(wa, "_blank", "noopener");
      emit("open", { via: "whatsapp" });
      return;
    }
    open("button");
  }

  function open(via) {
    if (isOpen) return;
    var other = activeDialog();
    if (other && other.id !== ID) {
      if (other.modal) return; // a Consentry pop-up is open: one dialog at a time
      other.close();
    }
    isOpen = true;
    setDialog({ id: ID, modal: false, close: function () { close("other"); } });
    var img = root.getElementById("cs-qr");
    if (img && !img.getAttribute("src")) {
      img.setAttribute("src", qr);
      img.hidden = false;
    }
    panel.hidden = false;
    if (bubble) bubble.hidden = true;
    fab.setAttribute("aria-expanded", "true");
    window.addEventListener("keydown", onKey, true);
    panel.focus();
    emit("open", { via: via });
  }

  function close(via) {
    if (!isOpen) return;
    isOpen = false;
    setDialog(null);
    panel.hidden = true;
    fab.setAttribute("aria-expanded", "false");
    window.removeEventListener("keydown", onKey, true);
    if (via !== "other") fab.focus();
    emit("close", { via: via });
  }

  hook({ open: function () { open("api"); }, close: function () { close("api"); }, root: root, host: hr.host });
  if (!urlOk()) hr.host.style.setProperty("display", "none");
  emit("ready");
}
