"""`aifinops_namespace_team_info{namespace,team}` = 1: the namespace -> team map of the config
(`gpu.namespace_teams`) as a series PromQL joins OpenCost's per-namespace costs with, so Kubernetes
costs land on the same `team` values as GPU and LLM spend. Served by the token exporter, which every
installation runs (a cluster without GPU nodes has no GPU exporter)."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from prometheus_client.core import GaugeMetricFamily, Metric

NAMESPACE_TEAM_INFO = "aifinops_namespace_team_info"


class NamespaceTeamCollector:
    """One series per configured namespace. The labels are bounded by the config file: nothing a
    client sends adds a series."""

    def __init__(self, namespace_teams: Mapping[str, str]) -> None:
        # Namespaces mapped to "" mean "no team": left out, so their costs stay unattributed.
        self._pairs = MappingProxyType(
            {ns: team for ns, team in sorted(namespace_teams.items()) if ns and team}
        )

    def collect(self) -> list[Metric]:
        """The info family, empty when no namespace is mapped."""
        family = GaugeMetricFamily(
            NAMESPACE_TEAM_INFO,
            "The team each Kubernetes namespace counts for (config gpu.namespace_teams); joins "
            "OpenCost's per-namespace costs to teams.",
            labels=["namespace", "team"],
        )
        for namespace, team in self._pairs.items():
            family.add_metric([namespace, team], 1)
        return [family]
