// Consentry widget: shared core.
// assets.WidgetScript wraps this file, the kind's files and the CSS in one
// IIFE that has already declared CFG (the widget config), KIND and CSS.
// Rules: no eval, no innerHTML, no inline handlers, DOM built by hand,
// styles through constructable stylesheets (CSP style-src safe).
var SCRIPT = document.currentScript;
var ID = String(CFG.id || "");
var NAME = String(CFG.business_name || "");
var API = String(CFG.api || (SCRIPT && SCRIPT.src ? new URL(SCRIPT.src).origin : "")).replace(/\/+$/, "");
var TOPICS = (Array.isArray(CFG.topics) ? CFG.topics : []).filter(function (x) { return x && x.id; });
var THEME = CFG.theme || {};
var TRIG = CFG.triggers || {};
var LEFT = THEME.position === "bottom-left";

// STR holds this script's own locale's strings only (assets.go inlines them).
var LANGTAG = String(CFG.locale || "en");
// DIR is the widget's own writing direction, whatever the host page's.
var DIR = /^(ar|he|fa|ur)\b/i.test(LANGTAG) ? "rtl" : "ltr";
var SCHEME = THEME.scheme === "dark" || THEME.scheme === "light" ? THEME.scheme : "auto";

// t returns the UI string for key k with the business name filled in.
function t(k) {
  return String(STR[k] || "").replace("{n}", function () { return NAME; });
}

// Theme colour (hex only) and the text colour on top of it with the more
// contrast: white or black. One of the two always reaches 4.5:1 (WCAG AA).
var COLOR = /^#([0-9a-f]{3}|[0-9a-f]{6})$/i.test(THEME.color || "") ? THEME.color : "#25D366";
var ON_COLOR = (function (c) {
  c = c.slice(1);
  if (c.length === 3) c = c.replace(/./g, "$&$&");
  var l = [0, 2, 4].map(function (i) {
    var v = parseInt(c.substr(i, 2), 16) / 255;
    return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4);
  });
  var lum = 0.2126 * l[0] + 0.7152 * l[1] + 0.0722 * l[2];
  return 1.05 / (lum + 0.05) >= (lum + 0.05) / 0.05 ? "#fff" : "#000";
})(COLOR);

// h builds an element: attrs "text" sets textContent, "onX" adds a listener,
// anything else is set with setAttribute (true means empty attribute).
function h(tag, attrs, kids) {
  var e = document.createElement(tag);
  for (var k in attrs || {}) {
    var v = attrs[k];
    if (v == null || v === false) continue;
    if (k === "text") e.textContent = v;
    else if (k.slice(0, 2) === "on") e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v === true ? "" : v);
  }
  (kids || []).forEach(function (c) {
    if (c) e.appendChild(typeof c === "string" ? document.createTextNode(c) : c);
  });
  return e;
}

// Icons are plain SVG paths (24x24 viewBox), drawn for this widget.
var ICONS = {
  wa: "M12 2.2a9.8 9.8 0 0 0-8.5 14.7L2.2 21.8l5-1.3A9.8 9.8 0 1 0 12 2.2zm0 1.8a8 8 0 1 1-4.1 14.9l-.3-.2-3 .8.8-2.9-.2-.3A8 8 0 0 1 12 4zM9 7.4c-.2 0-.5 0-.7.3-.3.3-1 1-1 2.4s1 2.8 1.2 3c.1.2 2 3.1 4.9 4.3 2.4 1 2.9.8 3.4.7.5 0 1.7-.7 1.9-1.4.2-.7.2-1.3.2-1.4l-.4-.3-2-1c-.3-.1-.5-.1-.7.2l-.9 1.1c-.2.2-.3.2-.6.1-.3-.2-1.2-.5-2.3-1.4-.9-.8-1.4-1.7-1.6-2-.2-.3 0-.4.1-.6l.5-.5.3-.5v-.5l-.9-2.2c-.2-.5-.5-.5-.7-.5H9z",
  x: "M6.4 5 5 6.4 10.6 12 5 17.6 6.4 19l5.6-5.6 5.6 5.6 1.4-1.4-5.6-5.6L19 6.4 17.6 5 12 10.6z",
  ok: "M9.5 16.2 5.3 12l-1.4 1.4 5.6 5.6L20.1 8.4 18.7 7z"
};
function icon(name, cls) {
  var ns = "http://www.w3.org/2000/svg";
  var s = document.createElementNS(ns, "svg");
  s.setAttribute("viewBox", "0 0 24 24");
  s.setAttribute("aria-hidden", "true");
  s.setAttribute("focusable", "false");
  s.setAttribute("class", "cs-i " + (cls || ""));
  var p = document.createElementNS(ns, "path");
  p.setAttribute("d", ICONS[name]);
  p.setAttribute("fill", "currentColor");
  s.appendChild(p);
  return s;
}

