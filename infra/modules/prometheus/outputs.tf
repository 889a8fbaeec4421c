output "instance_id" {
  description = "ID of the Prometheus host."
  value       = aws_instance.this.id
}

output "private_ip" {
  description = "Private IPv4 address of the Prometheus host."
  value       = aws_instance.this.private_ip
}

output "security_group_id" {
  description = "Security group of the Prometheus host."
  value       = aws_security_group.this.id
}

output "port_forward_command" {
  description = "Session Manager port forwarding to the web UI: run it, then open http://localhost:9090."
  value       = "aws ssm start-session --target ${aws_instance.this.id} --document-name AWS-StartPortForwardingSession --parameters portNumber=9090,localPortNumber=9090"
}

output "status_parameter" {
  description = "SSM parameter the host reports its boot outcome to."
  value       = local.status_parameter
}

output "prometheus_config" {
  description = "The prometheus.yml the host runs (ec2_sd_configs, relabelling, rule files)."
  value       = module.user_data.prometheus_config
}

output "rendered_user_data" {
  description = "The host's boot script (no secrets in it)."
  value       = module.user_data.rendered
}

output "iam_policy" {
  description = "The inline policy of the host's role, for audits."
  value       = module.role.policy
}

output "web_ingress_rules" {
  description = "Who may reach the web UI on 9090, for audits (empty: Session Manager only)."
  value       = [for r in values(aws_vpc_security_group_ingress_rule.web) : r.cidr_ipv4]
}

output "egress_rules" {
  description = "Every egress rule of the host's security group, for audits: the scrapes, then HTTPS."
  value = [
    for r in concat(aws_vpc_security_group_egress_rule.scrape, values(aws_vpc_security_group_egress_rule.https)) : {
      ip_protocol                  = r.ip_protocol
      from_port                    = r.from_port
      cidr_ipv4                    = r.cidr_ipv4
      referenced_security_group_id = r.referenced_security_group_id
    }
  ]
}

output "scraped_ingress_rules" {
  description = "The rules this module adds to the metrics servers' security groups."
  value = [
    for r in aws_vpc_security_group_ingress_rule.scraped : {
      security_group_id            = r.security_group_id
      referenced_security_group_id = r.referenced_security_group_id
      port                         = r.from_port
    }
  ]
}
