"""Which team a GPU holder counts for: its pod's team label, else its namespace's team from the config."""

from __future__ import annotations

import re
from collections.abc import Mapping

from .model import PodRef

DEFAULT_TEAM_LABEL = "team"


def sanitize_label_name(name: str) -> str:
    """A Kubernetes label key as exporters write it as a Prometheus label name (`app.kubernetes.io/team`
    becomes `app_kubernetes_io_team`), the form dcgm-exporter uses for the pod labels it copies."""
    return re.sub(r"[^A-Za-z0-9_]", "_", name)


class TeamResolver:
    """Resolves a holder's team: the pod label `label_key` when set and non-empty, else the
    namespace's team from `namespace_teams`, else `""` (unattributed)."""

    def __init__(
        self, label_key: str = DEFAULT_TEAM_LABEL, namespace_teams: Mapping[str, str] | None = None
    ) -> None:
        self._keys = (label_key, sanitize_label_name(label_key))
        self._namespace_teams = dict(namespace_teams or {})

    def team(self, holder: PodRef) -> str:
        """The team `holder` counts for."""
        for key in self._keys:
            value = holder.labels.get(key)
            if value:
                return value
        return self._namespace_teams.get(holder.namespace, "")
