/* Retry and Cancel buttons of jobs (project and dataset pages): they call the jobs API. */
(function () {
  "use strict";
  var S = window.IonSieve;
  var DONE = { retry: "Queued again; it starts as soon as a worker is free.",
               cancel: "Cancelled (a running job stops at its next step)." };

  document.addEventListener("click", function (ev) {
    var b = ev.target.closest ? ev.target.closest("button[data-job-action]") : null;
    if (!b) return;
    var action = b.dataset.jobAction;
    b.disabled = true;
    S.api("/api/jobs/" + b.dataset.job + "/" + action + "/", { method: "POST" }).then(function () {
      S.toast(DONE[action], "success");
      setTimeout(function () { window.location.reload(); }, 600);
    }).catch(function (e) {
      b.disabled = false;
      S.toast("Could not " + action + " the job: " + e.message, "error");
    });
  });
})();
