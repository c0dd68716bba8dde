// Progressive enhancement: a "Copy link" button beside a read-only link field (the field alone works without JS).
(function () {
  "use strict";
  document.querySelectorAll("[data-copy]").forEach(function (button) {
    var field = document.getElementById(button.getAttribute("data-copy"));
    if (!field) return;
    var status = button.closest(".field") && button.closest(".field").querySelector(".copy-status");
    button.hidden = false;
    button.addEventListener("click", function () {
      // the message comes from the page (data-copied), so it is in the page's language
      var done = function () { if (status) status.textContent = button.getAttribute("data-copied") || "Link copied."; };
      field.select();
      if (navigator.clipboard && window.isSecureContext) {
        navigator.clipboard.writeText(field.value).then(done, function () {
          if (document.execCommand("copy")) done();
        });
      } else if (document.execCommand("copy")) {
        done();
      }
    });
  });
  // one tap selects the whole link, ready to copy with the system menu
  document.querySelectorAll("input.select-all").forEach(function (field) {
    field.addEventListener("focus", function () { field.select(); });
  });
})();
