output "rendered" {
  description = "The Prometheus host's boot script (bash, for cloud-init on Debian 12)."
  value       = local.rendered
}

output "prometheus_config" {
  description = "The prometheus.yml the boot script installs."
  value       = local.prometheus_config
}

output "secret_parameters" {
  description = "SSM parameters the host reads (the CA, the token): its role needs ssm:GetParameter on exactly these."
  value       = sort(values(local.secret_files))
}