// safeUrl accepts only absolute http(s) URLs (no javascript: and friends).
function safeUrl(u) {
  try {
    var x = new URL(String(u || ""), location.href);
    return /^https?:$/.test(x.protocol) && u ? x.href : "";
  } catch (e) {
    return "";
  }
}

// External link opening in a new tab, with a screen-reader hint.
function extLink(href, id, cls, kids) {
  kids.push(h("span", { class: "cs-sr", text: " " + t("newTab") }));
  return h("a", { href: href, id: id, target: "_blank", rel: "noopener noreferrer", class: cls }, kids);
}

// honeypot: a visually hidden "website" field that people never fill.
function honeypot() {
  var input = h("input", { type: "text", name: "website", tabindex: "-1", autocomplete: "off", "aria-hidden": "true", class: "cs-hp-i" });
  return { input: input, box: h("div", { class: "cs-sr cs-hp", "aria-hidden": "true" }, [input]) };
}

// localStorage with an in-memory fallback (Safari private mode, sandboxed iframes).
var MEM = {};
var DISMISS_KEY = "consentry:" + ID + ":dismissed";
var OPTIN_KEY = "consentry:" + ID + ":optin";
function sget(k) {
  var v = null;
  try { v = window.localStorage.getItem(k); } catch (e) { /* blocked */ }
  return v != null ? v : MEM[k] == null ? null : MEM[k];
}
function sset(k, v) {
  MEM[k] = v;
  try { window.localStorage.setItem(k, v); } catch (e) { /* blocked */ }
}

function coarse() {
  return !!(window.matchMedia && window.matchMedia("(pointer: coarse)").matches);
}

function ready(fn) {
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", fn);
  else fn();
}

// emit dispatches consentry:<name> on document. Details never carry the phone.
function emit(name, extra) {
  var d = { widget: ID, kind: KIND };
  for (var k in extra || {}) d[k] = extra[k];
  try {
    document.dispatchEvent(new CustomEvent("consentry:" + name, { detail: d }));
  } catch (e) { /* very old browser */ }
}
function pushDL(ev) {
  var dl = window.dataLayer;
  if (Array.isArray(dl)) dl.push({ event: ev, consentry_widget: ID, consentry_kind: KIND });
}

