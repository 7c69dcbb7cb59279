// Waste and hygiene tier: money spent on idle GPUs, and spend the figures cannot see or
// attribute (unpriced calls, no team, folded label values).
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
    local common = { tier: 'waste' },
    local unattributed = '%s{team=~"%s"}' % [n.spendBase, c.unattributedTeamRegex],

    waste+: [
      r.alert(c, common {
        name: 'AIFinOpsGPUIdle',
        severity: 'warning',
        'for': c.gpuIdleFor,
        dashboard: 'gpu',
        teamVar: true,
        expr: |||
          %(share)s
          and on (node, gpu, uuid)
          max by (node, gpu, uuid) (avg_over_time(aifinops_gpu_utilization_ratio{%(sel)s}[%(avg)s])) < %(ratio)s
        ||| % {
          share: n.gpuPodHourlyCost,
          sel: c.gpuSelector,
          avg: c.gpuIdleAvgWindow,
          ratio: p.num(c.gpuIdleRatio),
        },
        summary: 'A GPU held by a pod has been idle for a long time and is still billed.',
        description: 'GPU {{ $labels.gpu }} ({{ $labels.uuid }}) on node {{ $labels.node }}, held by pod {{ $labels.namespace }}/{{ $labels.pod }} of team {{ $labels.team }}, has been under %s %% utilised for %s while it costs %s/h.' % [
          p.num(c.gpuIdleRatio * 100),
          c.gpuIdleFor,
          t.dollars,
        ],
      }),

      r.alert(c, common {
        name: 'AIFinOpsGPUIdleSpendHigh',
        severity: 'warning',
        'for': c.gpuIdleSpendFor,
        dashboard: 'gpu',
        teamVar: true,
        expr: 'sum by (team) (rate(aifinops_gpu_idle_cost_usd_total{%s}[%s])) * %d > %s' % [
          c.gpuSelector, c.gpuIdleSpendWindow, p.hour, p.num(c.gpuIdleSpendUsdPerHour),
        ],
        summary: "A team's idle GPUs cost more than its idle-spend threshold.",
        description: '{{ if $labels.team }}Team {{ $labels.team }}{{ else }}GPUs held by no team{{ end }} paid %s/h for idle GPU time over the last %s (threshold %s/h).' % [
          t.dollars,
          c.gpuIdleSpendWindow,
          cur.usdThreshold(c.gpuIdleSpendUsdPerHour),
        ],
      }),

      r.alert(c, common {
        name: 'AIFinOpsLLMUnpricedUsage',
        severity: 'warning',
        'for': c.unpricedFor,
        dashboard: 'llm',
        expr: 'sum by (provider, model) (%s) >= %s' % [
          p.counterIncrease('aifinops_llm_unpriced_requests_total', c.llmSelector, c.unpricedWindow),
          p.num(c.unpricedMinRequests),
        ],
        summary: 'LLM requests have no price, so their spend is missing from every dollar figure.',
        description: 'About %s requests to {{ $labels.provider }} model {{ $labels.model }} in the last %s had no price: their spend counts as %s in every figure and alert (recorded spend on that model over the same window: %s).' % [
          t.count,
          c.unpricedWindow,
          cur.zero,
          t.queryDollars('`sum(increase(aifinops_llm_cost_usd_total{%s, provider=%%q, model=%%q}[%s]))`' % [c.llmSelector, c.unpricedWindow], '$labels.provider $labels.model'),
        ],
      }),

      r.alert(c, common {
        name: 'AIFinOpsUnattributedSpend',
        severity: 'info',
        'for': c.unattributedFor,
        dashboard: 'overview',
        expr: |||
          sum(avg_over_time(%(unattributed)s[%(w)s])) * %(hour)d > %(floor)s
          and
          sum(avg_over_time(%(unattributed)s[%(w)s])) / sum(avg_over_time(%(all)s[%(w)s])) > %(ratio)s
        ||| % {
          unattributed: unattributed,
          all: n.spendBase,
          w: c.unattributedWindow,
          hour: p.hour,
          floor: p.num(c.unattributedFloorUsdPerHour),
          ratio: p.num(c.unattributedMinRatio),
        },
        summary: 'A share of spend cannot be attributed to any team.',
        // The whole bill: the spend series sums LLM, GPU and Kubernetes (OpenCost) dollars, so
        // a pod nobody owns counts here with its CPU, memory and storage too.
        description: '%s/h of spend over the last %s has no team (calls sent without a team; the GPUs, CPU, memory and storage of pods with neither a team label nor a team for their namespace; GPUs no pod holds): more than %s %% of all spend (%s).' % [
          t.dollars,
          c.unattributedWindow,
          p.num(c.unattributedMinRatio * 100),
          t.queryDollars('`sum(avg_over_time(%s[%s])) * %d`' % [n.spendBase, c.unattributedWindow, p.hour], '', '/h'),
        ],
      }),

      r.alert(c, common {
        name: 'AIFinOpsSeriesOverflow',
        severity: 'warning',
        dashboard: 'pipeline',
        expr: 'sum by (metric) (%s) > 0' % p.counterIncrease('aifinops_series_overflow_total', c.aifinopsSelector, c.overflowWindow),
        summary: 'Label values beyond the configured limit are folded into __other__.',
        description: 'About %s label values of {{ $labels.metric }} were folded into "__other__" in the last %s: their usage is counted, but not under its own team, app or model. LLM spend in folded series: %s.' % [
          t.count,
          c.overflowWindow,
          t.queryDollars('`sum(rate(aifinops_llm_cost_usd_total{%(s)s, team="__other__"}[%(w)s]) or rate(aifinops_llm_cost_usd_total{%(s)s, app="__other__"}[%(w)s]) or rate(aifinops_llm_cost_usd_total{%(s)s, model="__other__"}[%(w)s])) * %(h)d`' % { s: c.llmSelector, w: c.overflowWindow, h: p.hour }, '', '/h'),
        ],
      }),
    ],
  },
}
