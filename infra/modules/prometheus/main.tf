# A Prometheus host for a latency-pair fleet: Debian's prometheus package on one instance,
# discovering every metrics server by EC2 tag (ec2_sd_configs), scraping their
# /metrics?format=prometheus and loading the project's recording and alerting rules.

data "aws_region" "current" {}

locals {
  status_parameter = "/${var.name}/status/prometheus"
}

# The boot script and prometheus.yml, rendered without a provider (tests/render checks them
# with shellcheck and promtool).
module "user_data" {
  source = "../_prometheus_user_data"

  region               = data.aws_region.current.name
  ec2_sd_filters       = var.ec2_sd_filters
  scrape_port          = var.scrape_port
  scrape_interval      = var.scrape_interval
  retention            = var.retention
  rule_files           = var.rule_files
  tls_ca_parameter     = var.tls_ca_parameter
  auth_token_parameter = var.auth_token_parameter
  status_parameter     = local.status_parameter
  install_ssm_agent    = var.install_ssm_agent
}

################################################################################
# Security group: the web UI from allowed_cidrs only; scrapes to the metrics servers only.
################################################################################

resource "aws_security_group" "this" {
  name_prefix = "${var.name}-prometheus-"
  description = "latency-pair Prometheus: scrapes the metrics servers; UI from allowed_cidrs only"
  vpc_id      = var.vpc_id

  tags = merge(var.tags, { Name = "${var.name}-prometheus" })

  lifecycle {
    create_before_destroy = true
  }
}

resource "aws_vpc_security_group_ingress_rule" "web" {
  for_each = toset(var.allowed_cidrs)

  security_group_id = aws_security_group.this.id
  description       = "Prometheus web UI and API"
  cidr_ipv4         = each.value
  ip_protocol       = "tcp"
  from_port         = 9090
  to_port           = 9090

  tags = merge(var.tags, { Name = "${var.name}-prometheus-web" })
}

# count, not for_each: the groups' IDs are known only after apply, their number before.
resource "aws_vpc_security_group_egress_rule" "scrape" {
  count = length(var.scrape_security_group_ids)

  security_group_id            = aws_security_group.this.id
  description                  = "Scrapes of the metrics servers"
  referenced_security_group_id = var.scrape_security_group_ids[count.index]
  ip_protocol                  = "tcp"
  from_port                    = var.scrape_port
  to_port                      = var.scrape_port

  tags = merge(var.tags, { Name = "${var.name}-prometheus-scrape" })
}

# The other side: each metrics server admits this host on its HTTP port.
resource "aws_vpc_security_group_ingress_rule" "scraped" {
  count = length(var.scrape_security_group_ids)

  security_group_id            = var.scrape_security_group_ids[count.index]
  description                  = "Scrapes from the latency-pair Prometheus host"
  referenced_security_group_id = aws_security_group.this.id
  ip_protocol                  = "tcp"
  from_port                    = var.scrape_port
  to_port                      = var.scrape_port

  tags = merge(var.tags, { Name = "${var.name}-scraped-by-prometheus" })
}

# HTTPS only: Debian's mirror (https://cdn-aws.deb.debian.org on Debian's AMIs), SSM, and
# the EC2 API that discovery calls.
resource "aws_vpc_security_group_egress_rule" "https" {
  for_each = toset(var.bootstrap_egress_cidrs)

  security_group_id = aws_security_group.this.id
  description       = "HTTPS: Debian mirror, SSM, EC2 API"
  cidr_ipv4         = each.value
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443

  tags = merge(var.tags, { Name = "${var.name}-prometheus-egress-443" })
}

################################################################################
# Role: discovery, Session Manager, its secrets and status parameter.
################################################################################

module "role" {
  source = "../_instance_role"

  name_prefix           = "${var.name}-prometheus-"
  description           = "latency-pair Prometheus: EC2 discovery, Session Manager, its secrets and status parameter"
  session_manager       = var.install_ssm_agent
  discover_instances    = true
  secret_parameters     = module.user_data.secret_parameters
  status_parameter_arns = [aws_ssm_parameter.status.arn]
  permissions_boundary  = var.permissions_boundary
  tags                  = var.tags
}

resource "aws_ssm_parameter" "status" {
  name        = local.status_parameter
  description = "latency-pair Prometheus host: outcome of its boot script"
  type        = "String"
  value       = "pending: the instance has not reported yet"

  tags = var.tags

  lifecycle {
    ignore_changes = [value]
  }
}

################################################################################
# The host
################################################################################

resource "aws_instance" "this" {
  ami                         = var.ami_id
  instance_type               = var.instance_type
  subnet_id                   = var.subnet_id
  vpc_security_group_ids      = [aws_security_group.this.id]
  associate_public_ip_address = var.associate_public_ip_address
  iam_instance_profile        = module.role.instance_profile_name

  # Rules and scrape settings live in user_data: changing them replaces the host (its TSDB
  # starts afresh; the metrics servers keep their own history).
  user_data                   = module.user_data.rendered
  user_data_replace_on_change = true

  metadata_options {
    http_endpoint               = "enabled"
    http_tokens                 = "required" # IMDSv2 only
    http_put_response_hop_limit = 1
    instance_metadata_tags      = "disabled"
  }

  root_block_device {
    volume_type           = "gp3"
    volume_size           = var.root_volume_size
    encrypted             = true
    delete_on_termination = true

    tags = merge(var.tags, { Name = "${var.name}-prometheus" })
  }

  tags = merge(var.tags, { Name = "${var.name}-prometheus", Role = "prometheus" })

  lifecycle {
    precondition {
      condition     = length(module.user_data.rendered) <= 16384
      error_message = "The Prometheus host's user_data exceeds EC2's 16 KB: fewer or smaller rule_files."
    }
  }
}
