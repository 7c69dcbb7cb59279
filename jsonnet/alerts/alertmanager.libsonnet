// Alertmanager configuration for the pack, rendered to rules/alertmanager.yaml as commented YAML
// (the commented receivers are examples to uncomment). Routes: tripwires at once (group_wait 0s),
// the fast tier in groups of one (alertname, team, model) with a 1 s group_wait, the Watchdog as
// a heartbeat, everything else at ordinary defaults; all to the bridge's webhook, which publishes
// them to cost-anomalies.
local r = import '../lib/rules.libsonnet';

{
  local c = $._config,
  // YAML flow lists; matchers single-quoted, as Alertmanager's documentation writes them.
  local list(xs) = '[' + std.join(', ', ['"%s"' % x for x in xs]) + ']',
  local matchers(ms) = '[' + std.join(', ', ["'%s'" % m for m in ms]) + ']',
  local matcher(m) = matchers([m]),
  local faking = 'alertname=~"%s"' % std.join('|', $.aifinopsSpendFakingAlerts),
  local faked = '%s=~"fast|anomaly"' % r.tierLabel,
  local levels = [std.toString(std.round(l.ratio * 100)) for l in c.budgetThresholds],
  // Each threshold level inhibits the lower ones of the same team and period.
  local thresholdInhibitions = std.join('', [
    |||
      - source_matchers: %(source)s
        target_matchers: %(target)s
        equal: ["team", "period"]
    ||| % {
      source: matchers(['alertname="AIFinOpsBudgetThreshold"', 'threshold="%s"' % levels[i]]),
      target: matchers(['alertname="AIFinOpsBudgetThreshold"', 'threshold=~"%s"' % std.join('|', levels[:i])]),
    }
    for i in std.range(1, std.length(levels) - 1)
  ]),

  alertmanagerConfigYaml:: |||
    # Alertmanager routing for the aifinops rule pack. Validate with
    #   amtool check-config rules/alertmanager.yaml
    # Every aifinops alert goes to the bridge's webhook, which publishes it to the cost-anomalies
    # topic (and answers 200 only once Kafka holds it, so Alertmanager retries the rest). To use it
    # inside an existing configuration, copy the routes, inhibit_rules and receivers.

    route:
      receiver: aifinops-bridge
      # Burn, anomaly, waste and pipeline alerts: one notification per alert name, team and
      # budget period, at Alertmanager's usual pace.
      group_by: %(defaultGroupBy)s
      group_wait: %(defaultGroupWait)s
      group_interval: %(defaultGroupInterval)s
      repeat_interval: %(defaultRepeatInterval)s
      routes:
        # Page a person as well (uncomment together with the receiver below): `continue: true`
        # lets the alert go on to the bridge routes after this one.
        # - receiver: pagerduty
        #   matchers: ['severity="critical"']
        #   continue: true
        # - receiver: slack
        #   matchers: ['severity=~"critical|warning"', '%(tierLabel)s=~"fast|burn|anomaly"']
        #   continue: true

        # Heartbeat: AIFinOpsWatchdog always fires; resending it often lets the bridge (and
        # whoever reads cost-anomalies) notice when the alert path breaks.
        - receiver: aifinops-bridge
          matchers: %(watchdogMatcher)s
          group_by: ["alertname"]
          group_wait: 0s
          group_interval: 1m
          repeat_interval: %(watchdogRepeatInterval)s

        # Tripwires: the token exporter and the bridge post AIFinOpsSpendTripwire to this API the
        # moment one event trips a hard limit (a single call, or a team's spend or tokens over
        # the last minute). Notified at once (group_wait %(tripwireGroupWait)s), one group per
        # (alertname, team, tripwire), to the bridge like every alert (so it is published to
        # cost-anomalies); no inhibition targets this tier.
        - receiver: aifinops-bridge
          matchers: %(tripwireMatcher)s
          group_by: %(tripwireGroupBy)s
          group_wait: %(tripwireGroupWait)s
          group_interval: %(tripwireGroupInterval)s
          repeat_interval: %(tripwireRepeatInterval)s

        # The fast tier: each (alertname, team, model) is its own group, so a new alert never
        # waits for another group's group_interval, and group_wait is the whole delay here
        # (scrape 5 s + rule group 5 s + group_wait 1 s: a spike is notified in about 10 s).
        - receiver: aifinops-bridge
          matchers: %(fastMatcher)s
          group_by: %(fastGroupBy)s
          group_wait: %(fastGroupWait)s
          group_interval: %(fastGroupInterval)s
          repeat_interval: %(fastRepeatInterval)s

    inhibit_rules:
      # A pipeline outage fakes spend changes: missing usage looks like a drop, and the backlog
      # it leaves arrives as a burst that looks like a spike. While one of these fires (they keep
      # firing %(keepFiringFor)s after recovery) the fast and anomaly alerts that read what failed,
      # in the same cluster, are silenced; %(sourceLabel)s says which part each alert reads and
      # each failure fakes. A GPU-side failure (a GPU node's exporter down, GPU cost absent)
      # silences the GPU alerts only: GPU figures come back at their true level, so it cannot
      # push a team's total (the anomaly tier, "all") up. An LLM-side failure silences the LLM
      # alerts and the total; the bridge feeds both and silences every one. A failure never
      # silences the other part, budget alerts (the spend they see is real, only late) or
      # tripwires (counted where the event is seen).
      - source_matchers: %(gpuFaking)s
        target_matchers: %(gpuFaked)s
        equal: %(clusterLabel)s
      - source_matchers: %(llmFaking)s
        target_matchers: %(llmFaked)s
        equal: %(clusterLabel)s
      # The fast burn (a page) makes the slow one (a ticket) redundant.
      - source_matchers: ['alertname="AIFinOpsBudgetBurnFast"']
        target_matchers: ['alertname="AIFinOpsBudgetBurnSlow"']
        equal: ["team", "period"]
    %(thresholdInhibitions)s

    receivers:
      - name: aifinops-bridge
        webhook_configs:
          # The bridge: POST /v1/alertmanager (port 9873).
          - url: %(webhookURL)s
            send_resolved: true
            max_alerts: 0
      # - name: pagerduty
      #   pagerduty_configs:
      #     - routing_key: <Events API v2 integration key>
      #       description: '{{ .CommonAnnotations.summary }}'
      #       details:
      #         description: '{{ .CommonAnnotations.description }}'
      #         runbook: '{{ .CommonAnnotations.runbook_url }}'
      #         dashboard: '{{ .CommonAnnotations.dashboard_url }}'
      # - name: slack
      #   slack_configs:
      #     - api_url: https://hooks.slack.com/services/<your webhook>
      #       channel: '#finops-alerts'
      #       send_resolved: true
      #       title: '[{{ .Status | toUpper }}] {{ .CommonAnnotations.summary }}'
      #       title_link: '{{ .CommonAnnotations.dashboard_url }}'
      #       text: '{{ range .Alerts }}{{ .Annotations.description }} <{{ .Annotations.runbook_url }}|runbook>{{ "\n" }}{{ end }}'
  ||| % {
    tierLabel: r.tierLabel,
    defaultGroupBy: list(c.alertmanagerDefault.groupBy),
    defaultGroupWait: c.alertmanagerDefault.groupWait,
    defaultGroupInterval: c.alertmanagerDefault.groupInterval,
    defaultRepeatInterval: c.alertmanagerDefault.repeatInterval,
    watchdogMatcher: matcher('alertname="AIFinOpsWatchdog"'),
    watchdogRepeatInterval: c.alertmanagerWatchdogRepeatInterval,
    tripwireMatcher: matcher('%s="tripwire"' % r.tierLabel),
    tripwireGroupBy: list(c.alertmanagerTripwire.groupBy),
    tripwireGroupWait: c.alertmanagerTripwire.groupWait,
    tripwireGroupInterval: c.alertmanagerTripwire.groupInterval,
    tripwireRepeatInterval: c.alertmanagerTripwire.repeatInterval,
    fastMatcher: matcher('%s="fast"' % r.tierLabel),
    fastGroupBy: list(c.alertmanagerFast.groupBy),
    fastGroupWait: c.alertmanagerFast.groupWait,
    fastGroupInterval: c.alertmanagerFast.groupInterval,
    fastRepeatInterval: c.alertmanagerFast.repeatInterval,
    keepFiringFor: c.pipelineKeepFiringFor,
    sourceLabel: r.sourceLabel,
    gpuFaking: matchers([faking, '%s=~"gpu|all"' % r.sourceLabel]),
    gpuFaked: matchers([faked, '%s="gpu"' % r.sourceLabel]),
    llmFaking: matchers([faking, '%s=~"llm|all"' % r.sourceLabel]),
    llmFaked: matchers([faked, '%s=~"llm|all"' % r.sourceLabel]),
    clusterLabel: list([c.clusterLabel]),
    thresholdInhibitions: std.join('\n', [
      '  ' + line
      for line in std.split(std.stripChars(thresholdInhibitions, '\n'), '\n')
    ]),
    webhookURL: c.alertmanagerWebhookURL,
  },
}
