# The latency pair: one VPC, a metrics server and a map of agents that it probes.
#
# No provider block here: configure the AWS provider in the calling root configuration
# (see examples/), or run this directory directly with AWS_REGION set.

data "aws_availability_zones" "available" {
  count = var.server_availability_zone == null ? 1 : 0

  state = "available"

  filter {
    name   = "opt-in-status"
    values = ["opt-in-not-required"]
  }
}

locals {
  tags = merge({ Project = "latency-pair", ManagedBy = "terraform" }, var.tags)

  server_availability_zone = var.server_availability_zone != null ? var.server_availability_zone : try(data.aws_availability_zones.available[0].names[0], null)

  agents = {
    for name, agent in var.agents : name => {
      availability_zone = coalesce(agent.availability_zone, local.server_availability_zone)
      instance_type     = coalesce(agent.instance_type, var.agent_instance_type)
      placement_group   = agent.placement_group
      private_ip        = agent.private_ip
    }
  }

  # The server's zone first, so adding a cross-AZ agent never renumbers its subnet.
  availability_zones = distinct(concat(
    [local.server_availability_zone],
    sort([for agent in values(local.agents) : agent.availability_zone]),
  ))

  use_placement_group = anytrue([for agent in values(local.agents) : agent.placement_group])
  placement_group     = local.use_placement_group ? aws_placement_group.cluster[0].name : null

  # Probe order: agents in the server's zone, then the others, each by name. The first target
  # is the one /metrics reports as latency_ms.
  target_names = concat(
    sort([for name, agent in local.agents : name if agent.availability_zone == local.server_availability_zone]),
    sort([for name, agent in local.agents : name if agent.availability_zone != local.server_availability_zone]),
  )
  targets = [
    for name in local.target_names : {
      name = name
      host = module.agent.private_ips[name]
      port = var.agent_grpc_port
    }
  ]
}

# A cluster placement group packs the server and the agents that ask for it onto nearby
# hardware in one zone: the lowest latency EC2 offers, to compare with plain same-AZ.
resource "aws_placement_group" "cluster" {
  count = local.use_placement_group ? 1 : 0

  name     = "${var.name}-cluster"
  strategy = "cluster"

  tags = merge(local.tags, { Name = "${var.name}-cluster" })

  lifecycle {
    precondition {
      condition     = alltrue([for agent in values(local.agents) : agent.availability_zone == local.server_availability_zone if agent.placement_group])
      error_message = "A cluster placement group lives in one Availability Zone: agents with placement_group = true must stay in the server's zone (leave their availability_zone unset)."
    }

    precondition {
      condition     = alltrue([for type in concat([var.server_instance_type], [for agent in values(local.agents) : agent.instance_type if agent.placement_group]) : !can(regex("^t[0-9]", type))])
      error_message = "Cluster placement groups do not take burstable instances (t2, t3, t3a, t4g): give the server and the placement-group agents a type such as c6i.large."
    }
  }
}

module "network" {
  source = "./modules/network"

  name               = var.name
  cidr_block         = var.vpc_cidr
  availability_zones = local.availability_zones
  tags               = local.tags
}

module "metrics_server" {
  source = "./modules/metrics_server"

  name            = var.name
  vpc_id          = module.network.vpc_id
  subnet_id       = module.network.public_subnet_ids[local.server_availability_zone]
  instance_type   = var.server_instance_type
  architecture    = var.architecture
  ami_id          = var.ami_id
  placement_group = local.placement_group

  follow_new_amis = var.follow_new_amis
  elastic_ip      = var.server_elastic_ip

  allowed_cidrs          = var.allowed_cidrs
  allow_public_access    = var.allow_public_access
  ssh_cidrs              = var.ssh_cidrs
  key_name               = var.key_name
  bootstrap_egress_cidrs = var.bootstrap_egress_cidrs

