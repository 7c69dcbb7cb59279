// Kubernetes costs (burn tier): the CPU, memory and storage dollars of every namespace from
// OpenCost's metrics, joined on the node and the persistent volume as OpenCost's own allocation
// queries join them, and handed to teams through aifinops_namespace_team_info. GPUs come from
// OpenCost only on nodes where no aifinops GPU exporter reports (aifinops_gpu_info has no series
// for the node), and a GPU node's CPU and memory only where its GPU price is not all-in, so
// nothing is counted twice. These rules run first in the burn group, whose
// spend-by-source series adds them as source="kubernetes".
local names = import '../lib/names.libsonnet';
local r = import '../lib/rules.libsonnet';

{
  aifinopsKubernetesRules:: {
    local c = $._config,
    local n = names(c),
    local f = {
      oc: c.opencostSelector,
      gpu: c.gpuSelector,
      ns: c.namespaceTeamSelector,
      // Per-container families OpenCost also writes for the pause container and for
      // containers without a node; its allocation queries drop them the same way.
      ctr: 'container!="", container!="POD", node!=""',
      gib: 1024 * 1024 * 1024,
    },
    // One recorded series per namespace and resource, in $/s.
    local byNamespace(resource, expr) =
      r.record(n.kubernetesNamespaceCost, expr % (f {
        cpuPrice: std.rstripChars(nodePrice('node_cpu_hourly_cost'), '\n'),
        ramPrice: std.rstripChars(nodePrice('node_ram_hourly_cost'), '\n'),
      }), { resource: resource }),
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
    ||| % (f { family: family }),

    rules: [
      // CPU: cores allocated (max of request and usage, OpenCost's definition) x $/core-hour.
      byNamespace('cpu', |||
        sum by (namespace) (
            container_cpu_allocation{%(oc)s, %(ctr)s}
          * on (node) group_left ()
            %(cpuPrice)s
        ) / 3600
      |||),
      // Memory: bytes allocated / GiB x $/GiB-hour.
      byNamespace('memory', |||
        sum by (namespace) (
            container_memory_allocation_bytes{%(oc)s, %(ctr)s} / %(gib)d
          * on (node) group_left ()
            %(ramPrice)s
        ) / 3600
      |||),
      // Storage: the bytes of a volume each pod holds (OpenCost already divides a claim among
      // the pods that mount it) / GiB x the volume's $/GiB-hour.
      byNamespace('storage', |||
        sum by (namespace) (
            pod_pvc_allocation{%(oc)s} / %(gib)d
          * on (persistentvolume) group_left ()
            max by (persistentvolume) (pv_hourly_cost{%(oc)s})
        ) / 3600
      |||),
      // GPUs of nodes without an aifinops GPU exporter only: elsewhere the exporter prices
      // each GPU (at the node's OpenCost price where gpu.prices.opencost_url is set).
      byNamespace('gpu', |||
        sum by (namespace) (
            container_gpu_allocation{%(oc)s, %(ctr)s}
          * on (node) group_left ()
            (
                max by (node) (node_gpu_hourly_cost{%(oc)s})
              unless on (node)
                group by (node) (aifinops_gpu_info{%(gpu)s})
            )
        ) / 3600
      |||),
      // Per team, averaged over spendRateWindow like the other sources' rates: each
      // namespace's average goes to its team from aifinops_namespace_team_info (one team per
      // namespace; several processes may serve it). Averaging per namespace before the join
      // keeps a missed scrape of the map from leaving dollars on the wrong team for a whole
      // window. A namespace without a team is unattributed (empty team), as GPU and LLM spend
      // without a team is.
      r.record(n.kubernetesTeamCost, |||
        sum by (team, resource) (
            avg_over_time(%(nsCost)s[%(w)s])
          * on (namespace) group_left (team)
            topk by (namespace) (1, max by (namespace, team) (aifinops_namespace_team_info{%(ns)s}))
          or
            (
                avg_over_time(%(nsCost)s[%(w)s])
              unless on (namespace)
                aifinops_namespace_team_info{%(ns)s}
            )
        )
      ||| % (f { nsCost: n.kubernetesNamespaceCost, w: c.spendRateWindow })),
    ],
  },

  aifinopsRecordingRules+:: {
    // Before the burn group's own rules, which read these at the same evaluation.
    burn: $.aifinopsKubernetesRules.rules + super.burn,
  },
}
