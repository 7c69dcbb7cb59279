output "cluster_name" {
  description = "Name of the EKS cluster."
  value       = module.eks.cluster_name
}

output "cluster_endpoint" {
  description = "Endpoint of the Kubernetes API server."
  value       = module.eks.cluster_endpoint
}

output "kubeconfig_command" {
  description = "Command that writes a kubeconfig entry for the cluster."
  value       = "aws eks update-kubeconfig --region ${var.region} --name ${module.eks.cluster_name}"
}

output "vpc_id" {
  description = "ID of the VPC."
  value       = module.vpc.vpc_id
}

output "kafka_bootstrap_servers" {
  description = "In-cluster bootstrap address of the Kafka cluster (plain listener)."
  value       = "${local.kafka_cluster_name}-kafka-bootstrap.${local.kafka_namespace}.svc:9092"
}

output "token_exporter_url" {
  description = "In-cluster URL gateways and SDKs POST LLM usage events to."
  value       = "http://aifinops-token-exporter.${var.aifinops_namespace}.svc:9872/v1/events"
}

output "grafana_port_forward_command" {
  description = "Command that makes Grafana (with the aifinops dashboards) reachable on localhost:3000."
  value       = "kubectl -n ${local.monitoring_namespace} port-forward svc/${local.kps_release}-grafana 3000:80"
}
