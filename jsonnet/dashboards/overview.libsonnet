// AI FinOps overview: what AI costs right now, against budget, who spends it and on what, how
// much of it is idle GPUs, and which cost alerts are firing. Layout only; PromQL is in queries.
local g = import '../lib/dashboards/grafana.libsonnet';
local queries = import 'queries.libsonnet';
local common = import 'common.libsonnet';
local savingsNames = import '../lib/savings.libsonnet';

function(c)
  local q = queries(c);
  local d = common(c);
  local v = d.variables;
  local budgetSteps = g.budgetSteps(c);
  d.dashboard('overview', 'AI FinOps / Overview', 'AI spend now, against budget, by team and model, idle-GPU waste and firing cost alerts.', [v.datasource, v.team], [
    g.row('Spend now'),
    g.stat(
      'AI spend ($/h)',
      'GPU and LLM API spend together, in dollars per hour at the current rate. A jump here is what the spike alerts page on: open the LLM or GPU dashboard to see which team and model moved.',
      [g.query(q.spendPerHour(''), 'AI spend')],
      'currencyUSD',
      { graph: true, decimals: 2 },
    ),
    g.stat(
      'Savings available ($/month)',
      'What the selected teams could stop paying a month for GPUs by acting on the savings recommendations (release idle GPUs, share them as MIG profiles, scale them to zero out of working hours), judged over the last %s. Open the savings dashboard for each pod, its action and its evidence.' % c.savingsLookback,
      [g.query('sum(%s{team=~"$team"}) or vector(0)' % savingsNames(c).teamSavings, 'Savings')],
      'currencyUSD',
      { decimals: 0, links: [d.linkTo('savings', 'Savings')] },
    ),
    g.stat(
      'GPU spend ($/h)',
      'What the GPUs cost per hour at their configured hourly prices, held or not. Open the GPU dashboard for the split by team, namespace and pod.',
      [g.query(q.gpuSpendPerHour('', q.gpuTeam()), 'GPU')],
      'currencyUSD',
      { w: 3, graph: true, decimals: 2, links: [d.linkTo('gpu', 'GPU cost and waste')] },
    ),
    g.stat(
      'LLM API spend ($/h)',
      'What LLM API calls cost per hour, priced per call from the price catalogue (cache and tier prices applied). Open the LLM dashboard for the split by provider, model, team and app.',
      [g.query(q.llmPerHour('', q.llmTeam()), 'LLM API')],
      'currencyUSD',
      { w: 3, graph: true, decimals: 2, links: [d.linkTo('llm', 'LLM API spend')] },
    ),
    g.stat(
      'Idle GPU waste ($/h)',
      'The part of GPU spend paid for idle capacity: cost x (1 - utilisation). Money spent for nothing; find the pods holding idle GPUs in the GPU dashboard and scale them down or share the GPUs.',
      [g.query(q.gpuIdlePerHour('', q.gpuTeam()), 'Idle')],
      'currencyUSD',
      { graph: true, decimals: 2, thresholds: g.thresholds('green', [[1, 'orange']]), links: [d.linkTo('gpu', 'GPU cost and waste')] },
    ),
    g.stat(
      'Idle share of GPU spend',
      'Idle GPU cost as a share of all GPU cost. Above a third, capacity is oversized for the work: consolidate pods onto fewer GPUs or use time-slicing or MIG.',
      [g.query(q.gpuIdleShare(q.gpuTeam()), 'Idle share')],
      'percentunit',
      { w: 3, graph: true, decimals: 1, min: 0, max: 1, thresholds: g.thresholds('green', [[0.2, 'orange'], [0.5, 'red']]) },
    ),
    g.stat(
      'Cost alerts firing',
      'How many aifinops cost alerts fire now (the always-firing watchdog excluded). Anything above zero needs a look: the table on the right names them, and each alert links its runbook.',
      [g.query(q.costAlertsFiring, 'Firing')],
      'short',
      { w: 3, thresholds: g.thresholds('green', [[1, 'red']]) },
    ),

    g.timeseries(
      'Spend rate: GPU vs LLM API ($/h)',
      'GPU and LLM API spend per hour over time, stacked: the top of the stack is total AI spend. Red marks are cost alerts firing. A step up that stays is a new workload or a price change; a spike is a runaway job or agent.',
      [
        g.query(q.gpuSpendPerHour('', q.gpuTeam()), 'GPU'),
        g.query(q.llmPerHour('', q.llmTeam()), 'LLM API'),
      ],
      'currencyUSD',
      { stack: true, w: 16, h: 9 },
    ),
    g.table(
      'Firing cost alerts',
      'The aifinops cost alerts firing now, with severity and the team and model they are about. Follow the runbook of each; the watchdog is on the pipeline dashboard.',
      [g.query(q.costAlerts, '', instant=true)],
      [],
      { w: 8, h: 9, noValue: 'No cost alerts firing', hidden: ['__name__', 'alertstate', 'Value', 'instance', 'job'] },
    ),

    g.row('The whole bill'),
    g.stat(
      'Kubernetes compute ($/h)',
      'The CPU, memory and storage of the selected teams\' pods per hour, from OpenCost (and the GPUs of nodes without an aifinops GPU exporter), at the node\'s real price. Budgets, burn rates and anomalies count it with GPU and LLM spend (source="kubernetes"). It reads 0 until OpenCost is scraped (docs/rules.md "Kubernetes costs").',
      [g.query(q.orZeroWhile(q.kubernetesPerHour(''), 'aifinops_build_info{%s}' % c.aifinopsSelector), 'Kubernetes')],
      'currencyUSD',
      { graph: true, decimals: 2, w: 4, h: 9 },
    ),
    g.table(
      'Bill per team ($/h)',
      'Each team\'s AI bill per hour, side by side: LLM API calls, GPUs while working, GPUs paid for idle, and Kubernetes compute (CPU, memory, storage from OpenCost). "%s" is spend no team owns. The GPU idle column is money to win back first.' % c.dashboardUnattributedLabel,
      [
        g.query(q.named(q.llmPerHour('team', q.llmTeam()), 'team'), '', instant=true),
        g.query(q.named(q.gpuBusyPerHour('team'), 'team'), '', instant=true),
        g.query(q.named(q.gpuIdlePerHour('team', q.gpuTeam()), 'team'), '', instant=true),
        g.query(q.named(q.kubernetesPerHour('team'), 'team'), '', instant=true),
      ],
      [
        ['LLM API', 'currencyUSD'],
        ['GPU in use', 'currencyUSD'],
        ['GPU idle', 'currencyUSD'],
        ['Kubernetes', 'currencyUSD'],
      ],
      { w: 8, h: 9, sortBy: 'LLM API' },
    ),
    g.timeseries(
      'The whole bill, stacked ($/h)',
      'The selected teams\' AI spend per hour as one bill, stacked: LLM API, GPUs working and idle, and Kubernetes compute by resource. The top of the stack is what the budgets are measured against.',
      [
        g.query(q.llmPerHour('', q.llmTeam()), 'LLM API'),
        g.query(q.gpuBusyPerHour(''), 'GPU in use'),
        g.query(q.gpuIdlePerHour('', q.gpuTeam()), 'GPU idle'),
        g.query(q.kubernetesPerHour('resource'), 'Kubernetes {{resource}}'),
      ],
      'currencyUSD',
      { stack: true, w: 12, h: 9 },
    ),

    g.row('Budget'),
    g.stat(
      'Spend today',
      'AI spend since midnight UTC (GPU and LLM API), next to the sum of the daily budgets of the selected teams. Teams without a daily budget count in the spend but not in the budget.',
      [
        g.query(q.spendOverRange(''), 'Spent', instant=true),
        g.query('sum(%s)' % q.budget('daily'), 'Daily budget', instant=true),
      ],
      'currencyUSD',
      { timeFrom: 'now/d', decimals: 2, w: 4, h: 8 },
    ),
    g.stat(
      'Spend month to date',
      'AI spend since the 1st of the month (UTC), next to the sum of the monthly budgets of the selected teams.',
      [
        g.query(q.spendOverRange(''), 'Spent', instant=true),
        g.query('sum(%s)' % q.budget('monthly'), 'Monthly budget', instant=true),
      ],
      'currencyUSD',
      { timeFrom: 'now/M', decimals: 2, w: 4, h: 8 },
    ),
    g.gauge(
      'Daily budget used',
      'Each team\'s spend today as a share of its daily budget: yellow, orange and red at the levels AIFinOpsBudgetThreshold alerts on. A team near 100 % before the day ends will overspend; check its burn rate on the LLM dashboard.',
      [g.query(q.budgetUsed('daily'), '{{team}}', instant=true)],
      'percentunit',
      { timeFrom: 'now/d', min: 0, max: 1.2, decimals: 0, thresholds: budgetSteps, w: 8, h: 8 },
    ),
    g.gauge(
      'Monthly budget used',
      'Each team\'s spend this month as a share of its monthly budget. Compare with how much of the month has passed: 50 % used on the 10th means the budget runs out around the 20th.',
      [g.query(q.budgetUsed('monthly'), '{{team}}', instant=true)],
      'percentunit',
      { timeFrom: 'now/M', min: 0, max: 1.2, decimals: 0, thresholds: budgetSteps, w: 8, h: 8 },
    ),

    g.row('Who and what'),
    g.bargauge(
      'Top teams by spend',
      'The teams that spent most over the selected time range, GPU and LLM API together. "%s" is spend no team owns: GPUs no pod holds and calls sent without a team; give them an owner.' % c.dashboardUnattributedLabel,
      [g.query('topk(%d, %s)' % [c.dashboardTopK, q.named(q.spendOverRange('team'), 'team')], '{{team}}', instant=true)],
      'currencyUSD',
      { decimals: 2, h: 9 },
    ),
    g.bargauge(
      'Top models by spend',
      'The LLM models that cost most over the selected time range. An expensive model on a cheap task is the first saving to look for: compare cost per request on the LLM dashboard.',
      [g.query('topk(%d, %s)' % [c.dashboardTopK, q.overRange('aifinops_llm_cost_usd_total', 'provider, model', q.llmTeam())], '{{provider}} {{model}}', instant=true)],
      'currencyUSD',
      { decimals: 2, h: 9 },
    ),
    g.timeseries(
      'Spend rate by team ($/h)',
      'Each team\'s AI spend per hour over time (GPU and LLM API). The team whose line leaves its usual band is the one to ask; red marks are cost alerts.',
      [g.query(q.named(q.spendPerHour('team'), 'team'), '{{team}}')],
      'currencyUSD',
      { w: 24, h: 9, legendCalcs: ['mean', 'max', 'last'] },
    ),
  ])
