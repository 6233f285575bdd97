// The portal's only script (the CSP forbids inline script). Two jobs from the user guide:
// the recovery file downloads by itself after the first token, and the push waiting page
// continues by itself once the phone approves. Without JavaScript both have a button.
"use strict";

document.addEventListener("DOMContentLoaded", function () {
  var download = document.querySelector("form[data-auto-submit]");
  if (download) {
    download.submit(); // an attachment: the browser saves it and stays on this page
  }
  var status = document.getElementById("push-status");
  if (status) {
    waitForApproval(status, status.getAttribute("data-status-url"));
  }
});

function waitForApproval(status, url) {
  fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
    .then(function (r) { return r.ok ? r.json() : { status: "gone" }; })
    .then(function (body) {
      if (body.status === "pending") {
        waitForApproval(status, url); // the server held the request up to 25 s: ask again
      } else if (body.status === "approved") {
        status.textContent = status.getAttribute("data-done-text") || "Confirmed. Signing you in…";
        document.getElementById("push-done").submit();
      } else {
        status.textContent = "The request was " + body.status + ". Start again.";
        status.className = "flash error";
      }
    })
    .catch(function () { setTimeout(function () { waitForApproval(status, url); }, 2000); });
}
