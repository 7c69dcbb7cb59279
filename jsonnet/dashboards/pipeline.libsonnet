// Pipeline health: whether the numbers on the other dashboards can be trusted. Alert path
// (watchdog), targets, ingest outcomes, bridge lag, dead letters, producer spool, collectors and
// scrapes. Layout only; PromQL is in queries.
local g = import '../lib/dashboards/grafana.libsonnet';
local queries = import 'queries.libsonnet';
local common = import 'common.libsonnet';

function(c)
  local q = queries(c);
  local d = common(c);
  local v = d.variables;
  d.dashboard('pipeline', 'AI FinOps / Pipeline health', 'Whether the spend figures can be trusted: the alert path (watchdog), targets, ingest, bridge lag, dead letters, producer spool, collectors and scrapes.', [v.datasource, v.team], [
    g.row('Alert path and targets'),
    g.stat(
      'Watchdog',
      'AIFinOpsWatchdog always fires while Prometheus evaluates the aifinops rules. "Not firing" means no alert can fire: the rules are not loaded or Prometheus is not evaluating them. Check the PrometheusRule and the rule files.',
      [g.query(q.watchdog, 'Watchdog')],
      'short',
      {
        w: 6,
        thresholds: g.thresholds('red', [[1, 'green']]),
        mappings: g.valueText({ '0': ['Not firing', 'red'], '1': ['Firing (alert path works)', 'green'] }),
      },
    ),
    g.stat(
      'Targets down',
      'aifinops exporters and bridges Prometheus cannot scrape (up == 0). Their spend is invisible while down and AIFinOpsExporterDown fires: check the pod and its Service/ServiceMonitor.',
      [g.query(q.targetsDown, 'Down')],
      'short',
      { w: 6, thresholds: g.thresholds('green', [[1, 'red']]) },
    ),
    g.stat(
      'Failing collectors',
      'Collectors whose last fetch failed (aifinops_collector_success == 0): a GPU source, a price catalogue or a Kafka consumer that cannot read. Their metrics are stale; the process log says why.',
      [g.query(q.collectorsFailing, 'Failing')],
      'short',
      { w: 6, thresholds: g.thresholds('green', [[1, 'red']]) },
    ),
    g.stat(
      'Max consumer lag',
      'The most messages any bridge partition is behind. Spend in Kafka that the bridge has not applied is not on any dashboard yet: a growing lag means the bridge is too slow or stuck.',
      [g.query(q.bridgeMaxLag, 'Lag')],
      'short',
      { w: 6, graph: true, thresholds: g.thresholds('green', [[1000, 'orange'], [100000, 'red']]) },
    ),

    g.row('Ingest'),
    g.timeseries(
      'Ingest events/s by outcome',
      'Usage events arriving per second by source (http, kafka) and outcome: accepted, rejected (invalid, answered 400 or dead-lettered) and duplicate (already counted). Rejections mean a client sends bad events: the 400 response and the DLQ header name the field.',
      [g.query(q.ingestPerSecond, '{{source}} {{outcome}}')],
      'short',
      { stack: true, legendCalcs: ['mean', 'last'] },
    ),
    g.timeseries(
      'Rejected share of ingest',
      'The share of incoming events rejected as invalid (0 when all are valid). Anything above zero is spend that is not counted until the sender is fixed.',
      [g.query(q.ingestRejectedShare, 'Rejected')],
      'percentunit',
      { min: 0 },
    ),
    g.timeseries(
      'Usage events counted by team',
      'LLM API calls counted per second by team. A team that stops sending while it still works has a broken integration; a team spending with no name shows in "Unattributed spend".',
      [g.query(q.named(q.usageEventsByTeam, 'team'), '{{team}}')],
      'short',
      { stack: true },
    ),
    g.timeseries(
      'Unattributed spend ($/h)',
      'Spend with no team: calls sent without a team, GPUs no pod holds, and the GPUs, CPU, memory and storage of pods with neither a team label nor a team for their namespace (0 while everything is attributed). Nobody will answer for it; AIFinOpsUnattributedSpend fires when it grows.',
      [g.query(q.unattributedPerHour, 'Unattributed')],
      'currencyUSD',
    ),

    g.row('Bridge'),
    g.timeseries(
      'Bridge messages/s by topic and result',
      'Messages the bridge consumed per second: applied, invalid (dead-lettered), duplicate (seen before) and skipped (already counted by an exporter of this cluster).',
      [g.query(q.bridgeMessages, '{{topic}} {{result}}')],
      'short',
      { stack: true, legendCalcs: ['mean', 'last'] },
    ),
    g.timeseries(
      'Consumer lag per partition',
      'Messages each topic partition is behind. One partition growing means one slow key (a team/app or node/GPU); all growing means the bridge needs more capacity. AIFinOpsBridgeConsumerLagHigh fires on it.',
      [g.query(q.bridgeLag, '{{topic}} [{{partition}}]')],
      'short',
      { legendCalcs: ['last', 'max'] },
    ),
    g.timeseries(
      'Consumer group lag on the aifinops topics (Kafka Exporter)',
      'Messages every consumer group is behind on %s, from Strimzi\'s Kafka Exporter: the bridge, and any other reader of the topics (a FOCUS export, a SIEM reading cost-anomalies). A line that keeps rising is a group slower than the topic fills; AIFinOpsKafkaConsumerLagGrowing fires after %s of growth. The bridge\'s own count is drawn too; only it shows where the Kafka Exporter is not deployed.' % [std.join(', ', c.kafkaLagTopics), c.kafkaLagGrowingFor],
      [
        g.query(q.kafkaGroupLag, '{{consumergroup}} {{topic}}'),
        g.query('sum by (topic) (%s)' % q.bridgeLag, 'bridge (its own count) {{topic}}'),
      ],
      'short',
      { legendCalcs: ['last', 'max'] },
    ),
    g.timeseries(
      'Dead letters/s by topic',
      'Invalid messages sent to the topic\'s .dlq per second (0 when there are none). Each is spend not counted: read the DLQ (its header says why), fix the producer, and replay.',
      [g.query(q.deadLetters, '{{topic}}')],
      'short',
      { w: 6 },
    ),
    g.timeseries(
      'Producer spool',
      'Messages waiting in each producer\'s disk spool because Kafka was unreachable. They are sent when Kafka is back; a spool that only grows means Kafka is down for that process.',
      [g.query(q.spool, '{{job}} {{instance}}')],
      'short',
      { w: 6 },
    ),
    g.timeseries(
      'Produced and failed/s',
      'Messages produced to Kafka per second by topic, and produce errors (0 when there are none). Errors that persist put messages in the spool; AIFinOpsBridgeProduceErrors fires on them.',
      [
        g.query(q.produced, '{{topic}} produced'),
        g.query(q.produceErrors, '{{topic}} errors'),
      ],
      'short',
      { w: 6 },
    ),
    g.timeseries(
      'Alerts forwarded to Kafka',
      'Alertmanager notifications the bridge published to cost-anomalies per second, by alert status (firing, resolved). With the watchdog routed to the bridge this never drops to 0; if it does, check the Alertmanager receiver.',
      [g.query(q.alertsForwarded, '{{status}}')],
      'short',
      { w: 6 },
    ),

    g.row('Collectors and scrapes'),
    g.stateTimeline(
      'Collector success',
      'Each collector\'s last fetch over time: green succeeded, red failed. A red row means that source\'s metrics are stale; the process log says why.',
      [g.query(q.collectorSuccess, '{{job}} {{collector}}')],
      'short',
      {
        thresholds: g.thresholds('red', [[1, 'green']]),
        mappings: g.valueText({ '0': ['Failed', 'red'], '1': ['OK', 'green'] }),
      },
    ),
    g.timeseries(
      'Collector duration',
      'How long each collector\'s fetch takes. One that nears the poll interval will fall behind: raise the interval or find the slow source.',
      [g.query(q.collectorDuration, '{{job}} {{collector}}')],
      's',
    ),
    g.timeseries(
      'Scrape duration',
      'How long Prometheus takes to scrape each aifinops target. Near the scrape interval (5 s on the fast path) scrapes start failing and alerts slow down: reduce series (see overflow) or shard.',
      [g.query(q.scrapeDuration, '{{job}} {{instance}}')],
      's',
    ),
    g.timeseries(
      'Label values folded into __other__',
      'Label values per second folded into "__other__" because a metric reached its label limit (0 when none). Spend is still counted, but not by that team, app or model: raise the limit or fix the label source.',
      [g.query(q.seriesOverflow, '{{metric}}')],
      'short',
    ),
    g.table(
      'Versions',
      'The aifinops version each job runs. Mixed versions during a rollout are expected; otherwise upgrade the odd one out.',
      [g.query(q.buildInfo, '', instant=true)],
      [['Processes', 'short']],
      { w: 24, h: 6 },
    ),
  ])
