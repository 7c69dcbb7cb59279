// Grafana dashboards, keyed by the file name they are rendered to under dashboards/. Each is a
// function of `_config`, so overriding the config (selectors, UIDs, thresholds) re-renders them.
local currency = import '../lib/currency.libsonnet';

// In a reporting currency other than USD (_config.currency): a `currency` variable holding the
// code, and every money panel (unit currencyUSD, or a table column of that unit) converted with
// the rate in force at each point (aifinops_fx_rate{currency="$currency"}) and given that
// currency's unit; `$` in money titles becomes its symbol. No rate: the panel shows no data,
// never dollars labelled as pounds.
local inCurrency(c, dashboard) =
  local cur = currency(c);
  local sym(s) = std.strReplace(std.strReplace(std.strReplace(s, '($', '(' + cur.symbol), '$/', cur.symbol + '/'), '$ per', cur.symbol + ' per');
  local convert(t) = t { expr: '(%s) * on () group_left () max(aifinops_fx_rate{%s, currency="$currency"})' % [t.expr, c.aifinopsSelector] };
  local moneyUnit = 'currencyUSD';
  local panel(p) =
    local unit = std.get(std.get(std.get(p, 'fieldConfig', {}), 'defaults', {}), 'unit', '');
    local overrides = std.get(std.get(p, 'fieldConfig', {}), 'overrides', []);
    local renamed = if p.type == 'table' then p.transformations[1].options.renameByName else {};
    local columnOf(i) = local key = if std.length(p.targets) == 1 then 'Value' else 'Value #' + p.targets[i].refId; std.get(renamed, key, '');
    local isMoneyColumn(name) = std.length([o for o in overrides if o.matcher.options == name && o.properties[0].value == moneyUnit]) > 0;
    if p.type == 'row' then p { title: sym(p.title) }
    else if p.type == 'table' then p {
      title: sym(p.title),
      targets: [if isMoneyColumn(columnOf(i)) then convert(p.targets[i]) else p.targets[i] for i in std.range(0, std.length(p.targets) - 1)],
      transformations: [
        if tr.id == 'organize' then tr { options+: { renameByName: { [k]: sym(tr.options.renameByName[k]) for k in std.objectFields(tr.options.renameByName) } } } else tr
        for tr in p.transformations
      ],
      fieldConfig+: { overrides: [
        o {
          matcher+: { options: sym(o.matcher.options) },
          properties: [if pr.id == 'unit' && pr.value == moneyUnit then pr { value: cur.unit } else pr for pr in o.properties],
        }
        for o in overrides
      ] },
      options+: { sortBy: [s { displayName: sym(s.displayName) } for s in std.get(p.options, 'sortBy', [])] },
    }
    else if unit == moneyUnit then p {
      title: sym(p.title),
      targets: [convert(t) for t in p.targets],
      fieldConfig+: { defaults+: { unit: cur.unit } },
    }
    else p;
  if cur.usd then dashboard else dashboard {
    templating+: { list+: [{
      name: 'currency',
      label: 'Currency',
      description: 'The reporting currency (the rule pack\'s _config.currency): money panels convert US dollars with aifinops_fx_rate of this currency at each point in time.',
      type: 'custom',
      query: cur.code,
      current: { selected: true, text: cur.code, value: cur.code },
      options: [{ selected: true, text: cur.code, value: cur.code }],
      hide: 0,
      multi: false,
      includeAll: false,
      skipUrlSync: false,
    }] },
    panels: [panel(p) for p in dashboard.panels],
  };

(import 'config.libsonnet') +
{
  grafanaDashboards+:: {
    local c = $._config,
    'aifinops-overview.json': inCurrency(c, (import 'overview.libsonnet')(c)),
    'aifinops-gpu.json': inCurrency(c, (import 'gpu.libsonnet')(c)),
    'aifinops-llm.json': inCurrency(c, (import 'llm.libsonnet')(c)),
    'aifinops-pipeline.json': inCurrency(c, (import 'pipeline.libsonnet')(c)),
    'aifinops-savings.json': inCurrency(c, (import 'savings.libsonnet')(c)),
  },
}
