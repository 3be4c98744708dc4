// Consentry widget kind "chat": floating WhatsApp button with a greeting.
// Phones open wa_url directly; desktops get a panel with the QR code.

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

  var bubble = CFG.greeting ? h("div", { id: "cs-greeting", class: "cs-bub" }, [
    h("p", { class: "cs-bubt", text: String(CFG.greeting), onclick: toggle }),
    h("button", { type: "button", class: "cs-bubx", "aria-label": t("close"), onclick: function () { bubble.hidden = true; } }, [icon("x")])
  ]) : null;

  var panel = h("div", { id: "cs-panel", class: "cs-panel", role: "dialog", "aria-labelledby": "cs-title", tabindex: "-1", hidden: true }, [
    h("div", { class: "cs-ph" }, [
      h("span", { class: "cs-badge" }, [icon("wa")]),
      h("p", { id: "cs-title", class: "cs-title", text: NAME }),
      h("button", { type: "button", id: "cs-close", class: "cs-x", "aria-label": t("close"), onclick: function () { close("button"); } }, [icon("x")])
    ]),
    h("div", { class: "cs-pb" }, [
      qr ? h("img", { id: "cs-qr", class: "cs-qr", src: qr, alt: t("qr"), width: "200", height: "200" }) : null,
      h("p", { class: "cs-scan", text: t("scan") }),
      wa ? extLink(wa, "cs-web", "cs-btn cs-web", [h("span", { text: t("web") })]) : null
    ])
  ]);

  root.appendChild(h("div", { class: "cs-chat" + (LEFT ? " cs-left" : ""), lang: LANGTAG }, [panel, bubble, fab]));
  document.body.appendChild(hr.host);

  function onKey(e) {
    if (e.key === "Escape" || e.key === "Esc") close("escape");
  }

  function toggle() {
    if (isOpen) return close("button");
    if (isPhone() && wa) {
      window.open(wa, "_blank", "noopener");
      emit("open", { via: "whatsapp" });
      return;
    }
    open("button");
  }

  function open(via) {
    if (isOpen) return;
    isOpen = true;
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
    panel.hidden = true;
    fab.setAttribute("aria-expanded", "false");
    window.removeEventListener("keydown", onKey, true);
    fab.focus();
    emit("close", { via: via });
  }

  hook({ open: function () { open("api"); }, close: function () { close("api"); }, root: root, host: hr.host });
  if (!urlOk()) hr.host.style.setProperty("display", "none");
  emit("ready");
}
