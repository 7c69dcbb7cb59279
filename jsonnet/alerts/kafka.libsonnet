// Pipeline tier: consumer-group lag of every group on the aifinops topics, from Strimzi's Kafka
// Exporter (kafka_consumergroup_lag{consumergroup,topic,partition}), so a stuck consumer other
// than the bridge (a FOCUS export, a SIEM reading cost-anomalies) is seen too. The bridge's own
// lag has AIFinOpsBridgeConsumerLagHigh.
local p = import '../lib/promql.libsonnet';
local r = import '../lib/rules.libsonnet';

{
  aifinopsAlertRules+:: {
    local c = $._config,
    local lag = 'sum by (consumergroup, topic) (kafka_consumergroup_lag{%s, topic=~"%s"})' % [
      c.kafkaExporterSelector,
      std.join('|', c.kafkaLagTopics),
    ],

    pipeline+: [
      r.alert(c, {
        name: 'AIFinOpsKafkaConsumerLagGrowing',
        tier: 'pipeline',
        dashboard: 'pipeline',
        severity: 'warning',
        'for': c.kafkaLagGrowingFor,
        // Lag above a floor whose trend over kafkaLagTrendWindow is upward, at every
        // evaluation for kafkaLagGrowingFor: the group consumes slower than the topic fills.
        expr: |||
          (%(lag)s > %(floor)s)
          and
          deriv((%(lag)s)[%(trend)s:%(step)s]) > 0
        ||| % {
          lag: lag,
          floor: p.num(c.kafkaLagMinMessages),
          trend: c.kafkaLagTrendWindow,
          step: c.pipelineInterval,
        },
        summary: 'A consumer group falls further behind on an aifinops topic.',
        description: 'Consumer group {{ $labels.consumergroup }} is {{ printf "%%.0f" $value }} messages behind on {{ $labels.topic }} and its lag has grown for %s. Whatever it feeds (spend figures, exports, alert consumers) is that far behind and getting later.' % c.kafkaLagGrowingFor,
      }),
    ],
  },
}
