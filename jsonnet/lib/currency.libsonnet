// Money in the reporting currency (_config.currency): the Grafana unit, the symbol, the rate
// series and the Go-template fragments that show an amount. In USD every fragment is the one the
// pack always used, so the default render does not change.
local p = import 'promql.libsonnet';

// Symbols Grafana's currency units use too; any other code is written before the amount.
local symbols = { USD: '$', GBP: '£', EUR: '€', JPY: '¥', CNY: '¥', INR: '₹', KRW: '₩' };

function(c) {
  local code = c.currency,
  local m = self,
  code: code,
  // True when the pack reports in US dollars: the `_usd` series are the reporting series.
  usd: code == 'USD',
  symbol: std.get(symbols, code, code + ' '),
  // Grafana unit of a money panel.
  unit: 'currency' + code,
  // The rate in force, units of the reporting currency per US dollar, as the exporters serve it.
  rate: 'aifinops_fx_rate{%s}' % p.withMatchers(c.aifinopsSelector, ['currency="%s"' % code]),
  // The rate as one sample (several exporters serve the same rate).
  rateMax: 'max(%s)' % m.rate,

  // $value, already in the reporting currency, with cents.
  value: m.symbol + '{{ printf "%.2f" $value }}',
  // The first sample of a query that returns the reporting currency (p.template.queryDollars).
  query(format, args='', unit=''):: '{{ with printf %s %s | query }}{{ . | first | value | printf "%s%%.2f" }}%s{{ else }}none{{ end }}' % [format, args, m.symbol, unit],

  // An amount in US dollars (a Go-template float: `$value`, or a constant), shown in the
  // reporting currency at the rate in force now (alerts are about the present), or "no rate"
  // when none is served: never converted at a made-up 1.0.
  convertUsd(amount):: '{{ with printf `%%f * %s` %s | query }}{{ . | first | value | printf "%s%%.2f" }}{{ else }}(no USD to %s rate){{ end }}' % [m.rateMax, amount, m.symbol, code],
  // $value in US dollars, in the reporting currency.
  fromUsd: if m.usd then p.template.dollars else m.convertUsd('$value'),
  // A threshold of _config in US dollars (a number; the rules compare it with the `_usd`
  // series), stated as configured ('$200') in USD and in the reporting currency at the rate in
  // force otherwise: an alert in pounds does not quote dollar floors. The constant is written
  // as a Go float ('200.0'), which printf's %f needs.
  usdThreshold(x)::
    local n = p.num(x);
    if m.usd then '$' + n
    else m.convertUsd(if std.length(std.findSubstr('.', n)) + std.length(std.findSubstr('e', n)) > 0 then n else n + '.0'),
  // Zero money ('$0.00'): the same at any rate, so it needs none.
  zero: m.symbol + '0.00',
  // A query in US dollars (a backtick-quoted format, as for p.template.queryDollars), shown in
  // the reporting currency at the rate in force now.
  queryUsd(format, args='', unit='')::
    if m.usd then p.template.queryDollars(format, args, unit)
    else m.query('`(%s) * on () group_left () %s`' % [std.substr(format, 1, std.length(format) - 2), m.rateMax], args, unit),
}
