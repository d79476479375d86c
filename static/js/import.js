/* Import page: the .zip (and labels CSV) go as resumable uploads, with rate and time left;
   without JavaScript the form still posts in one request. */
(function () {
  "use strict";
  var S = window.IonSieve;

  function $(id) { return document.getElementById(id); }

  function submit(ev) {
    var form = ev.target;
    var archive = form.archive.files[0];
    if (!archive) return;  // let the server say that the file is missing
    ev.preventDefault();
    var err = $("import-error"), bar = $("import-progress");
    err.hidden = true; bar.hidden = false; $("import-btn").disabled = true;
    var labels = form.labels && form.labels.files[0];
    var files = [archive].concat(labels ? [labels] : []);
    if (!/\.zip$/i.test(archive.name)) {
      err.hidden = false; bar.hidden = true; $("import-btn").disabled = false;
      err.textContent = "'" + archive.name + "' is not a .zip archive.";
      return;
    }
    window.IonSieveUpload.send(files, {
      slug: form.dataset.slug, user: form.dataset.user, csrf: S.csrf(),
      onProgress: function (text, pct) {
        if (pct !== null) bar.querySelector("progress").value = pct;
        bar.querySelector("span").textContent = text;
      },
    }).then(function (sent) {
      bar.querySelector("span").textContent = "Uploaded; checking the archive…";
      var body = { archive: sent[0].id, archive_crc32: sent[0].crc32 };
      if (sent[1]) { body.labels = sent[1].id; body.labels_crc32 = sent[1].crc32; }
      if (form.layout.value) body.layout = form.layout.value;
      if (form.channels.value) body.channels = form.channels.value;
      return S.api("/api/projects/" + form.dataset.slug + "/imports/from-upload/", { method: "POST", body: body });
    }).then(function () {
      S.toast("'" + archive.name + "' uploaded; the import is running.", "success");
      window.location.href = form.dataset.next;
    }).catch(function (e) {
      $("import-btn").disabled = false; bar.hidden = true;
      err.hidden = false;
      err.textContent = "Upload failed: " + e.message + " Choose the same file and press the button again to continue.";
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    var form = $("import-form");
    if (!form) return;
    form.addEventListener("submit", submit);
    var names = window.IonSieveUpload.unfinished({ slug: form.dataset.slug, user: form.dataset.user });
    if (names.length) {
      var note = $("import-unfinished");
      note.hidden = false;
      note.textContent = "Unfinished upload of " + names.join(", ") + ": choose the same file to continue where it stopped.";
    }
  });
})();
