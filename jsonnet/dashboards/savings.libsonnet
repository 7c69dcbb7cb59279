// AI FinOps savings: what each team could stop paying, in $/month, with the action that saves
// it and the evidence beside it (docs/savings.md). GPU recommendations (release, share, schedule)
// and LLM opportunities (prompt caching, a cheaper model: upper bounds), from the savings tier's
// recorded series.
local g = import '../lib/dashboards/grafana.libsonnet';
local common = import 'common.libsonnet';
local savingsNames = import '../lib/savings.libsonnet';

function(c)
  local d = common(c);
  local v = d.variables;
  local s = savingsNames(c);
  local team = 'team=~"$team"';
  local gpuActions = 'action=~"release|share|schedule"';
  local llmActions = 'action=~"prompt_cache|cheaper_model"';
  // The evidence of the GPUs the selected teams' recommendations name.
  local evidence(series) = '%s and on (node, gpu, uuid) %s{%s, %s}' % [series, s.savings, gpuActions, team];
  d.dashboard('savings', 'AI FinOps / Savings', 'What each team could stop paying a month, with the action that saves it and the evidence beside it.', [v.datasource, v.team], [
    g.row('Savings available'),
    g.stat(
      'GPU savings recommended ($/month)',
      'What the selected teams could stop paying a month for GPUs, from the largest recommended action per pod (release, share, schedule), judged over the last %s. Act on the table below, pod by pod.' % c.savingsLookback,
      [g.query('sum(%s{%s}) or vector(0)' % [s.teamSavings, team], 'GPU')],
      'currencyUSD',
      { decimals: 0, thresholds: g.thresholds('green', [[c.savingsAlertUsdPerMonth, 'orange']]) },
    ),
    g.stat(
      'LLM opportunities, upper bound ($/month)',
      'The most prompt caching or the configured cheaper model could save a month (the larger of the two per model): an upper bound, not a promise. Check the cache hit ratio and the quality of the cheaper model first.',
      [g.query('sum(%s{%s}) or vector(0)' % [s.teamOpportunities, team], 'LLM')],
      'currencyUSD',
      { decimals: 0 },
    ),
    g.timeseries(
      'Savings by action ($/month)',
      'Savings available per action over time. A line that stays is a recommendation nobody acted on; one that drops is a saving made (or a pattern that changed).',
      [g.query('sum by (action) (%s{%s})' % [s.savings, team], '{{action}}')],
      'currencyUSD',
      { w: 12, legendCalcs: ['last'] },
    ),

    g.row('GPU recommendations'),
    g.table(
      'Recommendations by pod',
      'Each pod holding a GPU that could cost less, the action (release: idle; share: move to the named MIG profile; schedule: scale to zero out of working hours) and what it saves a month. Largest first.',
      [g.query('%s{%s, %s}' % [s.savings, gpuActions, team], '', instant=true)],
      [['Saves $/month', 'currencyUSD']],
      { w: 24, h: 9, sortBy: 'Saves $/month', hidden: ['__name__', 'instance', 'job'] },
    ),
    g.table(
      'Evidence per GPU',
      'Why each GPU is recommended, over the last %s: p95 of its 5-minute average utilisation, p95 of its 5-minute peaks, its memory peak, busy hours a day and the share of off-hours steps it was busy in.' % c.savingsLookback,
      [
        g.query(evidence(s.utilP95), '', instant=true),
        g.query(evidence(s.peakP95), '', instant=true),
        g.query(evidence(s.memMax), '', instant=true),
        g.query(evidence(s.busyHours), '', instant=true),
        g.query(evidence(s.offHoursBusyRatio), '', instant=true),
      ],
      [
        ['Utilisation p95', 'percentunit'],
        ['Peak p95', 'percentunit'],
        ['Memory peak', 'bytes'],
        ['Busy hours a day', 'h'],
        ['Off-hours busy share', 'percentunit'],
      ],
      { w: 24, h: 9, hidden: ['__name__', 'instance', 'job'] },
    ),

    g.row('LLM opportunities (upper bounds)'),
    g.table(
      'Opportunities by team and model',
      'prompt_cache: the uncached input tokens priced at input minus cache-read price, the most caching could save. cheaper_model: the same tokens priced on the configured cheaper model (to_model). Upper bounds: quality and cacheability are not known here.',
      [g.query('%s{%s, %s}' % [s.savings, llmActions, team], '', instant=true)],
      [['Up to $/month', 'currencyUSD']],
      { w: 14, h: 9, sortBy: 'Up to $/month', hidden: ['__name__', 'instance', 'job'] },
    ),
    g.table(
      'Cache hit ratio by team and model',
      'Cache-read tokens as a share of all input tokens over the last %s. A low ratio on a model with long repeated prompts (system prompts, documents) is where prompt caching pays.' % c.savingsLookback,
      [g.query('%s{%s}' % [s.cacheHitRatio, team], '', instant=true)],
      [['Cache hit ratio', 'percentunit']],
      { w: 10, h: 9, hidden: ['__name__', 'instance', 'job'] },
    ),
  ])
