"""Operating the node: metrics, alarms, structured logs (docs/observability.md).

- :mod:`signaling.observe.metrics`: a Prometheus collector read at scrape time (nothing on the
  per-call path beyond the integer counters the node keeps anyway) and ``exposition()``.
- :mod:`signaling.observe.alarms`: the sans-IO alarm evaluator (rules, hysteresis, history).
- :mod:`signaling.observe.gateways`: per-gateway ASR/ACD/PDD and lines, kept by the node.
- :mod:`signaling.observe.system`: CPU, memory, disk and conntrack from /proc and statvfs.
- :mod:`signaling.observe.driver`: runs the alarm rounds on the node's loop.
- :mod:`signaling.observe.logs`: the JSON log formatter and the redaction of secrets.
"""
