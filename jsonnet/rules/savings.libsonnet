// Savings tier recordings (docs/savings.md): per-GPU 5-minute utilisation, peaks, memory and
// busy/off-hours flags; their look-back statistics (the evidence); and the $/month each action
// would save: release, share (a MIG profile), schedule (scale to zero out of working hours) per
// pod, and the LLM opportunities (prompt caching, a cheaper model) per team and model.
local names = import '../lib/names.libsonnet';
local p = import '../lib/promql.libsonnet';
local r = import '../lib/rules.libsonnet';
local savingsNames = import '../lib/savings.libsonnet';

{
  aifinopsRecordingRules+:: {
    local c = $._config,
    local n = names(c),
    local s = savingsNames(c),
    local gsel = c.gpuSelector,
    local lsel = c.llmSelector,
    local w = c.savingsSampleWindow,
    local lb = c.savingsLookback,
    local step = p.seconds(c.savingsInterval),
    local minSamples = std.ceil(p.seconds(c.savingsMinHistory) / step),
    local gpuKey = 'node, gpu, uuid',
    local llmKey = 'team, provider, model',
    local perMonth = c.savingsHoursPerMonth * p.hour,
    local gib = 1073741824,
    local wh = c.savingsWorkingHours,
    // Non-empty (one sample without labels) during working hours, UTC.
    local workingHours = '(hour() >= %d < %d) and on () (%s)' % [
      wh.startHour,
      wh.endHour,
      std.join(' or ', ['day_of_week() == %d' % d for d in wh.days]),
    ],
    // A GPU is judged once its look-back holds savingsMinHistory of samples.
    local judged(expr) = '(%s) and on (%s) (count_over_time(%s[%s]) >= %d)' % [expr, gpuKey, s.utilAvg, lb, minSamples],
    local podMonthly = '%s * %d' % [n.gpuPodHourlyCost, c.savingsHoursPerMonth],
    local release = '(%s < %s)' % [s.utilP95, p.num(c.savingsIdleRatio)],
    // One MIG profile's candidate: the pod's cost minus the profile's share of it, where the
    // GPU's model has the profile and its peaks and memory fit.
    local shareCandidate(table, profile) =
      local fraction = profile.slices / table.slices;
      |||
        label_replace(
          %(pod)s * %(saved)d / %(slices)d
          and on (%(key)s) max by (%(key)s) (aifinops_gpu_hourly_cost_usd{%(sel)s})
          and on (%(key)s) (%(peak)s <= %(util)s)
          and on (%(key)s) (%(mem)s <= %(bytes)s)
          unless on (%(key)s) %(release)s,
          "profile", "%(profile)s", "", ""
        )
      ||| % {
        pod: podMonthly,
        saved: table.slices - profile.slices,
        slices: table.slices,
        key: gpuKey,
        sel: p.withMatchers(gsel, ['model=~"%s"' % table.match]),
        peak: s.peakP95,
        util: p.num(fraction * c.savingsShareHeadroom),
        mem: s.memMax,
        bytes: p.num(profile.memoryGiB * gib * c.savingsShareMemoryHeadroom),
        release: release,
        profile: profile.name,
      },
    local candidates = [
      shareCandidate(table, profile)
      for table in c.savingsMigProfiles
      for profile in table.profiles
    ],
    // LLM: the look-back's total of a per-window series per team, provider and model, and the
    // factor that turns it into a month (from the time the look-back actually covers).
    local llmTotal(metric, matchers) = 'sum by (%s) (sum_over_time(%s{%s}[%s]))' % [llmKey, metric, matchers, lb],
    local llmMonthly = '(%d / (max by (%s) (count_over_time(%s[%s])) * %d))' % [perMonth, llmKey, s.llmTokens, lb, step],
    local llmJudged = '(max by (%s) (count_over_time(%s[%s])) >= %d)' % [llmKey, s.llmTokens, lb, minSamples],
    local price(matchers) = 'aifinops_llm_price_usd_per_million_tokens{%s}' % p.withMatchers(lsel, matchers),

    savings+: [
      // Per GPU, one sample per step: the 5-minute average and peak utilisation, the memory peak.
      r.record(s.utilAvg, 'max by (%s) (avg_over_time(aifinops_gpu_utilization_ratio{%s}[%s]))' % [gpuKey, gsel, w]),
      r.record(s.utilPeak, 'max by (%s) (max_over_time(aifinops_gpu_utilization_ratio{%s}[%s]))' % [gpuKey, gsel, w]),
      r.record(s.memPeak, 'max by (%s) (max_over_time(aifinops_gpu_memory_used_bytes{%s}[%s]))' % [gpuKey, gsel, w]),
      // 1 when the step's average is at or above the idle ratio, else 0.
      r.record(s.busy, '%s >= bool %s' % [s.utilAvg, p.num(c.savingsIdleRatio)]),
      // 1 for a step outside working hours, else 0.
      r.record(s.offHours, '(%s * 0 + 1 unless on () (%s)) or %s * 0' % [s.utilAvg, workingHours, s.utilAvg]),
      r.record(s.offHoursBusy, '%s * on (%s) %s' % [s.busy, gpuKey, s.offHours]),

      // The evidence over the look-back.
      r.record(s.utilP95, judged('quantile_over_time(0.95, %s[%s])' % [s.utilAvg, lb])),
      r.record(s.peakP95, judged('quantile_over_time(0.95, %s[%s])' % [s.utilPeak, lb])),
      r.record(s.memMax, judged('max_over_time(%s[%s])' % [s.memPeak, lb])),
      r.record(s.busyHours, judged('avg_over_time(%s[%s]) * 24' % [s.busy, lb])),
      r.record(s.offHoursBusyRatio, judged('sum_over_time(%s[%s]) / (sum_over_time(%s[%s]) > 0)' % [s.offHoursBusy, lb, s.offHours, lb])),
      r.record(s.offHoursIdleShare, judged('avg_over_time(%s[%s]) - avg_over_time(%s[%s])' % [s.offHours, lb, s.offHoursBusy, lb])),

      // release: the whole cost of a GPU idle nearly all the time.
      r.record(s.savings, '%s and on (%s) %s' % [podMonthly, gpuKey, release], { action: 'release' }),
      // share: the smallest MIG profile that fits (the largest saving).
      r.record(
        s.savings,
        'topk by (%s, namespace, pod) (1,\n%s)\n' % [gpuKey, std.join('or\n', candidates)],
        { action: 'share' },
      ),
      // schedule: what the off-hours idle steps cost, for a GPU busy in working hours only.
      r.record(s.savings, |||
        %(pod)s * on (%(key)s) group_left () (%(idle)s > 0)
        and on (%(key)s) (%(offBusy)s <= %(maxRatio)s)
        unless on (%(key)s) %(release)s
      ||| % {
        pod: podMonthly,
        key: gpuKey,
        idle: s.offHoursIdleShare,
        offBusy: s.offHoursBusyRatio,
        maxRatio: p.num(c.savingsScheduleMaxOffHoursBusyRatio),
        release: release,
      }, { action: 'schedule' }),

      // LLM usage per step, per team, provider, model and token type.
      r.record(s.llmTokens, 'sum by (%s, token_type) (increase(aifinops_llm_tokens_total{%s}[%s]))' % [llmKey, lsel, w]),
      r.record(s.llmCost, 'sum by (%s, token_type) (increase(aifinops_llm_cost_usd_total{%s}[%s]))' % [llmKey, lsel, w]),
      // Cache hit ratio: cache-read tokens / all input tokens (uncached, cache read, cache write).
      r.record(s.cacheHitRatio, '%s / (%s > 0)' % [
        llmTotal(s.llmTokens, 'token_type="cache_read"'),
        llmTotal(s.llmTokens, 'token_type=~"input|cache_read|cache_write"'),
      ]),
      // prompt_cache: the uncached input tokens priced at input minus cache-read price, the
      // most caching could save (every uncached token read from the cache instead).
      r.record(s.savings, |||
        (
          %(uncached)s
          * on (provider, model) group_left ()
          (max by (provider, model) (%(input)s) - max by (provider, model) (%(read)s))
          / 1e6 * %(monthly)s
          and %(judged)s
        ) > 0
      ||| % {
        uncached: llmTotal(s.llmTokens, 'token_type="input"'),
        input: price(['token_type="input"']),
        read: price(['token_type="cache_read"']),
        monthly: llmMonthly,
        judged: llmJudged,
      }, { action: 'prompt_cache' }),
    ] + [
      // cheaper_model: the same tokens, per type, priced at the configured cheaper model.
      r.record(s.savings, |||
        (
          (
            %(cost)s
            -
            sum by (%(key)s) (
              sum_over_time(%(tokens)s{%(from)s}[%(lb)s])
              * on (provider, token_type) group_left ()
              max by (provider, token_type) (%(toPrice)s)
            ) / 1e6
          ) * %(monthly)s
          and %(judged)s
        ) > 0
      ||| % {
        cost: llmTotal(s.llmCost, 'provider="%s", model="%s"' % [provider, from]),
        key: llmKey,
        tokens: s.llmTokens,
        from: 'provider="%s", model="%s"' % [provider, from],
        lb: lb,
        toPrice: price(['provider="%s"' % provider, 'model="%s"' % c.savingsCheaperModels[provider][from]]),
        monthly: llmMonthly,
        judged: llmJudged,
      }, { action: 'cheaper_model', to_model: c.savingsCheaperModels[provider][from] })
      for provider in std.objectFields(c.savingsCheaperModels)
      for from in std.objectFields(c.savingsCheaperModels[provider])
    ] + [
      // Per team: the largest GPU action per pod (they do not add up)...
      r.record(s.teamSavings, 'sum by (team) (max by (team, %s, namespace, pod) (%s{action=~"release|share|schedule"}))' % [gpuKey, s.savings]),
      // ...and the larger LLM opportunity per model, an upper bound.
      r.record(s.teamOpportunities, 'sum by (team) (max by (%s) (%s{action=~"prompt_cache|cheaper_model"}))' % [llmKey, s.savings]),
    ],
  },
}
