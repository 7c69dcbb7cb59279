// Pipeline tier: the parts that feed the spend figures. The alerts that make spend alerts lie
// keep firing pipelineKeepFiringFor after recovery, so Alertmanager's inhibition covers the burst
// of delayed usage that follows.
local p = import '../lib/promql.libsonnet';
local r = import '../lib/rules.libsonnet';

{
  // Alerts whose firing inhibits the fast and anomaly tiers in Alertmanager.
  aifinopsSpendFakingAlerts:: [
    'AIFinOpsExporterDown',
    'AIFinOpsCollectorFailing',
    'AIFinOpsBridgeConsumerLagHigh',
    'AIFinOpsCostMetricsAbsent',
  ],

  aifinopsAlertRules+:: {
    local c = $._config,
    local t = p.template,
    local common = { tier: 'pipeline', dashboard: 'pipeline', severity: 'warning' },
    local faking = common { keepFiringFor: c.pipelineKeepFiringFor },
    // $/h of spend a job/instance exposed over the last hour.
    local spendThrough = t.queryDollars('`sum(rate({__name__=~"aifinops_(llm|gpu)_cost_usd_total", job=%%q, instance=%%q}[1h])) * %d`' % p.hour, '$labels.job $labels.instance', '/h'),

    pipeline+: [
      r.alert(c, faking {
        name: 'AIFinOpsExporterDown',
        'for': c.exporterDownFor,
        expr: 'up{%s} == 0' % c.aifinopsSelector,
        summary: 'Prometheus cannot scrape an aifinops exporter; spend alerts are blind to what it serves.',
        description: 'Prometheus has failed to scrape {{ $labels.job }} at {{ $labels.instance }} for %s. Spend it serves is missing from every figure and alert until it is back (it served %s over the last hour).' % [
          c.exporterDownFor,
          spendThrough,
        ],
      }),

      r.alert(c, faking {
        name: 'AIFinOpsCollectorFailing',
        'for': c.collectorFailingFor,
        expr: 'aifinops_collector_success{%s} == 0' % c.aifinopsSelector,
        summary: 'An aifinops collector keeps failing; the figures it feeds are frozen or missing.',
        description: 'Collector {{ $labels.collector }} of {{ $labels.job }} at {{ $labels.instance }} has failed for %s; its metrics keep their last values or are missing (spend served by that instance over the last hour: %s).' % [
          c.collectorFailingFor,
          spendThrough,
        ],
      }),

      r.alert(c, faking {
        name: 'AIFinOpsBridgeConsumerLagHigh',
        'for': c.bridgeLagFor,
        expr: 'sum by (job, instance, topic) (aifinops_bridge_consumer_lag_messages{%s}) > %s' % [c.bridgeSelector, p.num(c.bridgeLagMessages)],
        summary: 'The bridge is far behind on a topic; spend reaches Prometheus late and then as a burst.',
        description: 'The bridge {{ $labels.instance }} is %s messages behind on {{ $labels.topic }} for %s. The usage in them is missing from the figures until it catches up, then arrives at once (spend the bridge applied over the last hour: %s).' % [
          t.count,
          c.bridgeLagFor,
          spendThrough,
        ],
      }),

      r.alert(c, common {
        name: 'AIFinOpsBridgeDeadLetters',
        expr: 'sum by (job, instance, topic) (%s) > 0' % p.counterIncrease(
          'aifinops_bridge_messages_total', p.withMatchers(c.bridgeSelector, ['result="invalid"']), c.deadLetterWindow
        ),
        summary: 'The bridge dead-lettered invalid messages; the spend in them is in no figure.',
        description: 'The bridge {{ $labels.instance }} sent about %s invalid messages of {{ $labels.topic }} to {{ $labels.topic }}.dlq in the last %s. Their spend ($ unknown) is in no figure until they are fixed and replayed.' % [
          t.count,
          c.deadLetterWindow,
        ],
      }),

      r.alert(c, common {
        name: 'AIFinOpsBridgeProduceErrors',
        'for': c.produceErrorsFor,
        expr: 'sum by (job, instance, topic) (%s) > 0' % p.counterIncrease(
          'aifinops_bridge_produce_errors_total', c.aifinopsSelector, c.produceErrorsWindow
        ),
        summary: 'Publishing to Kafka keeps failing; events wait in the spool and downstream consumers fall behind.',
        description: '{{ $labels.job }} at {{ $labels.instance }} failed to publish about %s messages to {{ $labels.topic }} in the last %s. Its own figures are complete; consumers of {{ $labels.topic }} (a central bridge, cost-anomalies readers) miss them until the spool drains (spend it served over the last hour: %s).' % [
          t.count,
          c.produceErrorsWindow,
          spendThrough,
        ],
      }),

      r.alert(c, faking {
        name: 'AIFinOpsCostMetricsAbsent',
        'for': c.costMetricsAbsentFor,
        expr: std.join('\nor\n', [
          'label_replace(absent_over_time(%s{%s}[%s]), "metric", "%s", "", "")' % [family, c.aifinopsSelector, c.costMetricsAbsentWindow, family]
          for family in c.costMetricsFamilies
        ]) + '\n',
        summary: 'A cost metric family has no samples; every alert that reads it is blind.',
        description: 'No sample of {{ $labels.metric }} has been ingested for %s: spend alerts on it cannot fire ($0.00/h is not the same as no data).' % [c.costMetricsAbsentWindow],
      }),

      r.alert(c, {
        name: 'AIFinOpsWatchdog',
        tier: 'pipeline',
        severity: 'info',
        dashboard: 'pipeline',
        expr: 'vector(1)',
        summary: 'Always firing: proves alerts travel from Prometheus through Alertmanager to the bridge.',
        description: 'This alert always fires. If it stops arriving (in the bridge, on cost-anomalies), the alert path is broken and no cost alert would arrive either ($0.00 of spend is watched then).',
      }),
    ],
  },
}
