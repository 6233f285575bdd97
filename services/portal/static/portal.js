// The portal's only script (the CSP forbids inline script). Two jobs from the user guide:
// the recovery file downloads by itself after the first token (and the notice then says
// it was saved), and the push waiting page continues by itself once the phone approves.
// Without JavaScript both have a button.
"use strict";

document.addEventListener("DOMContentLoaded", function () {
  var download = document.getElementById("recovery-download");
  if (download) {
    // Once the file is on its way the notice says so and the button goes: the API
    // hands the file out only once, so a second click could only fail.
    download.addEventListener("submit", function () { setTimeout(downloaded, 0); });
    if (download.hasAttribute("data-auto-submit")) {
      download.requestSubmit(); // an attachment: the browser saves it and stays on this page
    }
  }
  var status = document.getElementById("push-status");
  if (status) {
    waitForApproval(status, status.getAttribute("data-status-url"));
  }
});

function downloaded() {
  document.getElementById("recovery-text").hidden = true;
  document.getElementById("recovery-done").hidden = false;
  var button = document.querySelector("#recovery-download button");
  if (button) { button.remove(); }
}

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
