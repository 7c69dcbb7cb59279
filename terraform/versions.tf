# Terraform and provider versions, pinned exactly: `terraform init` records their checksums in
# .terraform.lock.hcl, which you should commit with your copy of this configuration.
terraform {
  required_version = ">= 1.5.7"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "6.66.0"
    }
    helm = {
      source  = "hashicorp/helm"
      version = "3.1.1"
    }
    # Used by the EKS module (OIDC thumbprint, waits between cluster and node groups).
    tls = {
      source  = "hashicorp/tls"
      version = "4.2.1"
    }
    time = {
      source  = "hashicorp/time"
      version = "0.13.1"
    }
  }

  # Remote state: keep it in S3 with native locking (Terraform 1.10+) so a team can share the
  # stack. Create the bucket once, uncomment, and run `terraform init -migrate-state`.
  #
  # backend "s3" {
  #   bucket       = "my-company-terraform-state"
  #   key          = "aifinops/eks/terraform.tfstate"
  #   region       = "us-east-1"
  #   encrypt      = true
  #   use_lockfile = true
  # }
}
