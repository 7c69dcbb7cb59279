// The PromQL of every aifinops panel, as functions of `_config`, apart from layout. They read the
// raw metric families of DESIGN.md, so the dashboards work without any recording rule, and they
// use the rules' selectors, budget periods and thresholds (../config.libsonnet), so a panel shows
// what its alert evaluates.
//
// Conventions: counters are summed (each event is counted once per Prometheus, whichever
// exporter or bridge counted it); gauges that several processes may expose (prices, budgets,
// GPU readings mirrored by a bridge) are deduplicated with `max by` first. Money is in US
// dollars; a rate in $/s times 3600 is $/h. Template variables are used as `label=~"$var"`.
function(c) {
  local q = self,

  // Matchers joined for a selector, empty ones left out.
  sel(matchers):: std.join(', ', std.filter(function(m) m != '', matchers)),

  // Label matchers of the template variables, with the job selector of each family.
  team:: 'team=~"$team"',
  llm(extra=''):: q.sel([c.llmSelector, 'team=~"$team"', 'provider=~"$provider"', 'model=~"$model"', extra]),
  llmTeam(extra=''):: q.sel([c.llmSelector, q.team, extra]),
  gpu(extra=''):: q.sel([c.gpuSelector, q.team, 'namespace=~"$namespace"', extra]),
  gpuTeam(extra=''):: q.sel([c.gpuSelector, q.team, extra]),
  budgetSel:: q.sel([c.budgetSelector, q.team]),

  // `sum by (by)`, or a plain `sum` for a total.
  sumBy(by):: if by == '' then 'sum' else 'sum by (%s)' % by,

  // `expr`, or 0 while `expr` is empty but `base` (a family that shows the source is up) has
  // series: a healthy "nothing happened" reads 0, a missing source still reads "No data".
  orZeroWhile(expr, base):: '(%s) or on () (0 * count(%s))' % [expr, base],

  // Label values that mean "nobody" (config unattributedTeamRegex) under a readable name.
  named(expr, label):: 'label_replace(%s, "%s", "%s", "%s", "%s")' % [
    expr,
    label,
    c.dashboardUnattributedLabel,
    label,
    c.unattributedTeamRegex,
  ],

  // Spend of LLM API calls and GPUs together, summed by `by` ('' for a total), as the rules'
  // team spend: `fn` is rate or increase over `window`; `llmSel`/`gpuSel` select each side. The
  // GPU side gets a marker label so `or` keeps both sides, then the outer sum adds them: a team
  // with only one kind of spend is still counted.
  spend(fn, by, llmSel, gpuSel, window)::
    std.rstripChars(|||
      %(sum)s (
        %(sum)s (%(fn)s(aifinops_llm_cost_usd_total{%(llm)s}[%(window)s]))
        or
        label_replace(%(sum)s (%(fn)s(aifinops_gpu_cost_usd_total{%(gpu)s}[%(window)s])), "spend_kind", "gpu", "", "")
      )
    ||| % { fn: fn, sum: q.sumBy(by), llm: llmSel, gpu: gpuSel, window: window }, '\n'),

  spendPerHour(by):: '%s * 3600' % q.spend('rate', by, q.llmTeam(), q.gpuTeam(), '$__rate_interval'),
  spendOverRange(by):: q.spend('increase', by, q.llmTeam(), q.gpuTeam(), '$__range'),

  // $/h, $ over the range and /s of one counter family, by `by`.
  perHour(metric, by, sel):: '%s (rate(%s{%s}[$__rate_interval])) * 3600' % [q.sumBy(by), metric, sel],
  overRange(metric, by, sel):: '%s (increase(%s{%s}[$__range]))' % [q.sumBy(by), metric, sel],
  perSecond(metric, by, sel):: '%s (rate(%s{%s}[$__rate_interval]))' % [q.sumBy(by), metric, sel],

  // ---- Budgets (UTC days and calendar months, as the burn rules) ----
  // Budgets in US dollars. A pack in another currency (_config.currency) also reads budgets given
  // in it (aifinops_budget{currency}), as dollars at the rate in force, which money panels convert
  // back; ratios of spend to budget then use today's rate for the budget (the alerts compare the
  // recorded spend in that currency, docs/currency.md).
  local inUsd(by, period) =
    local usd = 'max by (%s) (aifinops_budget_usd{%s, period="%s"})' % [by, q.budgetSel, period];
    if c.currency == 'USD' then usd else
      '(max by (%s) (aifinops_budget{%s, period="%s", currency="%s"}) / on () group_left () max(aifinops_fx_rate{%s, currency="%s"}) or %s)' % [by, q.budgetSel, period, c.currency, c.aifinopsSelector, c.currency, usd],
  budget(period):: inUsd('team', period),
  // Spend since the start of the period (the panel's time range is the period so far) as a
  // share of the budget; teams without a budget drop out.
  budgetUsed(period):: '%s\n/ on (team)\n%s' % [q.spendOverRange('team'), q.budget(period)],
  // The rate that spends each budget exactly over its period, in $/s, labelled with `period`.
  periodSeconds:: {
    daily: '86400',
    monthly: 'scalar(days_in_month() * 86400)',
  },
  sustainableRate:: std.join('\nor\n', [
    '%s / %s' % [inUsd('team, period', period), q.periodSeconds[period]]
    for period in std.objectFields(q.periodSeconds)
  ]),
  // Spend rate over `window` as a multiple of the sustainable rate (1 = on budget).
  burnRate(window)::
    '%s\n/ on (team) group_right ()\n(\n%s\n)' % [
      q.spend('rate', 'team', q.llmTeam(), q.gpuTeam(), window),
      q.sustainableRate,
    ],

  // ---- Alerts ----
  costAlerts:: 'ALERTS{alertname=~"AIFinOps.*", alertname!="AIFinOpsWatchdog", alertstate="firing"}',
  costAlertAnnotations:: 'ALERTS{alertname=~"AIFinOps.*", alertname!="AIFinOpsWatchdog", alertstate="firing", team=~"$team"}',
  costAlertsFiring:: 'count(%s) or on () vector(0)' % q.costAlerts,
  watchdog:: 'max(ALERTS{alertname="AIFinOpsWatchdog", alertstate="firing"}) or on () vector(0)',

  // ---- GPU ----
  // One reading per GPU (a bridge may mirror the exporter's gauges).
  gpuGauge(metric):: 'max by (node, gpu, uuid) (%s{%s})' % [metric, c.gpuSelector],

  // GPUs in scope of the team and namespace filters: those a selected pod holds, and with "All"
  // also those no pod holds (their cost series has an empty team, which only `.*` matches).
  gpuInScope:: |||
    aifinops_gpu_allocated{%s}
    or on (node, gpu, uuid)
    aifinops_gpu_cost_usd_total{%s}
  ||| % [q.gpu(), q.gpu('pod=""')],
  gpuScoped(expr):: '%s\nand on (node, gpu, uuid)\n(\n%s)' % [expr, q.gpuInScope],

  gpuCount:: 'count(%s)' % q.gpuScoped(q.gpuGauge('aifinops_gpu_info')),
  gpusAllocated:: 'count(count by (node, gpu, uuid) (aifinops_gpu_allocated{%s}))' % q.gpu(),
  gpusIdle:: std.rstripChars(|||
    count(
      %s < %s
      and on (node, gpu, uuid)
      aifinops_gpu_allocated{%s}
    )
  ||| % [q.gpuGauge('aifinops_gpu_utilization_ratio'), c.gpuIdleRatio, q.gpu()], '\n'),
  gpusUnallocated:: 'count(%s unless on (node, gpu, uuid) aifinops_gpu_allocated{%s})' % [
    q.gpuScoped(q.gpuGauge('aifinops_gpu_info')),
    c.gpuSelector,
  ],
  gpuAllocatedOrZero:: q.orZeroWhile(q.gpusAllocated, 'aifinops_gpu_info{%s}' % c.gpuSelector),
  gpuIdleOrZero:: q.orZeroWhile(q.gpusIdle, 'aifinops_gpu_info{%s}' % c.gpuSelector),

  gpuSpendPerHour(by, sel=q.gpu()):: q.perHour('aifinops_gpu_cost_usd_total', by, sel),
  gpuIdlePerHour(by, sel=q.gpu()):: q.perHour('aifinops_gpu_idle_cost_usd_total', by, sel),
  gpuIdleShare(sel=q.gpu()):: '%s\n/\n%s' % [
    q.perSecond('aifinops_gpu_idle_cost_usd_total', '', sel),
    q.perSecond('aifinops_gpu_cost_usd_total', '', sel),
  ],
  gpuUtilisation:: q.gpuScoped(q.gpuGauge('aifinops_gpu_utilization_ratio')),
  gpuMemoryUsed:: q.gpuScoped('%s / %s' % [q.gpuGauge('aifinops_gpu_memory_used_bytes'), q.gpuGauge('aifinops_gpu_memory_total_bytes')]),
  gpuPower:: q.gpuScoped(q.gpuGauge('aifinops_gpu_power_watts')),
  // Cost and idle cost per pod over the dashboard range, the idle share, and GPUs held now.
  podCost:: q.overRange('aifinops_gpu_cost_usd_total', 'namespace, pod, team', q.gpu('pod!=""')),
  podIdleCost:: q.overRange('aifinops_gpu_idle_cost_usd_total', 'namespace, pod, team', q.gpu('pod!=""')),
  podIdleShare:: '%s\n/\n%s' % [q.podIdleCost, q.podCost],
  podGpus:: 'count by (namespace, pod, team) (count by (namespace, pod, team, node, gpu, uuid) (aifinops_gpu_allocated{%s}))' % q.gpu(),

  // Where each GPU's price comes from (aifinops_gpu_price_info: opencost, opencost_spot,
  // override, table, none), next to the price itself.
  gpuPriceSource:: q.gpuScoped('max by (node, gpu, uuid, source) (aifinops_gpu_price_info{%s})' % c.gpuSelector),
  gpuPrice:: q.gpuScoped('max by (node, gpu, uuid, model) (aifinops_gpu_hourly_cost_usd{%s})' % c.gpuSelector),

  // ---- The whole bill ----
  // Kubernetes compute (CPU, memory, storage; GPUs of nodes without a GPU exporter) from
  // OpenCost, per team and resource: the burn tier's recorded series (rules/kubernetes.libsonnet
  // joins OpenCost's per-namespace costs to teams; the join is too long to repeat per panel).
  kubernetesPerHour(by):: '%s (%s{%s}) * 3600' % [
    q.sumBy(by),
    (import '../lib/names.libsonnet')(c).kubernetesTeamCost,
    q.team,
  ],
  // GPU spend less its idle part: what the GPUs cost while working.
  gpuBusyPerHour(by):: '(%s - %s)' % [
    q.gpuSpendPerHour(by, q.gpuTeam()),
    q.gpuIdlePerHour(by, q.gpuTeam()),
  ],

  // ---- LLM API ----
  llmPerHour(by, sel=q.llm()):: q.perHour('aifinops_llm_cost_usd_total', by, sel),
  llmTokensPerSecond(by, sel=q.llm()):: q.perSecond('aifinops_llm_tokens_total', by, sel),
  llmRequestsPerSecond(by, sel=q.llm()):: q.perSecond('aifinops_llm_requests_total', by, sel),
  llmCostPerRequest(by):: '%s\n/\n(%s > 0)' % [q.perSecond('aifinops_llm_cost_usd_total', by, q.llm()), q.llmRequestsPerSecond(by)],
  llmCostPerMillionTokens(by):: '%s\n/\n(%s > 0)\n* 1e6' % [q.perSecond('aifinops_llm_cost_usd_total', by, q.llm()), q.llmTokensPerSecond(by)],
  // Share of input tokens (cached or not) read from the prompt cache.
  llmCacheReadShare(by):: '%s\n/\n(%s > 0)' % [
    q.llmTokensPerSecond(by, q.llm('token_type="cache_read"')),
    q.llmTokensPerSecond(by, q.llm('token_type=~"input|cache_read|cache_write"')),
  ],
  // What cache reads saved: the tokens read from cache, priced at the full input price minus
  // the cache-read price each model is charged, in $/h.
  price(tokenType):: 'max by (provider, model) (aifinops_llm_price_usd_per_million_tokens{%s})' % q.sel([
    c.llmSelector,
    'token_type="%s"' % tokenType,
    'provider=~"$provider"',
    'model=~"$model"',
  ]),
  llmCacheSavingsPerHour(by):: std.rstripChars(|||
    %(sum)s (
      sum by (%(inner)s) (rate(aifinops_llm_tokens_total{%(sel)s}[$__rate_interval]))
      * on (provider, model) group_left ()
      (%(input)s - on (provider, model) %(cached)s)
    ) / 1e6 * 3600
  ||| % {
    sum: q.sumBy(by),
    inner: std.join(', ', std.set(['provider', 'model'] + (if by == '' then [] else std.map(function(l) std.stripChars(l, ' '), std.split(by, ','))))),
    sel: q.llm('token_type="cache_read"'),
    input: q.price('input'),
    cached: q.price('cache_read'),
  }, '\n'),
  unpricedSel:: q.sel([c.llmSelector, 'provider=~"$provider"', 'model=~"$model"']),
  llmUnpricedPerSecond(by):: q.orZeroWhile(
    q.perSecond('aifinops_llm_unpriced_requests_total', by, q.unpricedSel),
    'aifinops_llm_requests_total{%s}' % c.llmSelector,
  ),
  llmUnpricedOverRange:: 'sum by (provider, model) (increase(aifinops_llm_unpriced_requests_total{%s}[$__range])) > 0' % q.unpricedSel,

  // ---- Pipeline ----
  ingestSel:: q.sel([c.aifinopsSelector]),
  ingestPerSecond:: 'sum by (source, outcome) (rate(aifinops_ingest_events_total{%s}[$__rate_interval]))' % q.ingestSel,
  ingestRejectedShare:: q.orZeroWhile(
    'sum(rate(aifinops_ingest_events_total{%(s)s, outcome="rejected"}[$__rate_interval]))\n/\n(sum(rate(aifinops_ingest_events_total{%(s)s}[$__rate_interval])) > 0)' % { s: q.ingestSel },
    'aifinops_ingest_events_total{%s}' % q.ingestSel,
  ),
  usageEventsByTeam:: q.perSecond('aifinops_llm_requests_total', 'team', q.llmTeam()),
  // The whole bill without a team: LLM and GPU spend, and the Kubernetes costs of pods nobody
  // owns (the burn tier's recorded 5-minute average, as AIFinOpsUnattributedSpend reads it).
  unattributedPerHour:: q.orZeroWhile(
    'sum (\n%s\nor\nlabel_replace(sum(%s{team=~"%s"}), "spend_kind", "kubernetes", "", "")\n) * 3600' % [
      q.spend(
        'rate',
        '',
        q.sel([c.llmSelector, 'team=~"%s"' % c.unattributedTeamRegex]),
        q.sel([c.gpuSelector, 'team=~"%s"' % c.unattributedTeamRegex]),
        '$__rate_interval',
      ),
      (import '../lib/names.libsonnet')(c).kubernetesTeamCost,
      c.unattributedTeamRegex,
    ],
    'aifinops_build_info{%s}' % c.aifinopsSelector,
  ),
  bridgeMessages:: 'sum by (topic, result) (rate(aifinops_bridge_messages_total{%s}[$__rate_interval]))' % c.bridgeSelector,
  bridgeLag:: 'max by (topic, partition) (aifinops_bridge_consumer_lag_messages{%s})' % c.bridgeSelector,
  bridgeMaxLag:: 'max(aifinops_bridge_consumer_lag_messages{%s})' % c.bridgeSelector,
  // Every consumer group's lag on the aifinops topics, from Strimzi's Kafka Exporter.
  kafkaGroupLag:: 'sum by (consumergroup, topic) (kafka_consumergroup_lag{%s, topic=~"%s"})' % [
    c.kafkaExporterSelector,
    std.join('|', c.kafkaLagTopics),
  ],
  // Invalid messages are the ones the bridge dead-letters to the topic's .dlq.
  deadLetters:: q.orZeroWhile(
    'sum by (topic) (rate(aifinops_bridge_messages_total{%s, result="invalid"}[$__rate_interval]))' % c.bridgeSelector,
    'aifinops_bridge_messages_total{%s}' % c.bridgeSelector,
  ),
  // Producers run in the exporters (with Kafka configured) and in the bridge.
  spool:: 'max by (job, instance) (aifinops_bridge_spooled_messages{%s})' % c.aifinopsSelector,
  produced:: 'sum by (topic) (rate(aifinops_bridge_produced_total{%s}[$__rate_interval]))' % c.aifinopsSelector,
  produceErrors:: q.orZeroWhile(
    'sum by (topic) (rate(aifinops_bridge_produce_errors_total{%s}[$__rate_interval]))' % c.aifinopsSelector,
    'aifinops_bridge_produced_total{%s}' % c.aifinopsSelector,
  ),
  alertsForwarded:: q.orZeroWhile(
    'sum by (status) (rate(aifinops_bridge_alerts_forwarded_total{%s}[$__rate_interval]))' % c.bridgeSelector,
    'aifinops_bridge_messages_total{%s}' % c.bridgeSelector,
  ),
  collectorSuccess:: 'min by (job, collector) (aifinops_collector_success{%s})' % c.aifinopsSelector,
  collectorsFailing:: 'sum(1 - aifinops_collector_success{%s})' % c.aifinopsSelector,
  collectorDuration:: 'max by (job, collector) (aifinops_collector_duration_seconds{%s})' % c.aifinopsSelector,
  targetsDown:: 'count(up{%(s)s} == 0) or on () (0 * count(up{%(s)s}))' % { s: c.aifinopsSelector },
  scrapeDuration:: 'max by (job, instance) (scrape_duration_seconds{%s})' % c.aifinopsSelector,
  seriesOverflow:: q.orZeroWhile(
    'sum by (metric) (rate(aifinops_series_overflow_total{%s}[$__rate_interval]))' % c.aifinopsSelector,
    'aifinops_build_info{%s}' % c.aifinopsSelector,
  ),
  buildInfo:: 'count by (job, version) (aifinops_build_info{%s})' % c.aifinopsSelector,
}
