// Burn tier recordings: the spend series every slower tier reads (LLM + GPU + Kubernetes, $/s,
// averaged over the configured windows), budgets per team and period, and period-to-date spend.
local names = import '../lib/names.libsonnet';
local p = import '../lib/promql.libsonnet';
local r = import '../lib/rules.libsonnet';
local currency = import '../lib/currency.libsonnet';

// Budget periods: UTC days and calendar months (PromQL's clock is UTC). `start` and `length`
// are PromQL for the current period; `longest` bounds the look-back that re-seeds
// period-to-date spend.
local periods = {
  daily: {
    start: 'vector(time() - time() %% %(day)d)' % { day: p.day },
    length: 'vector(%(day)d)' % { day: p.day },
    longest: '1d',
  },
  monthly: {
    start: 'vector(time() - time() %% %(day)d) - (day_of_month() - 1) * %(day)d' % { day: p.day },
    length: 'days_in_month() * %(day)d' % { day: p.day },
    longest: '31d',
  },
};

{
  aifinopsBudgetPeriods:: std.objectFields(periods),

  aifinopsRecordingRules+:: {
    local c = $._config,
    local n = names(c),
    local base = n.spendBase,
    local step = c.spendRateWindow,
    local cur = currency(c),
    local m = n.money,
    // Every window an alert reads, except the base window itself.
    local windows = std.setDiff(
      std.set(
        [w.long for w in c.budgetBurnWindows] + [w.short for w in c.budgetBurnWindows]
        + [c.budgetForecast[k].window for k in std.objectFields(c.budgetForecast)],
        p.seconds
      ),
      [step],
      p.seconds
    ),

    // Period-to-date spend of a period, carried forward from its previous value so it needs no
    // retention beyond Prometheus' look-back: previous value + $/s x seconds since it was
    // recorded, while still in the same period. At a period's start, on first load, or after a
    // gap longer than the look-back, it is re-seeded from what is retained: the daily averages
    // of the whole days since the period began, the hourly averages of today's whole hours,
    // and the current pace over the part of this hour (periods start at midnight UTC). Days
    // and hours keep the seed cheap: at most 31 + 24 points per team. `m` names the series of
    // one currency (names.money), `by` the labels they carry besides period.
    local periodToDate(m, by, period) =
      local f = {
        ptd: '%s{period="%s"}' % [m.periodToDate, period],
        start: '%s{period="%s"}' % [n.periodStart, period],
        today: '%s{period="daily"}' % n.periodStart,
        base: m.base,
        by: by,
        budget: '%s{period="%s"}' % [m.budget, period],
        longest: periods[period].longest,
        hour: p.hour,
        day: p.day,
      };
      |||
        (
            (
              %(ptd)s
              + (time() - timestamp(%(ptd)s)) * on (team) group_left () %(base)s
              and
              timestamp(%(ptd)s) > on () group_left () %(start)s
            )
          or on (team)
            sum by (%(by)s) (
                label_replace(
                  sum_over_time(
                    (avg_over_time(%(base)s[1d]) and on () (vector(time()) > on () (%(start)s @ end())))[%(longest)s:1d]
                  ) * %(day)d,
                  "part", "days", "", "")
              or
                label_replace(
                  sum_over_time(
                    (avg_over_time(%(base)s[1h]) and on () (vector(time()) > on () (%(today)s @ end())))[1d:1h]
                  ) * %(hour)d,
                  "part", "hours", "", "")
              or
                label_replace(%(base)s * (time() %% %(hour)d), "part", "now", "", "")
            )
        )
        and on (team)
        %(budget)s
      ||| % f,

    // In a reporting currency other than USD: the rate in force, the spend series converted
    // with it at each evaluation (so each step keeps the rate of its own time), and budgets in
    // that currency: aifinops_budget{currency} as given, or a team's aifinops_budget_usd at the
    // rate in force when it has none in the currency.
    local fxSpend = [
      r.record(n.fxRate, 'max by (currency) (%s)' % cur.rate),
      r.record(n.fxSpendBySource, '%s * on () group_left (currency) %s' % [n.spendBySource, n.fxRate]),
      r.record(m.base, 'sum by (team, currency) (%s)' % n.fxSpendBySource),
    ] + [
      r.record(m.spend(w), 'avg_over_time(%s[%s])' % [m.base, w])
      for w in windows
    ] + [
      r.record(m.budget, |||
        max by (team, period, currency) (aifinops_budget{%(budget)s})
        or on (team, period)
        max by (team, period) (aifinops_budget_usd{%(usd)s}) * on () group_left (currency) %(rate)s
      ||| % {
        budget: p.withMatchers(c.budgetSelector, ['currency="%s"' % cur.code]),
        usd: c.budgetSelector,
        rate: n.fxRate,
      }),
    ],

    burn+: [
      // Spend by source: LLM calls (priced per event), GPUs (the exporter's cost counter,
      // GPUs no pod holds included, with an empty team) and Kubernetes compute (OpenCost's
      // CPU, memory and storage, rules/kubernetes.libsonnet, averaged over the same window).
      r.record(n.spendBySource, |||
        label_replace(sum by (team) (rate(aifinops_llm_cost_usd_total{%(llm)s}[%(w)s])), "source", "llm", "", "")
        or
        label_replace(sum by (team) (rate(aifinops_gpu_cost_usd_total{%(gpu)s}[%(w)s])), "source", "gpu", "", "")
        or
        label_replace(sum by (team) (%(k8s)s), "source", "kubernetes", "", "")
      ||| % { llm: c.llmSelector, gpu: c.gpuSelector, w: step, k8s: n.kubernetesTeamCost }),
      r.record(base, 'sum by (team) (%s)' % n.spendBySource),
    ] + [
      r.record(n.spend(w), 'avg_over_time(%s[%s])' % [base, w])
      for w in windows
    ] + (if cur.usd then [
      r.record(n.budget, 'max by (team, period) (aifinops_budget_usd{%s})' % c.budgetSelector),
    ] else fxSpend) + std.flattenArrays([
      [
        r.record(n.periodStart, periods[period].start, { period: period }),
        r.record(n.periodLength, periods[period].length, { period: period }),
      ]
      for period in std.objectFields(periods)
    ]) + [
      r.record(n.periodRemaining, '%s + %s - time()' % [n.periodStart, n.periodLength]),
      r.record(m.sustainable, '%s / on (period) group_left () %s' % [m.budget, n.periodLength]),
    ] + [
      r.record(m.periodToDate, periodToDate(m, if cur.usd then 'team' else 'team, currency', period), { period: period })
      for period in std.objectFields(periods)
    ],
  },
}
