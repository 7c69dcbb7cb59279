// The aifinops monitoring mixin: configuration + alerts + recording rules + dashboards.
// Import it and override `_config` to adapt selectors and thresholds to your setup.
(import 'config.libsonnet') +
(import 'currency.libsonnet') +
(import 'alerts/alerts.libsonnet') +
(import 'rules/rules.libsonnet') +
(import 'dashboards/dashboards.libsonnet')
