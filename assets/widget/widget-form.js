// Consentry widget kind "form": an inline opt-in form rendered right where
// the <script> tag sits (SCRIPT is captured synchronously by the core).

function start() {
  var anchor = SCRIPT;
  if (!anchor) {
    // currentScript is null in some async cases: look for our own tag.
    Array.prototype.forEach.call(document.scripts, function (s) {
      if ((s.src || "").indexOf("/w/" + ID + ".js") >= 0) anchor = s;
    });
  }
  var hr = mkHost(false);
  hr.root.appendChild(h("div", { id: "cs-card", class: "cs-card", lang: LANGTAG, dir: DIR }, [header(), optinForm()]));
  function place() {
    if (anchor && anchor.parentNode && document.head !== anchor.parentNode) anchor.parentNode.insertBefore(hr.host, anchor.nextSibling);
    else document.body.appendChild(hr.host);
    hook({ open: function () { hr.root.getElementById("cs-phone").focus(); }, close: function () {}, root: hr.root, host: hr.host });
    emit("ready");
  }
  // Inside <body> we can insert now (no layout jump); from <head> wait for the DOM.
  if (document.body && anchor && document.head !== anchor.parentNode) place();
  else ready(place);
}
