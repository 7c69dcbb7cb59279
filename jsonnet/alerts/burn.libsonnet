// Burn tier: budgets from aifinops_budget_usd{team,period} drive one rule per window pair,
// threshold and period for every team; a team without a budget matches nothing here.
local names = import '../lib/names.libsonnet';
local p = import '../lib/promql.libsonnet';
local r = import '../lib/rules.libsonnet';
local currency = import '../lib/currency.libsonnet';

{
  aifinopsAlertRules+:: {
    local c = $._config,
    local n = names(c),
    local t = p.template,
    // The budget tier compares the series of the reporting currency (names.money) and shows
    // amounts in it: budgets, spend and its pace are all in that currency.
    local m = n.money,
    local cur = currency(c),
    local money = if cur.usd then { value: t.dollars, query: t.queryDollars } else { value: cur.value, query: cur.query },
    // Series in a reporting currency carry a `currency` label; matching keeps it on the alert.
    local matchOn(expr) = if cur.usd then expr else std.strReplace(expr, 'on (team, period)', 'on (team, period, currency)'),
    local teamPeriod(series) = '%s{team=%%q, period=%%q}' % series,
    local budgetText = money.query('`%s`' % teamPeriod(m.budget), '$labels.team $labels.period'),
    local common = { tier: 'burn', dashboard: 'overview', teamVar: true },
    // Keeps a window of at least budgetFullHistoryFrom to teams with spend history that old.
    local fullHistory(window) =
      if p.seconds(window) >= p.seconds(c.budgetFullHistoryFrom)
      then 'and on (team)\n%s offset %s\n' % [m.base, window]
      else '',

    local burn(w) = r.alert(c, common {
      name: w.alert,
      severity: w.severity,
      'for': w['for'],
      labels: { long_window: w.long, short_window: w.short },
      expr: matchOn(|||
        %(long)s * %(hour)d > on (team) group_right () (%(factor)s * %(hour)d * %(sustainable)s)
        and on (team, period)
        %(short)s > on (team) group_right () (%(factor)s * %(sustainable)s)
      ||| % {
        long: m.spend(w.long),
        short: m.spend(w.short),
        sustainable: m.sustainable,
        factor: p.num(w.factor),
        hour: p.hour,
      } + fullHistory(w.long)),
      summary: 'A team is spending at more than %sx the pace its budget allows.' % p.num(w.factor),
      description: 'Team {{ $labels.team }} spent on average %s/h over the last %s (and above that pace over the last %s): more than %sx the %s that would spend its {{ $labels.period }} budget of %s exactly by the end of the period.' % [
        money.value,
        w.long,
        w.short,
        p.num(w.factor),
        money.query('`%s * %d`' % [teamPeriod(m.sustainable), p.hour], '$labels.team $labels.period', '/h'),
        budgetText,
      ],
    }),

    local threshold(level) =
      local percent = std.toString(std.round(level.ratio * 100));
      r.alert(c, common {
        name: 'AIFinOpsBudgetThreshold',
        severity: level.severity,
        'for': c.budgetThresholdFor,
        labels: { threshold: percent },
        expr: matchOn('%s > on (team, period) (%s * %s)' % [m.periodToDate, p.num(level.ratio), m.budget]),
        summary: 'A team has spent %s %% of its budget for the period.' % percent,
        description: 'Team {{ $labels.team }} has spent %s of its {{ $labels.period }} budget of %s in this period (UTC), more than %s %%.' % [
          money.value,
          budgetText,
          percent,
        ],
      }),

    local forecast(period) =
      local f = c.budgetForecast[period];
      r.alert(c, common {
        name: 'AIFinOpsBudgetExhaustionForecast',
        severity: 'warning',
        'for': f['for'],
        // The series carry it already; as a rule label it tells the two rules apart.
        labels: { period: period },
        expr: matchOn(|||
          (
            %(ptd)s{period="%(period)s"}
            + on (team) group_left ()
            %(rate)s * scalar(%(remaining)s{period="%(period)s"})
          )
          > on (team, period) (%(margin)s * %(budget)s)
          unless on (team, period)
          %(ptd)s >= on (team, period) %(budget)s
        ||| % {
          ptd: m.periodToDate,
          period: period,
          rate: m.spend(f.window),
          remaining: n.periodRemaining,
          margin: p.num(c.budgetForecastMargin),
          budget: m.budget,
        } + fullHistory(f.window)),
        summary: 'At its current pace a team will overspend its budget before the period ends.',
        description: 'At its average pace over the last %s (%s), team {{ $labels.team }} will have spent %s by the end of this {{ $labels.period }} period, above its budget of %s (spent so far: %s).' % [
          f.window,
          money.query('`%s{team=%%q} * %d`' % [m.spend(f.window), p.hour], '$labels.team', '/h'),
          money.value,
          budgetText,
          money.query('`%s`' % teamPeriod(m.periodToDate), '$labels.team $labels.period'),
        ],
      }),

    burn+: [burn(w) for w in c.budgetBurnWindows]
           + [threshold(level) for level in c.budgetThresholds]
           + [forecast(period) for period in std.objectFields(c.budgetForecast)],
  },
}
