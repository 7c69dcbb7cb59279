// What the four aifinops dashboards share: variables, the cost-alert annotations, the links
// between them, and the dashboard frame with its generated-file notice.
local g = import '../lib/dashboards/grafana.libsonnet';

function(c) {
  local uids = c.dashboardUIDs,

  variables:: {
    datasource: g.datasourceVariable,
    team: g.labelVariable(
      'team',
      'Team',
      '{__name__=~"aifinops_llm_cost_usd_total|aifinops_gpu_cost_usd_total", %s}' % c.aifinopsSelector,
      'Teams with LLM API or GPU spend. "All" also includes spend no team owns.',
    ),
    namespace: g.labelVariable(
      'namespace',
      'Namespace',
      'aifinops_gpu_cost_usd_total{%s, team=~"$team"}' % c.gpuSelector,
      'Kubernetes namespaces of the pods that hold GPUs.',
    ),
    provider: g.labelVariable(
      'provider',
      'Provider',
      'aifinops_llm_requests_total{%s, team=~"$team"}' % c.llmSelector,
      'LLM API providers (OpenTelemetry gen_ai.provider.name).',
    ),
    model: g.labelVariable(
      'model',
      'Model',
      'aifinops_llm_requests_total{%s, team=~"$team", provider=~"$provider"}' % c.llmSelector,
      'Models of the selected providers.',
    ),
  },

  // Firing cost alerts, drawn on every time series of every dashboard.
  annotations:: [
    g.annotation(
      'Cost alerts',
      (import 'queries.libsonnet')(c).costAlertAnnotations,
      '{{alertname}}',
      '{{severity}} {{team}} {{model}}',
      'alertname,severity,team',
      'red',
    ),
  ],

  // The links bar: every dashboard tagged like these, keeping time range and variables.
  links:: [{
    title: 'AI FinOps',
    type: 'dashboards',
    tags: [c.dashboardTags[0]],
    asDropdown: false,
    includeVars: true,
    keepTime: true,
    targetBlank: false,
    icon: 'external link',
    tooltip: '',
    url: '',
  }],

  // A link from a panel to another aifinops dashboard, with the same time range and team.
  linkTo(key, title):: {
    title: title,
    url: '/d/%s?${__url_time_range}&${team:queryparam}' % uids[key],
  },

  dashboard(key, title, summary, variables, items):: g.dashboard(
    uid=uids[key],
    title=title,
    description=summary + ' Generated from jsonnet/ by make generate; do not edit.',
    tags=c.dashboardTags,
    variables=variables,
    annotations=self.annotations,
    links=self.links,
    items=items,
    opts={ timezone: c.dashboardTimezone, from: c.dashboardTimeFrom, refresh: c.dashboardRefresh },
  ),
}
