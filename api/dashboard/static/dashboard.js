// The dashboard's behaviour: charts from the JSON data blocks of a page, the live
// refresh of the usage page and of bill-run progress, confirmations of destructive
// forms. No inline script anywhere (the pages' CSP forbids it).
"use strict";

(function () {
  const PALETTE = ["#1f5fbf", "#c2410c", "#15803d", "#7e22ce", "#b91c1c", "#0e7490", "#a16207", "#4d7c0f"];
  const charts = {};
  window.meterline = { charts: charts, refreshes: 0 };

  function color(i, alpha) {
    const hex = PALETTE[i % PALETTE.length];
    if (!alpha) return hex;
    const n = parseInt(hex.slice(1), 16);
    return "rgba(" + (n >> 16) + "," + ((n >> 8) & 255) + "," + (n & 255) + "," + alpha + ")";
  }

  function readJson(id) {
    const el = document.getElementById(id);
    return el ? JSON.parse(el.textContent) : null;
  }

  function datasets(spec) {
    return spec.datasets.map(function (d, i) {
      const line = d.type === "line";
      return {
        label: d.label,
        type: d.type || "bar",
        data: d.data.map(Number),  // plotted as floats; the tables show the exact figures
        backgroundColor: line ? color(i) : color(i, 0.8),
        borderColor: color(i),
        borderWidth: line ? 2 : 0,
        pointRadius: line ? 2 : 0,
        tension: 0,  // straight segments: a curve would invent values between hours
        order: line ? 0 : 1,
      };
    });
  }

  function chartsAvailable(canvas) {
    if (typeof window.Chart !== "undefined") return true;
    const note = document.createElement("p");
    note.className = "alert notice";
    note.textContent = "Charts are not built on this server (run `make web`); the table has the figures.";
    canvas.replaceWith(note);
    return false;
  }

  function baseOptions(kind) {
    const stacked = kind === "stacked";
    return {
      responsive: true,
      maintainAspectRatio: false,
      animation: false,
      indexAxis: kind === "bar-horizontal" ? "y" : "x",
      interaction: { mode: "index", intersect: false },
      plugins: { legend: { position: "bottom" } },
      scales: { x: { stacked: stacked }, y: { stacked: stacked, beginAtZero: true } },
    };
  }

  function drawStatic() {
    document.querySelectorAll("canvas[data-chart]").forEach(function (canvas) {
      const spec = readJson(canvas.dataset.chart);
      if (!spec || !chartsAvailable(canvas)) return;
      charts[canvas.id] = new window.Chart(canvas, {
        type: "bar",
        data: { labels: spec.labels, datasets: datasets(spec) },
        options: baseOptions(canvas.dataset.kind),
      });
    });
  }

  // -- usage: a line per metric, refreshed from /dashboard/data/usage -----------------

  function usageSpec(data) {
    return {
      labels: data.labels || [],
      datasets: (data.series || []).map(function (s) {
        return { label: s.metric, type: "line", data: s.counts };
      }),
    };
  }

  function renderUsageTable(data) {
    const body = document.querySelector("#usage-table tbody");
    body.replaceChildren();
    const series = data.series || [];
    if (!series.length) {
      const tr = body.insertRow();
      tr.className = "empty";
      const td = tr.insertCell();
      td.colSpan = 3;
      td.textContent = "No events in this window.";
      return;
    }
    series.forEach(function (s) {
      const tr = body.insertRow();
      const th = document.createElement("th");
      th.scope = "row";
      th.textContent = s.metric;
      tr.appendChild(th);
      [s.total, s.lastHour].forEach(function (v) {
        const td = tr.insertCell();
        td.className = "num";
        td.textContent = Number(v).toLocaleString("en-US");
      });
    });
  }

  function showUsage(data) {
    const box = document.getElementById("usage");
    const unavailable = document.getElementById("usage-unavailable");
    const chartBox = box.querySelector(".chart-box");
    const table = document.getElementById("usage-table");
    document.getElementById("usage-refreshed").textContent = data.refreshedAt.slice(0, 16).replace("T", " ");
    unavailable.hidden = data.available;
    unavailable.textContent = data.available ? "" : data.message;
    chartBox.hidden = !data.available;
    table.hidden = !data.available;
    if (!data.available) return;
    renderUsageTable(data);
    const spec = usageSpec(data);
    const chart = charts["usage-chart"];
    if (chart) {
      chart.data.labels = spec.labels;
      chart.data.datasets = datasets(spec);
      chart.update();
    } else {
      const canvas = document.getElementById("usage-chart");
      if (!chartsAvailable(canvas)) return;
      charts["usage-chart"] = new window.Chart(canvas, {
        type: "line",
        data: { labels: spec.labels, datasets: datasets(spec) },
        options: baseOptions("line"),
      });
    }
  }

  function refreshing(el, apply) {
    const every = Number(el.dataset.refresh || 0);
    if (!every) return;
    window.setInterval(function () {
      fetch(el.dataset.source, { credentials: "same-origin", headers: { Accept: "application/json" } })
        .then(function (r) {
          if (r.status === 401) { window.location.assign("/dashboard/sign-in"); return null; }
          return r.ok ? r.json() : null;
        })
        .then(function (data) {
          if (data) { apply(data); window.meterline.refreshes += 1; }
        })
        .catch(function () { /* the next tick tries again */ });
    }, every);
  }

  function usagePage() {
    const box = document.getElementById("usage");
    if (!box) return;
    showUsage(readJson("usage-data"));
    refreshing(box, showUsage);
  }

  // -- bill runs: progress of pending and running runs -------------------------------

  function billRunsPage() {
    const table = document.getElementById("bill-runs");
    if (!table) return;
    const busy = function () {
      return Array.from(table.querySelectorAll("[data-field=status]")).some(function (el) {
        return el.textContent === "pending" || el.textContent === "running";
      });
    };
    if (!busy()) return;
    refreshing(table, function (data) {
      data.data.forEach(function (run) {
        const row = table.querySelector('tr[data-run="' + CSS.escape(run.id) + '"]');
        if (!row) return;
        const status = row.querySelector("[data-field=status]");
        status.textContent = run.status;
        status.className = "badge run-" + run.status;
        row.querySelector("[data-field=progress]").textContent = run.processed + " / " + run.total;
        row.querySelector("[data-field=invoicesCreated]").textContent = run.invoicesCreated;
        row.querySelector("[data-field=failed]").textContent = run.failed;
        const bar = row.querySelector("progress");
        bar.max = run.total || 1;
        bar.value = run.total ? run.processed : (run.status === "completed" ? 1 : 0);
      });
    });
  }

  function confirmations() {
    document.querySelectorAll("form[data-confirm]").forEach(function (form) {
      form.addEventListener("submit", function (event) {
        if (!window.confirm(form.dataset.confirm)) event.preventDefault();
      });
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    drawStatic();
    usagePage();
    billRunsPage();
    confirmations();
  });
})();
