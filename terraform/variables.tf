variable "region" {
  description = "AWS region of the cluster. The cost figures in README.md are for us-east-1."
  type        = string
  default     = "us-east-1"
}

variable "availability_zone_suffixes" {
  description = "The three availability zones of the VPC, as letters appended to the region (us-east-1 + a)."
  type        = list(string)
  default     = ["a", "b", "c"]

  validation {
    condition     = length(var.availability_zone_suffixes) == 3
    error_message = "availability_zone_suffixes must name exactly three zones."
  }
}

variable "cluster_name" {
  description = "Name of the EKS cluster and its VPC; also the aifinops `cluster` setting (the Kafka header that keeps events from being counted twice)."
  type        = string
  default     = "aifinops"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{0,37}$", var.cluster_name))
    error_message = "cluster_name must be 1-38 characters of a-z, 0-9 and '-', starting with a letter."
  }
}

variable "kubernetes_version" {
  description = "Kubernetes minor version of the EKS control plane and node groups. Pick one in EKS standard support: extended support costs $0.60 instead of $0.10 an hour."
  type        = string
  default     = "1.35"
}

variable "vpc_cidr" {
  description = "CIDR block of the VPC; three private /20 and three public /24 subnets are carved from it."
  type        = string
  default     = "10.42.0.0/16"
}

variable "single_nat_gateway" {
  description = "One NAT gateway for all zones (cheaper) instead of one per zone (survives a zone outage)."
  type        = bool
  default     = true
}

variable "endpoint_public_access" {
  description = "Expose the Kubernetes API endpoint publicly (restricted to endpoint_public_access_cidrs); false keeps it reachable only from the VPC."
  type        = bool
  default     = true
}

variable "endpoint_public_access_cidrs" {
  description = "CIDR blocks allowed to reach the public Kubernetes API endpoint. Narrow it to your office or VPN."
  type        = list(string)
  default     = ["0.0.0.0/0"]
}

variable "system_instance_type" {
  description = "Instance type of the system node group (Kafka brokers, Prometheus, Grafana, the aifinops exporters and bridge)."
  type        = string
  default     = "t3.large"
}

variable "system_node_count" {
  description = "Nodes in the system node group; 3 puts each Kafka broker on its own node."
  type        = number
  default     = 3

  validation {
    condition     = var.system_node_count >= 3
    error_message = "system_node_count must be at least 3: the Kafka cluster runs 3 brokers with min.insync.replicas 2."
  }
}

variable "gpu_node_group_enabled" {
  description = "Create the GPU node group (tainted nvidia.com/gpu=true:NoSchedule) and deploy the NVIDIA device plugin, dcgm-exporter and the aifinops GPU exporter on it."
  type        = bool
  default     = false
}

variable "gpu_instance_type" {
  description = "GPU instance type: a g5 (NVIDIA A10G) or g6 (NVIDIA L4) size."
  type        = string
  default     = "g5.xlarge"

  validation {
    condition     = can(regex("^g(5|6)\\.", var.gpu_instance_type))
    error_message = "gpu_instance_type must be a g5.* or g6.* instance type."
  }
}

variable "gpu_node_count" {
  description = "Desired (and minimum) number of GPU nodes; the group scales up to gpu_max_node_count."
  type        = number
  default     = 1
}

variable "gpu_max_node_count" {
  description = "Maximum number of GPU nodes."
  type        = number
  default     = 2
}

variable "gpu_time_slicing_replicas" {
  description = "Time-slice every GPU of the GPU node group into this many nvidia.com/gpu replicas (the device plugin's sharing.timeSlicing); 1 keeps whole GPUs. The aifinops GPU exporter reads the replicas each pod holds from the kubelet's PodResources API and splits each GPU's cost equally among its pods."
  type        = number
  default     = 1

  validation {
    condition     = var.gpu_time_slicing_replicas >= 1 && var.gpu_time_slicing_replicas <= 64 && floor(var.gpu_time_slicing_replicas) == var.gpu_time_slicing_replicas
    error_message = "gpu_time_slicing_replicas must be a whole number from 1 to 64."
  }
}

variable "kafka_version" {
  description = "Apache Kafka version of the Strimzi cluster; must be one the pinned Strimzi operator supports."
  type        = string
  default     = "4.2.0"
}

variable "kafka_storage_gib" {
  description = "Persistent volume size of each of the 3 Kafka brokers, in GiB (gp3)."
  type        = number
  default     = 20
}

variable "aifinops_namespace" {
  description = "Namespace of the aifinops release."
  type        = string
  default     = "aifinops"
}

variable "aifinops_image" {
  description = "Image repository of aifinops; its tag is the chart's appVersion unless aifinops_image_tag is set."
  type        = string
  default     = "ghcr.io/aifinops/aifinops"
}

variable "aifinops_image_tag" {
  description = "Image tag of aifinops; empty means the chart's appVersion."
  type        = string
  default     = ""
}

variable "aifinops_values" {
  description = "Extra values for the aifinops chart, merged over the ones this configuration sets (see charts/aifinops/values.yaml)."
  type        = any
  default     = {}
}

variable "tags" {
  description = "Tags added to every AWS resource (the provider's default_tags)."
  type        = map(string)
  default     = {}
}
