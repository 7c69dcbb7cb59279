// Alerting rules, grouped by tier (see DESIGN.md "Rules and alerts").
{
  prometheusAlerts+:: {
    groups+: [],
  },
}
