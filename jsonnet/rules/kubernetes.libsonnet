// Kubernetes costs (burn tier): the CPU, memory and storage dollars of every pod from OpenCost's
// metrics, joined on the node and the persistent volume as OpenCost's own allocation queries join
// them, and handed to teams as GPU holders are: the pod's team label (kube_pod_labels), else its
// namespace's team (aifinops_namespace_team_info), else no team. GPUs come from OpenCost only on
// nodes where no aifinops GPU exporter reports (aifinops_gpu_info has no series for the node),
// and a GPU node's CPU and memory only where its GPU price is not all-in, so nothing is counted
// twice. These rules run first in the burn group, whose spend-by-source series adds them as
// source="kubernetes".
local names = import '../lib/names.libsonnet';
local r = import '../lib/rules.libsonnet';

{
  aifinopsKubernetesRules:: {
    local c = $._config,
    local n = names(c),
    // kube-state-metrics (and OpenCost's copy of kube_pod_labels) write a pod label key as
    // label_ + the key with every character outside [A-Za-z0-9_] turned into _.
    local teamLabel = 'label_' + std.join('', [
      if std.member('abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_', ch) then ch else '_'
      for ch in std.stringChars(c.podTeamLabel)
    ]),
    // `text` without its final newline, every line after the first indented by `k` spaces, to
    // sit inside another expression at that depth.
    local indent(text, k) =
      std.strReplace(std.rstripChars(text, '\n'), '\n', '\n' + std.join('', std.makeArray(k, function(i) ' '))),
    local f = {
      oc: c.opencostSelector,
      gpu: c.gpuSelector,
      ns: c.namespaceTeamSelector,
      pl: c.podLabelsSelector,
      tl: teamLabel,
      // Per-container families OpenCost also writes for the pause container and for
      // containers without a node; its allocation queries drop them the same way.
      ctr: 'container!="", container!="POD", node!=""',
      gib: 1024 * 1024 * 1024,
      cpuPrice: indent(nodePrice('node_cpu_hourly_cost'), 4),
      ramPrice: indent(nodePrice('node_ram_hourly_cost'), 4),
    },
    // One team per pod that has a non-empty team label: kube_pod_labels comes once per
    // kube-state-metrics replica (and from OpenCost too), and a pod recreated under the same
    // name keeps its old uid's series until they go stale, so the series are folded per
    // (namespace, pod, team) and, should two differ, one team is taken.
    local podTeams = |||
      topk by (namespace, pod) (1,
        max by (namespace, pod, pod_team) (
          label_replace(kube_pod_labels{%(pl)s, %(tl)s!=""}, "pod_team", "$1", "%(tl)s", "(.+)")
        )
      )
    ||| % f,
    // $/s per namespace and pod team label of one resource, from `podCost` ($/h per namespace
    // and pod): pods with a team label carry it as pod_team, the others none.
    local byPodTeam(resource, podCost) =
      local cost = indent(podCost % f, 4);
      r.record(n.kubernetesPodTeamCost, |||
        sum by (namespace, pod_team) (
            %(cost)s
          * on (namespace, pod) group_left (pod_team)
            %(teams)s
          or
            %(cost)s
          unless on (namespace, pod)
            kube_pod_labels{%(pl)s, %(tl)s!=""}
        ) / 3600
      ||| % (f { cost: cost, teams: indent(podTeams, 4) }), { resource: resource }),
    // A node's $/unit-hour of `family`, except on nodes whose GPUs the GPU exporter prices
    // all-in (source table or override: the instance's price / its GPUs, CPU and memory
    // included): there the node's CPU and memory are already in the GPU dollars. Nodes whose
    // GPUs are priced from OpenCost's node_gpu_hourly_cost (the GPU part only) keep theirs.
    local nodePrice(family) = |||
      (
          max by (node) (%(family)s{%(oc)s})
        unless on (node)
          group by (node) (aifinops_gpu_price_info{%(gpu)s, source=~"table|override"})
      )
    ||| % { family: family, oc: c.opencostSelector, gpu: c.gpuSelector },
    // Each (namespace, pod team) group's share of the namespace's average over spendRateWindow:
    // its sum over the window / the namespace's samples in it. The groups of a namespace add up
    // to the namespace's own average exactly, even while a pod moves between groups (its label
    // set or removed), where each group's own average would count the pod in both.
    local windowShare(matcher) = |||
      (
          sum_over_time(%(pt)s{%(m)s}[%(w)s])
        / on (namespace, resource) group_left ()
          count_over_time(%(nsCost)s[%(w)s])
      )
    ||| % { pt: n.kubernetesPodTeamCost, m: matcher, nsCost: n.kubernetesNamespaceCost, w: c.spendRateWindow },
    local nsTeam = 'topk by (namespace) (1, max by (namespace, team) (aifinops_namespace_team_info{%s}))' % c.namespaceTeamSelector,

    rules: [
      // CPU: cores allocated (max of request and usage, OpenCost's definition) x $/core-hour.
      byPodTeam('cpu', |||
        sum by (namespace, pod) (
            container_cpu_allocation{%(oc)s, %(ctr)s}
          * on (node) group_left ()
            %(cpuPrice)s
        )
      |||),
      // Memory: bytes allocated / GiB x $/GiB-hour.
      byPodTeam('memory', |||
        sum by (namespace, pod) (
            container_memory_allocation_bytes{%(oc)s, %(ctr)s} / %(gib)d
          * on (node) group_left ()
            %(ramPrice)s
        )
      |||),
      // Storage: the bytes of a volume each pod holds (OpenCost already divides a claim among
      // the pods that mount it) / GiB x the volume's $/GiB-hour.
      byPodTeam('storage', |||
        sum by (namespace, pod) (
            pod_pvc_allocation{%(oc)s} / %(gib)d
          * on (persistentvolume) group_left ()
            max by (persistentvolume) (pv_hourly_cost{%(oc)s})
        )
      |||),
      // GPUs of nodes without an aifinops GPU exporter only: elsewhere the exporter prices
      // each GPU (at the node's OpenCost price where gpu.prices.opencost_url is set).
      byPodTeam('gpu', |||
        sum by (namespace, pod) (
            container_gpu_allocation{%(oc)s, %(ctr)s}
          * on (node) group_left ()
            (
                max by (node) (node_gpu_hourly_cost{%(oc)s})
              unless on (node)
                group by (node) (aifinops_gpu_info{%(gpu)s})
            )
        )
      |||),
      // One series per namespace and resource, in $/s (the series before pod team labels
      // were read; dashboards and users' own queries keep reading it).
      r.record(n.kubernetesNamespaceCost, 'sum by (namespace, resource) (%s)' % n.kubernetesPodTeamCost),
      // Per team, averaged over spendRateWindow like the other sources' rates, in the GPU
      // exporter's order: a pod's team label wins; a pod without one goes to its namespace's
      // team from aifinops_namespace_team_info (one team per namespace; several processes may
      // serve it); the rest is unattributed (empty team), as GPU and LLM spend without a team
      // is. Averaging before the join keeps a missed scrape of the map or of the pod labels
      // from leaving dollars on the wrong team for a whole window.
      r.record(n.kubernetesTeamCost, |||
        sum by (team, resource) (
            label_replace(
              %(labelled)s,
              "team", "$1", "pod_team", "(.+)"
            )
          or
              %(unlabelled)s
            * on (namespace) group_left (team)
              %(nsTeam)s
          or
              %(unlabelled)s
            unless on (namespace)
              aifinops_namespace_team_info{%(ns)s}
        )
      ||| % {
        labelled: indent(windowShare('pod_team!=""'), 6),
        unlabelled: indent(windowShare('pod_team=""'), 6),
        nsTeam: nsTeam,
        ns: c.namespaceTeamSelector,
      }),
    ],
  },

  aifinopsRecordingRules+:: {
    // Before the burn group's own rules, which read these at the same evaluation.
    burn: $.aifinopsKubernetesRules.rules + super.burn,
  },
}
