"""The completion report's two layouts, HTML and Markdown (Jinja2)."""

from __future__ import annotations

__all__ = ["HTML", "MARKDOWN"]

HTML = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{{ r.title }}: completion report</title>
<style>
body { font-family: system-ui, sans-serif; max-width: 52rem; margin: 2rem auto;
       color: #1d2433; line-height: 1.45; }
h1 { font-size: 1.5rem; margin-bottom: .2rem; }
.sub { color: #5b6475; margin-top: 0; }
table { border-collapse: collapse; width: 100%; margin: .5rem 0 1.5rem; }
th, td { text-align: left; padding: .35rem .6rem; border-bottom: 1px solid #e3e6ec; }
th { background: #f4f6f9; font-weight: 600; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
dl { display: grid; grid-template-columns: 10rem 1fr; gap: .25rem 1rem; }
dt { color: #5b6475; }
</style>
</head>
<body>
<h1>{{ r.title }}</h1>
<p class="sub">Work order {{ r.id }}, completed {{ r.completed_at }}
{%- if r.link %} &middot; <a href="{{ r.link }}">open in MaintainX</a>{% endif %}</p>
<dl>
<dt>Asset</dt><dd>{{ r.asset }}</dd>
<dt>Location</dt><dd>{{ r.location }}</dd>
<dt>Assignees</dt><dd>{{ r.assignees | join(", ") or "-" }}</dd>
<dt>Priority</dt><dd>{{ r.priority }}</dd>
<dt>Completed by</dt><dd>{{ r.completed_by }}</dd>
<dt>Open to done</dt><dd>{{ r.total_time or "-" }}</dd>
</dl>
<h2>Status timeline</h2>
<table>
<tr><th>Status</th><th>From</th><th>To</th><th>Duration</th></tr>
{%- for s in r.timeline %}
<tr><td>{{ s.status }}</td><td>{{ s.start }}</td><td>{{ s.end or "-" }}</td>
<td class="num">{{ s.duration or "-" }}</td></tr>
{%- else %}
<tr><td colspan="4">No status changes recorded.</td></tr>
{%- endfor %}
</table>
<h2>Time entries</h2>
<table>
<tr><th>Who</th><th>Description</th><th>Duration</th><th>Cost</th></tr>
{%- for t in r.time_entries %}
<tr><td>{{ t.who }}</td><td>{{ t.description }}</td>
<td class="num">{{ t.duration }}</td><td class="num">{{ t.cost }}</td></tr>
{%- else %}
<tr><td colspan="4">None recorded.</td></tr>
{%- endfor %}
</table>
<h2>Costs</h2>
<table>
<tr><th>Who</th><th>Description</th><th>Quantity</th><th>Cost</th></tr>
{%- for c in r.cost_entries %}
<tr><td>{{ c.who }}</td><td>{{ c.description }}</td>
<td class="num">{{ c.quantity }}</td><td class="num">{{ c.cost }}</td></tr>
{%- else %}
<tr><td colspan="4">None recorded.</td></tr>
{%- endfor %}
<tr><th colspan="3">Total (time and costs)</th>
<th class="num">{{ r.total_cost }}</th></tr>
</table>
<h2>Events</h2>
<table>
<tr><th>When</th><th>Event</th><th>By</th><th>What</th></tr>
{%- for e in r.events %}
<tr><td>{{ e.when }}</td><td>{{ e.type }}</td><td>{{ e.who }}</td>
<td>{{ e.summary }}</td></tr>
{%- endfor %}
</table>
<p class="sub">Written by mxbridge on {{ r.generated_at }}
(times in {{ r.timezone }}).</p>
</body>
</html>
"""

MARKDOWN = """# {{ r.title }}

Work order {{ r.id }}, completed {{ r.completed_at }}
{%- if r.link %} ([open in MaintainX]({{ r.link }})){% endif %}

| | |
| --- | --- |
| Asset | {{ r.asset | cell }} |
| Location | {{ r.location | cell }} |
| Assignees | {{ (r.assignees | join(", ") or "-") | cell }} |
| Priority | {{ r.priority | cell }} |
| Completed by | {{ r.completed_by | cell }} |
| Open to done | {{ r.total_time or "-" }} |

## Status timeline

| Status | From | To | Duration |
| --- | --- | --- | ---: |
{% for s in r.timeline -%}
| {{ s.status }} | {{ s.start }} | {{ s.end or "-" }} | {{ s.duration or "-" }} |
{% else -%}
| No status changes recorded. | | | |
{% endfor %}
## Time entries

| Who | Description | Duration | Cost |
| --- | --- | ---: | ---: |
{% for t in r.time_entries -%}
| {{ t.who | cell }} | {{ t.description | cell }} | {{ t.duration }} | {{ t.cost }} |
{% else -%}
| None recorded. | | | |
{% endfor %}
## Costs

| Who | Description | Quantity | Cost |
| --- | --- | ---: | ---: |
{% for c in r.cost_entries -%}
| {{ c.who | cell }} | {{ c.description | cell }} | {{ c.quantity }} | {{ c.cost }} |
{% else -%}
| None recorded. | | | |
{% endfor -%}
| **Total (time and costs)** | | | **{{ r.total_cost }}** |

## Events

| When | Event | By | What |
| --- | --- | --- | --- |
{% for e in r.events -%}
| {{ e.when }} | {{ e.type }} | {{ e.who | cell }} | {{ e.summary | cell }} |
{% endfor %}
_Written by mxbridge on {{ r.generated_at }} (times in {{ r.timezone }})._
"""
