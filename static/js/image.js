/* Image detail: colour map and scaling of the heatmap, labelling, previous/next in gallery order. */
(function () {
  "use strict";
  var S = window.IonSieve;
  var cfg = S.config();
  function $(id) { return document.getElementById(id); }

  // Display scaling in the browser from the raw values kept in the heatmap's customdata.
  function percentile(sorted, q) {
    if (!sorted.length) return NaN;
    var pos = (sorted.length - 1) * q / 100, lo = Math.floor(pos), hi = Math.ceil(pos);
    return sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo);
  }

  function scaled(raw, mode) {
    var vals = [];
    raw.forEach(function (row) { row.forEach(function (v) { if (v !== null && isFinite(v)) vals.push(v); }); });
    if (!vals.length) return raw;
    vals.sort(function (a, b) { return a - b; });
    var min = vals[0];
    if (mode === "linear") {
      var nz = vals.filter(function (v) { return v !== 0; });
      var hi = nz.length ? percentile(nz, 99) : vals[vals.length - 1];
      var lo = Math.min(min, hi);
      return raw.map(function (row) { return row.map(function (v) {
        if (v === null) return null; var c = Math.min(v, hi); return hi > lo ? (c - lo) / (hi - lo) : 0; }); });
    }
    if (mode === "log") {
      var top = Math.log1p(vals[vals.length - 1] - min);
      return raw.map(function (row) { return row.map(function (v) {
        return v === null ? null : (top > 0 ? Math.log1p(Math.max(0, v - min)) / top : 0); }); });
    }
    // equalised: the rank of each value among the distinct values
    var uniq = vals.filter(function (v, i) { return i === 0 || v !== vals[i - 1]; });
    var rank = new Map(uniq.map(function (v, i) { return [v, uniq.length > 1 ? i / (uniq.length - 1) : 0]; }));
    return raw.map(function (row) { return row.map(function (v) { return v === null ? null : rank.get(v); }); });
  }

  function restyle() {
    var el = $("fig-image");
    if (!el || !el.data) return;
    var raw = el.data[0].customdata;
    var cs = cfg.colorscales[$("cmap").value];
    window.Plotly.restyle(el, { z: [scaled(raw, $("scaling").value)], colorscale: [cs] }, [0]);
    var tic = $("fig-tic");
    if (tic && tic.data) window.Plotly.restyle(tic, { colorscale: [cs] }, [0]);
  }

  function setLabel(body, method) {
    $("label-error").hidden = true;
    S.api("/api/images/" + cfg.image + "/label/", { method: method || "PUT", body: body }).then(function (fresh) {
      S.toast("Saved.", "success");
      $("consensus").textContent = fresh.label || "none yet";
      setTimeout(function () { window.location.reload(); }, 400);
    }).catch(function (e) {
      var box = $("label-error");
      box.hidden = false;
      box.textContent = "Your label was NOT saved: " + e.message;
      S.toast("Label NOT saved: " + e.message, "error", { label: "Retry", run: function () { setLabel(body, method); } });
    });
  }

  function choose(name) {
    if (!cfg.multilabel) { setLabel({ label: name }); return; }
    var mine = cfg.myLabel.slice(), at = mine.indexOf(name);
    if (at >= 0) mine.splice(at, 1); else mine.push(name);
    if (mine.length) setLabel({ label: mine }); else setLabel(undefined, "DELETE");
  }

  // Previous/next follow the gallery the user came from when it is known.
  function galleryOrder() {
    var saved;
    try { saved = JSON.parse(sessionStorage.getItem("ionsieve.gallery") || "null"); } catch (e) { saved = null; }
    if (!saved) return;
    var i = saved.ids.indexOf(cfg.image);
    if (i < 0) return;
    [["prev", saved.ids[i - 1]], ["next", saved.ids[i + 1]]].forEach(function (p) {
      var a = $(p[0]);
      if (p[1]) { a.href = "/images/" + p[1] + "/"; a.removeAttribute("aria-disabled"); }
      else { a.removeAttribute("href"); a.setAttribute("aria-disabled", "true"); }
    });
    if (saved.back) $("back-to-gallery").href = saved.back;
  }

  var byKey = {};
  cfg.classes.forEach(function (c) { byKey[String(c.key).toLowerCase()] = c; });

  // Every change of every user's label on this image, newest first (from the label history).
  function loadHistory() {
    var list = $("label-history");
    if (!list) return;
    S.api("/api/images/" + cfg.image + "/labels/history/").then(function (rows) {
      list.innerHTML = "";
      if (!rows.length) { list.innerHTML = "<li class='empty'>No label changes yet.</li>"; return; }
      rows.slice(0, 50).forEach(function (r) {
        var li = document.createElement("li");
        var what = (r.previous == null ? "none" : r.previous) + " → " + (r.label == null ? "removed" : (r.unsure ? "unsure" : r.label));
        li.textContent = r.user + ": " + what + " ";
        var meta = document.createElement("span");
        meta.className = "hint";
        meta.textContent = new Date(r.at).toLocaleString() + " · " + r.source + (r.by && r.by !== r.user ? " by " + r.by : "");
        li.appendChild(meta);
        list.appendChild(li);
      });
    }).catch(function (e) { list.innerHTML = ""; S.toast("Could not load the label history: " + e.message, "error"); });
  }

  document.addEventListener("DOMContentLoaded", function () {
    loadHistory();
    galleryOrder();
    $("cmap").addEventListener("change", restyle);
    $("scaling").addEventListener("change", restyle);
    // Figures arrive after the page: apply a colour map or scaling chosen before they did.
    document.addEventListener("ionsieve:figure", function () {
      if ($("cmap").selectedIndex > 0 || $("scaling").selectedIndex > 0) restyle();
    });
    if (cfg.canLabel) {
      document.querySelectorAll("#label-buttons button.cls").forEach(function (b) {
        var on = cfg.myLabel.indexOf(b.dataset.class) >= 0;
        b.classList.toggle("on", on);
        b.addEventListener("click", function () { choose(b.dataset.class); });
      });
      $("unsure").classList.toggle("on", cfg.myUnsure);
      $("unsure").addEventListener("click", function () { setLabel({ unsure: true }); });
      $("clear-label").addEventListener("click", function () { setLabel(undefined, "DELETE"); });
    }
    document.addEventListener("keydown", function (ev) {
      var t = ev.target;
      if (t && (t.tagName === "INPUT" || t.tagName === "SELECT") || ev.ctrlKey || ev.metaKey || ev.altKey) return;
      if ((ev.key === "ArrowLeft" || ev.key === "k") && $("prev").href) window.location = $("prev").href;
      else if ((ev.key === "ArrowRight" || ev.key === "j") && $("next").href) window.location = $("next").href;
      else if (cfg.canLabel && byKey[ev.key.toLowerCase()] && !ev.shiftKey) choose(byKey[ev.key.toLowerCase()].name);
      else if (cfg.canLabel && ev.key === "x") setLabel({ unsure: true });
    });
  });
})();
