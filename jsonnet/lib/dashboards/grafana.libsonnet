// A lean Grafana dashboard builder: the dashboard model, template variables, annotations, the
// panel types the aifinops dashboards use, and a layout helper that numbers panels and places them
// on Grafana's 24-column grid. Grafonnet cannot be vendored here (its install fetches from the
// internet); this emits the same JSON model, for Grafana 10.4 and newer (schemaVersion 39).
//
// Panels take their queries ready-made (see jsonnet/dashboards/queries.libsonnet): this file is
// layout and presentation only. Every datasource reference is the `$datasource` variable.
local datasource = { type: 'prometheus', uid: '${datasource}' };

// Base colour of the threshold steps of panels that do not colour by value.
local neutral = [{ color: 'text', value: null }];

local reduceOptions(calc) = { calcs: [calc], fields: '', values: false };

local fieldDefaults(unit, opts) = {
  unit: unit,
  color: { mode: std.get(opts, 'colorMode', 'palette-classic') },
  thresholds: { mode: 'absolute', steps: std.get(opts, 'thresholds', neutral) },
  mappings: std.get(opts, 'mappings', []),
} + (if std.objectHas(opts, 'min') then { min: opts.min } else {})
  + (if std.objectHas(opts, 'max') then { max: opts.max } else {})
  + (if std.objectHas(opts, 'decimals') then { decimals: opts.decimals } else {})
  // Shown instead of "No data" where an empty result is a healthy state (no alerts firing).
  + (if std.objectHas(opts, 'noValue') then { noValue: opts.noValue } else {});

local letters = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ';

