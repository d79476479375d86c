/* "Download (.zip)" buttons: the zip is prepared by a job (progress and time left shown beside
   the button), then the browser fetches it. data-export-project = slug, data-export-dataset = id. */
(function () {
  "use strict";
  var S = window.IonSieve;

  function poll(jobId, status, button) {
    S.api("/api/jobs/" + jobId + "/").then(function (j) {
      if (j.status === "done") {
        status.textContent = "Ready: downloading…";
        button.disabled = false;
        window.location = "/api/exports/" + jobId + "/";
        return;
      }
      if (j.status === "failed" || j.status === "cancelled") {
        status.textContent = "The download could not be prepared: " + (j.error || j.message || j.status);
        button.disabled = false;
        return;
      }
      status.textContent = "Preparing… " + j.percent + "%" + (j.eta_text ? " · " + j.eta_text : "");
      setTimeout(function () { poll(jobId, status, button); }, 1000);
    }).catch(function (e) {
      status.textContent = "Lost track of the download: " + e.message;
      button.disabled = false;
    });
  }

  document.addEventListener("click", function (ev) {
    var b = ev.target.closest ? ev.target.closest("button[data-export-project]") : null;
    if (!b) return;
    var status = document.getElementById(b.getAttribute("aria-describedby"));
    var body = {};
    if (b.dataset.exportDataset) body.dataset = +b.dataset.exportDataset;
    b.disabled = true;
    status.textContent = "Preparing…";
    S.api("/api/projects/" + b.dataset.exportProject + "/exports/", { method: "POST", body: body }).then(function (r) {
      poll(r.job, status, b);
    }).catch(function (e) {
      b.disabled = false;
      status.textContent = "";
      S.toast("Could not prepare the download: " + e.message, "error");
    });
  });
})();
