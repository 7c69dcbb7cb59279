// GPU cost and waste: how busy each GPU is, which are held but idle, what idle capacity costs by
// team, namespace and pod, and memory and power. Layout only; PromQL is in queries.
local g = import '../lib/dashboards/grafana.libsonnet';
local queries = import 'queries.libsonnet';
local common = import 'common.libsonnet';

function(c)
  local q = queries(c);
  local d = common(c);
  local v = d.variables;
  local idle = c.gpuIdleRatio;
  local utilisationSteps = g.thresholds('red', [[idle, 'orange'], [0.3, 'yellow'], [0.6, 'green']]);
  d.dashboard('gpu', 'AI FinOps / GPU cost and waste', 'GPU utilisation, allocated and idle GPUs, idle cost by team, namespace and pod, memory and power.', [v.datasource, v.team, v.namespace], [
    g.row('Fleet'),
    g.stat(
      'GPUs',
      'GPUs in scope: those pods of the selected teams and namespaces hold, and with "All" every GPU the exporters see. Fewer than expected means a node or exporter is missing: check the pipeline dashboard.',
      [g.query(q.gpuCount, 'GPUs')],
      'short',
    ),
    g.stat(
      'Allocated GPUs',
      'GPUs a pod of the selected teams and namespaces holds now. Compare with GPUs: the difference is capacity paid for that nobody uses; shrink the node pool if it stays.',
      [g.query(q.gpuAllocatedOrZero, 'Allocated')],
      'short',
    ),
    g.stat(
      'Allocated but idle',
      'GPUs held by a pod but under %d %% utilised now. Each one is paid for doing nothing: find the pod in the table below and release or share the GPU. AIFinOpsGPUIdle fires when this lasts.' % (idle * 100),
      [g.query(q.gpuIdleOrZero, 'Idle')],
      'short',
      { thresholds: g.thresholds('green', [[1, 'orange']]) },
    ),
    g.stat(
      'GPU spend ($/h)',
      'What the GPUs in scope cost per hour at their configured hourly prices.',
      [g.query(q.gpuSpendPerHour(''), 'GPU')],
      'currencyUSD',
      { graph: true, decimals: 2 },
    ),
    g.stat(
      'Idle GPU spend ($/h)',
      'The part of GPU spend paid for idle capacity: cost x (1 - utilisation), in dollars per hour. This is the saving available by right-sizing.',
      [g.query(q.gpuIdlePerHour(''), 'Idle')],
      'currencyUSD',
      { graph: true, decimals: 2, thresholds: g.thresholds('green', [[1, 'orange']]) },
    ),
    g.stat(
      'Idle share of GPU spend',
      'Idle GPU cost as a share of GPU cost. Above a third, capacity is oversized for the work: consolidate pods or use time-slicing or MIG.',
      [g.query(q.gpuIdleShare(), 'Idle share')],
      'percentunit',
      { graph: true, decimals: 1, min: 0, max: 1, thresholds: g.thresholds('green', [[0.2, 'orange'], [0.5, 'red']]) },
    ),

    g.row('Utilisation'),
    g.stateTimeline(
      'Utilisation per GPU',
      'Each GPU\'s utilisation over time, one row per GPU: red below %d %% (idle), orange and yellow for light use, green when busy. A long red stretch on a held GPU is waste; a GPU that is green only in bursts may be shared.' % (idle * 100),
      [g.query(q.gpuUtilisation, '{{node}} GPU {{gpu}}')],
      'percentunit',
      { min: 0, max: 1, thresholds: utilisationSteps, w: 24, h: 10 },
    ),
    g.timeseries(
      'Allocated vs idle GPUs',
      'How many GPUs pods hold, how many of those are under %d %% utilised, and (with "All") how many no pod holds. Idle and unallocated GPUs both cost money: release them or shrink the node pool.' % (idle * 100),
      [
        g.query(q.gpusAllocated, 'Allocated'),
        g.query(std.rstripChars(q.gpusIdle, '\n'), 'Allocated but idle'),
        g.query(q.gpusUnallocated, 'Not allocated'),
      ],
      'short',
      { min: 0 },
    ),
    g.timeseries(
      'GPU spend vs idle spend ($/h)',
      'GPU spend per hour and the idle part of it. The gap between the lines is what the GPUs did useful work for; a growing idle line is waste building up.',
      [
        g.query(q.gpuSpendPerHour(''), 'GPU spend'),
        g.query(q.gpuIdlePerHour(''), 'Idle spend'),
      ],
      'currencyUSD',
    ),

    g.row('Idle cost'),
    g.timeseries(
      'Idle cost by team ($/h)',
      'Idle GPU spend per hour by team. "%s" is GPUs no pod holds: the cluster\'s own waste. Ask the top team to release or share its idle GPUs.' % c.dashboardUnattributedLabel,
      [g.query(q.named(q.gpuIdlePerHour('team'), 'team'), '{{team}}')],
      'currencyUSD',
      { stack: true, legendCalcs: ['mean', 'last'] },
    ),
    g.timeseries(
      'Idle cost by namespace ($/h)',
      'Idle GPU spend per hour by Kubernetes namespace: where to look for the workloads that hold GPUs without using them.',
      [g.query(q.named(q.gpuIdlePerHour('namespace'), 'namespace'), '{{namespace}}')],
      'currencyUSD',
      { stack: true, legendCalcs: ['mean', 'last'] },
    ),

    g.row('Pods'),
    g.table(
      'Pods by GPU cost',
      'Every pod that held a GPU in the selected time range: its GPU cost, the idle part of it and the idle share, most expensive first. A high idle share on an expensive pod is the first GPU to take back.',
      [
        g.query(q.podCost, '', instant=true),
        g.query(q.podIdleCost, '', instant=true),
        g.query(q.podIdleShare, '', instant=true),
        g.query(q.podGpus, '', instant=true),
      ],
      [
        ['GPU cost', 'currencyUSD'],
        ['Idle cost', 'currencyUSD'],
        ['Idle share', 'percentunit', { type: 'color-background', mode: 'gradient' }],
        ['GPUs held now', 'short'],
      ],
      { w: 24, h: 10, sortBy: 'GPU cost', thresholds: g.thresholds('green', [[0.2, 'orange'], [0.5, 'red']]) },
    ),

    g.row('Prices'),
    g.table(
      'Price of each GPU and where it comes from',
      'Each GPU\'s price per GPU-hour and its source: opencost (the node\'s real price from OpenCost, gpu.prices.opencost_url), opencost_spot (the same on a spot node), override (gpu.price_overrides), table (the shipped list prices) or none (not priced: no money counted). A GPU on table while OpenCost runs means OpenCost has no GPU price for its node, or has been unreachable past the grace period: check the opencost collector on the pipeline dashboard.',
      [
        g.query(q.gpuPrice, '', instant=true),
        g.query(q.gpuPriceSource, '', instant=true),
      ],
      [['$ per GPU-hour', 'currencyUSD']],
      { w: 24, h: 8, hidden: ['Value #B'], sortBy: '$ per GPU-hour' },
    ),

    g.row('Memory and power'),
    g.timeseries(
      'GPU memory used',
      'Memory used as a share of each GPU\'s memory. A held GPU with low memory use and low utilisation could run on a smaller GPU or a MIG slice.',
      [g.query(q.gpuMemoryUsed, '{{node}} GPU {{gpu}}')],
      'percentunit',
      { min: 0, max: 1 },
    ),
    g.timeseries(
      'GPU power draw',
      'Power each GPU draws, in watts. Near-idle power on a held GPU confirms it is not working; power at the limit with low utilisation points to throttling.',
      [g.query(q.gpuPower, '{{node}} GPU {{gpu}}')],
      'watt',
    ),
  ])