{
  datasource:: datasource,

  // One PromQL query of a panel. `instant` queries evaluate once at the end of the panel's time
  // range (with `$__range` as the whole range); the others return a series over the range.
  query(expr, legend='__auto', instant=false, format='time_series'):: {
    datasource: datasource,
    editorMode: 'code',
    expr: expr,
    legendFormat: legend,
    instant: instant,
    range: !instant,
    format: format,
  },

  // Threshold steps: base colour, then [value, colour] pairs (sorted here, as Grafana needs).
  thresholds(base, steps=[]):: [{ color: base, value: null }] + [
    { color: s[1], value: s[0] }
    for s in std.sort(steps, function(s) s[0])
  ],

  // Colour steps of a budget-used gauge (0..1): green, then one step per budget alert level.
  budgetSteps(c):: $.thresholds('green', [
    [t.ratio, { info: 'yellow', warning: 'orange', critical: 'red' }[t.severity]]
    for t in c.budgetThresholds
  ]),

  // A value mapping from exact values to text and colour: {'0': ['Not firing', 'red'], ...}.
  valueText(map):: [{
    type: 'value',
    options: {
      [k]: { text: map[k][0], color: map[k][1], index: i }
      for i in std.range(0, std.length(std.objectFields(map)) - 1)
      for k in [std.objectFields(map)[i]]
    },
  }],

  local panel(type, title, description, targets, unit, opts) = {
    type: type,
    title: title,
    description: description,
    datasource: datasource,
    targets: [
      targets[i] { refId: letters[i] }
      for i in std.range(0, std.length(targets) - 1)
    ],
    fieldConfig: {
      defaults: fieldDefaults(unit, opts) + std.get(opts, 'defaults', {}),
      overrides: std.get(opts, 'overrides', []),
    },
    // Layout hints read by layout(); removed from the output there.
    w:: std.get(opts, 'w', 12),
    h:: std.get(opts, 'h', 8),
  } + (if std.objectHas(opts, 'timeFrom') then { timeFrom: opts.timeFrom } else {})
    + (if std.objectHas(opts, 'links') then { links: opts.links } else {})
    + (if std.objectHas(opts, 'transformations') then { transformations: opts.transformations } else {}),

  // A time series. opts: stack (bool), thresholdLines ([value, colour] pairs drawn as lines),
  // min/max, legendCalcs (e.g. ['mean', 'max'] shown in a table legend), w/h.
  timeseries(title, description, targets, unit, opts={}):: panel('timeseries', title, description, targets, unit, opts + (
    if std.objectHas(opts, 'thresholdLines') then { thresholds: $.thresholds('transparent', opts.thresholdLines) } else {}
  )) {
    fieldConfig+: {
      defaults+: {
        custom: {
          drawStyle: 'line',
          lineInterpolation: 'linear',
          lineWidth: 1,
          fillOpacity: if std.get(opts, 'stack', false) then 30 else 10,
          gradientMode: 'none',
          showPoints: 'never',
          spanNulls: false,
          axisSoftMin: 0,
          stacking: { mode: if std.get(opts, 'stack', false) then 'normal' else 'none', group: 'A' },
          thresholdsStyle: { mode: if std.objectHas(opts, 'thresholdLines') then 'dashed' else 'off' },
        },
      },
    },
    options: {
      legend: {
        showLegend: true,
        displayMode: if std.objectHas(opts, 'legendCalcs') then 'table' else 'list',
        placement: if std.objectHas(opts, 'legendCalcs') then 'right' else 'bottom',
        calcs: std.get(opts, 'legendCalcs', []),
      },
      tooltip: { mode: 'multi', sort: 'desc' },
    },
  },

  // One big number per query (or per series), the last value of the range unless `calc` says
  // otherwise. opts: thresholds (colour by value), graph (sparkline), mappings, w/h.
  stat(title, description, targets, unit, opts={}):: panel('stat', title, description, targets, unit, opts + {
    colorMode: if std.objectHas(opts, 'thresholds') then 'thresholds' else 'fixed',
  }) {
    fieldConfig+: { defaults+: if std.objectHas(opts, 'thresholds') then {} else { color: { mode: 'fixed', fixedColor: 'blue' } } },
    options: {
      reduceOptions: reduceOptions(std.get(opts, 'calc', 'lastNotNull')),
      colorMode: 'value',
      graphMode: if std.get(opts, 'graph', false) then 'area' else 'none',
      justifyMode: 'auto',
      textMode: if std.length(targets) > 1 then 'value_and_name' else 'auto',
      orientation: 'auto',
      wideLayout: true,
      showPercentChange: false,
    },
    w:: std.get(opts, 'w', 4),
    h:: std.get(opts, 'h', 4),
  },

  // A gauge per series, coloured by thresholds (e.g. budget used at 50 / 80 / 100 %).
  gauge(title, description, targets, unit, opts={}):: panel('gauge', title, description, targets, unit, opts + { colorMode: 'thresholds' }) {
    options: {
      reduceOptions: reduceOptions('lastNotNull'),
      showThresholdLabels: false,
      showThresholdMarkers: true,
      orientation: 'auto',
      sizing: 'auto',
      minVizWidth: 75,
      minVizHeight: 75,
    },
  },

  // Horizontal bars, one per series: a ranking (top teams, top models).
  bargauge(title, description, targets, unit, opts={}):: panel('bargauge', title, description, targets, unit, opts + {
    colorMode: std.get(opts, 'colorMode', 'continuous-BlPu'),
  }) {
    options: {
      reduceOptions: reduceOptions('lastNotNull'),
      displayMode: 'gradient',
      valueMode: 'color',
      namePlacement: 'auto',
      orientation: 'horizontal',
      showUnfilled: true,
      sizing: 'auto',
      minVizWidth: 8,
      minVizHeight: 16,
      maxVizHeight: 300,
      legend: { showLegend: false, displayMode: 'list', placement: 'bottom', calcs: [] },
    },
  },

  // A table of instant queries joined on their labels (Grafana's "merge" transformation), with
  // the value columns renamed and given their own units: columns = [[name, unit], ...] in query
  // order; hidden = label columns not to show.
  table(title, description, targets, columns, opts={}):: panel('table', title, description, [
    t { instant: true, range: false, format: 'table' }
    for t in targets
  ], 'short', opts + {
    transformations: [
      { id: 'merge', options: {} },
      {
        id: 'organize',
        options: {
          excludeByName: { Time: true } + { [h]: true for h in std.get(opts, 'hidden', []) },
          renameByName: {
            [if std.length(targets) == 1 then 'Value' else 'Value #' + letters[i]]: columns[i][0]
            for i in std.range(0, std.length(columns) - 1)
          },
          indexByName: {},
        },
      },
    ],
    overrides: [
      {
        matcher: { id: 'byName', options: c[0] },
        // A third element is the cell display (e.g. a background coloured by the thresholds).
        properties: [{ id: 'unit', value: c[1] }] + (
          if std.length(c) > 2 then [
            { id: 'custom.cellOptions', value: c[2] },
            { id: 'color', value: { mode: 'thresholds' } },
          ] else []
        ),
      }
      for c in columns
    ],
  }) {
    options: {
      showHeader: true,
      cellHeight: 'sm',
      footer: { show: false, reducer: ['sum'], countRows: false },
      sortBy: if std.objectHas(opts, 'sortBy') then [{ displayName: opts.sortBy, desc: true }] else [],
    },
  },

  // One row per series, coloured by value over time (e.g. utilisation per GPU).
  stateTimeline(title, description, targets, unit, opts={}):: panel('state-timeline', title, description, targets, unit, opts + {
    colorMode: 'thresholds',
  }) {
    fieldConfig+: { defaults+: { custom: { fillOpacity: 80, lineWidth: 0 } } },
    options: {
      mergeValues: false,
      showValue: 'never',
      alignValue: 'left',
      rowHeight: 0.9,
      legend: { showLegend: true, displayMode: 'list', placement: 'bottom', calcs: [] },
      tooltip: { mode: 'single', sort: 'none' },
    },
  },

  // A section header. Rows are kept expanded so every panel sits at the top level of the model.
  row(title):: { type: 'row', title: title, collapsed: false, panels: [] },

  // Place `items` (rows and panels) on the grid in reading order: a row takes a full line, panels
  // fill a line left to right (each `w` wide, `h` high) and wrap when the next one does not fit.
  // Panels get ids 1, 2, ... in that order.
  layout(items)::
    local step(state, item) =
      if item.type == 'row' then
        local y = state.y + state.lineH;
        state {
          y: y + 1,
          x: 0,
          lineH: 0,
          out+: [item { gridPos: { x: 0, y: y, w: 24, h: 1 } }],
        }
      else
        local wraps = state.x + item.w > 24;
        local x = if wraps then 0 else state.x;
        local y = if wraps then state.y + state.lineH else state.y;
        state {
          x: x + item.w,
          y: y,
          lineH: if wraps then item.h else std.max(state.lineH, item.h),
          out+: [item { gridPos: { x: x, y: y, w: item.w, h: item.h } }],
        };
    local placed = std.foldl(step, items, { x: 0, y: 0, lineH: 0, out: [] }).out;
    [placed[i] { id: i + 1 } for i in std.range(0, std.length(placed) - 1)],

  // The data source picker every query goes through.
  datasourceVariable:: {
    name: 'datasource',
    label: 'Data source',
    type: 'datasource',
    query: 'prometheus',
    regex: '',
    current: {},
    hide: 0,
    refresh: 1,
    multi: false,
    includeAll: false,
    options: [],
    skipUrlSync: false,
  },

  // A multi-value label filter filled from `label_values(selector, label)`. "All" is the regex
  // `.*`, so it also matches series whose label is empty (e.g. GPU cost no pod holds).
  labelVariable(name, label, selector, description):: {
    name: name,
    label: label,
    description: description,
    type: 'query',
    datasource: datasource,
    query: 'label_values(%s, %s)' % [selector, name],
    regex: '',
    current: { selected: true, text: ['All'], value: ['$__all'] },
    hide: 0,
    refresh: 2,  // on time range change, so new teams and models appear
    sort: 1,
    multi: true,
    includeAll: true,
    allValue: '.*',
    options: [],
    skipUrlSync: false,
  },

  // Prometheus series shown as annotations on every time series panel.
  annotation(name, expr, titleFormat, textFormat, tagKeys, colour):: {
    name: name,
    datasource: datasource,
    enable: true,
    hide: false,
    iconColor: colour,
    expr: expr,
    step: '30s',
    titleFormat: titleFormat,
    textFormat: textFormat,
    tagKeys: tagKeys,
    useValueForTime: false,
  },

  // Grafana's own annotations and alerts, as every new dashboard has them.
  builtinAnnotation:: {
    name: 'Annotations & Alerts',
    datasource: { type: 'grafana', uid: '-- Grafana --' },
    enable: true,
    hide: true,
    iconColor: 'rgba(0, 211, 255, 1)',
    type: 'dashboard',
    builtIn: 1,
  },

  dashboard(uid, title, description, tags, variables, annotations, links, items, opts={}):: {
    uid: uid,
    title: title,
    description: description,
    tags: tags,
    editable: true,
    graphTooltip: 1,  // shared crosshair: line up spend with utilisation and alerts
    schemaVersion: 39,
    version: 1,
    timezone: std.get(opts, 'timezone', 'utc'),
    time: { from: std.get(opts, 'from', 'now-6h'), to: 'now' },
    refresh: std.get(opts, 'refresh', '30s'),
    fiscalYearStartMonth: 0,
    liveNow: false,
    weekStart: '',
    timepicker: { refresh_intervals: ['10s', '30s', '1m', '5m', '15m', '1h'] },
    templating: { list: variables },
    annotations: { list: [$.builtinAnnotation] + annotations },
    links: links,
    panels: $.layout(items),
  },
}
