// Settings only the dashboards use, merged into the mixin's `_config`. What the dashboards share
// with the rules is read from ../config.libsonnet, so a panel shows what its alert evaluates:
// the job selectors (llmSelector, gpuSelector, budgetSelector, bridgeSelector, aifinopsSelector),
// dashboardUIDs, unattributedTeamRegex, gpuIdleRatio, budgetThresholds and budgetBurnWindows.
{
  _config+:: {
    // Tags on every aifinops dashboard; the links bar between them lists dashboards by the first.
    dashboardTags: ['aifinops', 'finops', 'cost'],

    // Time zone of the dashboards. Budget days and months, like cloud bills and the budget
    // alerts (PromQL works in UTC), start at midnight UTC, so "today" and "month to date" panels
    // are UTC too. Set 'browser' if your budgets follow local time and you accept the mismatch.
    dashboardTimezone: 'utc',

    // Default time range and auto-refresh. The pipeline detects spend changes in seconds, so
    // the dashboards refresh every 30 s; lower it for a war-room screen.
    dashboardTimeFrom: 'now-6h',
    dashboardRefresh: '30s',

    // How many teams and models the overview ranks. Raise it on a large organisation.
    dashboardTopK: 10,

    // What the "unattributed" spend (no team label: a GPU no pod holds, a call sent without a
    // team, a pod with neither a team label nor a team for its namespace) is called in rankings
    // and tables.
    dashboardUnattributedLabel: '(unattributed)',
  },
}
