// The package page: a copy button for the apt line (shown only where the clipboard works).
(function () {
  "use strict";
  document.querySelectorAll("button[data-copy-from]").forEach(function (button) {
    if (!navigator.clipboard) return;
    var source = document.getElementById(button.getAttribute("data-copy-from"));
    var status = button.parentElement.querySelector(".copied");
    button.hidden = false;
    button.addEventListener("click", function () {
      navigator.clipboard.writeText(source.textContent.trim()).then(function () {
        if (status) status.textContent = "Copied";
      }, function () {
        if (status) status.textContent = "Could not copy: select the line and copy it";
      });
    });
  });
})();
