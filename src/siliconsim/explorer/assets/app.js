"use strict";
// siliconsim explorer: every change re-asks the server (POST /api/estimate) and redraws.
(function () {
  const $ = (id) => document.getElementById(id);
  const uploads = { model_config: null, chip_toml: null };
  let pending = 0;

  function fmt(v, digits) {
    if (v === null || v === undefined || !isFinite(v)) return "–";
    if (Math.abs(v) >= 1000) return Math.round(v).toLocaleString("en-US");
    return Number(v.toPrecision(digits || 3)).toString();
  }

  function query() {
    return {
      model: $("model").value, model_config: uploads.model_config,
      hardware: $("hardware").value, chip_toml: uploads.chip_toml,
      what_if: $("what-if").value.split("\n").map((s) => s.trim()).filter((s) => s),
      batch: $("batch").value, input_tokens: $("input-tokens").value, output_tokens: $("output-tokens").value,
      slo_ttft_ms: $("slo-ttft").value, slo_tpot_ms: $("slo-tpot").value,
    };
  }

  function showError(msg) {
    $("error").textContent = msg;
    $("error").hidden = !msg;
  }

  function row(name, value, cls) {
    const tr = document.createElement("tr");
    const a = document.createElement("td"), b = document.createElement("td");
    a.textContent = name; b.textContent = value; b.className = "n " + (cls || "");
    tr.append(a, b);
    return tr;
  }

  function render(ans) {
    const r = ans.record;
    $("title").textContent = r.model + " on " + r.hardware + (r.what_if.length ? " (what-if: " + r.what_if.join("; ") + ")" : "");
    const t = $("numbers");
    t.replaceChildren();
    if (!r.feasible) {
      t.append(row("not feasible", r.reason, "bad"));
    } else {
      const slo = ans.slo;
      t.append(row("plan", r.chips + "× " + r.parallel + " · " + r.weights));
      t.append(row("TTFT (ms)", fmt(r.ttft_s * 1e3), slo.ttft_ok ? "ok" : "bad"));
      t.append(row("TPOT (ms)", fmt(r.tpot_s * 1e3), slo.tpot_ok ? "ok" : "bad"));
      t.append(row("output tok/s per user", fmt(r.output_tok_s_per_user)));
      t.append(row("aggregate output tok/s", fmt(r.aggregate_output_tok_s)));
      t.append(row("power (kW)", fmt(r.power_w / 1e3)));
      t.append(row("cost ($ per million output tokens)", fmt(r.usd_per_million_tokens)));
      t.append(row("meets SLO", slo.ttft_ok && slo.tpot_ok ? "yes" : "no", slo.ttft_ok && slo.tpot_ok ? "ok" : "bad"));
    }
    $("breakdown-chart").innerHTML = ans.figures.breakdown || "";
    $("curve-chart").innerHTML = ans.figures.curve || "";
    $("result").hidden = false;
  }

  async function update() {
    const mine = ++pending;
    let ans;
    try {
      const resp = await fetch("/api/estimate", {
        method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(query()),
      });
      ans = await resp.json();
    } catch (e) {
      ans = { error: "the explorer server did not answer (is `siliconsim explore` still running?)" };
    }
    if (mine !== pending) return; // a newer request is on its way
    showError(ans.error || "");
    if (!ans.error) render(ans);
    document.body.dataset.state = ans.error ? "error" : "ready";
  }

  function readUpload(input, key, parse) {
    input.addEventListener("change", () => {
      const f = input.files[0];
      if (!f) { uploads[key] = null; update(); return; }
      f.text().then((text) => {
        try { uploads[key] = parse(text); showError(""); update(); }
        catch (e) { uploads[key] = null; showError(f.name + ": not valid JSON (" + e.message + ")"); }
      });
    });
  }

  async function init() {
    const opts = await (await fetch("/api/options")).json();
    for (const [id, list] of [["model", opts.models], ["hardware", opts.hardware]]) {
      for (const v of list) $(id).append(new Option(v, v));
    }
    const d = opts.defaults;
    $("model").value = d.model; $("hardware").value = d.hardware; $("batch").value = d.batch;
    $("input-tokens").value = d.input_tokens; $("output-tokens").value = d.output_tokens;
    $("slo-ttft").value = d.slo_ttft_ms; $("slo-tpot").value = d.slo_tpot_ms;
    readUpload($("model-file"), "model_config", JSON.parse);
    readUpload($("chip-file"), "chip_toml", (t) => t);
    for (const el of document.querySelectorAll("select, input[type=number], textarea")) {
      el.addEventListener("change", update);
    }
    $("query").addEventListener("submit", (e) => { e.preventDefault(); update(); });
    update();
  }

  init();
})();
