// Pipeline tier: the parts that feed the spend figures. The alerts that make spend alerts lie
// keep firing pipelineKeepFiringFor after recovery, so Alertmanager's inhibition covers the burst
// of delayed usage that follows. Each of them carries `aifinops_source` (gpu, llm or all): the
// part of the figures the failed job feeds, so the inhibition silences only the alerts that read
// that part (a GPU node's exporter down never silences an LLM spike).
local names = import '../lib/names.libsonnet';
local p = import '../lib/promql.libsonnet';
local r = import '../lib/rules.libsonnet';
local currency = import '../lib/currency.libsonnet';

{
  // Alerts whose firing inhibits the fast and anomaly tiers in Alertmanager.
  aifinopsSpendFakingAlerts:: [
    'AIFinOpsExporterDown',
    'AIFinOpsCollectorFailing',
    'AIFinOpsBridgeConsumerLagHigh',
    'AIFinOpsCostMetricsAbsent',
  ],

  aifinopsRecordingRules+:: {
    local c = $._config,
    local n = names(c),

    pipeline+: [
      // 1 per scraped aifinops job and instance, labelled with the part of the figures it feeds,
      // from the family selectors: gpu for a job only gpuSelector matches, llm for one only
      // llmSelector matches, all for one both match (the bridge) or neither.
      r.record(n.jobSource, |||
        max by (job, instance, %(label)s) (
          label_replace(up{%(gpu)s} unless on (job, instance) up{%(llm)s}, "%(label)s", "gpu", "", "")
          or on (job, instance)
          label_replace(up{%(llm)s} unless on (job, instance) up{%(gpu)s}, "%(label)s", "llm", "", "")
          or on (job, instance)
          label_replace(up{%(all)s}, "%(label)s", "all", "", "")
        )
        * 0 + 1
      ||| % { label: r.sourceLabel, gpu: c.gpuSelector, llm: c.llmSelector, all: c.aifinopsSelector }),
      // How many series of each cost family exist now; its history over costMetricsSeenWindow
      // tells AIFinOpsCostMetricsAbsent which families this installation runs.
      r.record(n.costFamilySeries, std.join('\nor\n', [
        'label_replace(count(%s{%s}), "metric", "%s", "", "")' % [family, c.aifinopsSelector, family]
        for family in c.costMetricsFamilies
      ]) + '\n'),
    ],
  },

  aifinopsAlertRules+:: {
    local c = $._config,
    local n = names(c),
    local t = p.template,
    local source = r.sourceLabel,
    // `expr` (a vector with job and instance labels) with aifinops_source set to the part of the
    // figures its job feeds (recorded above); a job without an `up` series gets `all`.
    local withSource(expr) = |||
      %(expr)s
      * on (job, instance) group_left (%(label)s)
      %(feeds)s
      or on (job, instance)
      label_replace(%(expr)s, "%(label)s", "all", "", "")
    ||| % { expr: expr, label: source, feeds: n.jobSource },
    local common = { tier: 'pipeline', dashboard: 'pipeline', severity: 'warning' },
    local faking = common { keepFiringFor: c.pipelineKeepFiringFor },
    // $/h of spend a job/instance exposed over the last hour.
    local cur = currency(c),
    local spendThrough = cur.queryUsd('`sum(rate({__name__=~"aifinops_(llm|gpu)_cost_usd_total", job=%%q, instance=%%q}[1h])) * %d`' % p.hour, '$labels.job $labels.instance', '/h'),

    pipeline+: [
      r.alert(c, faking {
        name: 'AIFinOpsExporterDown',
        'for': c.exporterDownFor,
        expr: withSource('(up{%s} == 0)' % c.aifinopsSelector),
        summary: 'Prometheus cannot scrape an aifinops exporter; spend alerts are blind to what it serves.',
        description: 'Prometheus has failed to scrape {{ $labels.job }} at {{ $labels.instance }} for %s. Spend it serves is missing from every figure and alert until it is back (it served %s over the last hour).' % [
          c.exporterDownFor,
          spendThrough,
        ],
      }),

      r.alert(c, faking {
        name: 'AIFinOpsCollectorFailing',
        'for': c.collectorFailingFor,
        expr: withSource('(aifinops_collector_success{%s} == 0)' % c.aifinopsSelector),
        summary: 'An aifinops collector keeps failing; the figures it feeds are frozen or missing.',
        description: 'Collector {{ $labels.collector }} of {{ $labels.job }} at {{ $labels.instance }} has failed for %s; its metrics keep their last values or are missing (spend served by that instance over the last hour: %s).' % [
          c.collectorFailingFor,
          spendThrough,
        ],
      }),

      r.alert(c, faking {
        name: 'AIFinOpsBridgeConsumerLagHigh',
        'for': c.bridgeLagFor,
        expr: withSource('(sum by (job, instance, topic) (aifinops_bridge_consumer_lag_messages{%s}) > %s)' % [c.bridgeSelector, p.num(c.bridgeLagMessages)]),
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

      r.alert(c, common {
        name: 'AIFinOpsTripwireSendFailing',
        expr: 'sum by (job, instance) (%s) > 0' % p.counterIncrease(
          'aifinops_tripwire_send_errors_total', c.aifinopsSelector, c.tripwireSendErrorsWindow
        ),
        summary: 'Posting tripwire alerts to Alertmanager keeps failing; a tripped spend limit may not have paged.',
        description: '{{ $labels.job }} at {{ $labels.instance }} had about %s failed posts of tripwire alerts to Alertmanager (tripwires.alertmanager_urls; each is retried with backoff) in the last %s. A single call or a team minute above its hard limit may not have paged yet; the fast tier still catches runaways within seconds (spend it served over the last hour: %s).' % [
          t.count,
          c.tripwireSendErrorsWindow,
          spendThrough,
        ],
      }),

      r.alert(c, faking {
        name: 'AIFinOpsCostMetricsAbsent',
        'for': c.costMetricsAbsentFor,
        // Only a family this installation has run within costMetricsSeenWindow: an installation
        // without GPUs never has GPU cost series, and that is no outage.
        expr: std.join('\nor\n', [
          |||
            label_replace(
              label_replace(absent_over_time(%(family)s{%(sel)s}[%(window)s]), "metric", "%(family)s", "", "")
              and on (metric)
              max_over_time(%(seen)s{metric="%(family)s"}[%(seenWindow)s]) > 0,
              "%(label)s", "%(source)s", "", ""
            )
          ||| % {
            family: family,
            sel: c.aifinopsSelector,
            window: c.costMetricsAbsentWindow,
            seen: n.costFamilySeries,
            seenWindow: c.costMetricsSeenWindow,
            label: source,
            source: r.familySource(family),
          }
          for family in c.costMetricsFamilies
        ]),
        summary: 'A cost metric family has no samples; every alert that reads it is blind.',
        description: 'No sample of {{ $labels.metric }} has been ingested for %s: spend alerts on it cannot fire (%s/h is not the same as no data).' % [c.costMetricsAbsentWindow, cur.zero],
      }),

    ] + (if cur.usd then [] else [
      // In a reporting currency other than USD the budget tier reads spend converted with
      // aifinops_fx_rate: without a sample of it the budget alerts are blind (never 1.0).
      r.alert(c, common {
        name: 'AIFinOpsFXRateMissing',
        'for': c.fxRateMissingFor,
        source: 'all',
        expr: 'absent(%s)' % cur.rate,
        summary: 'No USD to %s exchange rate is served; spend in %s and every budget alert are blind.' % [cur.code, cur.code],
        description: 'No aifinops process has served aifinops_fx_rate{currency="%s"} for %s: no configured rate is in force (before the first currency.rates entry, or past max_rate_age_days) or the rates file cannot be read. Spend in %s is not recorded and no budget alert can fire until a rate is served again; the USD figures are unaffected.' % [cur.code, c.fxRateMissingFor, cur.code],
      }),
    ]) + [
      r.alert(c, {
        name: 'AIFinOpsWatchdog',
        tier: 'pipeline',
        severity: 'info',
        dashboard: 'pipeline',
        expr: 'vector(1)',
        summary: 'Always firing: proves alerts travel from Prometheus through Alertmanager to the bridge.',
        description: 'This alert always fires. If it stops arriving (in the bridge, on cost-anomalies), the alert path is broken and no cost alert would arrive either (%s of spend is watched then).' % cur.zero,
      }),
    ],
  },
}
