// Names of the savings tier's recorded series, as functions of the config (suffixes follow the
// sample window and the look-back). Rules, alerts, dashboards and docs take them from here.
function(c) {
  local w = c.savingsSampleWindow,
  local lb = c.savingsLookback,

  // The recommendations and opportunities: $/month per pod (GPU actions) or per team and model
  // (LLM actions), label action = release | share | schedule | prompt_cache | cheaper_model.
  savings: 'aifinops_savings_usd_per_month',
  // A team's recommended GPU savings (the largest action per pod, so actions never add up).
  teamSavings: 'team:aifinops_savings_usd_per_month:sum',
  // A team's LLM opportunities, upper bounds (the larger of the two per team and model).
  teamOpportunities: 'team:aifinops_savings_opportunity_usd_per_month:sum',

  // Per GPU (node, gpu, uuid), one sample per savingsInterval.
  utilAvg: 'gpu:aifinops_gpu_utilization_ratio:avg' + w,
  utilPeak: 'gpu:aifinops_gpu_utilization_ratio:max' + w,
  memPeak: 'gpu:aifinops_gpu_memory_used_bytes:max' + w,
  busy: 'gpu:aifinops_gpu_busy:bool' + w,
  offHours: 'gpu:aifinops_gpu_off_hours:bool' + w,
  offHoursBusy: 'gpu:aifinops_gpu_off_hours_busy:bool' + w,

  // The evidence over the look-back, per GPU judged (at least savingsMinHistory recorded).
  utilP95: 'gpu:aifinops_gpu_utilization_ratio:p95_' + lb,
  peakP95: 'gpu:aifinops_gpu_utilization_peak_ratio:p95_' + lb,
  memMax: 'gpu:aifinops_gpu_memory_used_bytes:max_' + lb,
  busyHours: 'gpu:aifinops_gpu_busy_hours_per_day:avg_' + lb,
  offHoursBusyRatio: 'gpu:aifinops_gpu_off_hours_busy:ratio_' + lb,
  offHoursIdleShare: 'gpu:aifinops_gpu_off_hours_idle:ratio_' + lb,

  // LLM: tokens and dollars per team, provider, model and token type, per sample window; the
  // cache hit ratio over the look-back.
  llmTokens: 'team_model_type:aifinops_llm_tokens:increase' + w,
  llmCost: 'team_model_type:aifinops_llm_cost_usd:increase' + w,
  cacheHitRatio: 'team_model:aifinops_llm_cache_hit_ratio:ratio_' + lb,
}
