// Grafana dashboards, keyed by the file name they are rendered to under dashboards/. Each is a
// function of `_config`, so overriding the config (selectors, UIDs, thresholds) re-renders them.
(import 'config.libsonnet') +
{
  grafanaDashboards+:: {
    'aifinops-overview.json': (import 'overview.libsonnet')($._config),
    'aifinops-gpu.json': (import 'gpu.libsonnet')($._config),
    'aifinops-llm.json': (import 'llm.libsonnet')($._config),
    'aifinops-pipeline.json': (import 'pipeline.libsonnet')($._config),
    'aifinops-savings.json': (import 'savings.libsonnet')($._config),
  },
}
