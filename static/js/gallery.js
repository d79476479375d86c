/* Gallery: paged thumbnails, filters with counts, keyboard and mouse labelling, undo. */
(function () {
  "use strict";
  var S = window.IonSieve;
  var cfg = S.config();
  var classes = cfg.classes;
  var byName = {}, byKey = {};
  classes.forEach(function (c) { byName[c.name] = c; byKey[String(c.key).toLowerCase()] = c; });

  var items = [];          // loaded images, in gallery order
  var nextUrl = null;      // DRF's next page
  var loading = false;
  var generation = 0;      // bumps when filters change so stale pages are dropped
  var focus = -1;
  var anchor = -1;
  var selected = new Set();
  // Undo lives on the server (label history), so it survives reloads and filter changes.
  var grid, sentinel;
  // Label next: a queue of unlabelled images chosen by a strategy instead of the filtered gallery.
  var nextMode = new URLSearchParams(window.location.search).get("mode") === "next" && !!cfg.canLabel;
  var sessionLabels = 0;
  var live = null;          // the last /live/ answer
  var newScores = false;    // scores changed since the queue was fetched

  function $(id) { return document.getElementById(id); }

  // ---------------------------------------------------------- query
  function params() {
    var p = new URLSearchParams();
    p.set("ordering", $("ordering").value);
    var pred = document.querySelector("input[name=predicted]:checked").value;
    if (pred) p.set("predicted", pred);
    var lo = +$("prob-min").value, hi = +$("prob-max").value;
    if (lo > 0) p.set("prob_min", (lo / 100).toFixed(2));
    if (hi < 100) p.set("prob_max", (hi / 100).toFixed(2));
    var lab = document.querySelector("input[name=labelled]:checked").value;
    if (lab) p.set("labelled", lab);
    var by = document.querySelector("input[name=labelled_by]:checked").value;
    if (by) p.set("labelled_by", by);
    if ($("disagreement").checked) p.set("disagreement", "true");
    if ($("users-disagree").checked) p.set("users_disagree", "true");
    if ($("mz-min").value) p.set("mz_min", $("mz-min").value);
    if ($("mz-max").value) p.set("mz_max", $("mz-max").value);
    if ($("search").value.trim()) p.set("search", $("search").value.trim());
    return p;
  }

  function queueUrl() {
    return cfg.nextUrl + "?n=40&mine=true&strategy=" + encodeURIComponent($("next-strategy").value);
  }

  function reload() {
    generation += 1;
    items = []; focus = -1; anchor = -1; selected.clear();
    // ARIA grid: the tiles are the cells of one row (display: contents keeps the CSS grid layout).
    grid.innerHTML = "<div role='row' class='grid-row'></div>";
    var p = params();
    if (nextMode) {
      newScores = false;
      nextUrl = queueUrl();
      history.replaceState(null, "", "?mode=next&strategy=" + encodeURIComponent($("next-strategy").value));
    } else {
      nextUrl = cfg.imagesUrl + "?" + p.toString();
      history.replaceState(null, "", "?" + p.toString());
    }
    loadMore();
    loadCounts(p);
    updateSelection();
  }

  function loadCounts(p) {
    var gen = generation;
    p = new URLSearchParams(p); p.delete("ordering");
    return S.api(cfg.countsUrl + "?" + p.toString()).then(function (c) {
      if (gen !== generation) return;
      document.querySelectorAll("[data-count]").forEach(function (el) {
        var path = el.dataset.count.split("."), v = c;
        path.forEach(function (k) { v = v == null ? null : v[k]; });
        el.textContent = v == null ? "" : "(" + v + ")";
      });
      grid.dataset.total = c.total;
      updateShown(c.total);
    }).catch(function (e) { S.toast("Could not count the images: " + e.message, "error"); });
  }

  function updateShown(total) {
    total = total === undefined ? grid.dataset.total : total;
    $("shown-count").textContent = "Showing " + items.length + (total !== undefined ? " of " + total : "") + " images";
  }

  function loadMore() {
    if (!nextUrl || loading) return;
    loading = true;
    var gen = generation;
    S.api(nextUrl).then(function (page) {
      if (gen !== generation) return;
      nextUrl = page.next;
      page.results.forEach(function (item) { items.push(item); grid.firstChild.appendChild(tile(item, items.length - 1)); });
      if (focus < 0 && items.length) setFocus(0, false);
      if (!items.length) grid.firstChild.innerHTML = "<div role='gridcell' class='empty'>" +
        (nextMode ? "Nothing left to label here: every image is labelled." : "No image matches these filters.") + "</div>";
      $("load-more").hidden = !nextUrl;
      updateShown();
      saveOrder();
    }).catch(function (e) {
      if (gen === generation) S.toast("Could not load images: " + e.message, "error", { label: "Retry", run: loadMore });
    }).then(function () {
      loading = false;
      // Keep filling while the sentinel is still visible (tall screens).
      if (gen === generation && nextUrl && sentinelVisible()) loadMore();
    });
  }

  function sentinelVisible() {
    var r = sentinel.getBoundingClientRect();
    return r.top < window.innerHeight + 400;
  }

  // The image page reads this to offer previous/next in the gallery's order.
  function saveOrder() {
    try {
      sessionStorage.setItem("ionsieve.gallery", JSON.stringify({
        ids: items.map(function (i) { return i.id; }), back: window.location.pathname + window.location.search }));
    } catch (e) { /* private mode: prev/next falls back to the dataset order */ }
  }

  // ---------------------------------------------------------- tiles
  function labelNames(v) { return v == null ? [] : (Array.isArray(v) ? v : String(v).split(" ").filter(Boolean)); }
  function pretty(v) { return labelNames(v).map(function (n) { return byName[n] ? byName[n].label : n; }).join(" + "); }

  function tile(item, i) {
    var el = document.createElement("div");
    el.className = "tile";
    el.id = "tile-" + item.id;
    el.setAttribute("role", "gridcell");
    el.setAttribute("aria-selected", selected.has(item.id) ? "true" : "false");
    el.dataset.id = item.id;
    el.dataset.index = i;
    el.dataset.prob = item.probability == null ? "" : item.probability;
    el.innerHTML =
      "<div class='thumb'><img alt='' loading='lazy' draggable='false'></div>" +
      "<a class='tile-name' title='Open the image (Enter)'></a><div class='probbar' title=''><span></span></div>" +
      "<div class='tile-meta'></div><div class='tile-badges'></div><div class='tile-buttons'></div>" +
      "<div class='tile-error' role='alert' hidden><span></span> <button type='button'>Retry</button></div>";
    el.querySelector("a.tile-name").href = "/images/" + item.id + "/";
    // The grid holds the focus (arrows move, Enter opens, class keys label); the tile's link and
    // buttons stay out of the tab order so one Tab leaves the gallery.
    el.querySelector("a.tile-name").tabIndex = -1;
    el.querySelector("img").src = item.thumbnail_url;
    fill(el, item);
    return el;
  }

  function fill(el, item) {
    var mine = labelNames(item.my_label);
    var first = classes[0];
    el.querySelector(".tile-name").textContent = (item.name || ("#" + item.index)) +
      (item.mz != null && item.name !== item.mz.toFixed(4) ? " · m/z " + item.mz.toFixed(4) : "") +
      (cfg.dataset ? "" : " · " + item.dataset_name);
    var p = item.probability;
    el.setAttribute("aria-label", el.querySelector(".tile-name").textContent +
      (p == null ? ", not scored" : ", P(" + first.label + ") " + p.toFixed(2)) +
      (item.my_unsure ? ", my label: unsure" : (mine.length ? ", my label: " + pretty(mine) : ", not labelled by me")));
    el.querySelector(".probbar span").style.width = p == null ? "0" : (100 * p).toFixed(1) + "%";
    el.querySelector(".probbar").title = "P(" + first.label + ") = " + (p == null ? "not scored" : p.toFixed(3));
    el.querySelector(".tile-meta").textContent = p == null ? "not scored yet" :
      "P(" + first.label + ") " + p.toFixed(2) + " → " + (pretty(item.predicted) || "none");
    var badges = el.querySelector(".tile-badges");
    badges.innerHTML = "";
    function badge(text, cls, colour, title) {
      var b = document.createElement("span");
      b.className = "badge " + cls; b.textContent = text; b.title = title || "";
      if (colour) b.style.background = colour;
      badges.appendChild(b);
    }
    if (item.label) badge("consensus: " + pretty(item.label), "consensus", null, "majority of the annotators");
    if (item.my_unsure) badge("me: unsure", "mine unsure");
    else if (mine.length) badge("me: " + pretty(mine), "mine", (byName[mine[0]] || {}).colour);
    if (item.users_disagree) badge("⚠ annotators disagree", "disagree");
    if (item.label && item.predicted && item.label !== item.predicted && item.probability != null) {
      badge("≠ prediction", "mismatch", null, "the prediction differs from the label");
    }
    var colour = item.my_unsure ? "#868e96" : (mine.length ? (byName[mine[0]] || {}).colour : null);
    el.style.borderColor = colour || "";
    el.classList.toggle("labelled", !!colour);
    var buttons = el.querySelector(".tile-buttons");
    buttons.innerHTML = "";
    if (cfg.canLabel) {
      classes.forEach(function (c) {
        var b = document.createElement("button");
        b.type = "button";
        b.tabIndex = -1;  // keys do the same from the grid
        b.setAttribute("aria-pressed", mine.indexOf(c.name) >= 0 ? "true" : "false");
        b.className = "cls" + (mine.indexOf(c.name) >= 0 ? " on" : "");
        b.style.setProperty("--c", c.colour);
        b.innerHTML = "<kbd></kbd> ";
        b.firstChild.textContent = c.key;
        b.appendChild(document.createTextNode(c.label));
        b.addEventListener("click", function (ev) { ev.stopPropagation(); labelOne(indexOf(item.id), c); });
        buttons.appendChild(b);
      });
    }
  }

  function indexOf(id) { for (var i = 0; i < items.length; i++) if (items[i].id === id) return i; return -1; }
  function tileAt(i) { return grid.querySelector(".tile[data-index='" + i + "']"); }

  function refresh(i, item) {
    items[i] = item;
    var el = tileAt(i);
    if (el) { fill(el, item); el.classList.remove("failed"); el.querySelector(".tile-error").hidden = true; }
  }

  // ---------------------------------------------------------- labelling
  // Saves go one at a time, in key-press order: two quick presses on one image must not
  // reach the server swapped.
  var queue = Promise.resolve();
  function enqueue(fn) {
    var p = queue.then(fn);
    queue = p.catch(function () {});
    return p;
  }

  var countsTimer = null;
  function countsLater() {
    clearTimeout(countsTimer);
    countsTimer = setTimeout(function () { enqueue(function () { return loadCounts(params()); }); }, 800);
  }

  function save(i, body, method) {
    var item = items[i];
    var el = tileAt(i);
    if (el) el.classList.add("saving");
    return enqueue(function () {
      return S.api("/api/images/" + item.id + "/label/", { method: method || "PUT", body: body });
    }).then(function (fresh) {
      var j = indexOf(item.id);
      if (j >= 0) refresh(j, fresh);
      if (el) el.classList.remove("saving");
      countsLater();
      if (nextMode && method !== "DELETE") { sessionLabels += 1; showLive(); }
      if (nextMode && newScores) refreshQueue();
      pollSoon();
    }).catch(function (e) {
      if (el) {
        el.classList.remove("saving"); el.classList.add("failed");
        var box = el.querySelector(".tile-error");
        box.hidden = false;
        box.querySelector("span").textContent = "Not saved: " + e.message;
        box.querySelector("button").onclick = function (ev) { ev.stopPropagation(); save(i, body, method); };
      }
      S.toast("Label for '" + (item.name || item.id) + "' was NOT saved: " + e.message, "error",
              { label: "Retry", run: function () { save(i, body, method); } });
      throw e;
    });
  }

  function advance(i) {
    if (autoAdvance() && i + 1 < items.length) setFocus(i + 1);
    else if (nextMode && autoAdvance() && i + 1 >= items.length) enqueue(refreshQueue);
  }

  // ---------------------------------------------------------- new scores (live update)
  // The images labelled so far stay where they are; what follows the focus is replaced by the
  // queue as the new scores order it.
  function refreshQueue() {
    newScores = false;
    var gen = generation;
    return S.api(queueUrl()).then(function (page) {
      if (gen !== generation) return;
      // The focused image goes too when nothing was given to it yet (the focus moved on to it).
      var el = tileAt(focus), cur = items[focus];
      var done = cur && (cur.my_label || cur.my_unsure || (el && el.classList.contains("saving")));
      var cut = focus >= 0 && cur && !done ? focus : focus + 1;
      var keep = items.slice(0, cut), seen = new Set(keep.map(function (x) { return x.id; }));
      grid.querySelectorAll(".tile").forEach(function (t) { if (+t.dataset.index >= cut) t.remove(); });
      var empty = grid.querySelector(".empty"); if (empty) empty.remove();
      items = keep;
      page.results.forEach(function (item) {
        if (seen.has(item.id)) return;
        items.push(item); grid.firstChild.appendChild(tile(item, items.length - 1));
      });
      if (cut === focus) { focus = -1; setFocus(cut); }
      else if (focus + 1 < items.length && autoAdvance() && done) setFocus(focus + 1);
      updateShown();
      saveOrder();
    }).catch(function (e) { S.toast("Could not fetch the next images: " + e.message, "error"); });
  }

  function rescoreShown() {
    // Gallery mode: the tiles around the focus take their new scores (at most 60 requests).
    var lo = Math.max(0, focus - 20);
    refetch(items.slice(lo, lo + 60).map(function (x) { return x.id; }));
  }

  var pollTimer = null, polling = false;
  function pollSoon() { clearTimeout(pollTimer); pollTimer = setTimeout(poll, 1500); }
  function poll() {
    clearTimeout(pollTimer);
    if (polling || !cfg.liveUrl) return;
    if (document.visibilityState === "hidden") { pollTimer = setTimeout(poll, 5000); return; }
    polling = true;
    S.api(cfg.liveUrl).then(function (r) {
      var changed = live && (r.version !== live.version || r.scored_from !== live.scored_from);
      live = r;
      showLive();
      if (changed) {
        S.toast("New scores from " + r.scored_from + " labels" + (r.quick ? " (quick update)" : "") + ".", "info");
        if (nextMode) newScores = true; else rescoreShown();
        if (nextMode && focus >= items.length - 1) refreshQueue();
      }
    }).catch(function () { /* the next poll tries again */ }).then(function () {
      polling = false;
      pollTimer = setTimeout(poll, live && live.updating ? 1500 : 4000);
    });
  }

  function fmt(x) { return x == null ? "–" : x.toFixed(2); }
  function showLive() {
    var box = $("live-counter");
    if (!box || !nextMode) return;
    var parts = [sessionLabels + (sessionLabels === 1 ? " label" : " labels") + " given here"];
    if (live) {
      parts.push(live.labelled + " labelled in the project");
      parts.push(live.version == null ? "scores: default score" :
        "scores: v" + live.version + (live.quick ? " (quick update)" : "") + " from " + live.scored_from + " labels");
      var est = (live.estimates || []).filter(function (e) { return e.n > 0 && e.f1 != null; });
      if (est.length) {
        var last = est[est.length - 1], prev = est.length > 1 ? est[est.length - 2] : null;
        parts.push("held-out F1 estimate " + (prev ? fmt(prev.f1) + " (v" + prev.number + ") → " : "") + fmt(last.f1) +
          (last.f1_ci ? " (" + fmt(last.f1_ci[0]) + "–" + fmt(last.f1_ci[1]) + ")" : "") + " (v" + last.number + ", " + last.n + " labels)");
      }
      if (live.updating) parts.push("updating the scores…");
    }
    box.textContent = parts.join(" · ");
  }

  function labelOne(i, c) {
    if (i < 0 || !cfg.canLabel) return;
    var item = items[i];
    var value = c.name;
    if (cfg.multilabel) {
      var mine = labelNames(item.my_label).slice();
      var at = mine.indexOf(c.name);
      if (at >= 0) mine.splice(at, 1); else mine.push(c.name);
      value = mine;
      if (!mine.length) { save(i, undefined, "DELETE").catch(function () {}); advance(i); return; }
    }
    save(i, { label: value }).catch(function () {});
    advance(i);
  }

  function unsure(i) {
    if (i < 0 || !cfg.canLabel) return;
    save(i, { unsure: true }).catch(function () {});
    advance(i);
  }

  function refetch(ids) {
    ids.forEach(function (id) {
      if (indexOf(id) < 0) return;
      enqueue(function () { return S.api("/api/images/" + id + "/"); })
        .then(function (fresh) { var j = indexOf(id); if (j >= 0) refresh(j, fresh); }).catch(function () {});
    });
  }

  function labelSelection(c) {
    var ids = Array.from(selected);
    var body = { images: ids, label: c.name }, verb = "labelled " + c.label;
    if (cfg.multilabel) {
      // Add the class to every selected image, or remove it when all of them (on screen) have it:
      // the images' other classes are kept either way.
      var all = ids.every(function (id) { var i = indexOf(id); return i < 0 || labelNames(items[i].my_label).indexOf(c.name) >= 0; });
      body.mode = all ? "remove" : "add";
      verb = (all ? "without " : "with ") + c.label;
    }
    enqueue(function () { return S.api(cfg.bulkUrl, { method: "POST", body: body }); }).then(function () {
      countsLater();
      refetch(ids);
      S.toast(ids.length + " images " + verb + ". Press u to undo.", "success");
    }).catch(function (e) {
      S.toast("The " + ids.length + " selected images were NOT labelled: " + e.message, "error",
              { label: "Retry", run: function () { labelSelection(c); } });
    });
  }

  function undoLast() {
    enqueue(function () { return S.api(cfg.undoUrl, { method: "POST" }); }).then(function (r) {
      if (!r.changed) { S.toast("Nothing to undo: your labels in this project are as you last left them.", "info"); return; }
      refetch(r.images);
      countsLater();
      S.toast("Undone: " + r.changed + (r.changed === 1 ? " label" : " labels") + " changed back.", "info");
    }).catch(function (e) { S.toast("Could not undo: " + e.message, "error"); });
  }

  function selectAllMatching() {
    S.api(cfg.idsUrl + "?" + params().toString()).then(function (r) {
      if (r.count > 500 && !window.confirm("Select all " + r.count + " images that match the filters?")) return;
      selected = new Set(r.ids);
      updateSelection();
      if (r.truncated) S.toast("Only the first " + r.ids.length + " of " + r.count + " images were selected; narrow the filters.", "info");
    }).catch(function (e) { S.toast("Could not select the images: " + e.message, "error"); });
  }

  // ---------------------------------------------------------- preferences (this browser)
  function pref(name, fallback) {
    try { var v = localStorage.getItem("ionsieve." + name); return v === null ? fallback : JSON.parse(v); }
    catch (e) { return fallback; }
  }
  function setPref(name, value) { try { localStorage.setItem("ionsieve." + name, JSON.stringify(value)); } catch (e) { /* private mode */ } }
  function autoAdvance() { var box = $("auto-advance"); return !!(box && box.checked); }
  function applyDensity(px) {
    grid.style.gridTemplateColumns = "repeat(auto-fill, minmax(" + px + "px, 1fr))";
    grid.classList.toggle("compact", px < 130);
  }

  // ---------------------------------------------------------- focus and selection
  function setFocus(i, scroll) {
    if (i < 0 || i >= items.length) return;
    var old = tileAt(focus);
    if (old) old.classList.remove("focus");
    focus = i;
    var el = tileAt(i);
    if (el) {
      el.classList.add("focus");
      grid.setAttribute("aria-activedescendant", el.id);
      if (scroll !== false) el.scrollIntoView({ block: "nearest" });
    }
    if (i >= items.length - 8) loadMore();
  }

  function columns() {
    var tiles = grid.querySelectorAll(".tile");
    if (!tiles.length) return 1;
    var top = tiles[0].offsetTop, n = 0;
    for (var k = 0; k < tiles.length && tiles[k].offsetTop === top; k++) n++;
    return Math.max(1, n);
  }

  function updateSelection() {
    grid.querySelectorAll(".tile").forEach(function (el) {
      var on = selected.has(+el.dataset.id);
      el.classList.toggle("selected", on);
      el.setAttribute("aria-selected", on ? "true" : "false");
    });
    var info = $("selection-info");
    info.hidden = !selected.size;
    info.textContent = selected.size + " selected" + (cfg.canLabel ? " — press a class key to label them all, Esc to clear" : "");
  }

  function onClick(ev) {
    var el = ev.target.closest(".tile");
    if (!el || ev.target.closest("button")) return;
    var i = +el.dataset.index;
    if (ev.target.closest("a") && !ev.shiftKey && !ev.ctrlKey && !ev.metaKey) { saveOrder(); return; }
    ev.preventDefault();
    if (ev.shiftKey && anchor >= 0) {
      var a = Math.min(anchor, i), b = Math.max(anchor, i);
      for (var k = a; k <= b; k++) selected.add(items[k].id);
    } else if (ev.ctrlKey || ev.metaKey) {
      var id = items[i].id;
      if (selected.has(id)) selected.delete(id); else selected.add(id);
      anchor = i;
    } else {
      selected.clear();
      anchor = i;
    }
    setFocus(i, false);
    updateSelection();
    grid.focus({ preventScroll: true });
  }

  function onKey(ev) {
    var t = ev.target;
    if (t && (t.tagName === "INPUT" || t.tagName === "SELECT" || t.tagName === "TEXTAREA")) return;
    if (ev.ctrlKey || ev.metaKey || ev.altKey) return;
    var k = ev.key, cols = columns();
    var moves = { ArrowRight: 1, ArrowLeft: -1, ArrowDown: cols, ArrowUp: -cols, j: 1, k: -1 };
    if (k in moves) {
      ev.preventDefault();
      setFocus(Math.max(0, Math.min(items.length - 1, (focus < 0 ? 0 : focus + moves[k]))));
      if (ev.shiftKey) { selected.add(items[focus].id); updateSelection(); }
      return;
    }
    if (k === "Enter" && focus >= 0) { saveOrder(); window.location = "/images/" + items[focus].id + "/"; return; }
    if (k === "Escape") { selected.clear(); updateSelection(); return; }
    if (!cfg.canLabel) return;
    if (k === "x") { ev.preventDefault(); unsure(focus); return; }
    if (k === "u") { ev.preventDefault(); undoLast(); return; }
    var c = ev.shiftKey ? null : byKey[k.toLowerCase()];
    if (c) {
      ev.preventDefault();
      if (selected.size) labelSelection(c); else labelOne(focus, c);
    }
  }

  // Rubber band: drag on empty grid space to select every tile the rectangle touches.
  function rubberBand() {
    var band = null, x0 = 0, y0 = 0, base = null;
    grid.addEventListener("mousedown", function (ev) {
      if (ev.target !== grid || ev.button !== 0) return;
      ev.preventDefault();
      x0 = ev.pageX; y0 = ev.pageY;
      base = (ev.ctrlKey || ev.metaKey || ev.shiftKey) ? new Set(selected) : new Set();
      band = document.createElement("div");
      band.className = "rubber-band";
      document.body.appendChild(band);
      grid.focus({ preventScroll: true });
    });
    document.addEventListener("mousemove", function (ev) {
      if (!band) return;
      var x = Math.min(x0, ev.pageX), y = Math.min(y0, ev.pageY), w = Math.abs(ev.pageX - x0), h = Math.abs(ev.pageY - y0);
      band.style.left = x + "px"; band.style.top = y + "px"; band.style.width = w + "px"; band.style.height = h + "px";
      selected = new Set(base);
      grid.querySelectorAll(".tile").forEach(function (el) {
        var r = el.getBoundingClientRect(), l = r.left + window.scrollX, tp = r.top + window.scrollY;
        if (l < x + w && l + r.width > x && tp < y + h && tp + r.height > y) selected.add(+el.dataset.id);
      });
      updateSelection();
    });
    document.addEventListener("mouseup", function () { if (band) { band.remove(); band = null; } });
  }

  // ---------------------------------------------------------- wiring
  function restore() {
    var q = new URLSearchParams(window.location.search);
    if (q.get("ordering")) $("ordering").value = q.get("ordering");
    if (q.get("search")) $("search").value = q.get("search");
    ["predicted", "labelled", "labelled_by"].forEach(function (n) {
      var el = document.querySelector("input[name=" + n + "][value='" + (q.get(n) || "") + "']");
      if (el) el.checked = true;
    });
    if (q.get("prob_min")) $("prob-min").value = Math.round(100 * q.get("prob_min"));
    if (q.get("prob_max")) $("prob-max").value = Math.round(100 * q.get("prob_max"));
    $("disagreement").checked = q.get("disagreement") === "true";
    $("users-disagree").checked = q.get("users_disagree") === "true";
    if (q.get("mz_min")) $("mz-min").value = q.get("mz_min");
    if (q.get("mz_max")) $("mz-max").value = q.get("mz_max");
    probText();
  }

  function probText() {
    var lo = +$("prob-min").value, hi = +$("prob-max").value;
    if (lo > hi) { $("prob-min").value = hi; lo = hi; }
    $("prob-text").textContent = (lo / 100).toFixed(2) + " – " + (hi / 100).toFixed(2);
  }

  var timer = null;
  function later() { clearTimeout(timer); timer = setTimeout(reload, 300); }

  document.addEventListener("DOMContentLoaded", function () {
    grid = $("grid"); sentinel = $("sentinel");
    restore();
    $("filters").addEventListener("change", function (ev) {
      if (ev.target.type === "range") probText();
      reload();
    });
    ["search", "mz-min", "mz-max"].forEach(function (id) { $(id).addEventListener("input", later); });
    ["prob-min", "prob-max"].forEach(function (id) { $(id).addEventListener("input", probText); });
    $("reset-filters").addEventListener("click", function () {
      history.replaceState(null, "", window.location.pathname);
      $("filters").querySelectorAll("input[type=radio][value='']").forEach(function (r) { r.checked = true; });
      $("prob-min").value = 0; $("prob-max").value = 100;
      ["search", "mz-min", "mz-max"].forEach(function (id) { $(id).value = ""; });
      $("disagreement").checked = false; $("users-disagree").checked = false;
      $("ordering").value = "-probability";
      probText(); reload();
    });
    grid.addEventListener("click", onClick);
    grid.addEventListener("dblclick", function (ev) {
      var el = ev.target.closest(".tile");
      if (el && !ev.target.closest("button")) { saveOrder(); window.location = "/images/" + el.dataset.id + "/"; }
    });
    document.addEventListener("keydown", onKey);
    $("load-more").addEventListener("click", loadMore);
    $("select-all").addEventListener("click", selectAllMatching);
    var density = $("density");
    density.value = pref("density", 168);
    applyDensity(+density.value);
    density.addEventListener("input", function () { applyDensity(+density.value); setPref("density", +density.value); });
    var adv = $("auto-advance");
    // Label next moves on after each key by default (its own preference).
    var advPref = nextMode ? "autoAdvanceNext" : "autoAdvance";
    if (adv) {
      adv.checked = pref(advPref, nextMode);
      adv.addEventListener("change", function () { setPref(advPref, adv.checked); grid.focus({ preventScroll: true }); });
    }
    if (nextMode) {
      $("next-panel").hidden = false;
      $("filters").hidden = true;
      // Without the filter column the grid takes the whole width (it sat in the 240 px column).
      document.querySelector(".gallery-layout").classList.add("no-filters");
      $("select-all").hidden = true;
      $("enter-next").hidden = true;
      var st = new URLSearchParams(window.location.search).get("strategy");
      if (st && document.querySelector("#next-strategy option[value='" + st + "']")) $("next-strategy").value = st;
      $("next-strategy").addEventListener("change", function () { reload(); grid.focus({ preventScroll: true }); });
    }
    if ($("enter-next")) $("enter-next").href = "?mode=next";
    poll();
    rubberBand();
    if ("IntersectionObserver" in window) {
      new IntersectionObserver(function (entries) { if (entries[0].isIntersecting) loadMore(); },
                               { rootMargin: "400px" }).observe(sentinel);
    }
    reload();
    grid.focus({ preventScroll: true });
  });

  window.IonSieveGallery = { items: function () { return items; }, focus: function () { return focus; },
                             selected: function () { return Array.from(selected); },
                             nextMode: function () { return nextMode; }, poll: poll };
})();
