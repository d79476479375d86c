/* Project page: upload with progress, live jobs, training, model activation. */
(function () {
  "use strict";
  var S = window.IonSieve;
  var cfg = S.config();
  var base = "/api/projects/" + cfg.slug + "/";
  var files = { imzml: null, ibd: null, mz_list: null };
  var sawActive = false;

  function $(id) { return document.getElementById(id); }
  function show(el, text) { el.hidden = false; if (text !== undefined) el.textContent = text; }

  // ---------------------------------------------------------- upload
  function take(list) {
    Array.prototype.forEach.call(list, function (f) {
      var n = f.name.toLowerCase();
      if (n.endsWith(".imzml")) files.imzml = f;
      else if (n.endsWith(".ibd")) files.ibd = f;
      else if (n.endsWith(".csv") || n.endsWith(".tsv") || n.endsWith(".txt")) files.mz_list = f;
      else S.toast("'" + f.name + "' is not an .imzML, .ibd or CSV file.", "error");
    });
    var ul = $("chosen");
    ul.innerHTML = "";
    [["imzml", ".imzML"], ["ibd", ".ibd"], ["mz_list", "m/z list (optional)"]].forEach(function (p) {
      var li = document.createElement("li");
      var f = files[p[0]];
      li.textContent = p[1] + ": " + (f ? f.name + " (" + (f.size / 1e6).toFixed(1) + " MB)" : "—");
      li.className = f ? "ok" : "missing";
      ul.appendChild(li);
    });
    if (files.imzml && !$("ds-name").value) $("ds-name").placeholder = files.imzml.name.replace(/\.imzml$/i, "");
  }

  function upload(ev) {
    ev.preventDefault();
    var err = $("upload-error");
    err.hidden = true;
    if (!files.imzml || !files.ibd) { show(err, "Choose both the .imzML and the .ibd file."); return; }
    var form = $("upload-form");
    var bar = $("upload-progress");
    show(bar);
    $("upload-btn").disabled = true;
    var chosen = [files.imzml, files.ibd].concat(files.mz_list ? [files.mz_list] : []);
    // Resumable (tus): parts with checksums, retried after a cut, resumed after a reload.
    window.IonSieveUpload.send(chosen, {
      slug: cfg.slug, user: form.dataset.user, csrf: S.csrf(),
      onProgress: function (text, pct) {
        if (pct !== null) bar.querySelector("progress").value = pct;
        bar.querySelector("span").textContent = text;
      },
    }).then(function (sent) {
      bar.querySelector("span").textContent = "Uploaded; checking the files…";
      var body = { imzml: sent[0].id, ibd: sent[1].id, imzml_crc32: sent[0].crc32, ibd_crc32: sent[1].crc32,
                   ppm: parseFloat(form.ppm.value || "3"), top: parseInt(form.top.value || "500", 10),
                   tic: form.tic.checked };
      if (sent[2]) { body.mz_list = sent[2].id; body.mz_list_crc32 = sent[2].crc32; }
      if (form.name.value) body.name = form.name.value;
      return S.api(base + "datasets/from-uploads/", { method: "POST", body: body });
    }).then(function (ds) {
      bar.querySelector("span").textContent = "Uploaded; processing has started.";
      $("upload-unfinished").hidden = true;
      S.toast("Upload complete: '" + ds.name + "' is being processed.", "success");
      setTimeout(function () { window.location.reload(); }, 800);
    }).catch(function (e) {
      $("upload-btn").disabled = false;
      bar.hidden = true;
      show(err, "Upload failed: " + e.message + " Choose the same files and press the button again to continue.");
    });
  }

  function offerResume() {
    var names = window.IonSieveUpload.unfinished({ slug: cfg.slug, user: $("upload-form").dataset.user });
    if (names.length) {
      show($("upload-unfinished"), "Unfinished upload of " + names.join(", ") +
           ": choose the same files and press Upload to continue where it stopped.");
    }
  }

  // ---------------------------------------------------------- jobs
  function renderJobs(jobs) {
    var ul = $("jobs");
    ul.innerHTML = "";
    jobs.forEach(function (j) {
      var li = document.createElement("li");
      li.dataset.job = j.id;
      li.innerHTML = "<span></span> <progress max='100'></progress> <b></b> <span class='hint'></span>";
      li.children[0].textContent = j.kind_display;
      li.children[1].value = j.percent;
      li.children[2].textContent = j.percent + "%" + (j.eta_text ? " · " + j.eta_text : "");
      li.children[3].textContent = j.message || (j.status === "queued" ? "Waiting for a worker" : "");
      jobHelp(li, j);
      ul.appendChild(li);
      var row = document.querySelector("tr[data-dataset='" + j.target_id + "'] .ds-status");
      if (row && (j.kind === "ingest" || j.kind === "import")) {
        row.innerHTML = "<span class='status status-processing'>Processing</span> <progress max='100'></progress> " + j.percent + "%";
        row.querySelector("progress").value = j.percent;
      }
    });
    $("no-jobs").hidden = jobs.length > 0;
    var train = jobs.filter(function (j) { return j.kind === "train"; })[0];
    if ($("train-progress")) {
      var box = $("train-progress");
      if (train) {
        show(box);
        box.querySelector("progress").value = train.percent;
        box.querySelector("span").textContent = train.percent + "% " + (train.eta_text ? "(" + train.eta_text + ") " : "") +
          (train.message || "");
        $("train-cancel").dataset.job = train.id;
        $("train-btn").disabled = true;
      } else {
        box.hidden = true; $("train-btn").disabled = false;
      }
    }
  }

  // Why a job is stuck, and the Retry / Cancel buttons (handled by jobs.js) for annotators.
  function jobHelp(li, j) {
    if (j.stuck && j.status === "running") {
      var why = document.createElement("div");
      why.className = "error-text job-stuck";
      why.textContent = "No news from its worker since " + new Date(j.heartbeat_at).toLocaleString() +
        ": the worker may have stopped. It starts again by itself when a worker is running; you can also retry or cancel it.";
      li.appendChild(why);
      li.classList.add("stuck");
    }
    if (!cfg.canLabel) return;
    [["retry", "Retry", j.can_retry], ["cancel", "Cancel", j.can_cancel]].forEach(function (a) {
      if (!a[2]) return;
      var b = document.createElement("button");
      b.type = "button"; b.textContent = a[1]; b.className = "job-" + a[0] + (a[0] === "cancel" ? " danger" : "");
      b.dataset.jobAction = a[0]; b.dataset.job = j.id;
      li.appendChild(document.createTextNode(" "));
      li.appendChild(b);
    });
  }

  function poll() {
    S.api(base + "jobs/?active=1").then(function (jobs) {
      renderJobs(jobs);
      if (jobs.length) sawActive = true;
      else if (sawActive) { sawActive = false; window.location.reload(); }  // a job ended: show the results
    }).catch(function () { /* a missed poll is retried in 2 s */ }).then(function () {
      setTimeout(poll, 2000);
    });
  }

  // ---------------------------------------------------------- training and versions
  function train(ev) {
    ev.preventDefault();
    var f = $("train-form");
    var body = { arch: f.arch.value, folds: +f.folds.value || 5, ensemble: +f.ensemble.value || 1, context: f.context.checked };
    if (f.epochs.value) body.epochs = +f.epochs.value;
    $("train-error").hidden = true;
    S.api(base + "train/", { method: "POST", body: body }).then(function (job) {
      sawActive = true;
      renderJobs([job]);
      S.toast("Training started.", "success");
    }).catch(function (e) { show($("train-error"), "Could not start training: " + e.message); });
  }

  function cancel() {
    var id = $("train-cancel").dataset.job;
    if (!id) return;
    S.api("/api/jobs/" + id + "/cancel/", { method: "POST" }).then(function () {
      S.toast("Asked the training to stop after the current step.", "info");
    }).catch(function (e) { S.toast("Could not cancel: " + e.message, "error"); });
  }

  function activate(ev) {
    var n = ev.target.dataset.number;
    ev.target.disabled = true;
    S.api(base + "models/" + n + "/activate/", { method: "POST" }).then(function () {
      S.toast("Model v" + n + " is now active; the images are being scored again.", "success");
      setTimeout(function () { window.location.reload(); }, 600);
    }).catch(function (e) { ev.target.disabled = false; S.toast("Could not activate v" + n + ": " + e.message, "error"); });
  }

  document.addEventListener("DOMContentLoaded", function () {
    if ($("upload-form")) {
      var dz = $("dropzone");
      ["dragenter", "dragover"].forEach(function (t) { dz.addEventListener(t, function (e) { e.preventDefault(); dz.classList.add("over"); }); });
      ["dragleave", "drop"].forEach(function (t) { dz.addEventListener(t, function (e) { e.preventDefault(); dz.classList.remove("over"); }); });
      dz.addEventListener("drop", function (e) { take(e.dataTransfer.files); });
      $("files").addEventListener("change", function (e) { take(e.target.files); });
      $("upload-form").addEventListener("submit", upload);
      take([]);
      offerResume();
    }
    if ($("train-form")) {
      $("train-form").addEventListener("submit", train);
      $("train-cancel").addEventListener("click", cancel);
    }
    document.querySelectorAll("button.activate").forEach(function (b) { b.addEventListener("click", activate); });
    poll();
  });
})();
