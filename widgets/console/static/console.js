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
  // Live preview of a widget being edited: the real widget with the form's
  // unsaved values, on a sample page in a sandboxed frame (widgetdraft.go),
  // reloaded a moment after the person stops typing.
  var preview = document.getElementById("widget-preview");
  var form = document.getElementById("widget-form");
  if (preview && form) {
    var shown = "", timer = 0;
    var showPreview = function () {
      var q = new URLSearchParams(new FormData(form));
      q.delete("csrf");
      var src = new URL("/console/widgets/draft?" + q.toString(), location.href).href;
      if (src === shown) return;
      if (shown && preview.contentWindow) {
        preview.contentWindow.location.replace(src); // no history entry per key press
      } else {
        preview.src = src;
      }
      shown = src;
    };
    var later = function () { clearTimeout(timer); timer = setTimeout(showPreview, 250); };
    form.addEventListener("input", later);
    form.addEventListener("change", later);
    showPreview();
  }
  // Batch ZIPs: generated in the background with a progress bar, then
  // downloaded. Without this the form downloads the ZIP in one request.
  var batch = document.getElementById("batch-zip-form");
  if (batch && window.fetch) {
    batch.addEventListener("submit", function (ev) {
      ev.preventDefault();
      var button = document.getElementById("generate-batch");
      var bar = document.getElementById("batch-progress");
      var status = document.getElementById("batch-status");
      var fail = function (msg) { status.textContent = msg || status.getAttribute("data-failed"); button.disabled = false; };
      button.disabled = true;
      document.getElementById("batch-job").hidden = false;
      fetch(batch.getAttribute("data-jobs"), {method: "POST", credentials: "same-origin",
        body: new URLSearchParams(new FormData(batch))}).then(function (r) {
        return r.json().then(function (j) { return {ok: r.ok, j: j}; });
      }).then(function (res) {
        if (!res.ok) {
          fail(res.j.error && res.j.error.message);
          return;
        }
        var url = batch.getAttribute("data-jobs") + "/" + encodeURIComponent(res.j.id);
        bar.max = res.j.total;
        var poll = function () {
          fetch(url, {credentials: "same-origin"}).then(function (r) { return r.json(); }).then(function (p) {
            if (p.state === "failed" || p.error) {
              fail();
              return;
            }
            bar.value = p.done;
            status.textContent = p.done + " / " + p.total;
            if (p.state === "ready") {
              status.textContent = status.getAttribute("data-done");
              button.disabled = false;
              window.location.href = url + "/zip";
              return;
            }
            window.setTimeout(poll, 300);
          }, function () { fail(); });
        };
        poll();
      }, function () { fail(); });
    });
  }
})();
