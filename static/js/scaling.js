/* Display scaling of the image page, the browser's copy of webapp/msi/scaling.py's
   display_scale (clip to [lo, hi], then scale to 0..1; NaN = not acquired stays NaN).
   The percentiles behind the clips come from the server (scaling.display_stats), so the only
   logic here is scale() itself; tests/browser/test_image_viewer_browser.py checks that both
   give the same numbers. */
(function () {
  "use strict";

  // values: a Float32Array (or any array of numbers); returns a Float64Array in 0..1 or NaN.
  function displayScale(values, lo, hi, mode) {
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
      // rank among the distinct values, as np.unique(..., return_inverse=True) / (distinct - 1)
      var sorted = new Float64Array(count), k = 0;
      for (i = 0; i < n; i++) if (out[i] === out[i]) sorted[k++] = out[i];
      sorted.sort();
      var m = 0;
      for (i = 0; i < count; i++) if (i === 0 || sorted[i] !== sorted[m - 1]) sorted[m++] = sorted[i];
      for (i = 0; i < n; i++) {
        if (out[i] !== out[i]) continue;
        var a = 0, b = m - 1, x = out[i];
        while (a < b) { var mid = (a + b) >> 1; if (sorted[mid] < x) a = mid + 1; else b = mid; }
        out[i] = m > 1 ? a / (m - 1) : 0;
      }
    } else {
      throw new Error("unknown scaling mode " + mode);
    }
    return out;
  }

  // The value at a clip slider's percentile p (0..100 in steps of 0.1) from the server's table.
  function quantile(table, p) {
    if (!table.length) return NaN;
    var pos = p / 100 * (table.length - 1), i = Math.floor(pos), j = Math.min(i + 1, table.length - 1);
    return table[i] + (table[j] - table[i]) * (pos - i);
  }

  window.IonSieveScale = { displayScale: displayScale, quantile: quantile };
})();
