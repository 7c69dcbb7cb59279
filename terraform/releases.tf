# Everything on the cluster, as Helm releases: Strimzi and a 3-broker KRaft Kafka cluster,
# kube-prometheus-stack with the aifinops fast-path values, OpenCost, the NVIDIA device plugin and
# dcgm-exporter for the GPU nodes, and the aifinops chart itself.

locals {
  kafka_namespace      = "kafka"
  monitoring_namespace = "monitoring"
  gpu_namespace        = "gpu"
  # The Strimzi Kafka resource; its bootstrap service is <name>-kafka-bootstrap.
  kafka_cluster_name = "aifinops"
  # kube-prometheus-stack names its Prometheus service <release>-prometheus.
  kps_release = "kube-prometheus-stack"

  gpu_scheduling = {
    nodeSelector = { "nvidia.com/gpu.present" = "true" }
    tolerations = [{
      key      = "nvidia.com/gpu"
      operator = "Exists"
      effect   = "NoSchedule"
    }]
  }
}

resource "helm_release" "strimzi" {
  name             = "strimzi"
  repository       = "oci://quay.io/strimzi-helm"
  chart            = "strimzi-kafka-operator"
  version          = "1.0.1"
  namespace        = local.kafka_namespace
  create_namespace = true

  values = [yamlencode({
    # The operator manages Kafka clusters in its own namespace only.
    watchAnyNamespace = false
    resources = {
      requests = { cpu = "200m", memory = "384Mi" }
      limits   = { cpu = "1", memory = "384Mi" }
    }
  })]

  depends_on = [module.eks]
}

# A local chart holding the Kafka and KafkaNodePool resources: the Helm provider can apply custom
# resources whose CRDs the release above installs in the same apply, which kubernetes_manifest cannot.
resource "helm_release" "kafka" {
  name      = "kafka"
  chart     = "${path.module}/charts/kafka-cluster"
  namespace = local.kafka_namespace

  values = [yamlencode({
    clusterName  = local.kafka_cluster_name
    kafkaVersion = var.kafka_version
    replicas     = 3
    storage      = { size = "${var.kafka_storage_gib}Gi" }
  })]

  depends_on = [helm_release.strimzi]
}

resource "helm_release" "kube_prometheus_stack" {
  name             = local.kps_release
  repository       = "https://prometheus-community.github.io/helm-charts"
  chart            = "kube-prometheus-stack"
  version          = "88.5.3"
  namespace        = local.monitoring_namespace
  create_namespace = true

  # The values every aifinops user passes: Prometheus selects the chart's ServiceMonitors and
  # PrometheusRule, Alertmanager its AlertmanagerConfig, Grafana its dashboards.
  values = [file("${path.module}/../charts/kube-prometheus-stack-values.yaml")]

  depends_on = [module.eks]
}

resource "helm_release" "opencost" {
  name       = "opencost"
  repository = "https://opencost.github.io/opencost-helm-chart"
  chart      = "opencost"
  version    = "2.5.29"
  namespace  = local.monitoring_namespace

  values = [yamlencode({
    opencost = {
      exporter = { defaultClusterId = var.cluster_name }
      prometheus = {
        internal = {
          enabled       = true
          serviceName   = "${local.kps_release}-prometheus"
          namespaceName = local.monitoring_namespace
          port          = 9090
        }
      }
      # honorLabels keeps OpenCost's own namespace, pod, container and instance labels (the
      # rule pack joins its costs on them); its job is "opencost", the rules' opencostSelector.
      metrics = { serviceMonitor = { enabled = true, honorLabels = true } }
    }
  })]

  depends_on = [helm_release.kube_prometheus_stack]
}

# Advertises nvidia.com/gpu on the GPU nodes so workloads can request GPUs.
resource "helm_release" "nvidia_device_plugin" {
  count = var.gpu_node_group_enabled ? 1 : 0

  name             = "nvidia-device-plugin"
  repository       = "https://nvidia.github.io/k8s-device-plugin"
  chart            = "nvidia-device-plugin"
  version          = "0.16.2"
  namespace        = local.gpu_namespace
  create_namespace = true

  values = concat([yamlencode(merge(local.gpu_scheduling, {
    # The chart's default affinity wants node-feature-discovery labels; the node group's label does.
    affinity = null
    }))], var.gpu_time_slicing_replicas > 1 ? [yamlencode({
    # Time-slicing: each GPU advertised as several nvidia.com/gpu replicas (ids GPU-<uuid>::<n>).
    config = {
      default = "aifinops"
      map = {
        aifinops = yamlencode({
          version = "v1"
          sharing = {
            timeSlicing = {
              resources = [{ name = "nvidia.com/gpu", replicas = var.gpu_time_slicing_replicas }]
            }
          }
        })
      }
    }
  })] : [])

  depends_on = [module.eks]
}

resource "helm_release" "dcgm_exporter" {
  count = var.gpu_node_group_enabled ? 1 : 0

  name             = "dcgm-exporter"
  repository       = "https://nvidia.github.io/dcgm-exporter/helm-charts"
  chart            = "dcgm-exporter"
  version          = "4.6.0"
  namespace        = local.gpu_namespace
  create_namespace = true

  values = [yamlencode(merge(local.gpu_scheduling, {
    # dcgm-exporter samples every 30 s by default; the 5 s fast path needs fresher data.
    arguments = ["-f", "/etc/dcgm-exporter/dcp-metrics-included.csv", "-c", "1000"]
    serviceMonitor = {
      enabled  = true
      interval = "5s"
    }
  }))]

  depends_on = [helm_release.kube_prometheus_stack, helm_release.nvidia_device_plugin]
}

resource "helm_release" "aifinops" {
  name             = "aifinops"
  chart            = "${path.module}/../charts/aifinops"
  namespace        = var.aifinops_namespace
  create_namespace = true

  values = [
    yamlencode({
      cluster = var.cluster_name
      image = {
        repository = var.aifinops_image
        tag        = var.aifinops_image_tag
      }
      strimzi = {
        enabled     = true
        clusterName = local.kafka_cluster_name
        namespace   = local.kafka_namespace
      }
      gpuExporter = {
        enabled = var.gpu_node_group_enabled
        # EKS accelerated AMIs make the NVIDIA runtime containerd's default: no RuntimeClass.
        runtimeClassName = ""
        # Holders from the kubelet's PodResources API (/var/lib/kubelet/pod-resources on the
        # accelerated AMI): every GPU a pod is allocated, time-sliced replicas included.
        podResources = { enabled = true }
      }
      # GPU prices per node from OpenCost (spot and custom prices), the table as fallback.
      config = {
        gpu = {
          prices = { opencost_url = "http://opencost.${local.monitoring_namespace}.svc:9003/metrics" }
        }
      }
      # Tripwires are posted straight to kube-prometheus-stack's Alertmanager.
      tripwires = {
        alertmanagerUrls = ["http://${local.kps_release}-alertmanager.${local.monitoring_namespace}.svc:9093"]
      }
    }),
    yamlencode(var.aifinops_values),
  ]

  # The chart's ServiceMonitors, PrometheusRule and AlertmanagerConfig need the prometheus-operator
  # CRDs, its KafkaTopics the Strimzi ones and a running Kafka cluster.
  depends_on = [helm_release.kube_prometheus_stack, helm_release.kafka]
}
