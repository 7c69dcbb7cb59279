# The network and the EKS cluster: a VPC over three zones, the control plane, a system node group
# (3 x t3.large) and an optional, tainted GPU node group (g5/g6).

# The zones are named explicitly, so the subnet layout never shifts when AWS adds a zone.
data "aws_availability_zones" "available" {
  state = "available"

  filter {
    name   = "zone-name"
    values = [for suffix in var.availability_zone_suffixes : "${var.region}${suffix}"]
  }
}

data "aws_partition" "current" {}

locals {
  azs = slice(data.aws_availability_zones.available.names, 0, 3)
  tags = merge(var.tags, {
    "app.kubernetes.io/part-of" = "aifinops"
    "aifinops/cluster"          = var.cluster_name
  })

  # The EBS CSI driver's controller runs on the nodes and uses their role to manage volumes.
  ebs_csi_policy = "arn:${data.aws_partition.current.partition}:iam::aws:policy/service-role/AmazonEBSCSIDriverPolicy"

  system_node_group = {
    system = {
      instance_types = [var.system_instance_type]
      capacity_type  = "ON_DEMAND"
      min_size       = var.system_node_count
      max_size       = var.system_node_count + 1
      desired_size   = var.system_node_count
      labels         = { "aifinops.io/pool" = "system" }
      iam_role_additional_policies = {
        AmazonEBSCSIDriverPolicy = local.ebs_csi_policy
      }
    }
  }

  gpu_node_group = {
    gpu = {
      # The EKS-optimized accelerated AMI: NVIDIA driver and container toolkit installed, the
      # NVIDIA runtime as containerd's default (so pods need no RuntimeClass).
      ami_type       = "AL2023_x86_64_NVIDIA"
      instance_types = [var.gpu_instance_type]
      capacity_type  = "ON_DEMAND"
      min_size       = var.gpu_node_count
      max_size       = max(var.gpu_max_node_count, var.gpu_node_count)
      desired_size   = var.gpu_node_count
      labels = {
        "aifinops.io/pool"       = "gpu"
        "nvidia.com/gpu.present" = "true"
      }
      # Only pods that tolerate the taint (GPU workloads, the device plugin, dcgm-exporter and the
      # aifinops GPU exporter) land on these expensive nodes.
      taints = {
        gpu = {
          key    = "nvidia.com/gpu"
          value  = "true"
          effect = "NO_SCHEDULE"
        }
      }
      block_device_mappings = {
        xvda = {
          device_name = "/dev/xvda"
          ebs = {
            volume_size           = 100
            volume_type           = "gp3"
            encrypted             = true
            delete_on_termination = true
          }
        }
      }
      iam_role_additional_policies = {
        AmazonEBSCSIDriverPolicy = local.ebs_csi_policy
      }
    }
  }
}

module "vpc" {
  source  = "terraform-aws-modules/vpc/aws"
  version = "6.6.1"

  name = var.cluster_name
  cidr = var.vpc_cidr
  azs  = local.azs

  private_subnets = [for i, _ in local.azs : cidrsubnet(var.vpc_cidr, 4, i)]
  public_subnets  = [for i, _ in local.azs : cidrsubnet(var.vpc_cidr, 8, i + 48)]

  enable_nat_gateway     = true
  single_nat_gateway     = var.single_nat_gateway
  one_nat_gateway_per_az = !var.single_nat_gateway
  enable_dns_hostnames   = true
  enable_dns_support     = true

  # Load balancers find their subnets by these tags.
  public_subnet_tags  = { "kubernetes.io/role/elb" = "1" }
  private_subnet_tags = { "kubernetes.io/role/internal-elb" = "1" }
}

module "eks" {
  source  = "terraform-aws-modules/eks/aws"
  version = "21.25.0"

  name               = var.cluster_name
  kubernetes_version = var.kubernetes_version

  endpoint_public_access       = var.endpoint_public_access
  endpoint_public_access_cidrs = var.endpoint_public_access_cidrs
  endpoint_private_access      = true

  # The identity running `terraform apply` administers the cluster (the Helm releases need it).
  enable_cluster_creator_admin_permissions = true

  enabled_log_types = ["api", "audit", "authenticator"]

  vpc_id     = module.vpc.vpc_id
  subnet_ids = module.vpc.private_subnets

  addons = {
    coredns    = {}
    kube-proxy = {}
    vpc-cni = {
      before_compute = true
    }
    eks-pod-identity-agent = {
      before_compute = true
    }
    # Kafka brokers keep their logs on gp3 volumes; new EKS clusters have no default StorageClass,
    # so let the driver create one.
    aws-ebs-csi-driver = {
      configuration_values = jsonencode({
        defaultStorageClass = { enabled = true }
      })
    }
  }

  eks_managed_node_groups = merge(
    local.system_node_group,
    var.gpu_node_group_enabled ? local.gpu_node_group : {},
  )
}
