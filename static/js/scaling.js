/* Display scaling of the image page: applies what ionsieve_core/imaging/scaling.py computes.
   The server sends each channel's statistics (scaling.display_stats: range, hotspot clip,
   percentile table) and its equalisation table (scaling.equalization_table: the sorted
   distinct values); this file only looks pixels up in them and applies display_scale's
   formula (clip to [lo, hi], then linear / log / equalized to 0..1; NaN = not acquired stays
   NaN). tests/browser/test_image_viewer_browser.py checks that both give the same numbers. */
(function () {
  "use strict";

  // values: a Float32Array (or any array of numbers); returns a Float64Array in 0..1 or NaN.
  // stats: the server's statistics of these values (min, max, equalization), also where the
  // per-pixel ranks are kept between repaints. Without them (a page-less caller) the range and
  // the distinct values are read off the values themselves.
  function displayScale(values, lo, hi, mode, stats) {
    stats = stats || {};
    var n = values.length, out = new Float64Array(n), i, v;
    var r = range(values, stats);
    if (r === null) { for (i = 0; i < n; i++) out[i] = NaN; return out; }
    // Clipping is monotonic, so the clipped range is the clipped [min, max] (np.clip: hi wins).
    var min = clip(r[0], lo, hi), max = clip(r[1], lo, hi);
    if (mode === "linear") {
      var span = max - min;
      for (i = 0; i < n; i++) {
        v = values[i];
        out[i] = finite(v) ? (span > 0 ? (clip(v, lo, hi) - min) / span : 0) : NaN;
      }
    } else if (mode === "log") {
      var top = Math.log1p(Math.max(max - min, 0));
      for (i = 0; i < n; i++) {
        v = values[i];
        out[i] = finite(v) ? (top > 0 ? Math.log1p(Math.max(clip(v, lo, hi) - min, 0)) / top : 0) : NaN;
      }
    } else if (mode === "equalized") {
      equalize(values, lo, hi, stats, out);
    } else {
      throw new Error("unknown scaling mode " + mode);
    }
    return out;
  }

  function finite(v) { return v === v && v !== Infinity && v !== -Infinity; }
  function clip(v, lo, hi) { return Math.min(Math.max(v, lo), hi); }

  function range(values, stats) {
    if (typeof stats.min === "number" && typeof stats.max === "number") return [stats.min, stats.max];
    if (stats.min === null) return null;
    var min = Infinity, max = -Infinity;
    for (var i = 0; i < values.length; i++) {
      var v = values[i];
      if (!finite(v)) continue;
      if (v < min) min = v;
      if (v > max) max = v;
    }
    return min <= max ? [min, max] : null;
  }

  // Equalized: each value's rank among the distinct clipped values / (distinct - 1), as
  // np.unique(..., return_inverse=True). Clipping only merges the values at each end, so the
  // rank of every pixel among the distinct unclipped values (looked up once per image in the
  // server's table, kept in `stats`) gives it: a slider drag repaints in one pass.
  function equalize(values, lo, hi, stats, out) {
    var t = table(values, stats), rank = pixelRanks(values, stats, t), n = values.length, i;
    var m = t.distinct;
    if (lo >= hi) { for (i = 0; i < n; i++) out[i] = rank[i] === rank[i] ? 0 : NaN; return; }
    var a = countAtMost(t, lo), b = countBelow(t, hi);
    var head = a > 0 ? 1 : 0, distinct = head + (b - a) + (b < m ? 1 : 0);
    for (i = 0; i < n; i++) {
      var k = rank[i];
      if (k !== k) { out[i] = NaN; continue; }
      var at = k < a ? 0 : k >= b ? distinct - 1 : head + k - a;
      out[i] = distinct > 1 ? at / (distinct - 1) : 0;
    }
  }

  // The server's equalisation table: {distinct, values (base64 float64, or already decoded)}.
  function table(values, stats) {
    if (stats.eqTable) return stats.eqTable;
    var eq = stats.equalization, t;
    if (eq) t = { distinct: eq.distinct, values: typeof eq.values === "string" ? decode64(eq.values) : eq.values };
    else t = distinctValues(values);
    var len = t.values.length;
    // entry j sits at rank j * (distinct - 1) / (len - 1): j itself when every distinct value is there
    t.rankAt = function (j) { return len > 1 ? j * (t.distinct - 1) / (len - 1) : 0; };
    stats.eqTable = t;
    return t;
  }

  function decode64(b64) {
    var bin = atob(b64), bytes = new Uint8Array(bin.length);
    for (var i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
    return new Float64Array(bytes.buffer);
  }

  // For callers without the server's table only (the page always has it): the sorted distinct values.
  function distinctValues(values) {
    var sorted = Float64Array.from(values).filter(finite).sort(), m = 0;
    for (var i = 0; i < sorted.length; i++) if (m === 0 || sorted[i] !== sorted[m - 1]) sorted[m++] = sorted[i];
    return { distinct: m, values: sorted.subarray(0, m) };
  }

  // How many table entries are <= x (orEqual) or < x.
  function countUpTo(u, x, orEqual) {
    var a = 0, b = u.length;
    while (a < b) { var mid = (a + b) >> 1; if (u[mid] < x || (orEqual && u[mid] === x)) a = mid + 1; else b = mid; }
    return a;
  }

  // x's rank among the distinct values: exact for a value in the table, else interpolated.
  function rankOf(t, x) {
    var u = t.values, j = countUpTo(u, x, true) - 1;
    if (j < 0) return -0.5;
    if (u[j] === x || j === u.length - 1) return u[j] === x ? t.rankAt(j) : t.distinct - 0.5;
    var r0 = t.rankAt(j), r1 = t.rankAt(j + 1);
    return r0 + (x - u[j]) / (u[j + 1] - u[j]) * (r1 - r0);
  }

  // How many distinct values are <= lo, and < hi: counted when the table holds them all,
  // else read off the interpolated rank.
  function countAtMost(t, lo) {
    if (t.values.length === t.distinct) return countUpTo(t.values, lo, true);
    return Math.max(0, Math.min(t.distinct, Math.floor(rankOf(t, lo)) + 1));
  }
  function countBelow(t, hi) {
    if (t.values.length === t.distinct) return countUpTo(t.values, hi, false);
    return Math.max(0, Math.min(t.distinct, Math.ceil(rankOf(t, hi))));
  }

  function pixelRanks(values, stats, t) {
    if (stats.eqRanks && stats.eqRanks.length === values.length) return stats.eqRanks;
    var n = values.length, rank = new Float64Array(n);
    for (var i = 0; i < n; i++) rank[i] = finite(values[i]) ? rankOf(t, values[i]) : NaN;
    stats.eqRanks = rank;
    return rank;
  }

  // The value at a clip slider's percentile p (0..100 in steps of 0.1) from the server's table.
  function quantile(table, p) {
    if (!table.length) return NaN;
    var pos = p / 100 * (table.length - 1), i = Math.floor(pos), j = Math.min(i + 1, table.length - 1);
    return table[i] + (table[j] - table[i]) * (pos - i);
  }

  window.IonSieveScale = { displayScale: displayScale, quantile: quantile };
})();
