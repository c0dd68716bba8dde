// Progressive enhancement for the studio: leaving a page with unsaved changes asks first.
// A form marked data-unsaved-warning counts as changed once anything in it is edited; a form marked
// data-unsaved (a page shown again after a refused save, a failed check, a preview or an image upload)
// holds work that is not saved yet from the start. Submitting the form is not leaving it.
(function () {
  "use strict";
  var forms = document.querySelectorAll("form[data-unsaved-warning]");
  if (!forms.length) return;
  var dirty = false;
  forms.forEach(function (form) {
    if (form.hasAttribute("data-unsaved")) dirty = true;
    form.addEventListener("input", function () { dirty = true; });
    form.addEventListener("change", function () { dirty = true; });
    form.addEventListener("submit", function () { dirty = false; });
  });
  window.addEventListener("beforeunload", function (event) {
    if (!dirty) return;
    event.preventDefault();
    event.returnValue = "";  // older browsers show their standard question only when this is set
  });
})();
