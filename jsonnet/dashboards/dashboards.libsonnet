// Grafana dashboards, keyed by the file name they are rendered to under dashboards/.
{
  grafanaDashboards+:: {},
}
