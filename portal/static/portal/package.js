// The package page: "← Search" goes back to the search the visitor came from, and a copy
// button for the apt line (shown only where the clipboard works). Both are worked out here,
// not on the server, so the page is the same for everyone and a shared cache may keep it.
(function () {
  "use strict";
  const back = document.querySelector("[data-back-to-search]");
  if (back && document.referrer) {
    const from = new URL(document.referrer);
    const home = new URL(back.href);
    if (from.origin === home.origin && from.pathname === home.pathname) back.href = from.href;
  }
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
