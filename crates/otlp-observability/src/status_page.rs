//! The admin server's status page (`/`): one self-contained HTML document
//! (inline style and script, no external assets). The server renders the
//! current [`Status`] into it, so it reads without JavaScript; the script
//! then refreshes it from `/status.json` every two seconds and adds the
//! rates between refreshes.

use std::fmt::Write;

use crate::Status;

/// Escapes text for HTML element content and attribute values.
pub(crate) fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// `1234567` -> `1234567`, `0.5` -> `0.5`: whole numbers without a fraction.
fn num(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{v:.0}")
    } else {
        format!("{v:.2}")
    }
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:1.5em;color:#222}\
table{border-collapse:collapse;margin:.5em 0 1.5em}td,th{border:1px solid #ccc;padding:.25em .6em;text-align:right}\
th:first-child,td:first-child{text-align:left}.up{color:#080}.down{color:#c00}.unknown{color:#888}\
.healthy{color:#080}.degraded{color:#b70}.unhealthy{color:#c00}small{color:#666}";

const SCRIPT: &str = r##"
const FIELDS = ["accepted","sent","dropped","refused","failed","retries","throttles"];
let previous = null;
function esc(s){return String(s).replace(/[&<>"']/g,c=>({"&":"&amp;","<":"&lt;",">":"&gt;","\"":"&quot;","'":"&#39;"}[c]));}
function num(v){return Number.isInteger(v)?String(v):v.toFixed(2);}
function show(s){
  const dt = previous ? (s.unix_ms - previous.unix_ms) / 1000 : 0;
  let rows = "";
  for (const [name, sig] of Object.entries(s.signals)) {
    rows += `<tr data-signal="${esc(name)}"><td>${esc(name)}</td>`;
    for (const f of FIELDS) rows += `<td data-field="${f}">${num(sig[f])}</td>`;
    const rate = (f) => dt > 0 ? num(Math.max(0,(sig[f]-previous.signals[name][f])/dt)) : "-";
    rows += `<td data-field="sent_per_s">${rate("sent")}</td><td data-field="dropped_per_s">${rate("dropped")}</td>`;
    rows += `<td data-field="oldest_item_age_seconds">${num(sig.oldest_item_age_seconds)}</td>`;
    rows += `<td data-field="last_error">${esc(sig.last_error||"")}</td></tr>`;
  }
  document.querySelector("#signals tbody").innerHTML = rows;
  const up = document.getElementById("upstream");
  up.textContent = s.upstream; up.className = s.upstream;
  document.getElementById("upstream-detail").textContent = s.upstream_detail;
  document.getElementById("queue").textContent =
    `${num(s.queue.items)} items, ${num(s.queue.bytes)} bytes (${(s.queue.fill_ratio*100).toFixed(1)}% full)`;
  document.getElementById("concurrency").textContent = `${num(s.in_flight)} in flight, limit ${num(s.concurrency_limit)}`;
  document.getElementById("memory").textContent = `${num(s.memory_bytes)} of ${num(s.memory_limit_bytes)} bytes`;
  document.querySelector("#health tbody").innerHTML = s.health.checks.map(c =>
    `<tr data-check="${esc(c.name)}"><td>${esc(c.name)}</td><td class="${esc(c.status)}">${esc(c.status)}</td><td>${esc(c.message)}</td></tr>`).join("");
  document.querySelector("#losses tbody").innerHTML = s.losses.slice(-20).reverse().map(l =>
    `<tr><td>${new Date(l.unix_ms).toISOString()}</td><td>${esc(l.signal)}</td><td>${esc(l.reason)}</td><td>${l.items}</td><td>${esc(l.cause)}</td></tr>`).join("");
  document.getElementById("updated").textContent = new Date(s.unix_ms).toISOString();
  document.body.dataset.refreshed = String(Number(document.body.dataset.refreshed || 0) + 1);
  previous = s;
}
async function refresh(){
  try {
    const r = await fetch("/status.json", {cache: "no-store"});
    if (r.ok) { show(await r.json()); document.getElementById("error").textContent = ""; }
  } catch (e) {
    document.getElementById("error").textContent = "cannot reach the agent: " + e;
  }
}
previous = JSON.parse(document.getElementById("initial").textContent);
setInterval(refresh, 2000);
"##;

/// The page for `status`.
pub(crate) fn render(status: &Status) -> String {
    let mut h = String::with_capacity(8 * 1024);
    let _ = write!(
        h,
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width\">\
         <title>otlp-client status</title><style>{STYLE}</style></head><body>\
         <h1>otlp-client</h1>\
         <p>upstream: <b id=\"upstream\" class=\"{up}\">{up}</b> <small id=\"upstream-detail\">{detail}</small></p>\
         <p id=\"error\"></p>\
         <h2>Signals</h2><table id=\"signals\"><thead><tr><th>signal</th><th>accepted</th><th>sent</th>\
         <th>dropped</th><th>refused</th><th>failed</th><th>retries</th><th>throttles</th>\
         <th>sent/s</th><th>dropped/s</th><th>oldest item (s)</th><th>last error</th></tr></thead><tbody>",
        up = escape(status.upstream),
        detail = escape(&status.upstream_detail),
    );
    for (name, s) in &status.signals {
        let _ = write!(
            h,
            "<tr data-signal=\"{}\"><td>{}</td>",
            escape(name),
            escape(name)
        );
        for (field, v) in [
            ("accepted", s.accepted),
            ("sent", s.sent),
            ("dropped", s.dropped),
            ("refused", s.refused),
            ("failed", s.failed),
            ("retries", s.retries),
            ("throttles", s.throttles),
        ] {
            let _ = write!(h, "<td data-field=\"{field}\">{}</td>", num(v));
        }
        let _ = write!(
            h,
            "<td data-field=\"sent_per_s\">-</td><td data-field=\"dropped_per_s\">-</td>\
             <td data-field=\"oldest_item_age_seconds\">{}</td><td data-field=\"last_error\">{}</td></tr>",
            num(s.oldest_item_age_seconds),
            escape(s.last_error.as_deref().unwrap_or("")),
        );
    }
    let _ = write!(
        h,
        "</tbody></table><h2>Pipeline</h2><table><tbody>\
         <tr><td>queue</td><td id=\"queue\">{} items, {} bytes ({:.1}% full)</td></tr>\
         <tr><td>concurrency</td><td id=\"concurrency\">{} in flight, limit {}</td></tr>\
         <tr><td>memory</td><td id=\"memory\">{} of {} bytes</td></tr></tbody></table>\
         <h2>Health</h2><table id=\"health\"><thead><tr><th>check</th><th>status</th><th>message</th></tr></thead><tbody>",
        num(status.queue.items),
        num(status.queue.bytes),
        status.queue.fill_ratio * 100.0,
        num(status.in_flight),
        num(status.concurrency_limit),
        num(status.memory_bytes),
        num(status.memory_limit_bytes),
    );
    for c in &status.health.checks {
        let state = match c.result.status {
            crate::HealthStatus::Healthy => "healthy",
            crate::HealthStatus::Degraded => "degraded",
            crate::HealthStatus::Unhealthy => "unhealthy",
        };
        let _ = write!(
            h,
            "<tr data-check=\"{n}\"><td>{n}</td><td class=\"{state}\">{state}</td><td>{}</td></tr>",
            escape(&c.result.message),
            n = escape(&c.name),
        );
    }
    h.push_str(
        "</tbody></table><h2>Last losses</h2><table id=\"losses\"><thead><tr><th>when (ms since epoch)</th>\
         <th>signal</th><th>reason</th><th>items</th><th>cause</th></tr></thead><tbody>",
    );
    for l in status.losses.iter().rev().take(20) {
        let _ = write!(
            h,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            l.unix_ms,
            escape(l.signal),
            escape(l.reason),
            l.items,
            escape(&l.cause)
        );
    }
    // The initial snapshot for the first rate; `</` cannot end the script
    // early because JSON escapes are applied to `<`.
    let initial = status.to_json().replace('<', "\\u003c");
    let _ = write!(
        h,
        "</tbody></table><p><small>updated <span id=\"updated\">{}</span> ms since epoch; refreshes every 2 s. \
         <a href=\"/health\">/health</a> <a href=\"/health/live\">/health/live</a> <a href=\"/health/ready\">/health/ready</a> \
         <a href=\"/metrics\">/metrics</a> <a href=\"/status.json\">/status.json</a> <a href=\"/debug/logs\">/debug/logs</a> \
         <a href=\"/debug/losses\">/debug/losses</a> <a href=\"/debug/profile\">/debug/profile</a></small></p>\
         <script type=\"application/json\" id=\"initial\">{initial}</script><script>{SCRIPT}</script></body></html>",
        status.unix_ms
    );
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_escaped() {
        assert_eq!(
            escape("<a href=\"x\">&'"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
    }
}
