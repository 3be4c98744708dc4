// Consentry console: small progressive enhancements. Every page works
// without this file.
(function () {
  "use strict";
  // Buttons that change something irreversible ask first.
  document.addEventListener("click", function (ev) {
    var b = ev.target.closest ? ev.target.closest("[data-confirm]") : null;
    if (b && !window.confirm(b.getAttribute("data-confirm"))) {
      ev.preventDefault();
    }
  });
  // Copy buttons: the text of the field they name, to the clipboard.
  document.addEventListener("click", function (ev) {
    var b = ev.target.closest ? ev.target.closest("[data-copy]") : null;
    if (!b) {
      return;
    }
    var field = document.getElementById(b.getAttribute("data-copy"));
    var status = document.getElementById("copy-status");
    var done = function () { if (status) { status.textContent = b.getAttribute("data-copied"); } };
    field.select();
    if (navigator.clipboard && navigator.clipboard.writeText) {
      navigator.clipboard.writeText(field.value).then(done, function () { document.execCommand("copy"); done(); });
    } else {
      document.execCommand("copy");
      done();
    }
  });
  // Live preview of the WhatsApp message of a new link.
  var msg = document.getElementById("message");
  var out = document.getElementById("message-preview");
  if (msg && out) {
    var update = function () {
      var topics = [];
      document.querySelectorAll("input[name=topics]:checked").forEach(function (c) { topics.push(c.value); });
      var text = msg.value.trim() || msg.getAttribute("placeholder") || "";
      if (!text) {
        text = "{business}: {topics} {code}";
      }
      text = text.split("{business}").join(msg.getAttribute("data-business") || "")
        .split("{topics}").join(topics.join(", "));
      if (text.indexOf("{code}") < 0) {
        text += " {code}";
      }
      out.textContent = text.split("{code}").join("ABC123…");
    };
    msg.addEventListener("input", update);
    document.querySelectorAll("input[name=topics]").forEach(function (c) { c.addEventListener("change", update); });
    update();
  }
})();
