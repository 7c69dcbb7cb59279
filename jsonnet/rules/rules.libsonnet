// Recording rules of every tier, in `aifinopsRecordingRules.<tier>`. Each tier's recording and
// alerting rules are evaluated in one group (alerts/alerts.libsonnet assembles them), so an alert
// sees the series its group recorded at the same evaluation.
(import 'fast.libsonnet') +
(import 'burn.libsonnet') +
(import 'kubernetes.libsonnet') +
(import 'anomaly.libsonnet') +
(import 'savings.libsonnet')
