"""Reads Kubernetes state the GPU exporter needs: the kubelet's pod list (who runs on this node) and
node labels from the API server (instance type, capacity type, for prices). All network I/O of
attribution lives here; callers get cached, immutable answers and a health flag.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any
from urllib.parse import quote

import requests

from ..runtime.selfmetrics import CollectorHealth

log = logging.getLogger(__name__)

SERVICE_ACCOUNT_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"
DEFAULT_TOKEN_FILE = f"{SERVICE_ACCOUNT_DIR}/token"
DEFAULT_CA_FILE = f"{SERVICE_ACCOUNT_DIR}/ca.crt"


class KubeError(Exception):
    """A Kubernetes endpoint could not be read or answered something unusable."""


@dataclass(frozen=True)
class KubeAuth:
    """How to authenticate to the kubelet and API server: a bearer token file (re-read on every
    request, since projected tokens rotate) and a CA bundle, or no verification (kubelet serving
    certificates are often self-signed, as kube-prometheus-stack's kubelet scrape assumes)."""

    token_file: str | None = DEFAULT_TOKEN_FILE
    ca_file: str | None = DEFAULT_CA_FILE
    insecure_skip_verify: bool = False
    timeout_seconds: float = 2.0


class KubeClient:
    """GETs JSON from a Kubernetes endpoint with the service account's token."""

    def __init__(self, auth: KubeAuth) -> None:
        self._auth = auth
        self._session = requests.Session()

    def get_json(self, url: str) -> Any:
        """The decoded JSON body of `url`; raises `KubeError` with the reason."""
        headers = {"Accept": "application/json"}
        token_file = self._auth.token_file
        if token_file and os.path.exists(token_file):
            with open(token_file, encoding="utf-8") as f:
                headers["Authorization"] = f"Bearer {f.read().strip()}"
        verify: bool | str = True
        if self._auth.insecure_skip_verify:
            verify = False
        elif self._auth.ca_file and os.path.exists(self._auth.ca_file):
            verify = self._auth.ca_file
        try:
            resp = self._session.get(
                url, headers=headers, timeout=self._auth.timeout_seconds, verify=verify
            )
        except requests.RequestException as exc:
            raise KubeError(f"GET {url}: {exc}") from exc
        if resp.status_code != 200:
            raise KubeError(f"GET {url}: HTTP {resp.status_code} {resp.text[:200]!r}")
        try:
            return resp.json()
        except ValueError as exc:
            raise KubeError(f"GET {url}: not JSON ({exc})") from exc


@dataclass(frozen=True)
class PodInfo:
    """One pod of the kubelet's list: identity, labels and its containers by runtime id."""

    uid: str
    namespace: str
    name: str
    labels: Mapping[str, str]
    # container id (hex, runtime prefix removed) -> container name
    containers: Mapping[str, str]


@dataclass(frozen=True)
class PodList:
    """Pods by UID, as of one read of the kubelet."""

    pods: Mapping[str, PodInfo]


def parse_pod_list(doc: Any) -> PodList:
    """Turn a kubelet `/pods` (or API `PodList`) document into pods by UID; raise `KubeError`."""
    if not isinstance(doc, Mapping) or not isinstance(doc.get("items"), list):
        raise KubeError("pod list: expected an object with an 'items' list")
    pods: dict[str, PodInfo] = {}
    for item in doc["items"]:
        if not isinstance(item, Mapping):
            continue
        meta = item.get("metadata") or {}
        uid, name, namespace = meta.get("uid"), meta.get("name"), meta.get("namespace")
        if not (isinstance(uid, str) and isinstance(name, str) and isinstance(namespace, str)):
            continue
        labels = meta.get("labels") or {}
        containers: dict[str, str] = {}
        status = item.get("status") or {}
        for key in ("containerStatuses", "initContainerStatuses", "ephemeralContainerStatuses"):
            for cs in status.get(key) or ():
                if not isinstance(cs, Mapping):
                    continue
                cid, cname = cs.get("containerID"), cs.get("name")
                if isinstance(cid, str) and isinstance(cname, str) and cid:
                    # "containerd://<id>", "cri-o://<id>", "docker://<id>"
                    containers[cid.rpartition("://")[2]] = cname
        pods[uid] = PodInfo(
            uid=uid,
            namespace=namespace,
            name=name,
            labels=MappingProxyType(
                {str(k): str(v) for k, v in labels.items()} if isinstance(labels, Mapping) else {}
            ),
            containers=MappingProxyType(containers),
        )
    return PodList(MappingProxyType(pods))


def kubelet_pods_url(kubelet_url: str) -> str:
    """The kubelet's pod list: `<kubelet_url>/pods` (a URL already ending in /pods is kept)."""
    base = kubelet_url.rstrip("/")
    return base if base.endswith("/pods") else f"{base}/pods"


def api_pods_url(api_url: str, node: str) -> str:
    """The API server's list of the pods scheduled on `node` (same `PodList` format)."""
    return f"{api_url.rstrip('/')}/api/v1/pods?fieldSelector=spec.nodeName%3D{quote(node, safe='')}"


class PodDirectory:
    """This node's pods (from the kubelet's `/pods` or the API server), re-read at most every `min_refresh_seconds` when a pod is unknown and at
    least every `refresh_seconds`. A failed read keeps the last good list (pods rarely vanish in
    seconds) and marks the `kubelet` collector failed in `health`."""

    def __init__(
        self,
        url: str,
        client: KubeClient,
        health: CollectorHealth | None = None,
        *,
        refresh_seconds: float = 30.0,
        min_refresh_seconds: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._url = url
        self._client = client
        self._health = health
        self._refresh = refresh_seconds
        self._min_refresh = min_refresh_seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._pods = PodList(MappingProxyType({}))
        self._by_name: dict[tuple[str, str], PodInfo] = {}
        self._read_at: float | None = None
        self._failing = False

    def pod(self, uid: str) -> PodInfo | None:
        """The pod with `uid`, reading the kubelet again if it is unknown or the list is old."""
        with self._lock:
            self._refresh_if(uid not in self._pods.pods)
            return self._pods.pods.get(uid)

    def labels(self, namespace: str, name: str) -> Mapping[str, str]:
        """The labels of pod `namespace/name` (the PodResources API names pods, not UIDs); empty
        when the pod is not (yet) listed."""
        with self._lock:
            self._refresh_if((namespace, name) not in self._by_name)
            info = self._by_name.get((namespace, name))
            return info.labels if info is not None else MappingProxyType({})

    def _refresh_if(self, unknown: bool) -> None:
        now = self._clock()
        age = None if self._read_at is None else now - self._read_at
        if age is None or age >= self._refresh or (unknown and age >= self._min_refresh):
            self._read(now)

    def _read(self, now: float) -> None:
        self._read_at = now
        start = time.perf_counter()
        try:
            self._pods = parse_pod_list(self._client.get_json(self._url))
            self._by_name = {(p.namespace, p.name): p for p in self._pods.pods.values()}
        except KubeError as exc:
            if not self._failing:
                log.error(
                    "kubelet pod list %s unavailable, keeping the last one: %s", self._url, exc
                )
            self._failing = True
            if self._health is not None:
                self._health.record("kubelet", False, time.perf_counter() - start)
            return
        if self._failing:
            log.info("pod list %s readable again", self._url)
        self._failing = False
        if self._health is not None:
            self._health.record("kubelet", True, time.perf_counter() - start)


class NodeDirectory:
    """Labels of nodes for pricing: static labels from the config, plus (when an API URL is given)
    each node's labels read from the API server, cached for `refresh_seconds`. A failed read logs
    once and falls back to the static labels until the next attempt."""

    def __init__(
        self,
        static_labels: Mapping[str, str] | None = None,
        *,
        api_url: str | None = None,
        client: KubeClient | None = None,
        refresh_seconds: float = 300.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._static = dict(static_labels or {})
        self._api_url = api_url.rstrip("/") if api_url else None
        self._client = client
        self._refresh = refresh_seconds
        self._clock = clock
        self._cache: dict[str, tuple[float, Mapping[str, str]]] = {}
        self._warned: set[str] = set()

    def labels(self, node: str) -> Mapping[str, str]:
        """The labels prices are matched against for `node`."""
        if self._api_url is None or self._client is None:
            return self._static
        now = self._clock()
        cached = self._cache.get(node)
        if cached is not None and now - cached[0] < self._refresh:
            return cached[1]
        labels: dict[str, str] = {}
        try:
            doc = self._client.get_json(f"{self._api_url}/api/v1/nodes/{node}")
            raw = (doc.get("metadata") or {}).get("labels") or {}
            labels = {str(k): str(v) for k, v in raw.items()}
            self._warned.discard(node)
        except (KubeError, AttributeError) as exc:
            if node not in self._warned:
                log.warning("node %s labels unavailable, pricing without them: %s", node, exc)
                self._warned.add(node)
        merged = MappingProxyType({**labels, **self._static})
        self._cache[node] = (now, merged)
        return merged


def in_cluster_api_url(environ: Mapping[str, str] | None = None) -> str | None:
    """The API server URL a pod reaches (`KUBERNETES_SERVICE_HOST`/`_PORT`), or None outside one."""
    env = os.environ if environ is None else environ
    host, port = env.get("KUBERNETES_SERVICE_HOST"), env.get("KUBERNETES_SERVICE_PORT", "443")
    if not host:
        return None
    if ":" in host:
        host = f"[{host}]"
    return f"https://{host}:{port}"
