// Every selector, threshold, window and floor the rules and alerts use. Each key says what it
// drives and when to change it. Override any of them when importing the mixin:
//
//   (import 'aifinops/mixin.libsonnet') + { _config+:: { llmSpikeFloorUsdPerHour: 200 } }
//
// Windows and intervals are Prometheus durations ('30s', '1h', '23h30m'); money is US dollars.
// docs/rules.md explains the tiers and how the keys interact.
{
  _config+:: {
    // ---------------------------------------------------------------------------------------
    // Selectors: inserted between {} in every query. The defaults are the `job` labels the Helm
    // chart's ServiceMonitors give (aifinops-gpu-exporter, aifinops-token-exporter,
    // aifinops-bridge). Change them when your scrape config names the jobs differently. The token
    // exporter and the bridge expose the same LLM families and every event is counted once per
    // Prometheus (DESIGN.md "Data flow"), so the rules sum across these jobs.

    // LLM usage families (aifinops_llm_*): the token exporter and the bridge.
    llmSelector: 'job=~"aifinops-token-exporter|aifinops-bridge"',
    // GPU families (aifinops_gpu_*): the GPU exporter, and the bridge when it mirrors GPU events.
    gpuSelector: 'job=~"aifinops-gpu-exporter|aifinops-bridge"',
    // aifinops_budget_usd: whichever process serves the `llm.budgets` config (both may; the
    // rules take the max per team and period, so duplicates do not add up).
    budgetSelector: 'job=~"aifinops-token-exporter|aifinops-bridge"',
    // The bridge's own metrics (aifinops_bridge_*).
    bridgeSelector: 'job="aifinops-bridge"',
    // OpenCost's metrics (node_*_hourly_cost, container_*_allocation, pod_pvc_allocation,
    // pv_hourly_cost): the job of OpenCost's ServiceMonitor. Scrape it with honor_labels (the
    // Terraform does), or its namespace, pod and container labels become exported_*.
    opencostSelector: 'job="opencost"',
    // aifinops_namespace_team_info: the token exporter (every installation runs it) and the
    // bridge; one team per namespace is taken whatever serves it.
    namespaceTeamSelector: 'job=~"aifinops-token-exporter|aifinops-bridge"',
    // kube_pod_labels{namespace,pod,label_<podTeamLabel>}: the team label of each pod, for its
    // Kubernetes costs. kube-state-metrics exposes a pod label only when allowlisted
    // (--metric-labels-allowlist=pods=[team]; charts/kube-prometheus-stack-values.yaml sets it);
    // OpenCost exposes its own copy with every label unless its KSM metrics are turned off
    // (emitKsmV1Metrics: false). Either is enough; duplicates (KSM replicas, both) count once.
    podLabelsSelector: 'job=~"kube-state-metrics|opencost"',
    // Every aifinops process: `up`, aifinops_collector_success, aifinops_series_overflow_total.
    aifinopsSelector: 'job=~"aifinops-gpu-exporter|aifinops-token-exporter|aifinops-bridge"',

    // Team label values that mean "nobody": spend carrying one of them (or no team label) is
    // unattributed. The exporters write "" for an event or GPU without a team; add e.g.
    // 'unknown' if your gateways send a placeholder.
    unattributedTeamRegex: '',
    // The pod label naming a pod's team, as a Kubernetes label key ('team',
    // 'app.kubernetes.io/team'): keep it equal to the GPU exporter's gpu.team_label. A pod's
    // Kubernetes costs go to the team this label names; a pod without it to its namespace's team
    // (gpu.namespace_teams), else to no team, as GPU holders are resolved.
    podTeamLabel: 'team',

    // Alertmanager inhibitions only silence alerts of the same value of this label (your
    // Prometheus external label naming the cluster); alerts without it all count as one cluster.
    clusterLabel: 'cluster',

    // ---------------------------------------------------------------------------------------
    // Links in every alert.

    // runbook_url = runbookURL + '#' + lower-case alert name (the headings of docs/runbooks.md).
    // Point it at your fork or wiki if you keep your own runbooks.
    runbookURL: 'https://github.com/aifinops/aifinops/blob/main/docs/runbooks.md',
    // Grafana's base URL, for dashboard_url. The default is Grafana's own default address (and
    // what `kubectl port-forward svc/<grafana> 3000:80` gives); set your Grafana's public URL.
    grafanaURL: 'http://localhost:3000',
    // UIDs of the aifinops dashboards (the dashboards set the same ones); alerts link to
    // <grafanaURL>/d/<uid>. Change them only together with the dashboards.
    dashboardUIDs: {
      overview: 'aifinops-overview',
      gpu: 'aifinops-gpu',
      llm: 'aifinops-llm',
      pipeline: 'aifinops-pipeline',
      savings: 'aifinops-savings',
    },

    // ---------------------------------------------------------------------------------------
    // Fast tier (tripwire): group `aifinops-fast`. Detection latency is scrape interval + this
    // interval + Alertmanager's group_wait; keep the interval equal to the scrape interval of
    // the aifinops jobs (5 s in the chart) and the rate window at about 6 scrape intervals.

    // Evaluation interval of the fast group.
    fastInterval: '5s',
    // rate() window of the fast recording rules (team_model:aifinops_llm_*:rate30s). Shorter
    // reacts sooner but is noisier; never below 4x the scrape interval.
    fastRateWindow: '30s',
    // A spike is compared with the maximum of the team/model's rate over this window...
    fastBaselineWindow: '1h',
    // ...ending this long ago, so a spike stays out of its own baseline for this long. A
    // sustained new level becomes the baseline after it (the alert then resolves, after
    // fastKeepFiringFor, and the burn tier carries on); raise it to keep fast alerts firing
    // longer through a sustained runaway.
    fastBaselineOffset: '30m',
    // A baseline counts only when its window holds at least this much history; with less (a
    // team or model that started spending recently) the higher no-history floors apply. It
    // also keeps a series' first seconds, when rate() still ramps up, from being its baseline.
    fastBaselineMinHistory: '10m',
    // A team/model (or GPU team) with too little history for that baseline is compared with
    // the maximum over this shorter window, ending fastYoungBaselineOffset ago, once it holds
    // fastYoungBaselineMinHistory: a new team or a fresh installation is protected from its
    // first quarter of an hour (10m + 5m) instead of fastBaselineWindow's 40 minutes. A
    // sustained step becomes that baseline after the offset (5 minutes), so the fast alert
    // resolves sooner while history is short; the burn tier and tripwires carry on.
    fastYoungBaselineWindow: '10m',
    fastYoungBaselineOffset: '5m',
    fastYoungBaselineMinHistory: '8m',
    // The rate window of that maximum. Equal to fastRateWindow, the baseline is the noisiest
    // 30 s of the hour: on a sparse series (a few calls per 30 s) noise alone makes it several
    // times the typical level and hides real 10x spikes. Longer smooths that noise; bursts
    // shorter than this window count only partly in the baseline (a 30 s burst at 20x still
    // stays under 4x a 2-minute maximum that holds it).
    fastBaselineRateWindow: '2m',
    // A large step in calls (an agent loop, a new workload) is confirmed over this shorter
    // rate window (3 scrape intervals: 2 intervals between its samples): its rate must clear
    // llmSpikeFactor (tokenRunawayFactor) times the baseline there while the fastRateWindow
    // rate already shows fastConfirmFactor times it, the short window holds
    // fastConfirmMinRequestsPerMinute, and its request rate is fastConfirmRequestsFactor times
    // the fastRateWindow one of a window earlier. A 10x step in calls then pages one scrape
    // interval sooner (about 5 s instead of 10 s). The request conditions keep heavy calls and
    // Poisson clusters of a low-volume team (and a step in call size only) on the 30 s window:
    // with 30 requests a minute and 2x, noisy traffic paged about once per 12 team-days in the
    // detection benchmark; with these, never in 24.
    fastConfirmRateWindow: '15s',
    fastConfirmFactor: 2.5,
    fastConfirmMinRequestsPerMinute: 60,
    fastConfirmRequestsFactor: 3,
    // Fast alerts fire at the first evaluation that sees the change (for: 0s) and stay firing
    // this long after the condition clears, so a noisy spike does not flap.
    fastKeepFiringFor: '5m',

    // AIFinOpsLLMSpendSpike: a team/model's $/h over fastRateWindow is above this floor...
    llmSpikeFloorUsdPerHour: 50,
    // ...and above this many times its baseline maximum. Lower catches smaller spikes sooner
    // (a 10x spike crosses 4x after about 3 scrapes) at the price of more noise.
    llmSpikeFactor: 4,
    // A team/model without a baseline (no spend, or too little history, in either baseline
    // window) pages above this $/h once the pack has baselines at all (so loading the rules
    // does not page for every team already spending)...
    llmSpikeNewSpendFloorUsdPerHour: 200,
    // ...and above this $/h from its first scrape, even on a fresh installation: a runaway
    // that starts with the team does not wait for history. Set it above the steady $/h of your
    // biggest team and model, or a fresh installation pages for them until their baseline
    // forms (about 13 minutes).
    llmSpikeNoHistoryFloorUsdPerHour: 1000,
    // Minimum volume for both LLM fast alerts: requests per minute over fastRateWindow, so a
    // single expensive call is not a "spike".
    llmSpikeMinRequestsPerMinute: 3,

    // AIFinOpsLLMTokenRunaway: tokens/s (all token types) of a team/model above this floor...
    tokenRunawayFloorTokensPerSecond: 2000,
    // ...and above this many times its baseline maximum...
    tokenRunawayFactor: 5,
    // ...or, without any baseline, above this many tokens/s.
    tokenRunawayNewFloorTokensPerSecond: 10000,

    // AIFinOpsGPUSpendJump: a team's allocated-GPU $/h rose by at least this much above the
    // maximum of its baseline window...
    gpuJumpMinIncreaseUsdPerHour: 100,
    // ...and to at least this many times that maximum (so routine growth of a big fleet is not
    // a jump). A team without GPUs in the baseline window jumps when its $/h exceeds the
    // minimum increase.
    gpuJumpFactor: 1.5,

    // ---------------------------------------------------------------------------------------
    // Burn tier: group `aifinops-burn`. Budgets come from aifinops_budget_usd{team,period}
    // (period daily or monthly, UTC days and calendar months); a team without a budget gets no
    // budget alert. The sustainable rate is budget / period length: the rate that spends the
    // budget exactly at the end of the period (burn rate 1).

    // Evaluation interval of the burn group; it also records the spend series every slower tier
    // uses (team:aifinops_spend_usd_per_second:avg5m, its longer averages, period-to-date spend).
    burnInterval: '30s',
    // rate() window of that spend series, and the step at which period-to-date spend is summed
    // from it. Longer windows smooth more; the longer averages are built from it.
    spendRateWindow: '5m',
    // Multi-window multi-burn-rate alerts (Google SRE workbook, 30-day table): each entry fires
    // `alert` when the average spend over `long` AND over `short` are above `factor` times the
    // sustainable rate, for `for`. The short window makes the alert stop soon after the burn
    // stops. Add, remove or retune entries; every window used here is recorded.
    budgetBurnWindows: [
      { alert: 'AIFinOpsBudgetBurnFast', severity: 'critical', long: '1h', short: '5m', factor: 14.4, 'for': '2m' },
      { alert: 'AIFinOpsBudgetBurnFast', severity: 'critical', long: '6h', short: '30m', factor: 6, 'for': '15m' },
      { alert: 'AIFinOpsBudgetBurnSlow', severity: 'warning', long: '1d', short: '2h', factor: 3, 'for': '1h' },
      { alert: 'AIFinOpsBudgetBurnSlow', severity: 'warning', long: '3d', short: '6h', factor: 1, 'for': '3h' },
    ],
    // AIFinOpsBudgetThreshold: one alert per level once the period-to-date spend crosses
    // `ratio` of the budget (label threshold = ratio in percent). A higher level inhibits the
    // lower ones in Alertmanager.
    budgetThresholds: [
      { ratio: 0.5, severity: 'info' },
      { ratio: 0.8, severity: 'warning' },
      { ratio: 1.0, severity: 'critical' },
    ],
    // How long a threshold must hold before it fires (guards against a counter glitch).
    budgetThresholdFor: '1m',
    // AIFinOpsBudgetExhaustionForecast: period-to-date spend + (average $/s over `window`) x
    // (time left in the period) above `margin` x budget, for `for`. The window should cover a
    // full daily cycle, or the busy hours are extrapolated over the quiet ones (a shorter one
    // warns sooner and more often).
    budgetForecast: {
      daily: { window: '1d', 'for': '30m' },
      monthly: { window: '1d', 'for': '1h' },
    },
    // Forecast margin: 1.1 only warns when the forecast exceeds the budget by 10 %.
    budgetForecastMargin: 1.0,
    // Burn and forecast windows at least this long count only once the team has spend history
    // that old: a partly filled window over a daily cycle reads the busy hours as the average
    // (just after the rules are first loaded, or for a new team). Shorter windows count at once,
    // so a new team that burns fast is caught fast.
    budgetFullHistoryFrom: '1d',

    // ---------------------------------------------------------------------------------------
    // Anomaly tier: group `aifinops-anomaly`. A team's spend (LLM + GPU, 5-minute average) is
    // compared with a seasonal prediction: the highest of its averages over anomalySeasonWindow
    // centred on the same time of day on each of the last anomalySeasonDays days that have
    // history. The band above it is a robust z-score: prediction + anomalyZThreshold x 1.4826 x
    // MAD, the MAD (median absolute deviation of spend from its prediction) taken over
    // anomalyMadWindow and floored. Upward only; a team needs one day of history to alert.

    // Evaluation interval of the anomaly group.
    anomalyInterval: '5m',
    // Days looked back at for the same time of day. 7 covers weekday/weekend patterns (a Monday
    // is compared with last week's weekdays too, not only with Sunday) once a week of history
    // exists; it needs that much retention.
    anomalySeasonDays: 7,
    // Width of the window averaged around the same time on each of those days.
    anomalySeasonWindow: '1h',
    // MAD window: the spread of normal prediction errors. Longer is steadier.
    anomalyMadWindow: '1w',
    // Robust z-score above which spend is anomalous (5 = far outside the normal error).
    anomalyZThreshold: 5,
    // MAD floors, so a flat series (GPUs: constant price x allocation) does not divide by
    // ~zero: the MAD is at least this fraction of the prediction...
    anomalyMadFloorRatio: 0.1,
    // ...plus this many $/h.
    anomalyMadFloorUsdPerHour: 1,
    // Spend must exceed the prediction by at least this many $/h (cheap anomalies stay quiet).
    anomalyMinExcessUsdPerHour: 10,
    // Above the band for this long before firing.
    anomalyFor: '15m',

    // ---------------------------------------------------------------------------------------
    // Waste and hygiene tier: group `aifinops-waste`.

    // Evaluation interval of the waste group.
    wasteInterval: '30s',
    // AIFinOpsGPUIdle: a GPU held by a pod whose utilisation (0..1), averaged over
    // gpuIdleAvgWindow, stays below gpuIdleRatio for gpuIdleFor.
    gpuIdleRatio: 0.05,
    gpuIdleAvgWindow: '5m',
    gpuIdleFor: '15m',
    // AIFinOpsGPUIdleSpendHigh: a team's idle-GPU spend (aifinops_gpu_idle_cost_usd_total)
    // over gpuIdleSpendWindow above this $/h, for gpuIdleSpendFor.
    gpuIdleSpendUsdPerHour: 20,
    gpuIdleSpendWindow: '30m',
    gpuIdleSpendFor: '15m',
    // AIFinOpsLLMUnpricedUsage: at least this many unpriced requests of a provider/model within
    // unpricedWindow (their dollars are missing from every figure), for unpricedFor.
    unpricedMinRequests: 1,
    unpricedWindow: '15m',
    unpricedFor: '5m',
    // AIFinOpsUnattributedSpend: unattributed spend over unattributedWindow above this $/h...
    unattributedFloorUsdPerHour: 10,
    // ...and above this fraction of all spend, for unattributedFor.
    unattributedMinRatio: 0.05,
    unattributedWindow: '1h',
    unattributedFor: '30m',
    // AIFinOpsSeriesOverflow: label values folded into __other__ within this window.
    overflowWindow: '10m',

    // ---------------------------------------------------------------------------------------
    // Pipeline tier: group `aifinops-pipeline`.

    // Evaluation interval of the pipeline group.
    pipelineInterval: '30s',
    // Pipeline alerts that make spend alerts lie (exporter down, collector failing, consumer
    // lag, cost metrics absent) stay firing this long after recovery: the backlog they leave
    // arrives as a burst, and Alertmanager's inhibition keeps silencing the fast and anomaly
    // alerts it fakes until then. Keep it above fastKeepFiringFor.
    pipelineKeepFiringFor: '10m',
    // AIFinOpsExporterDown: `up` of an aifinops job is 0 for this long.
    exporterDownFor: '1m',
    // AIFinOpsCollectorFailing: aifinops_collector_success is 0 for this long.
    collectorFailingFor: '2m',
    // AIFinOpsBridgeConsumerLagHigh: messages behind on a topic, for bridgeLagFor.
    bridgeLagMessages: 10000,
    bridgeLagFor: '5m',
    // AIFinOpsKafkaConsumerLagGrowing: a consumer group's lag on one of these topics (Strimzi's
    // Kafka Exporter, kafka_consumergroup_lag) is above kafkaLagMinMessages and its trend over
    // kafkaLagTrendWindow is upward, for kafkaLagGrowingFor. The topics are the chart's defaults
    // (kafka.topics); list yours if you renamed them.
    kafkaExporterSelector: 'job=~".+"',
    kafkaLagTopics: ['ai-api-costs', 'gpu-utilization-events', 'cost-anomalies'],
    kafkaLagMinMessages: 100,
    kafkaLagTrendWindow: '5m',
    kafkaLagGrowingFor: '10m',
    // AIFinOpsBridgeDeadLetters: invalid (dead-lettered) messages within this window.
    deadLetterWindow: '10m',
    // AIFinOpsBridgeProduceErrors: produce errors within this window, for produceErrorsFor.
    produceErrorsWindow: '5m',
    produceErrorsFor: '5m',
    // AIFinOpsTripwireSendFailing: a token exporter or bridge failed to post tripwire alerts
    // to Alertmanager (aifinops_tripwire_send_errors_total) within this window.
    tripwireSendErrorsWindow: '5m',
    // AIFinOpsCostMetricsAbsent: one of these families has had no sample for
    // costMetricsAbsentWindow, for costMetricsAbsentFor...
    costMetricsFamilies: ['aifinops_llm_cost_usd_total', 'aifinops_gpu_cost_usd_total'],
    costMetricsAbsentWindow: '10m',
    costMetricsAbsentFor: '5m',
    // ...after it had samples within this window (recorded by the pipeline group, so it
    // survives the family's own series going stale). A family the installation never ran (the
    // GPU one without a GPU exporter) never fires, and one gone for longer than this stops.
    costMetricsSeenWindow: '1w',

    // ---------------------------------------------------------------------------------------
    // Savings tier: group `aifinops-savings` (docs/savings.md). What each team could stop paying,
    // in $/month, with the action that saves it: aifinops_savings_usd_per_month{action=...}.

    // Evaluation interval of the savings group, and the step of the per-GPU series it records
    // (5-minute utilisation average and peak, memory peak, busy and off-hours flags) whose
    // look-back statistics are the evidence. Keep it equal to the sample window below.
    savingsInterval: '5m',
    savingsSampleWindow: '5m',
    // Look-back of every recommendation: the evidence is the p95 / maximum / share of busy
    // samples over this window. A week covers weekdays and the weekend.
    savingsLookback: '7d',
    // A GPU is only judged once this much of the look-back is recorded (a fresh GPU or a fresh
    // installation gets no recommendation from a few minutes of data).
    savingsMinHistory: '1d',
    // Hours in the month the $/month figures are written for (365 x 24 / 12).
    savingsHoursPerMonth: 730,
    // release: a GPU held by a pod whose p95 of 5-minute average utilisation over the look-back
    // is under this ratio saves its whole cost (the waste tier's idle threshold by default).
    savingsIdleRatio: 0.05,
    // A 5-minute average at or above savingsIdleRatio counts the GPU busy in that step; busy
    // hours per day are the share of busy steps x 24.
    // share: the smallest MIG profile of the GPU's model (savingsMigProfiles) whose compute
    // share, times this headroom, is above the p95 of the GPU's 5-minute utilisation PEAKS
    // (so a bursty GPU saturated at its peaks is not squeezed), and whose memory, times the
    // memory headroom, holds the GPU's memory peak over the look-back.
    savingsShareHeadroom: 0.8,
    savingsShareMemoryHeadroom: 0.9,
    // MIG profiles per GPU model, shipped as data: `match` is a regular expression on the
    // model label of aifinops_gpu_hourly_cost_usd; `slices` the compute slices of the whole
    // GPU; each profile its compute slices and memory (GiB). A profile costs slices/total of
    // the GPU (how the exporter splits MIG GPUs). NVIDIA MIG user guide, "Supported profiles".
    savingsMigProfiles: [
      { gpu: 'A100 40GB', match: '.*A100.*40GB.*', slices: 7, profiles: [
        { name: '1g.5gb', slices: 1, memoryGiB: 5 },
        { name: '2g.10gb', slices: 2, memoryGiB: 10 },
        { name: '3g.20gb', slices: 3, memoryGiB: 20 },
        { name: '4g.20gb', slices: 4, memoryGiB: 20 },
      ] },
      { gpu: 'A100 80GB', match: '.*A100.*80GB.*', slices: 7, profiles: [
        { name: '1g.10gb', slices: 1, memoryGiB: 10 },
        { name: '2g.20gb', slices: 2, memoryGiB: 20 },
        { name: '3g.40gb', slices: 3, memoryGiB: 40 },
        { name: '4g.40gb', slices: 4, memoryGiB: 40 },
      ] },
      { gpu: 'H100 80GB', match: '.*H100.*', slices: 7, profiles: [
        { name: '1g.10gb', slices: 1, memoryGiB: 10 },
        { name: '2g.20gb', slices: 2, memoryGiB: 20 },
        { name: '3g.40gb', slices: 3, memoryGiB: 40 },
        { name: '4g.40gb', slices: 4, memoryGiB: 40 },
      ] },
      { gpu: 'H200 141GB', match: '.*H200.*', slices: 7, profiles: [
        { name: '1g.18gb', slices: 1, memoryGiB: 18 },
        { name: '2g.35gb', slices: 2, memoryGiB: 35 },
        { name: '3g.71gb', slices: 3, memoryGiB: 71 },
        { name: '4g.71gb', slices: 4, memoryGiB: 71 },
      ] },
      { gpu: 'A30 24GB', match: '.*A30.*', slices: 4, profiles: [
        { name: '1g.6gb', slices: 1, memoryGiB: 6 },
        { name: '2g.12gb', slices: 2, memoryGiB: 12 },
      ] },
    ],
    // schedule: working hours (UTC, like the budgets): [start, end) hours on these days
    // (0 = Sunday). A GPU busy in working hours whose off-hours steps are busy in at most
    // savingsScheduleMaxOffHoursBusyRatio of them saves what its off-hours idle steps cost.
    savingsWorkingHours: { startHour: 8, endHour: 20, days: [1, 2, 3, 4, 5] },
    savingsScheduleMaxOffHoursBusyRatio: 0.05,
    // cheaper_model what-if: provider -> model -> the cheaper model of the same provider its
    // traffic is priced on. The token exporter and bridge must expose those models' prices
    // (llm.what_if_models in their config; docs/savings.md).
    savingsCheaperModels: {
      openai: { 'gpt-4o': 'gpt-4o-mini', 'gpt-4.1': 'gpt-4.1-mini' },
      anthropic: { 'claude-sonnet-4-5': 'claude-haiku-4-5', 'claude-opus-4-1': 'claude-sonnet-4-5' },
    },
    // AIFinOpsSavingsAvailable (info): a team's recommended GPU savings above this $/month,
    // for savingsAlertFor.
    savingsAlertUsdPerMonth: 1000,
    savingsAlertFor: '1h',

    // ---------------------------------------------------------------------------------------
    // Alertmanager (rules/alertmanager.yaml).

    // The bridge's webhook (DESIGN.md: POST /v1/alertmanager on port 9873). In Kubernetes, use
    // the bridge Service, e.g. http://<release>-bridge.<namespace>.svc:9873/v1/alertmanager.
    alertmanagerWebhookURL: 'http://127.0.0.1:9873/v1/alertmanager',
    // Fast tier route: every (alertname, team, model) is its own group so a new alert never
    // waits for another group's interval; group_wait is the whole Alertmanager delay.
    alertmanagerFast: { groupBy: ['alertname', 'team', 'model'], groupWait: '1s', groupInterval: '30s', repeatInterval: '1h' },
    // Tripwire tier: AIFinOpsSpendTripwire, which the token exporter and the bridge post
    // straight to Alertmanager's API the moment one event trips a hard limit (aifinops_tier
    // "tripwire", label `tripwire` = which limit). Nothing to wait for: group_wait 0s; each
    // (alertname, team, tripwire) is its own group. No inhibition silences it.
    alertmanagerTripwire: { groupBy: ['alertname', 'team', 'tripwire'], groupWait: '0s', groupInterval: '30s', repeatInterval: '1h' },
    // Every other aifinops alert.
    alertmanagerDefault: { groupBy: ['alertname', 'team', 'period'], groupWait: '30s', groupInterval: '5m', repeatInterval: '4h' },
    // AIFinOpsWatchdog is re-sent this often, so the bridge (and whoever watches
    // cost-anomalies) sees a heartbeat.
    alertmanagerWatchdogRepeatInterval: '5m',
  },
}
