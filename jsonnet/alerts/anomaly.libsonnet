// Anomaly tier: a team's spend far above its seasonal prediction (robust z-score on the MAD of
// past prediction errors) for anomalyFor. Needs a day of history; upward only.
local names = import '../lib/names.libsonnet';
local p = import '../lib/promql.libsonnet';
local r = import '../lib/rules.libsonnet';
local currency = import '../lib/currency.libsonnet';

{
  aifinopsAlertRules+:: {
    local c = $._config,
    local n = names(c),
    // Amounts in US dollars, shown in the reporting currency at the rate in force.
    local cur = currency(c),
    local t = p.template { dollars: cur.fromUsd, queryDollars(format, args='', unit=''):: cur.queryUsd(format, args, unit) },
    local team(series) = '`%s{team=%%q} * %d`' % [series, p.hour],

    anomaly+: [
      r.alert(c, {
        name: 'AIFinOpsSpendAnomaly',
        tier: 'anomaly',
        // A team's total spend: LLM and GPU.
        source: 'all',
        severity: 'warning',
        'for': c.anomalyFor,
        dashboard: 'overview',
        teamVar: true,
        expr: |||
          %(spend)s * %(hour)d > on (team) %(band)s * %(hour)d
          and on (team)
          (%(spend)s - on (team) %(prediction)s) * %(hour)d > %(minExcess)s
        ||| % {
          spend: n.spendBase,
          band: n.upperBand,
          prediction: n.prediction,
          hour: p.hour,
          minExcess: p.num(c.anomalyMinExcessUsdPerHour),
        },
        summary: 'A team is spending far more than usual for this time of day and week.',
        description: 'Team {{ $labels.team }} is spending %s/h (LLM and GPU). At this time of day it spent at most %s on any of the last %d days; anything above %s is more than %s robust standard deviations off.' % [
          t.dollars,
          t.queryDollars(team(n.prediction), '$labels.team', '/h'),
          c.anomalySeasonDays,
          t.queryDollars(team(n.upperBand), '$labels.team', '/h'),
          p.num(c.anomalyZThreshold),
        ],
      }),
    ],
  },
}
