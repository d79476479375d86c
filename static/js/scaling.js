/* Display scaling of the image page, the browser's copy of ionsieve_core/imaging/scaling.py's
   display_scale (clip to [lo, hi], then scale to 0..1; NaN = not acquired stays NaN).
   The percentiles behind the clips come from the server (scaling.display_stats), so the only
   logic here is scale() itself; tests/browser/test_image_viewer_browser.py checks that both
   give the same numbers. */
(function () {
  "use strict";

  // values: a Float32Array (or any array of numbers); returns a Float64Array in 0..1 or NaN.
  // memo: an object kept with the values (their sorted distinct values and ranks, for equalized).
  function displayScale(values, lo, hi, mode, memo) {
    var n = values.length, out = new Float64Array(n), i, v, count = 0;
    var min = Infinity, max = -Infinity;
    for (i = 0; i < n; i++) {
      v = values[i];
      if (v !== v || v === Infinity || v === -Infinity) { out[i] = NaN; continue; }
      v = Math.min(Math.max(v, lo), hi); // as np.clip: hi wins when lo > hi
      out[i] = v; count++;
      if (v < min) min = v;
      if (v > max) max = v;
    }
    if (!count) return out;
    if (mode === "linear") {
      var span = max - min;
      for (i = 0; i < n; i++) if (out[i] === out[i]) out[i] = span > 0 ? (out[i] - min) / span : 0;
    } else if (mode === "log") {
      var top = Math.log1p(Math.max(max - min, 0));
      for (i = 0; i < n; i++) if (out[i] === out[i]) out[i] = top > 0 ? Math.log1p(Math.max(out[i] - min, 0)) / top : 0;
    } else if (mode === "equalized") {
      // rank among the distinct clipped values, as np.unique(..., return_inverse=True) / (distinct - 1).
      // Clipping only merges the values at each end, so each pixel's rank among the distinct
      // unclipped values (sorted once per image, kept in `memo`) gives it: a slider drag repaints
      // in one pass instead of sorting millions of values again.
      var t = ranks(values, memo || {}), u = t.uniq, r = t.rank;
      if (lo >= hi) { for (i = 0; i < n; i++) if (out[i] === out[i]) out[i] = 0; return out; }
      var a = firstAbove(u, lo, true), b = firstAbove(u, hi, false); // #u <= lo, #u < hi
      var head = a > 0 ? 1 : 0, distinct = head + (b - a) + (b < u.length ? 1 : 0);
      for (i = 0; i < n; i++) {
        if (out[i] !== out[i]) continue;
        var k = r[i], rank = k < a ? 0 : k >= b ? distinct - 1 : head + k - a;
        out[i] = distinct > 1 ? rank / (distinct - 1) : 0;
      }
    } else {
      throw new Error("unknown scaling mode " + mode);
    }
    return out;
  }

  function ranks(values, memo) {
    if (memo.rank) return memo;
    var n = values.length, sorted = new Float64Array(n), k = 0, i;
    for (i = 0; i < n; i++) if (isFinite(values[i])) sorted[k++] = values[i];
    sorted = sorted.subarray(0, k).sort();
    var m = 0;
    for (i = 0; i < k; i++) if (i === 0 || sorted[i] !== sorted[m - 1]) sorted[m++] = sorted[i];
    var uniq = sorted.subarray(0, m), rank = new Int32Array(n);
    for (i = 0; i < n; i++) {
      if (!isFinite(values[i])) { rank[i] = -1; continue; }
      var a = 0, b = m - 1, x = values[i];
      while (a < b) { var mid = (a + b) >> 1; if (uniq[mid] < x) a = mid + 1; else b = mid; }
      rank[i] = a;
    }
    memo.uniq = uniq; memo.rank = rank;
    return memo;
  }

  // How many of the sorted values u are <= x (orEqual) or < x.
  function firstAbove(u, x, orEqual) {
    var a = 0, b = u.length;
    while (a < b) { var mid = (a + b) >> 1; if (u[mid] < x || (orEqual && u[mid] === x)) a = mid + 1; else b = mid; }
    return a;
  }

  // The value at a clip slider's percentile p (0..100 in steps of 0.1) from the server's table.
  function quantile(table, p) {
    if (!table.length) return NaN;
    var pos = p / 100 * (table.length - 1), i = Math.floor(pos), j = Math.min(i + 1, table.length - 1);
    return table[i] + (table[j] - table[i]) * (pos - i);
  }

  window.IonSieveScale = { displayScale: displayScale, quantile: quantile };
})();
