// Builders for recording and alerting rules, so every alert carries the same labels and
// annotations: severity, the tier label Alertmanager routes on, summary, a templated
// description, runbook_url and dashboard_url.
{
  // The label that names an alert's tier (fast, burn, anomaly, waste, pipeline); the
  // Alertmanager routes and inhibitions match on it.
  tierLabel:: 'aifinops_tier',

  // The label that names the part of the spend figures an alert reads or a pipeline failure
  // fakes: gpu (GPU families), llm (LLM families) or all (both, e.g. a team's total spend, or
  // the bridge, which feeds both). Alertmanager's inhibitions match on it, so a failure only
  // silences the alerts that read what failed.
  sourceLabel:: 'aifinops_source',

  // The source value of a cost family (aifinops_gpu_* -> gpu, aifinops_llm_* -> llm).
  familySource(family)::
    if std.startsWith(family, 'aifinops_gpu_') then 'gpu'
    else if std.startsWith(family, 'aifinops_llm_') then 'llm'
    else 'all',

  // A recording rule.
  record(name, expr, labels={}):: {
    record: name,
    expr: expr,
    [if labels != {} then 'labels']: labels,
  },

  // An alerting rule. `config` is the mixin's _config; `dashboard` a key of
  // config.dashboardUIDs; `teamVar` adds ?var-team=<team> to the dashboard link.
  alert(config, spec)::
    local s = {
      'for': '0s',
      keepFiringFor: null,
      labels: {},
      source: null,
      teamVar: false,
    } + spec;
    local dashboard = config.grafanaURL + '/d/' + config.dashboardUIDs[s.dashboard]
                      + (if s.teamVar then '?var-team={{ $labels.team }}' else '');
    {
      alert: s.name,
      expr: s.expr,
      'for': s['for'],
      [if s.keepFiringFor != null then 'keep_firing_for']: s.keepFiringFor,
      labels: { severity: s.severity, [$.tierLabel]: s.tier }
              + (if s.source != null then { [$.sourceLabel]: s.source } else {})
              + s.labels,
      annotations: {
        summary: s.summary,
        description: s.description,
        runbook_url: config.runbookURL + '#' + std.asciiLower(s.name),
        dashboard_url: dashboard,
      },
    },

  // A rule group of one tier.
  group(name, interval, rules):: {
    name: name,
    interval: interval,
    rules: rules,
  },
}
