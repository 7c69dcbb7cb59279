// Names of the recorded series (level:metric:operations), as functions of the config: window
// suffixes follow the configured windows. Rules, alerts and docs take them from here.
function(c) {
  // Fast tier: per team and model, over fastRateWindow.
  llmCostRate: 'team_model:aifinops_llm_cost_usd:rate' + c.fastRateWindow,
  llmRequestsRate: 'team_model:aifinops_llm_requests:rate' + c.fastRateWindow,
  llmTokensRate: 'team_model:aifinops_llm_tokens:rate' + c.fastRateWindow,
  // The same over fastConfirmRateWindow, which confirms large steps sooner.
  llmCostConfirmRate: 'team_model:aifinops_llm_cost_usd:rate' + c.fastConfirmRateWindow,
  llmRequestsConfirmRate: 'team_model:aifinops_llm_requests:rate' + c.fastConfirmRateWindow,
  llmTokensConfirmRate: 'team_model:aifinops_llm_tokens:rate' + c.fastConfirmRateWindow,
  // The rates over fastBaselineRateWindow whose maxima are the baselines.
  llmCostBaselineRate: 'team_model:aifinops_llm_cost_usd:rate' + c.fastBaselineRateWindow,
  llmTokensBaselineRate: 'team_model:aifinops_llm_tokens:rate' + c.fastBaselineRateWindow,
  // The baseline a fast series is compared with: the maximum over fastBaselineWindow, ending
  // fastBaselineOffset ago, of its baseline rate, where that window holds at least
  // fastBaselineMinHistory; else the same over the young window (fastYoungBaseline*). Named
  // after the series it serves.
  baseline(series): series + '_baseline',
  // $/h of each GPU a pod holds (a GPU shared by n pods: 1/n of its price each).
  gpuPodHourlyCost: 'pod_gpu:aifinops_gpu_hourly_cost_usd:share',
  // $/h of the GPUs a team's pods hold.
  gpuTeamHourlyCost: 'team:aifinops_gpu_hourly_cost_usd:sum',

  // Burn tier: spend (LLM + GPU) in $/s averaged over a window, per source and per team.
  spendBySource: 'team_source:aifinops_spend_usd_per_second:avg' + c.spendRateWindow,
  spend(window): 'team:aifinops_spend_usd_per_second:avg' + window,
  spendBase: self.spend(c.spendRateWindow),
  // Kubernetes costs from OpenCost (rules/kubernetes.libsonnet), $/s now per namespace and pod
  // team label (pod_team, absent for pods without one), per namespace, and per team averaged over
  // spendRateWindow; label resource = cpu, memory, storage or gpu (GPUs of nodes without a GPU
  // exporter).
  kubernetesPodTeamCost: 'namespace_pod_team_resource:aifinops_kubernetes_cost_usd_per_second:sum',
  kubernetesNamespaceCost: 'namespace_resource:aifinops_kubernetes_cost_usd_per_second:sum',
  kubernetesTeamCost: 'team_resource:aifinops_kubernetes_cost_usd_per_second:avg' + c.spendRateWindow,
  // Budgets and their periods.
  budget: 'team_period:aifinops_budget_usd:max',
  periodStart: 'period:aifinops_budget_period_start:timestamp_seconds',
  periodLength: 'period:aifinops_budget_period_length:seconds',
  periodRemaining: 'period:aifinops_budget_period_remaining:seconds',
  sustainable: 'team_period:aifinops_budget_usd_per_second:sustainable',
  periodToDate: 'team_period:aifinops_spend_usd:period_to_date',

  // The budget tier in a reporting currency other than USD (_config.currency, docs/currency.md):
  // the same series without `_usd` in the name and with a `currency` label, each converted at
  // its own evaluation with the rate in force then, so a new rate never rewrites recorded spend.
  fxRate: 'currency:aifinops_fx_rate:max',
  fxSpendBySource: 'team_source:aifinops_spend_per_second:avg' + c.spendRateWindow,
  fxSpend(window): 'team:aifinops_spend_per_second:avg' + window,
  fxBudget: 'team_period:aifinops_budget:max',
  fxSustainable: 'team_period:aifinops_budget_per_second:sustainable',
  fxPeriodToDate: 'team_period:aifinops_spend:period_to_date',
  // The series the budget tier compares: the `_usd` ones in USD, else the ones above.
  money: if c.currency == 'USD' then {
    base: $.spendBase,
    spend: $.spend,
    budget: $.budget,
    sustainable: $.sustainable,
    periodToDate: $.periodToDate,
  } else {
    base: $.fxSpend(c.spendRateWindow),
    spend: $.fxSpend,
    budget: $.fxBudget,
    sustainable: $.fxSustainable,
    periodToDate: $.fxPeriodToDate,
  },

  // Pipeline tier: 1 per aifinops job and instance, labelled with the part of the figures it
  // feeds (aifinops_source = gpu, llm or all).
  jobSource: 'job_instance:aifinops_source:info',
  // Series of each cost family present now (label metric), the memory of which
  // families the installation runs.
  costFamilySeries: 'metric:aifinops_cost_series:count',

  // Anomaly tier.
  prediction: 'team:aifinops_spend_usd_per_second:prediction',
  absResidual: 'team:aifinops_spend_usd_per_second:abs_residual',
  mad: 'team:aifinops_spend_usd_per_second:mad' + c.anomalyMadWindow,
  upperBand: 'team:aifinops_spend_usd_per_second:upper_band',
}
