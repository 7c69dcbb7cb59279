// Savings tier alert: a team's recommended GPU savings crossed the monthly threshold (info, routed
// like the waste tier: Alertmanager's default route).
local p = import '../lib/promql.libsonnet';
local r = import '../lib/rules.libsonnet';
local savingsNames = import '../lib/savings.libsonnet';
local currency = import '../lib/currency.libsonnet';

{
  aifinopsAlertRules+:: {
    local c = $._config,
    local s = savingsNames(c),

    savings+: [
      r.alert(c, {
        name: 'AIFinOpsSavingsAvailable',
        tier: 'savings',
        source: 'gpu',
        severity: 'info',
        'for': c.savingsAlertFor,
        dashboard: 'savings',
        teamVar: true,
        expr: '%s > %s' % [s.teamSavings, p.num(c.savingsAlertUsdPerMonth)],
        summary: 'A team could save more than its savings threshold a month on GPUs.',
        description: '{{ if $labels.team }}Team {{ $labels.team }}{{ else }}GPUs held by no team{{ end }} could save %s a month by releasing, sharing or scheduling the GPUs its pods hold (threshold %s/month, look-back %s). The savings dashboard lists each pod, its action and its evidence.' % [
          currency(c).fromUsd,
          currency(c).usdThreshold(c.savingsAlertUsdPerMonth),
          c.savingsLookback,
        ],
      }),
    ],
  },
}