  http_port               = var.server_http_port
  grpc_port               = var.server_grpc_port
  agent_security_group_id = module.agent.security_group_id
  agent_grpc_port         = var.agent_grpc_port
  targets                 = local.targets
  probe_interval          = var.probe_interval
  log_level               = var.log_level

  package = local.server_package
  secrets = var.tls == null && var.auth_token_parameter == null ? null : {
    ca          = try(var.tls.ca_parameter, null)
    cert        = try(var.tls.server_cert_parameter, null)
    key         = try(var.tls.server_key_parameter, null)
    client_cert = try(var.tls.probe_cert_parameter, null)
    client_key  = try(var.tls.probe_key_parameter, null)
    token       = var.auth_token_parameter
  }
  git_url              = var.git_url
  git_ref              = var.git_ref
  container_image      = var.container_image
  install_ssm_agent    = var.install_ssm_agent
  permissions_boundary = var.permissions_boundary

  root_volume_size       = var.root_volume_size
  root_volume_kms_key_id = var.root_volume_kms_key_id
  tags                   = local.tags
}

module "agent" {
  source = "./modules/agent"

  name   = var.name
  vpc_id = module.network.vpc_id
  instances = {
    for name, agent in local.agents : name => {
      subnet_id       = module.network.public_subnet_ids[agent.availability_zone]
      instance_type   = agent.instance_type
      private_ip      = agent.private_ip
      placement_group = agent.placement_group ? local.placement_group : null
    }
  }
  instance_type   = var.agent_instance_type
  architecture    = var.architecture
  ami_id          = var.ami_id
  follow_new_amis = var.follow_new_amis

  metrics_server_security_group_id = module.metrics_server.security_group_id
  grpc_port                        = var.agent_grpc_port
  ssh_cidrs                        = var.ssh_cidrs
  key_name                         = var.key_name
  bootstrap_egress_cidrs           = var.bootstrap_egress_cidrs

  package = local.package
  secrets = var.tls == null ? null : {
    cert = var.tls.agent_cert_parameter
    key  = var.tls.agent_key_parameter
    # mTLS: with a probe certificate, agents accept only callers the CA signed.
    client_ca = var.tls.probe_cert_parameter != null ? var.tls.ca_parameter : null
  }
  git_url              = var.git_url
  git_ref              = var.git_ref
  container_image      = var.container_image
  install_ssm_agent    = var.install_ssm_agent
  permissions_boundary = var.permissions_boundary
  log_level            = var.log_level
  log_format           = var.log_format

  root_volume_size       = var.root_volume_size
  root_volume_kms_key_id = var.root_volume_kms_key_id
  tags                   = local.tags
}

# An optional Prometheus host: discovers this pair's metrics server by tag, scrapes it and
# loads the recording and alerting rules of infra/prometheus.
module "prometheus" {
  source = "./modules/prometheus"
  count  = var.prometheus_host ? 1 : 0

  name      = var.name
  vpc_id    = module.network.vpc_id
  subnet_id = module.metrics_server.subnet_id
  ami_id    = module.metrics_server.ami_id

  instance_type             = var.prometheus_instance_type
  allowed_cidrs             = var.prometheus_allowed_cidrs
  ec2_sd_filters            = { "tag:Role" = ["metrics-server"], "tag:LatencyPair" = [var.name] }
  scrape_port               = var.server_http_port
  scrape_security_group_ids = [module.metrics_server.security_group_id]
  tls_ca_parameter          = try(var.tls.ca_parameter, null)
  auth_token_parameter      = var.auth_token_parameter
  rule_files = {
    for file in fileset("${path.module}/prometheus", "*.rules.yml") : file => file("${path.module}/prometheus/${file}")
  }
  bootstrap_egress_cidrs = var.bootstrap_egress_cidrs
  install_ssm_agent      = var.install_ssm_agent
  permissions_boundary   = var.permissions_boundary
  tags                   = local.tags
}
