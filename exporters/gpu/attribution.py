"""Attributes GPU processes to Kubernetes containers: `/proc/<pid>/cgroup` gives the pod UID and
container id (cgroup v1 and v2; systemd and cgroupfs drivers; containerd, CRI-O and Docker paths),
the kubelet's pod list gives namespace, pod, container name and labels.

Paths this understands (the pod UID is written with `_` under the systemd driver):

    v2, systemd, containerd: 0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod<uid>.slice/cri-containerd-<id>.scope
    v2, systemd, CRI-O:      0::/kubepods.slice/kubepods-pod<uid>.slice/crio-<id>.scope
    v1, cgroupfs:            11:memory:/kubepods/besteffort/pod<uid>/<id>
    v1, systemd, docker:     4:devices:/kubepods.slice/.../kubepods-pod<uid>.slice/docker-<id>.scope
    in a private cgroup namespace the same with a `/../..` prefix.

CRI-O's `crio-conmon-<id>.scope` (the monitor process, not the container) is not a container.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from dataclasses import dataclass

from .kube import PodDirectory
from .model import PodRef

_POD = re.compile(
    r"pod([0-9a-f]{8}[-_][0-9a-f]{4}[-_][0-9a-f]{4}[-_][0-9a-f]{4}[-_][0-9a-f]{12}|[0-9a-f]{32})"
    r"(?:\.slice)?$"
)
_CONTAINER = re.compile(
    r"^(?:cri-containerd-|crio-|docker-|containerd-)?([0-9a-f]{64})(?:\.scope)?$"
)


@dataclass(frozen=True)
class CgroupRef:
    """The pod and container a process runs in, from its cgroup path."""

    pod_uid: str
    container_id: str | None


def parse_cgroup(text: str) -> CgroupRef | None:
    """The pod UID and container id in a `/proc/<pid>/cgroup` file, or None outside a pod."""
    for line in text.splitlines():
        _, _, path = line.partition(":")
        _, _, path = path.partition(":")
        pod_uid: str | None = None
        container: str | None = None
        for segment in path.split("/"):
            match = _POD.search(segment)
            if match and "kubepods" in path:
                pod_uid = match.group(1).replace("_", "-")
                container = None
                continue
            if pod_uid is not None and container is None:
                cmatch = _CONTAINER.match(segment)
                if cmatch:
                    container = cmatch.group(1)
        if pod_uid is not None:
            return CgroupRef(pod_uid, container)
    return None


class ProcessAttributor:
    """Maps GPU process ids to the containers running them."""

    def __init__(self, pods: PodDirectory | None, proc_root: str = "/proc") -> None:
        self._pods = pods
        self._proc_root = proc_root

    def cgroup_of(self, pid: int) -> CgroupRef | None:
        """The cgroup reference of `pid`, or None when it is gone or not in a pod."""
        try:
            with open(os.path.join(self._proc_root, str(pid), "cgroup"), encoding="utf-8") as f:
                return parse_cgroup(f.read())
        except OSError:
            return None

    def holders(self, pids: Iterable[int]) -> tuple[PodRef, ...]:
        """The distinct containers of `pids`, in first-seen order. Processes outside pods, and pods
        the kubelet does not (yet) list, hold nothing."""
        if self._pods is None:
            return ()
        found: dict[tuple[str, str, str], PodRef] = {}
        for pid in pids:
            ref = self.cgroup_of(pid)
            if ref is None:
                continue
            pod = self._pods.pod(ref.pod_uid)
            if pod is None:
                continue
            container = pod.containers.get(ref.container_id or "", "")
            key = (pod.namespace, pod.name, container)
            if key not in found:
                found[key] = PodRef(pod.namespace, pod.name, container, pod.labels)
        return tuple(found.values())
