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
