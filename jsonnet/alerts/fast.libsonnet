// Fast tier: fires at the first 5-second evaluation that sees a runaway, for: 0s. Guards: a
// dollar (or token) floor, a minimum request rate, the spike compared with the maximum of its own
// rate in a window that ends fastBaselineOffset ago (fastYoungBaselineOffset while its history is
// short), so the spike is never part of its own baseline, and upward changes only. A large step
// is confirmed over the shorter fastConfirmRateWindow, one scrape interval sooner. A series
// without a baseline (new spend) must clear a higher floor, and only once the pack has
// baselines at all (loading the rules, or a fresh Prometheus, does not page for every team
// already spending), or the no-history floor, which holds from the first scrape.
local currency = import '../lib/currency.libsonnet';
local names = import '../lib/names.libsonnet';
local p = import '../lib/promql.libsonnet';
local r = import '../lib/rules.libsonnet';

{
  aifinopsAlertRules+:: {
    local c = $._config,
    local n = names(c),
    // Amounts in US dollars, shown in the reporting currency at the rate in force.
    local cur = currency(c),
    local t = p.template { dollars: cur.fromUsd, queryDollars(format, args='', unit=''):: cur.queryUsd(format, args, unit) },
    local baseline(series) = n.baseline(series),
    local baselineText = 'its highest %s rate between %s and %s ago (%s and %s ago while its history is short)' % [
      c.fastBaselineRateWindow,
      p.duration(p.seconds(c.fastBaselineWindow) + p.seconds(c.fastBaselineOffset)),
      c.fastBaselineOffset,
      p.duration(p.seconds(c.fastYoungBaselineWindow) + p.seconds(c.fastYoungBaselineOffset)),
      c.fastYoungBaselineOffset,
    ],
    // `rate` above `floor` and `factor` x its baseline over fastRateWindow, or over
    // fastConfirmRateWindow (`short`) while the fastRateWindow rate shows fastConfirmFactor x,
    // the short window holds fastConfirmMinRequestsPerMinute and its request rate is
    // fastConfirmRequestsFactor x the fastRateWindow one of a window earlier.
    local stepped(rate, short, scale, floor, factor) = |||
      (
        %(rate)s%(scale)s > %(floor)s
        and on (team, model)
        %(rate)s > %(factor)s * %(baseline)s
      )
      or
      (
        %(short)s%(scale)s > %(floor)s
        and on (team, model)
        %(short)s > %(factor)s * %(baseline)s
        and on (team, model)
        %(rate)s > %(confirm)s * %(baseline)s
        and on (team, model)
        %(shortRequests)s * 60 >= %(confirmRequests)s
        and on (team, model)
        %(shortRequests)s > %(requestsFactor)s * (%(requests)s offset %(rateWindow)s)
      )
    ||| % {
      rate: rate,
      short: short,
      scale: scale,
      floor: floor,
      factor: factor,
      baseline: baseline(rate),
      confirm: p.num(c.fastConfirmFactor),
      shortRequests: n.llmRequestsConfirmRate,
      confirmRequests: p.num(c.fastConfirmMinRequestsPerMinute),
      requests: n.llmRequestsRate,
      requestsFactor: p.num(c.fastConfirmRequestsFactor),
      rateWindow: c.fastRateWindow,
    },
    local teamModel(series) = '%s{team=%%q, model=%%q}' % series,
    local common = {
      tier: 'fast',
      keepFiringFor: c.fastKeepFiringFor,
      teamVar: true,
    },

    fast+: [
      r.alert(c, common {
        name: 'AIFinOpsLLMSpendSpike',
        source: 'llm',
        severity: 'critical',
        dashboard: 'llm',
        expr: |||
          (
          %(stepped)s
          or
          (
            %(cost)s * %(hour)d > %(newFloor)s
            unless on (team, model)
            %(baseline)s
            and on ()
            count(%(baseline)s) > 0
          )
          or
          (
            (
              %(cost)s * %(hour)d > %(noHistoryFloor)s
              or
              %(costShort)s * %(hour)d > %(noHistoryFloor)s
            )
            unless on (team, model)
            %(baseline)s
          )
          )
          and on (team, model)
          %(requests)s * 60 >= %(minRequests)s
        ||| % {
          stepped: std.rstripChars(stepped(n.llmCostRate, n.llmCostConfirmRate, ' * %d' % p.hour, p.num(c.llmSpikeFloorUsdPerHour), p.num(c.llmSpikeFactor)), '\n'),
          cost: n.llmCostRate,
          // A new series' 30 s rate reads low until the window has filled; the 15 s one fills
          // in 3 scrapes.
          costShort: n.llmCostConfirmRate,
          requests: n.llmRequestsRate,
          baseline: baseline(n.llmCostRate),
          hour: p.hour,
          newFloor: p.num(c.llmSpikeNewSpendFloorUsdPerHour),
          noHistoryFloor: p.num(c.llmSpikeNoHistoryFloorUsdPerHour),
          minRequests: p.num(c.llmSpikeMinRequestsPerMinute),
        },
        summary: 'LLM spend of a team and model jumped far above its recent maximum.',
        description: 'Team {{ $labels.team }} is spending %s/h on model {{ $labels.model }} over the last %s (%s for a sharp step), more than %sx %s (%s), or above %s/h with no spend then (%s/h before any history).' % [
          t.dollars,
          c.fastRateWindow,
          c.fastConfirmRateWindow,
          p.num(c.llmSpikeFactor),
          baselineText,
          t.queryDollars('`%s * %d`' % [teamModel(baseline(n.llmCostRate)), p.hour], '$labels.team $labels.model', '/h'),
          cur.usdThreshold(c.llmSpikeNewSpendFloorUsdPerHour),
          cur.usdThreshold(c.llmSpikeNoHistoryFloorUsdPerHour),
        ],
      }),

      r.alert(c, common {
        name: 'AIFinOpsLLMTokenRunaway',
        source: 'llm',
        severity: 'critical',
        dashboard: 'llm',
        expr: |||
          (
          %(stepped)s
          or
          (
            %(tokens)s > %(newFloor)s
            unless on (team, model)
            %(baseline)s
            and on ()
            count(%(baseline)s) > 0
          )
          )
          and on (team, model)
          %(requests)s * 60 >= %(minRequests)s
        ||| % {
          stepped: std.rstripChars(stepped(n.llmTokensRate, n.llmTokensConfirmRate, '', p.num(c.tokenRunawayFloorTokensPerSecond), p.num(c.tokenRunawayFactor)), '\n'),
          tokens: n.llmTokensRate,
          requests: n.llmRequestsRate,
          baseline: baseline(n.llmTokensRate),
          newFloor: p.num(c.tokenRunawayNewFloorTokensPerSecond),
          minRequests: p.num(c.llmSpikeMinRequestsPerMinute),
        },
        summary: 'LLM token throughput of a team and model is running away.',
        description: 'Team {{ $labels.team }} is consuming %s tokens/s on model {{ $labels.model }} over the last %s (%s for a sharp step), more than %sx %s, or above %s tokens/s without any traffic then. Its recorded spend: %s (none, or %s/h, for a model without a price).' % [
          t.count,
          c.fastRateWindow,
          c.fastConfirmRateWindow,
          p.num(c.tokenRunawayFactor),
          baselineText,
          p.num(c.tokenRunawayNewFloorTokensPerSecond),
          t.queryDollars('`%s * %d`' % [teamModel(n.llmCostRate), p.hour], '$labels.team $labels.model', '/h'),
          cur.zero,
        ],
      }),

      r.alert(c, common {
        name: 'AIFinOpsGPUSpendJump',
        source: 'gpu',
        severity: 'warning',
        dashboard: 'gpu',
        expr: |||
          (
              %(gpu)s > on (team) %(factor)s * %(baseline)s
              and on (team)
              %(gpu)s - on (team) %(baseline)s > %(minIncrease)s
            or
              %(gpu)s > %(minIncrease)s
              unless on (team)
              %(baseline)s
              and on ()
              count(%(baseline)s) > 0
          )
        ||| % {
          gpu: n.gpuTeamHourlyCost,
          baseline: baseline(n.gpuTeamHourlyCost),
          factor: p.num(c.gpuJumpFactor),
          minIncrease: p.num(c.gpuJumpMinIncreaseUsdPerHour),
        },
        summary: 'GPU spend of a team jumped far above its recent maximum.',
        description: 'The GPUs team {{ $labels.team }} holds now cost %s/h, at least %s/h and %sx above %s (%s).' % [
          t.dollars,
          cur.usdThreshold(c.gpuJumpMinIncreaseUsdPerHour),
          p.num(c.gpuJumpFactor),
          'the highest level between %s and %s ago (%s and %s ago while its history is short)' % [
            p.duration(p.seconds(c.fastBaselineWindow) + p.seconds(c.fastBaselineOffset)),
            c.fastBaselineOffset,
            p.duration(p.seconds(c.fastYoungBaselineWindow) + p.seconds(c.fastYoungBaselineOffset)),
            c.fastYoungBaselineOffset,
          ],
          t.queryDollars('`%s{team=%%q}`' % baseline(n.gpuTeamHourlyCost), '$labels.team', '/h'),
        ],
      }),
    ],
  },
}
