"""The report page's Jinja2 template (kept in Python so the package needs no data files)."""

TEMPLATE = """\
<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{ r.image }} {{ r.version or "" }}: {{ r.status }} (build report)</title>
<style>
:root { --ok: #1a7f37; --bad: #cf222e; --warn: #9a6700; --muted: #656d76; --line: #d0d7de; --bg: #f6f8fa; }
* { box-sizing: border-box; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; margin: 0; color: #1f2328; }
main { max-width: 1200px; margin: 0 auto; padding: 0 20px 40px; }
header { padding: 18px 20px; border-bottom: 4px solid var(--muted); background: var(--bg); }
header.ok { border-color: var(--ok); } header.bad { border-color: var(--bad); }
h1 { margin: 0 0 6px; font-size: 24px; }
h2 { margin: 28px 0 8px; font-size: 18px; border-bottom: 1px solid var(--line); }
h3 { font-size: 15px; margin: 16px 0 6px; }
.badge { display: inline-block; padding: 2px 10px; border-radius: 12px; color: #fff; background: var(--muted);
         font-weight: 600; text-transform: uppercase; font-size: 12px; }
.ok .badge, .badge.ok { background: var(--ok); } .bad .badge, .badge.bad { background: var(--bad); }
.meta { color: var(--muted); } .meta span { margin-right: 16px; }
nav { margin: 10px 0; } nav a { margin-right: 14px; }
table { border-collapse: collapse; width: 100%; margin: 6px 0; }
th, td { text-align: left; padding: 4px 8px; border-bottom: 1px solid var(--line); vertical-align: top; }
th { background: var(--bg); font-weight: 600; }
td.num { text-align: right; white-space: nowrap; }
td.name { min-width: 20em; } td.phase { white-space: nowrap; }
code, .mono { font: 12px/1.4 ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; white-space: pre-wrap;
              word-break: break-word; }
.alert { border: 2px solid var(--bad); background: #ffebe9; padding: 10px 14px; margin: 16px 0; border-radius: 6px; }
.alert h2 { margin-top: 0; border: 0; color: var(--bad); }
tr.failed td, tr.error td, tr.phase-failed td, tr.phase-interrupted td { background: #ffebe9; }
tr.warning td { background: #fff8c5; } tr.skipped td { color: var(--muted); }
.outcome { font-weight: 600; } .failed .outcome, .error .outcome { color: var(--bad); }
.passed .outcome { color: var(--ok); } .warning .outcome { color: var(--warn); }
.bar { position: relative; height: 14px; background: var(--bg); min-width: 220px; }
.bar span { position: absolute; top: 0; bottom: 0; background: #54aeff; min-width: 2px; }
.phase-failed .bar span, .phase-interrupted .bar span { background: var(--bad); }
.phase-cached .bar span { background: #8c959f; }
.added { color: var(--ok); } .removed { color: var(--bad); } .changed { color: var(--warn); }
dl { display: grid; grid-template-columns: max-content 1fr; gap: 2px 16px; } dt { color: var(--muted); }
dd { margin: 0; }
footer { color: var(--muted); margin-top: 30px; font-size: 12px; }
</style>
</head>
<body>
{% set cls = {"succeeded": "ok", "failed": "bad", "interrupted": "bad", "abandoned": "bad"}.get(r.status, "other") %}
<header class="{{ cls }}" id="summary">
  <h1>{{ r.image }} <span class="mono">{{ r.version or "(no version)" }}</span></h1>
  <span class="badge">{{ r.status }}</span>
  <span class="meta">
    <span>target <b>{{ r.target }}</b></span>
    <span>build <code>{{ r.build_id }}</code></span>
    <span>started {{ r.started | utc }}</span>
    <span>duration {{ r.duration | duration }}</span>
    <span>checks: {{ counts.passed }} passed, {{ counts.warning }} warnings, {{ counts.failed }} failed,
      {{ counts.skipped }} skipped</span>
  </span>
</header>
<main>
<nav>
  <a href="#timeline">Timeline</a><a href="#verification">Verification</a><a href="#components">Components</a>
  <a href="#changes">Changes</a><a href="#files">Logs and artifacts</a><a href="#facts">Facts</a>
</nav>
{% if r.error %}
<section class="alert" id="error">
  <h2>Build {{ r.status }}</h2>
  <p><code>{{ r.error }}</code></p>
  {% if r.error_log %}<p>log: <a href="{{ link(r.error_log) }}">{{ r.error_log.path.name }}</a>
    {% if not r.error_log.exists %}(missing){% endif %}</p>{% endif %}
</section>
{% endif %}
{% if failures %}
<section class="alert" id="failed-checks">
  <h2>{{ failures | length }} failing check{{ "" if failures | length == 1 else "s" }}</h2>
  <table>
    <tr><th>check</th><th>run</th><th>expected</th><th>found</th><th>message</th></tr>
    {% for run, c in failures %}
    <tr class="{{ c.outcome }}" data-check="{{ c.name }}">
      <td class="name"><code>{{ c.name }}</code></td><td>{{ run.label }}</td>
      <td><code>{{ c.expected or "-" }}</code></td>
      <td><code>{{ c.found or "-" }}</code></td><td><code>{{ c.message or "" }}</code></td>
    </tr>
    {% endfor %}
  </table>
</section>
{% endif %}

<h2 id="timeline">Timeline</h2>
{% if r.phases %}
<table>
  <tr><th>phase</th><th>status</th><th class="num">duration</th><th>when</th><th>detail</th><th>log</th></tr>
  {% for p in r.phases %}
  <tr class="phase-{{ p.status }}">
    <td class="phase"><code>{{ p.name }}</code></td><td>{{ p.status }}</td>
    <td class="num">{{ p.seconds | duration }}</td>
    <td><div class="bar">{% if p.status not in ("skipped", "pending") %}
      <span style="left: {{ '%.2f' % (100 * p.start / total) }}%;
        width: {{ '%.2f' % (100 * p.seconds / total) }}%"></span>{% endif %}</div></td>
    <td><code>{{ p.detail }}</code></td>
    <td>{% if p.log and p.log.exists %}<a href="{{ link(p.log) }}">{{ p.log.label }}</a>
      {%- elif p.log %}<span class="meta">none written</span>{% endif %}</td>
  </tr>
  {% endfor %}
</table>
<p class="meta">{{ r.timeline_note }}; bars are to scale over {{ total | duration }}.</p>
{% else %}
<p>No phases recorded.</p>
{% endif %}

<h2 id="verification">Verification</h2>
{% for run in r.runs %}
<h3>{{ run.label }} <span class="meta">({{ run.count("passed") }} passed, {{ run.count("warning") }} warnings,
  {{ run.count("failed") }} failed, {{ run.count("skipped") }} skipped;
  <a href="{{ link(run.source) }}">{{ run.source.label }}</a>)</span></h3>
<table>
  <tr><th>check</th><th>outcome</th><th>expected</th><th>found</th><th>message</th></tr>
  {% for c in run.checks %}
  <tr class="{{ c.outcome }}">
    <td class="name"><code>{{ c.name }}</code></td><td class="outcome">{{ c.outcome }}</td>
    <td><code>{{ c.expected if c.expected is not none else "" }}</code></td>
    <td><code>{{ c.found if c.found is not none else "" }}</code></td>
    <td><code>{{ c.message or "" }}</code></td>
  </tr>
  {% endfor %}
</table>
{% else %}
<p>No verification results recorded (the build stopped before verification, or it was turned off).</p>
{% endfor %}

<h2 id="components">Components</h2>
{% if r.components %}
{% set old = {} %}
{% for c in r.changes.components or [] %}{% set _ = old.update({c.name: c}) %}{% endfor %}
<table>
  <tr><th>component</th><th>version</th><th>previous build</th></tr>
  {% for name, version in r.components | dictsort %}
  <tr><td><code>{{ name }}</code></td><td><code>{{ version }}</code></td>
    <td>{% if name in old %}<span class="{{ old[name].kind }}">{{ old[name].old or "(new)" }}</span>
      {% elif r.changes.components is not none and r.changes.previous %}same{% else %}-{% endif %}</td></tr>
  {% endfor %}
</table>
<p class="meta">from {{ r.components_source }}{% if r.packages is not none %}; {{ r.packages | length }} packages in
  {{ r.packages_source }}{% endif %}</p>
{% else %}
<p>No component versions recorded.</p>
{% endif %}

<h2 id="changes">Changes since the previous version</h2>
{% if not r.changes.previous %}
<p id="first-build"><b>First build</b>: {{ r.changes.note }}.</p>
{% else %}
<p>Compared with build <code>{{ r.changes.previous }}</code>
  (version <code>{{ r.changes.previous_version or "?" }}</code>).</p>
<h3>Components</h3>
{% if r.changes.components is none %}
<p>{{ r.changes.note }}.</p>
{% elif r.changes.components %}
<table>
  <tr><th>component</th><th>change</th><th>previous</th><th>this build</th></tr>
  {% for c in r.changes.components %}
  <tr><td><code>{{ c.name }}</code></td><td class="{{ c.kind }}">{{ c.kind }}</td>
    <td><code>{{ c.old or "-" }}</code></td><td><code>{{ c.new or "-" }}</code></td></tr>
  {% endfor %}
</table>
{% else %}<p>No component changes.</p>{% endif %}
<h3>Packages</h3>
{% if r.changes.packages is none %}
<p>{{ r.changes.package_note }}.</p>
{% elif not r.changes.packages %}
<p>No package changes.</p>
{% else %}
{% set tally = [] %}
{% for kind in ("changed", "added", "removed") %}
{% set _ = tally.append((r.changes.packages | selectattr("kind", "equalto", kind) | list | length) ~ " " ~ kind) %}
{% endfor %}
<p>{{ tally | join(", ") }}.</p>
<table>
  <tr><th>package</th><th>change</th><th>previous</th><th>this build</th></tr>
  {% for c in package_changes %}
  <tr><td><code>{{ c.name }}</code></td><td class="{{ c.kind }}">{{ c.kind }}</td>
    <td><code>{{ c.old or "-" }}</code></td><td><code>{{ c.new or "-" }}</code></td></tr>
  {% endfor %}
</table>
{% if package_more %}<p>... and {{ package_more }} more (<code>builder report --json</code> lists all).</p>{% endif %}
{% endif %}
{% endif %}

<h2 id="files">Logs and artifacts</h2>
<table>
  <tr><th>file</th><th>kind</th><th class="num">size</th></tr>
  {% for item in r.logs %}
  <tr><td><a href="{{ link(item) }}">{{ item.label }}</a></td><td>log</td>
    <td class="num">{{ item.size | size }}</td></tr>
  {% endfor %}
  {% for item in r.artifacts %}
  <tr><td><a href="{{ link(item) }}">{{ item.label }}</a></td><td>artifact</td>
    <td class="num">{{ item.size | size }}</td></tr>
  {% endfor %}
</table>

<h2 id="facts">Facts</h2>
<dl>
  {% for key, value in r.facts %}<dt>{{ key }}</dt><dd><code>{{ value }}</code></dd>{% endfor %}
</dl>
{% if r.notes %}
<h2 id="notes">Not in this report</h2>
<ul>{% for note in r.notes %}<li>{{ note }}</li>{% endfor %}</ul>
{% endif %}
<footer>Written by <code>builder report {{ r.build_id }}</code> at {{ generated }} from {{ r.directory }}.</footer>
</main>
</body>
</html>
"""
