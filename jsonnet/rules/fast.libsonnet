// Fast tier recordings: 30-second rates per team and model, the GPU $/h teams hold, and the
// baselines the fast alerts compare them with.
local names = import '../lib/names.libsonnet';
local p = import '../lib/promql.libsonnet';
local r = import '../lib/rules.libsonnet';

{
  aifinopsRecordingRules+:: {
    local c = $._config,
    local n = names(c),
    local llmRate(metric, window=c.fastRateWindow) =
      'sum by (team, model) (rate(%s{%s}[%s]))' % [metric, c.llmSelector, window],
    // The maximum of `source` over the baseline window, kept only where the window holds
    // enough samples; where it does not (a new team or model, a fresh installation), the
    // maximum over the young window. Recorded under the name of the series it is compared with.
    local windowMax(source, by, window, offset, minHistory) = |||
        max_over_time(%(s)s[%(w)s] offset %(o)s)
        and on (%(by)s)
        count_over_time(%(s)s[%(w)s] offset %(o)s) >= %(min)d
    ||| % {
      s: source,
      w: window,
      o: offset,
      by: by,
      min: p.seconds(minHistory) / p.seconds(c.fastInterval),
    },
    local baseline(series, source, by) = r.record(n.baseline(series), |||
      (
      %s)
      or
      (
      %s)
    ||| % [
      windowMax(source, by, c.fastBaselineWindow, c.fastBaselineOffset, c.fastBaselineMinHistory),
      windowMax(source, by, c.fastYoungBaselineWindow, c.fastYoungBaselineOffset, c.fastYoungBaselineMinHistory),
    ]),

    fast+: [
      r.record(n.llmCostRate, llmRate('aifinops_llm_cost_usd_total')),
      r.record(n.llmRequestsRate, llmRate('aifinops_llm_requests_total')),
      r.record(n.llmTokensRate, llmRate('aifinops_llm_tokens_total')),
      r.record(n.llmCostConfirmRate, llmRate('aifinops_llm_cost_usd_total', c.fastConfirmRateWindow)),
      r.record(n.llmRequestsConfirmRate, llmRate('aifinops_llm_requests_total', c.fastConfirmRateWindow)),
      r.record(n.llmTokensConfirmRate, llmRate('aifinops_llm_tokens_total', c.fastConfirmRateWindow)),
      // Gauges, so a GPU grab shows at the first scrape. `max by` removes duplicates of the
      // same GPU (two scrapes of one exporter during a rollout). Each pod pays its share of the
      // GPU as the exporter charges it: 1/P of a time-sliced GPU, k/S of a MIG GPU for a device
      // of k of its S compute slices (free slices are charged to no pod).
      r.record(n.gpuPodHourlyCost, |||
        max by (node, gpu, uuid, namespace, pod, team) (aifinops_gpu_allocation_share_ratio{%(sel)s})
        * on (node, gpu, uuid) group_left ()
        max by (node, gpu, uuid) (aifinops_gpu_hourly_cost_usd{%(sel)s})
      ||| % { sel: c.gpuSelector }),
      r.record(n.gpuTeamHourlyCost, 'sum by (team) (%s)' % n.gpuPodHourlyCost),
    ] + (
      if c.fastBaselineRateWindow == c.fastRateWindow then [] else [
        r.record(n.llmCostBaselineRate, llmRate('aifinops_llm_cost_usd_total', c.fastBaselineRateWindow)),
        r.record(n.llmTokensBaselineRate, llmRate('aifinops_llm_tokens_total', c.fastBaselineRateWindow)),
      ]
    ) + [
      baseline(n.llmCostRate, n.llmCostBaselineRate, 'team, model'),
      baseline(n.llmTokensRate, n.llmTokensBaselineRate, 'team, model'),
      // A gauge: no rate window, no sampling noise to smooth.
      baseline(n.gpuTeamHourlyCost, n.gpuTeamHourlyCost, 'team'),
    ],
  },
}
