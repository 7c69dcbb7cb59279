// LLM API spend: tokens and dollars by provider, model, team and app, unit cost, the prompt
// cache and what it saved, budget burn per team, and usage no price was found for. Layout only;
// PromQL is in queries.
local g = import '../lib/dashboards/grafana.libsonnet';
local queries = import 'queries.libsonnet';
local common = import 'common.libsonnet';

function(c)
  local q = queries(c);
  local d = common(c);
  local v = d.variables;
  local budgetSteps = g.budgetSteps(c);
  // The paging (critical) burn-rate windows of the rules, each drawn with its factor.
  local burns = [b for b in c.budgetBurnWindows if b.severity == 'critical'];
  local burnLines = [
    [b.factor, if b.factor == std.foldl(std.max, [x.factor for x in burns], 0) then 'red' else 'orange']
    for b in burns
  ];
  local dimensions = [
    ['provider', 'Provider', '{{provider}}'],
    ['model', 'Model', '{{provider}} {{model}}'],
    ['team', 'Team', '{{team}}'],
    ['app', 'App', '{{app}}'],
  ];
  local byWhat = {
    provider: 'which provider the money goes to',
    model: 'which models cost most; a costly model on a simple task is the first saving to look for',
    team: 'which team spends; the one whose line jumps is the one to ask',
    app: 'which application spends; an app that grows without more users may be looping',
  };
  d.dashboard('llm', 'AI FinOps / LLM API spend', 'LLM API tokens and dollars by provider, model, team and app, cost per request, prompt cache savings, budget burn and unpriced usage.', [v.datasource, v.team, v.provider, v.model], [
    g.row('Now'),
    g.stat(
      'LLM API spend ($/h)',
      'What the selected LLM API calls cost per hour, priced per call (tier and cache prices applied).',
      [g.query(q.llmPerHour(''), 'Spend')],
      'currencyUSD',
      { graph: true, decimals: 2 },
    ),
    g.stat(
      'Tokens/s',
      'Tokens per second, all four kinds together (input, cache reads, cache writes, output).',
      [g.query(q.llmTokensPerSecond(''), 'Tokens/s')],
      'short',
      { graph: true },
    ),
    g.stat(
      'Requests/s',
      'LLM API calls per second, successful or not. A jump with no matching jump in users is a loop or a retry storm: find the app in the panels below.',
      [g.query(q.llmRequestsPerSecond(''), 'Requests/s')],
      'reqps',
      { graph: true },
    ),
    g.stat(
      'Average cost per request',
      'Dollars per call, averaged over the selected calls. A rise without a change of model means longer prompts or outputs: check tokens by type.',
      [g.query(q.llmCostPerRequest(''), 'Per request')],
      'currencyUSD',
      { graph: true, decimals: 4 },
    ),
    g.stat(
      'Prompt cache savings ($/h)',
      'What cache reads saved per hour: tokens read from the prompt cache times the difference between each model\'s input price and its cache-read price. Raise it by keeping the stable part of prompts first.',
      [g.query(q.llmCacheSavingsPerHour(''), 'Saved')],
      'currencyUSD',
      { graph: true, decimals: 2, thresholds: g.thresholds('text', [[0.01, 'green']]) },
    ),
    g.stat(
      'Unpriced requests/s',
      'Calls for which no price was found: their spend is missing from every dollar figure. Add the model to the price override file (aifinops price) or upgrade genai-prices.',
      [g.query(q.llmUnpricedPerSecond(''), 'Unpriced')],
      'reqps',
      { thresholds: g.thresholds('green', [[0.000001, 'red']]) },
    ),
  ] + [g.row('Spend ($/h)')] + [
    g.timeseries(
      'Spend by %s ($/h)' % std.asciiLower(dim[1]),
      'LLM API spend per hour by %s: %s. Red marks are cost alerts.' % [dim[0], byWhat[dim[0]]],
      [g.query(q.llmPerHour(if dim[0] == 'model' then 'provider, model' else dim[0]), dim[2])],
      'currencyUSD',
      { stack: true, legendCalcs: ['mean', 'last'] },
    )
    for dim in dimensions
  ] + [g.row('Tokens/s')] + [
    g.timeseries(
      'Tokens/s by type',
      'Tokens per second by kind: input (not cached), cache_read, cache_write and output. They add up to all tokens. Output usually costs several times input; cache reads cost a fraction of it.',
      [g.query(q.llmTokensPerSecond('token_type'), '{{token_type}}')],
      'short',
      { stack: true, w: 24, legendCalcs: ['mean', 'last'] },
    ),
  ] + [
    g.timeseries(
      'Tokens/s by %s' % std.asciiLower(dim[1]),
      'Tokens per second by %s. Tokens are counted even where no price is known, so a runaway shows here too (AIFinOpsLLMTokenRunaway).' % dim[0],
      [g.query(q.llmTokensPerSecond(if dim[0] == 'model' then 'provider, model' else dim[0]), dim[2])],
      'short',
      { stack: true, legendCalcs: ['mean', 'last'] },
    )
    for dim in dimensions
  ] + [
    g.row('Unit cost and prompt cache'),
    g.timeseries(
      'Cost per request by model',
      'Average dollars per call for each model. Compare models doing the same job: moving a task to a cheaper model that meets its quality bar is usually the largest saving.',
      [g.query(q.llmCostPerRequest('provider, model'), '{{provider}} {{model}}')],
      'currencyUSD',
      { legendCalcs: ['mean', 'last'], decimals: 4 },
    ),
    g.timeseries(
      'Cost per million tokens by model',
      'Effective dollars per million tokens (all kinds) for each model, after cache and tier prices. It drops as more input is served from the cache.',
      [g.query(q.llmCostPerMillionTokens('provider, model'), '{{provider}} {{model}}')],
      'currencyUSD',
      { legendCalcs: ['mean', 'last'], decimals: 2 },
    ),
    g.timeseries(
      'Prompt cache read share',
      'The share of input tokens read from the prompt cache, by model. Low on a workload with long shared prompts means the cache is missed: put the stable instructions first and keep them byte-identical.',
      [g.query(q.llmCacheReadShare('provider, model'), '{{provider}} {{model}}')],
      'percentunit',
      { min: 0, max: 1 },
    ),
    g.timeseries(
      'Prompt cache savings by model ($/h)',
      'What cache reads saved per hour by model: cache-read tokens times (input price - cache-read price), from the prices each model is charged at (aifinops_llm_price_usd_per_million_tokens).',
      [g.query(q.llmCacheSavingsPerHour('provider, model'), '{{provider}} {{model}}')],
      'currencyUSD',
      { stack: true, legendCalcs: ['mean', 'last'] },
    ),

    g.row('Budgets'),
    g.gauge(
      'Daily budget used',
      'Each team\'s AI spend today (UTC; GPU and LLM API, as the budget alerts count it) as a share of its daily budget, coloured at the AIFinOpsBudgetThreshold levels. Teams without a daily budget are not shown.',
      [g.query(q.budgetUsed('daily'), '{{team}}', instant=true)],
      'percentunit',
      { timeFrom: 'now/d', min: 0, max: 1.2, decimals: 0, thresholds: budgetSteps, w: 6, h: 9 },
    ),
    g.gauge(
      'Monthly budget used',
      'Each team\'s AI spend this month as a share of its monthly budget. Set against how much of the month has passed to see who will overspend.',
      [g.query(q.budgetUsed('monthly'), '{{team}}', instant=true)],
      'percentunit',
      { timeFrom: 'now/M', min: 0, max: 1.2, decimals: 0, thresholds: budgetSteps, w: 6, h: 9 },
    ),
    g.timeseries(
      'Budget burn rate',
      'How fast each team spends its budget: spend rate over %s divided by the rate that would spend the budget exactly over its period (1 = on track). The lines at %s are where AIFinOpsBudgetBurnFast pages (when the short window agrees); a team above them runs out long before the period ends.' % [
        std.join(' and ', [b.long for b in burns]),
        std.join(' and ', [std.toString(b.factor) + 'x' for b in burns]),
      ],
      [
        g.query(q.burnRate(b.long), '{{team}} %s (%s budget)' % [b.long, '{{period}}'])
        for b in burns
      ],
      'short',
      { thresholdLines: burnLines, w: 12, h: 9, legendCalcs: ['last', 'max'] },
    ),

    g.row('Unpriced usage'),
    g.timeseries(
      'Unpriced requests/s by model',
      'Calls no price was found for, by provider and model (0 while every call is priced). Their cost is missing from every dollar figure; AIFinOpsLLMUnpricedUsage fires on them. Add the model to the price override file or upgrade genai-prices.',
      [g.query(q.llmUnpricedPerSecond('provider, model'), '{{provider}} {{model}}')],
      'reqps',
    ),
    g.table(
      'Unpriced models',
      'Every provider and model that had calls without a price in the selected time range, with how many. Price each one (aifinops price shows what the catalogue knows).',
      [g.query(q.llmUnpricedOverRange, '', instant=true)],
      [['Unpriced calls', 'short']],
      { noValue: 'Every call was priced', sortBy: 'Unpriced calls' },
    ),
  ])
