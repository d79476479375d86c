/* Image detail: the image at native resolution (zoom, clips, scaling, colour maps, channel
   composites), labelling, previous/next in gallery order. */
(function () {
  "use strict";
  var S = window.IonSieve;
  var cfg = S.config();
  function $(id) { return document.getElementById(id); }

  // The ion image at native resolution: the server sends every pixel (base64 float32) with
  // each channel's display statistics (percentiles, range, equalisation table); the page clips,
  // scales by them (static/js/scaling.js) and colours the pixels into a canvas, shown as a
  // Plotly image trace for zoom and pan. Clips and colour maps change without a request.
  var SC = window.IonSieveScale;
  var viewer = { h: 0, w: 0, channels: [], hiMoved: false, pending: false, renderMs: null, drawn: false };
  var luts = {};

  function lut(name) {
    if (!luts[name]) {
      var hex = cfg.colormaps[name], t = new Uint8Array(hex.length / 2);
      for (var i = 0; i < t.length; i++) t[i] = parseInt(hex.substr(2 * i, 2), 16);
      luts[name] = t;
    }
    return luts[name];
  }

  function decode(b64) {
    var bin = atob(b64), bytes = new Uint8Array(bin.length);
    for (var i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
    return new Float32Array(bytes.buffer); // the server sends little-endian, as every browser's CPU
  }

  function hexRgb(hex) {
    return [1, 3, 5].map(function (i) { return parseInt(hex.substr(i, 2), 16); });
  }

  function fmt(v) { return isFinite(v) ? Number(v).toPrecision(4).replace(/\.?0+(e|$)/, "$1") : "–"; }

  function clips(ch) {
    var lo = SC.quantile(ch.quantiles, +$("clip-lo").value);
    // Until the user moves it, the upper clip is each channel's hotspot clip (as thumbnails).
    var hi = viewer.hiMoved ? SC.quantile(ch.quantiles, +$("clip-hi").value) : ch.hotspot;
    return [lo, hi];
  }

  function describeClips() {
    var one = viewer.channels.length === 1 ? viewer.channels[0] : null;
    [["clip-lo", 0], ["clip-hi", 1]].forEach(function (p) {
      var input = $(p[0]), pct = (+input.value).toFixed(1) + "th percentile";
      var text = one && one.quantiles.length ? fmt(clips(one)[p[1]]) + " (" + pct + ")" : pct;
      if (p[1] === 1 && !viewer.hiMoved) text += ", hotspot clip";
      $(p[0] + "-value").textContent = text;
      input.setAttribute("aria-valuetext", text);
    });
  }

  function paint() {
    var n = viewer.h * viewer.w, mode = $("scaling").value, rgba = new Uint8ClampedArray(n * 4), i;
    var t0 = performance.now();
    if (viewer.channels.length === 1) {
      var ch = viewer.channels[0], c = clips(ch), s = SC.displayScale(ch.values, c[0], c[1], mode, ch);
      var table = lut($("cmap").value);
      for (i = 0; i < n; i++) {
        if (s[i] !== s[i]) continue; // not acquired: transparent
        var k = 3 * Math.round(Math.min(Math.max(s[i], 0), 1) * 255);
        rgba[4 * i] = table[k]; rgba[4 * i + 1] = table[k + 1]; rgba[4 * i + 2] = table[k + 2]; rgba[4 * i + 3] = 255;
      }
    } else {
      // Additive colour composite of the channels shown (as the thumbnails blend them).
      var acc = new Float32Array(n * 3);
      viewer.channels.forEach(function (ch, j) {
        if (!$("ch-show-" + j).checked) return;
        var c = clips(ch), s = SC.displayScale(ch.values, c[0], c[1], mode, ch), rgb = hexRgb($("ch-colour-" + j).value);
        for (var p = 0; p < n; p++) {
          if (s[p] !== s[p]) continue;
          acc[3 * p] += s[p] * rgb[0]; acc[3 * p + 1] += s[p] * rgb[1]; acc[3 * p + 2] += s[p] * rgb[2];
        }
      });
      for (i = 0; i < n; i++) {
        rgba[4 * i] = acc[3 * i]; rgba[4 * i + 1] = acc[3 * i + 1]; rgba[4 * i + 2] = acc[3 * i + 2];
        rgba[4 * i + 3] = viewer.known[i] ? 255 : 0;
      }
    }
    var canvas = document.createElement("canvas");
    canvas.width = viewer.w; canvas.height = viewer.h;
    canvas.getContext("2d").putImageData(new ImageData(rgba, viewer.w, viewer.h), 0, 0);
    var url = canvas.toDataURL("image/png");
    var el = $("fig-image");
    if (!viewer.drawn) {
      var fg = getComputedStyle(document.body).color;
      window.Plotly.newPlot(el, [{ type: "image", source: url, x0: 0, dx: 1, y0: 0, dy: 1,
                                   hovertemplate: "x %{x}, y %{y}<extra></extra>" }], {
        height: 520, margin: { l: 50, r: 10, t: 10, b: 40 }, dragmode: "pan",
        paper_bgcolor: "rgba(0,0,0,0)", plot_bgcolor: "rgba(0,0,0,0)", font: { color: fg },
        xaxis: { showgrid: false, zeroline: false, constrain: "domain" },
        yaxis: { showgrid: false, zeroline: false, autorange: "reversed", scaleanchor: "x", constrain: "domain" }
      }, { responsive: true, displaylogo: false, scrollZoom: true });
      el.on("plotly_hover", readout);
      viewer.drawn = true;
    } else {
      window.Plotly.restyle(el, { source: [url] }, [0]);
    }
    viewer.renderMs = performance.now() - t0;
    el.setAttribute("data-render-ms", viewer.renderMs.toFixed(0));
    describeClips();
  }

  // Slider drags fire many events: paint at most once per frame.
  function repaint() {
    if (!viewer.channels.length || viewer.pending) return;
    viewer.pending = true;
    requestAnimationFrame(function () { viewer.pending = false; paint(); });
  }

  function readout(ev) {
    var pt = ev.points && ev.points[0];
    if (!pt) return;
    var x = Math.round(pt.x), y = Math.round(pt.y);
    if (x < 0 || y < 0 || x >= viewer.w || y >= viewer.h) return;
    var parts = viewer.channels.map(function (ch) {
      var v = ch.values[y * viewer.w + x];
      return ch.name + " " + (v === v ? fmt(v) : "not acquired");
    });
    $("pixel-readout").textContent = "x " + x + ", y " + y + ": " + parts.join(", ");
  }

  function zoom(factor) {
    var el = $("fig-image");
    if (!viewer.drawn) return;
    var xr = el._fullLayout.xaxis.range, yr = el._fullLayout.yaxis.range;
    function around(r) { var c = (r[0] + r[1]) / 2, h = (r[1] - r[0]) / 2 * factor; return [c - h, c + h]; }
    window.Plotly.relayout(el, { "xaxis.range": around(xr), "yaxis.range": around(yr) });
  }

  // Keyboard: with the image focused, arrows pan and + / − zoom (kept from the page's
  // previous/next and label keys).
  function pan(dx, dy) {
    var el = $("fig-image"), xr = el._fullLayout.xaxis.range, yr = el._fullLayout.yaxis.range;
    var sx = (xr[1] - xr[0]) * 0.1 * dx, sy = (yr[1] - yr[0]) * 0.1 * dy;
    window.Plotly.relayout(el, { "xaxis.range": [xr[0] + sx, xr[1] + sx], "yaxis.range": [yr[0] + sy, yr[1] + sy] });
  }

  function imageKeys(ev) {
    if (!viewer.drawn || ev.ctrlKey || ev.metaKey || ev.altKey) return;
    // y grows downwards on the image (its axis is reversed), so "up" lowers y.
    var moves = { ArrowLeft: [-1, 0], ArrowRight: [1, 0], ArrowUp: [0, 1], ArrowDown: [0, -1] };
    if (moves[ev.key]) pan(moves[ev.key][0], moves[ev.key][1]);
    else if (ev.key === "+" || ev.key === "=") zoom(0.5);
    else if (ev.key === "-") zoom(2);
    else return;
    ev.preventDefault();
    ev.stopPropagation();
  }

  function channelControls() {
    var box = $("channels");
    if (!box || viewer.channels.length < 2) return;
    viewer.channels.forEach(function (ch, j) {
      var row = document.createElement("div");
      row.className = "channel";
      var show = document.createElement("label");
      show.className = "check";
      show.innerHTML = "<input type='checkbox' id='ch-show-" + j + "' checked> <span></span>";
      show.querySelector("span").textContent = "Show " + ch.name;
      var pick = document.createElement("label");
      pick.innerHTML = "<span></span> <select id='ch-colour-" + j + "'></select>";
      pick.querySelector("span").textContent = "Colour of " + ch.name;
      var select = pick.querySelector("select"), known = false;
      cfg.channelColours.forEach(function (c) {
        var o = new Option(c[0], c[1]);
        if (c[1] === ch.colour) { o.selected = true; known = true; }
        select.appendChild(o);
      });
      if (!known) select.insertBefore(new Option("default", ch.colour, true, true), select.firstChild);
      row.appendChild(show); row.appendChild(pick);
      box.appendChild(row);
      show.querySelector("input").addEventListener("change", repaint);
      select.addEventListener("change", repaint);
    });
  }

  function loadImage() {
    var el = $("fig-image");
    if (!el) return;
    fetch(el.getAttribute("data-figure-url"), { credentials: "same-origin", headers: { "Accept": "application/json" } })
      .then(function (r) {
        if (!r.ok) throw new Error("the server answered " + r.status + ".");
        return r.json();
      })
      .then(function (data) {
        viewer.h = data.shape[0]; viewer.w = data.shape[1];
        viewer.channels = data.channels.map(function (ch) { ch.values = decode(ch.values); return ch; });
        var n = viewer.h * viewer.w;
        viewer.known = new Uint8Array(n);
        viewer.channels.forEach(function (ch) {
          for (var i = 0; i < n; i++) if (ch.values[i] === ch.values[i]) viewer.known[i] = 1;
        });
        $("clip-hi").value = viewer.channels[0].hotspot_percentile;
        channelControls();
        paint();
        el.addEventListener("keydown", imageKeys);
        el.removeAttribute("aria-busy");
        el.dispatchEvent(new CustomEvent("ionsieve:image", { bubbles: true }));
      })
      .catch(function (e) {
        el.removeAttribute("aria-busy");
        el.className = "empty";
        el.textContent = "Could not load the image: " + e.message;
      });
  }

  function recolourTic() {
    var tic = $("fig-tic");
    if (!tic || !tic.data) return;
    var t = lut($("cmap").value), scale = [];
    for (var k = 0; k <= 32; k++) {
      var i = 3 * Math.round(k * 255 / 32);
      scale.push([k / 32, "rgb(" + t[i] + "," + t[i + 1] + "," + t[i + 2] + ")"]);
    }
    window.Plotly.restyle(tic, { colorscale: [scale] }, [0]);
  }

  window.IonSieveViewer = { state: viewer, zoom: zoom };

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
    $("cmap").addEventListener("change", function () { repaint(); recolourTic(); });
    $("scaling").addEventListener("change", repaint);
    $("clip-lo").addEventListener("input", repaint);
    $("clip-hi").addEventListener("input", function () { viewer.hiMoved = true; repaint(); });
    $("zoom-in").addEventListener("click", function () { zoom(0.5); });
    $("zoom-out").addEventListener("click", function () { zoom(2); });
    $("zoom-reset").addEventListener("click", function () {
      if (viewer.drawn) window.Plotly.relayout($("fig-image"), { "xaxis.autorange": true, "yaxis.autorange": "reversed" });
    });
    loadImage();
    // The TIC arrives after the page: give it a colour map chosen before it did.
    document.addEventListener("ionsieve:figure", function () { if ($("cmap").selectedIndex > 0) recolourTic(); });
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
