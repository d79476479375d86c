/* Resumable uploads in the browser: tus 1.0 through tus-js-client (static/vendor/tus-js-client).
   Each part carries its SHA-1 (tus checksum extension; the server keeps a part only if it
   matches). tus-js-client computes no checksum itself, so onBeforeRequest reads the part and
   hashes it with crypto.subtle; browsers offer crypto.subtle only on secure pages (HTTPS or
   localhost), so a server reached over plain HTTP gets the part's CRC-32 instead, still checked.
   The whole file's CRC-32, kept part by part, goes with the request that uses the upload, so
   the server checks the assembled file too.
   A dropped network is retried and waits for the network to come back; after a reload, choosing
   the same files continues where the server stopped. */
(function () {
  "use strict";
  // Bytes per request: a cut costs at most this much resent (tests set a small one).
  var PART = window.IONSIEVE_UPLOAD_PART || 32 * 1024 * 1024;
  var RETRY = [0, 1000, 3000, 5000, 10000, 20000, 30000, 60000, 60000, 60000, 60000, 60000, 60000];
  var TABLE = (function () {
    var t = new Uint32Array(256);
    for (var n = 0; n < 256; n++) {
      var c = n;
      for (var k = 0; k < 8; k++) c = c & 1 ? 0xEDB88320 ^ (c >>> 1) : c >>> 1;
      t[n] = c >>> 0;
    }
    return t;
  })();

  // zlib's crc32(data, start): continues a running CRC, so parts chain into the whole file's.
  function crc32(bytes, start) {
    var c = (start ^ 0xFFFFFFFF) >>> 0;
    for (var i = 0, n = bytes.length; i < n; i++) c = TABLE[(c ^ bytes[i]) & 0xFF] ^ (c >>> 8);
    return (c ^ 0xFFFFFFFF) >>> 0;
  }

  function hex(crc) { return ("00000000" + crc.toString(16)).slice(-8); }

  function b64crc(crc) {
    return btoa(String.fromCharCode((crc >>> 24) & 255, (crc >>> 16) & 255, (crc >>> 8) & 255, crc & 255));
  }

  function b64bytes(bytes) { return btoa(String.fromCharCode.apply(null, bytes)); }

  // The Upload-Checksum header of one part: SHA-1 where the page may use crypto.subtle.
  function partChecksum(bytes) {
    if (window.isSecureContext && window.crypto && window.crypto.subtle) {
      return window.crypto.subtle.digest("SHA-1", bytes).then(function (d) { return "sha1 " + b64bytes(new Uint8Array(d)); });
    }
    return Promise.resolve("crc32 " + b64crc(crc32(bytes, 0)));
  }

  function read(file, start, end) {
    return file.slice(start, end).arrayBuffer().then(function (b) { return new Uint8Array(b); });
  }

  // CRC-32 of the file's first `end` bytes, read locally (only after a reload: otherwise known).
  function prefixCrc(file, end) {
    var step = 16 * 1024 * 1024, crc = 0, pos = 0;
    function next() {
      if (pos >= end) return Promise.resolve(crc);
      var stop = Math.min(pos + step, end);
      return read(file, pos, stop).then(function (b) { crc = crc32(b, crc); pos = stop; return next(); });
    }
    return next();
  }

  function bytesText(n) {
    if (n >= 1e9) return (n / 1e9).toFixed(2) + " GB";
    if (n >= 1e6) return (n / 1e6).toFixed(1) + " MB";
    return Math.round(n / 1e3) + " kB";
  }

  function timeText(s) {
    if (!isFinite(s)) return "";
    if (s < 60) return "about " + Math.max(1, Math.round(s)) + " s left";
    if (s < 3600) return "about " + Math.round(s / 60) + " min left";
    return "about " + (s / 3600).toFixed(1) + " h left";
  }

  function errorDetail(err) {
    var res = err && err.originalResponse;
    if (res) {
      try { var body = JSON.parse(res.getBody()); if (body && body.detail) return body.detail; } catch (e) { /* not JSON */ }
      return "the server answered " + res.getStatus() + ".";
    }
    return navigator.onLine === false ? "the network is down." : "the connection to the server was lost.";
  }

  function fingerprintPrefix(opts) { return "ionsieve-" + opts.user + "-" + opts.slug + "-"; }

  // Names of this user's unfinished uploads for this project (tus-js-client keeps them in localStorage).
  function unfinished(opts) {
    var names = [], prefix = "tus::" + fingerprintPrefix(opts);
    try {
      for (var i = 0; i < localStorage.length; i++) {
        var key = localStorage.key(i);
        if (key && key.indexOf(prefix) === 0) {
          var v = JSON.parse(localStorage.getItem(key));
          if (v && v.metadata && v.metadata.filename) names.push(v.metadata.filename);
        }
      }
    } catch (e) { /* storage disabled: nothing to offer */ }
    return names;
  }

  function sendOne(file, opts, report) {
    return new Promise(function (resolve, reject) {
      var crcAt = {}, pending = {}, upload;
      function storeKey() { return "ionsieve-crc::" + upload.url; }
      function runningCrc(offset) {
        if (crcAt[offset] !== undefined) return Promise.resolve(crcAt[offset]);
        try {
          var saved = JSON.parse(localStorage.getItem(storeKey()) || "null");
          if (saved && saved.offset === offset) return Promise.resolve(saved.crc);
        } catch (e) { /* fall through: read it */ }
        return prefixCrc(file, offset);
      }
      upload = new tus.Upload(file, {
        endpoint: "/api/uploads/",
        chunkSize: PART,
        retryDelays: RETRY,
        metadata: { filename: file.name, project: opts.slug },
        headers: { "X-CSRFToken": opts.csrf },
        removeFingerprintOnSuccess: true,
        // Per user and project: another user of this browser never tries to resume this upload.
        fingerprint: function (f) {
          return Promise.resolve(fingerprintPrefix(opts) + [f.name, f.size, f.lastModified].join("-"));
        },
        onBeforeRequest: function (req) {
          if (req.getMethod() !== "PATCH") return undefined;
          var offset = parseInt(req.getHeader("Upload-Offset"), 10);
          var end = Math.min(offset + PART, file.size);
          return runningCrc(offset).then(function (before) {
            return read(file, offset, end).then(function (bytes) {
              pending[end] = crc32(bytes, before);
              return partChecksum(bytes).then(function (header) { req.setHeader("Upload-Checksum", header); });
            });
          });
        },
        onAfterResponse: function (req, res) {
          if (req.getMethod() !== "PATCH" || res.getStatus() !== 204) return;
          var off = parseInt(res.getHeader("Upload-Offset"), 10);
          if (pending[off] === undefined) return;
          crcAt = {}; crcAt[off] = pending[off]; pending = {};
          try { localStorage.setItem(storeKey(), JSON.stringify({ offset: off, crc: crcAt[off] })); } catch (e) { /* full */ }
        },
        onProgress: function (sent) { report(file, sent); },
        onSuccess: function () {
          var key = storeKey();
          runningCrc(file.size).then(function (crc) {
            try { localStorage.removeItem(key); } catch (e) { /* ignore */ }
            resolve({ id: upload.url.replace(/\/$/, "").split("/").pop(), crc32: hex(crc), name: file.name });
          });
        },
        onError: function (err) {
          if (navigator.onLine === false) {  // wait for the network, then resume where the server stopped
            report(file, null, "The network is down: the upload continues when it is back.");
            window.addEventListener("online", function () { upload.start(); }, { once: true });
            return;
          }
          reject(new Error("Upload of '" + file.name + "' stopped: " + errorDetail(err)));
        },
      });
      upload.findPreviousUploads().then(function (previous) {
        if (previous.length) {
          upload.resumeFromPreviousUpload(previous[0]);
          report(file, 0, "Resuming '" + file.name + "' where it stopped…");
        }
        upload.start();
      });
    });
  }

  /* Send `files` one after another; onProgress(text, percent). Resolves to [{id, crc32, name}]. */
  function send(files, opts) {
    var total = files.reduce(function (s, f) { return s + f.size; }, 0);
    var before = 0, samples = [], results = [];
    function report(file, sent, note) {
      if (note) { opts.onProgress(note, null); return; }
      var done = before + sent, now = performance.now() / 1000;
      samples.push([now, done]);
      while (samples.length > 2 && now - samples[0][0] > 10) samples.shift();  // rate over the last ~10 s
      var dt = now - samples[0][0], rate = dt > 0.5 ? (done - samples[0][1]) / dt : 0;
      var text = "Uploading " + file.name + ": " + bytesText(done) + " of " + bytesText(total);
      if (rate > 0) text += " · " + bytesText(rate) + "/s · " + timeText((total - done) / rate);
      opts.onProgress(text, total ? Math.floor(100 * done / total) : 100);
    }
    var chain = Promise.resolve();
    files.forEach(function (f) {
      chain = chain.then(function () {
        samples = [];
        return sendOne(f, opts, report).then(function (r) { results.push(r); before += f.size; });
      });
    });
    return chain.then(function () { return results; });
  }

  window.IonSieveUpload = { send: send, unfinished: unfinished, crc32: crc32, hex: hex };
})();
