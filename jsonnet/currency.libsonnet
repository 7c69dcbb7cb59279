// The reporting currency of the rule pack and dashboards (docs/currency.md). One key; everything
// the pack shows or compares in money follows it. Render the pack in pounds with
//
//   (import 'aifinops/mixin.libsonnet') + { _config+:: { currency: 'GBP' } }
//
// USD (the default) renders the pack exactly as before: every figure from the `_usd` families.
// Any other ISO 4217 code adds the budget tier's series in that currency, converted at each
// evaluation with the rate in force (aifinops_fx_rate{currency}, served by the token exporter and
// the bridge), reads budgets in that currency, adds AIFinOpsFXRateMissing, and shows that
// currency in alert descriptions and dashboard money panels.
{
  _config+:: {
    // ISO 4217 code of the reporting currency; the exporters' `currency.code` must match.
    currency: 'USD',
    // AIFinOpsFXRateMissing: no aifinops_fx_rate sample for the reporting currency for this long
    // (the exporters drop the gauge when no configured rate is in force or the rates file is bad).
    fxRateMissingFor: '5m',
  },
}