// mkHost creates the shadow host (a custom element name, so page selectors
// like "div" or "form *" do not reach it) and its open shadow root.
function mkHost(fixed) {
  var host = document.createElement("consentry-widget");
  host.setAttribute("data-consentry", ID);
  host.setAttribute("data-kind", KIND);
  var s = host.style;
  s.setProperty("all", "initial");
  s.setProperty("display", "block");
  if (fixed) {
    s.setProperty("position", "fixed");
    s.setProperty("top", "0");
    s.setProperty("left", "0");
    s.setProperty("width", "0");
    s.setProperty("height", "0");
    s.setProperty("z-index", "2147483000");
  }
  s.setProperty("--cs-c", COLOR);
  s.setProperty("--cs-on", ON_COLOR);
  // The scheme: fixed by theme.scheme, or following the person's setting.
  var mq = window.matchMedia && window.matchMedia("(prefers-color-scheme: dark)");
  function scheme() {
    host.setAttribute("data-scheme", SCHEME === "auto" ? (mq && mq.matches ? "dark" : "light") : SCHEME);
  }
  scheme();
  if (SCHEME === "auto" && mq && mq.addEventListener) mq.addEventListener("change", scheme);
  var root = host.attachShadow({ mode: "open" });
  var ok = false;
  try {
    if ("adoptedStyleSheets" in root && window.CSSStyleSheet) {
      var sheet = new CSSStyleSheet();
      sheet.replaceSync(CSS);
      root.adoptedStyleSheets = [sheet];
      ok = true;
    }
  } catch (e) { /* fall back below */ }
  if (!ok) root.appendChild(h("style", { text: CSS }));
  return { host: host, root: root };
}

// hook exposes window.Consentry[id] for automation and browser tests.
function hook(api) {
  var C = (window.Consentry = window.Consentry || {});
  api.kind = KIND;
  C[ID] = api;
}

// urlOk applies triggers.url_include / url_exclude to pathname+search.
// A pattern with "*" must match the whole string ("*" = anything);
// otherwise it is a substring match.
function urlOk() {
  var p = location.pathname + location.search;
  function m(pat) {
    pat = String(pat || "");
    if (!pat) return false;
    if (pat.indexOf("*") < 0) return p.indexOf(pat) >= 0;
    var re = pat.split("*").map(function (x) { return x.replace(/[.+?^${}()|[\]\\\/]/g, "\\$&"); }).join(".*");
    return new RegExp("^" + re + "$").test(p);
  }
  var inc = TRIG.url_include || [], exc = TRIG.url_exclude || [];
  if (inc.length && !inc.some(m)) return false;
  return !exc.some(m);
}

// post sends the opt-in and resolves (never rejects) to
// {ok, status, confirm} or {ok:false, code, msg, field}.
function post(phone, topics, website, keepalive) {
  var body = JSON.stringify({ phone: phone, topics: topics, consent: true, page_url: location.href, website: website || "" });
  // A request that hangs is a failure the person is told about, not a wait.
  var ac = window.AbortController ? new AbortController() : null;
  var timer = ac ? setTimeout(function () { ac.abort(); }, 15000) : 0;
  return fetch(API + "/w/" + encodeURIComponent(ID) + "/optin", {
    method: "POST",
    mode: "cors",
    credentials: "omit",
    keepalive: !!keepalive,
    headers: { "Content-Type": "application/json" },
    body: body,
    signal: ac ? ac.signal : undefined
  }).then(function (r) {
    clearTimeout(timer);
    return r.json().catch(function () { return {}; }).then(function (j) {
      j = j || {};
      if (r.ok) return { ok: true, status: j.status || "confirmed", confirm: safeUrl(j.confirm_url) };
      var e = j.error || {};
      var f = (e.fields || [])[0] || {};
      var code = e.code || (r.status === 422 ? "invalid_phone" : r.status === 429 ? "rate_limited" : "http_" + r.status);
      return { ok: false, http: r.status, code: code, msg: e.message || f.reason || "", field: f.field || (r.status === 422 ? "phone" : "") };
    });
  }, function () {
    clearTimeout(timer);
    return { ok: false, http: 0, code: "network", msg: "" };
  });
}

// One Consentry dialog at a time, across every widget on the page: the
// open one registers here; a modal one makes the others wait.
function activeDialog() {
  return (window.Consentry && window.Consentry.__dialog) || null;
}
function setDialog(d) {
  var C = (window.Consentry = window.Consentry || {});
  if (d || (C.__dialog && C.__dialog.id === ID)) C.__dialog = d;
}
