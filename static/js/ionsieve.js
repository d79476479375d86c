/* Small helpers shared by the pages: CSRF, JSON fetch with readable errors, toasts, figures. */
(function () {
  "use strict";

  function cookie(name) {
    var m = document.cookie.match("(^|;)\\s*" + name + "=([^;]*)");
    return m ? decodeURIComponent(m[2]) : "";
  }

  function csrf() {
    var input = document.querySelector("input[name=csrfmiddlewaretoken]");
    return (input && input.value) || cookie("csrftoken");
  }

  // Turn a DRF error body into one sentence a biologist can read.
  function errorText(body, status) {
    if (!body) return "The server answered " + status + ".";
    if (typeof body === "string") return body;
    if (body.detail) return body.detail;
    var parts = [];
    Object.keys(body).forEach(function (k) {
      var v = body[k];
      parts.push((k === "non_field_errors" ? "" : k + ": ") + (Array.isArray(v) ? v.join(" ") : v));
    });
    return parts.join(" ") || "The server answered " + status + ".";
  }

  function api(url, options) {
    options = options || {};
    var init = { method: options.method || "GET", credentials: "same-origin",
                 headers: { "Accept": "application/json", "X-CSRFToken": csrf(),
                            "X-IonSieve-Source": "page" } };  // label history tells pages from API calls
    if (options.body !== undefined) {
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(options.body);
    }
    return fetch(url, init).then(function (r) {
      return r.text().then(function (text) {
        var body = null;
        try { body = text ? JSON.parse(text) : null; } catch (e) { body = null; }
        if (!r.ok) {
          var err = new Error(errorText(body, r.status));
          err.status = r.status;
          throw err;
        }
        return body;
      });
    }, function () { throw new Error("Could not reach the server: check your connection."); });
  }

  function toast(message, kind, action) {
    var box = document.getElementById("toasts");
    if (!box) { box = document.createElement("div"); box.id = "toasts"; box.className = "toasts"; document.body.appendChild(box); }
    var t = document.createElement("div");
    t.className = "toast " + (kind || "info");
    t.setAttribute("role", kind === "error" ? "alert" : "status");
    t.textContent = message;
    if (action) {
      var b = document.createElement("button");
      b.textContent = action.label;
      b.addEventListener("click", function () { t.remove(); action.run(); });
      t.appendChild(b);
    }
    var close = document.createElement("button");
    close.className = "link"; close.textContent = "×"; close.title = "Close";
    close.addEventListener("click", function () { t.remove(); });
    t.appendChild(close);
    box.appendChild(t);
    if (kind !== "error") setTimeout(function () { t.remove(); }, 4000);
    return t;
  }

  function config(id) {
    var el = document.getElementById(id || "page-config");
    return el ? JSON.parse(el.textContent) : {};
  }

  function plot(el, fig) {
    window.Plotly.newPlot(el, fig.data, fig.layout, { responsive: true, displaylogo: false });
  }

  // A dotted line at one m/z on a (dataset's, shared and cached) spectrum: what
  // figures.with_marker draws on the server.
  function mark(fig, mz) {
    fig.layout.shapes = [{ type: "line", x0: mz, x1: mz, xref: "x", y0: 0, y1: 1, yref: "y domain",
                           line: { color: "#e03131", width: 1.5, dash: "dot" } }];
    fig.layout.annotations = [{ text: "m/z " + mz.toFixed(4), x: mz, xref: "x", y: 1, yref: "y domain",
                                showarrow: false, xanchor: "left", yanchor: "top" }];
  }

  // Render every <div data-figure="json-script-id"> (figure embedded in the page) and every
  // <div data-figure-url="..."> (figure fetched as JSON after the page loads, cached by the
  // browser: the server no longer builds figures inside page requests). Each fetched figure
  // fires "ionsieve:figure" on its element once drawn.
  function renderFigures(root) {
    if (!window.Plotly) return;
    (root || document).querySelectorAll("[data-figure]").forEach(function (el) {
      var src = document.getElementById(el.getAttribute("data-figure"));
      if (!src) return;
      plot(el, JSON.parse(src.textContent));
    });
    // [data-own]: the page's script fetches and draws it itself (the image page's pixels).
    (root || document).querySelectorAll("[data-figure-url]:not([data-own])").forEach(function (el) {
      el.setAttribute("aria-busy", "true");
      fetch(el.getAttribute("data-figure-url"), { credentials: "same-origin", headers: { "Accept": "application/json" } })
        .then(function (r) {
          if (r.status === 404) return null;
          if (!r.ok) throw new Error("The server answered " + r.status + ".");
          return r.json();
        })
        .then(function (fig) {
          el.removeAttribute("aria-busy");
          if (!fig) {
            el.className = "empty";
            el.textContent = el.getAttribute("data-empty") || "Not available.";
            return;
          }
          var mz = parseFloat(el.getAttribute("data-marker-mz"));
          if (isFinite(mz)) mark(fig, mz);
          plot(el, fig);
          el.dispatchEvent(new CustomEvent("ionsieve:figure", { bubbles: true }));
        })
        .catch(function (e) {
          el.removeAttribute("aria-busy");
          el.className = "empty";
          el.textContent = "Could not load this figure: " + e.message;
        });
    });
  }

  window.IonSieve = { csrf: csrf, api: api, toast: toast, config: config, renderFigures: renderFigures };
  document.addEventListener("DOMContentLoaded", function () { renderFigures(); });
})();
