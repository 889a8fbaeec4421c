# A latency mesh: every member runs latency-agent and latency-server, and every member's server
# probes every other member by ICMP and gRPC, with source = its own name. The source x target
# matrix shows in Prometheus (every member is a tagged metrics server) and in
# `latencyctl matrix` (output matrix_command).
#
# Built from the repository's modules: network, _artifacts (package installs), metrics_server
# per member (run_agent = true: the same instance, security group, role and status parameter as
# the pair's server, plus the agent) and, optionally, prometheus. No provider block.

locals {
  tags  = merge({ Project = "latency-pair", ManagedBy = "terraform" }, var.tags)
  names = sort(keys(var.members))

  # Sorted, so the subnets' CIDRs follow the zones' names (network numbers them in list order).
  availability_zones = sort(distinct([for m in values(var.members) : m.availability_zone]))
  subnet_cidrs       = module.network.public_subnet_cidrs

  # Addresses are pinned before any instance exists, so each member's config can list every
  # other member without a dependency cycle: a member's own private_ip, else the zone subnet's
  # 10th, 11th, ... host in name order among that zone's members.
  zone_members = { for az in local.availability_zones : az => [for name in local.names : name if var.members[name].availability_zone == az] }
  private_ips = {
    for name, m in var.members : name => coalesce(
      m.private_ip,
      cidrhost(local.subnet_cidrs[m.availability_zone], 10 + index(local.zone_members[m.availability_zone], name)),
    )
  }

  # Every member probes every other member, by name (the first is what /metrics reports).
  targets = {
    for name in local.names : name => [
      for other in local.names : { name = other, host = local.private_ips[other], port = var.agent_grpc_port } if other != name
    ]
  }

  from_package = var.package_path != null
  config_keys  = { for name in local.names : name => "config/member-${name}.textproto" }

  # One certificate serves a member's three TLS surfaces (agent echo, query API, HTTP gateway).
  secrets = var.tls == null && var.auth_token_parameter == null ? null : {
    ca          = try(var.tls.ca_parameter, null)
    cert        = try(var.tls.cert_parameter, null)
    key         = try(var.tls.key_parameter, null)
    client_cert = try(var.tls.probe_cert_parameter, null)
    client_key  = try(var.tls.probe_key_parameter, null)
    # mTLS: with a probe certificate, the agents accept only callers the CA signed.
    client_ca = try(var.tls.probe_cert_parameter, null) != null ? var.tls.ca_parameter : null
    token     = var.auth_token_parameter
  }
}

module "network" {
  source = "../network"

  name               = var.name
  cidr_block         = var.vpc_cidr
  availability_zones = local.availability_zones
  tags               = local.tags
}

# The package, its manifest and one config object per member: a member's targets change in
# place (the sync timer reloads its server), without replacing it.
module "artifacts" {
  source = "../_artifacts"
  count  = local.from_package ? 1 : 0

  name         = var.name
  package_path = var.package_path
  configs      = { for name in local.names : local.config_keys[name] => module.member[name].server_config }
  tags         = local.tags
}

################################################################################
# The mesh's own security group: probes between members, nothing else.
################################################################################

# Every member is in this group; it admits ICMP echo and the agents' gRPC port from itself only.
# Each member's own group (modules/metrics_server) lets its probes out to this group and admits
# users on the HTTP and gRPC ports from allowed_cidrs.
resource "aws_security_group" "mesh" {
  name_prefix = "${var.name}-mesh-"
  description = "latency-pair mesh: ICMP echo and gRPC echo between the members only"
  vpc_id      = module.network.vpc_id

  tags = merge(local.tags, { Name = "${var.name}-mesh" })

  lifecycle {
    create_before_destroy = true

    precondition {
      condition = alltrue([
        for name, ip in local.private_ips : cidrsubnet("${ip}/${split("/", local.subnet_cidrs[var.members[name].availability_zone])[1]}", 0, 0) == local.subnet_cidrs[var.members[name].availability_zone]
      ])
      error_message = "Every member's private_ip must lie in its zone's subnet: one per zone in use, numbered in the order of the zones' names (output subnet_cidrs)."
    }

    precondition {
      condition = alltrue([
        for name, ip in local.private_ips : !contains(concat([for n in range(4) : cidrhost(local.subnet_cidrs[var.members[name].availability_zone], n)], [cidrhost(local.subnet_cidrs[var.members[name].availability_zone], -1)]), ip)
      ])
      error_message = "A member's private_ip cannot be one AWS reserves: a subnet's first four addresses and its last."
    }

    precondition {
      condition     = length(distinct(values(local.private_ips))) == length(local.private_ips)
      error_message = "Two members have the same private_ip: a pinned address collides with another member's (pinned, or given by default: the zone subnet's 10th, 11th... host in name order)."
    }
  }
}

resource "aws_vpc_security_group_ingress_rule" "icmp_echo" {
  security_group_id            = aws_security_group.mesh.id
  description                  = "ICMP echo request from the other members"
  referenced_security_group_id = aws_security_group.mesh.id
  ip_protocol                  = "icmp"
  from_port                    = 8  # ICMP type: echo request
  to_port                      = -1 # ICMP code: any

  tags = merge(local.tags, { Name = "${var.name}-mesh-icmp-echo" })
}

resource "aws_vpc_security_group_ingress_rule" "grpc" {
  security_group_id            = aws_security_group.mesh.id
  description                  = "gRPC echo from the other members"
  referenced_security_group_id = aws_security_group.mesh.id
  ip_protocol                  = "tcp"
  from_port                    = var.agent_grpc_port
  to_port                      = var.agent_grpc_port

  tags = merge(local.tags, { Name = "${var.name}-mesh-grpc" })
}

################################################################################
# The members
################################################################################

module "member" {
  source   = "../metrics_server"
  for_each = var.members

  name          = var.name
  instance_name = "member-${each.key}"
  run_agent     = true
  vantage_point = each.key

  vpc_id                        = module.network.vpc_id
  subnet_id                     = module.network.public_subnet_ids[each.value.availability_zone]
  private_ip                    = local.private_ips[each.key]
  additional_security_group_ids = [aws_security_group.mesh.id]
  instance_type                 = coalesce(each.value.instance_type, var.member_instance_type)
  architecture                  = var.architecture
  ami_id                        = var.ami_id
  follow_new_amis               = var.follow_new_amis
  elastic_ip                    = var.elastic_ips

  allowed_cidrs          = var.allowed_cidrs
  allow_public_access    = var.allow_public_access
  ssh_cidrs              = var.ssh_cidrs
  key_name               = var.key_name
  bootstrap_egress_cidrs = var.bootstrap_egress_cidrs

  http_port               = var.server_http_port
  grpc_port               = var.server_grpc_port
  agent_security_group_id = aws_security_group.mesh.id
  agent_grpc_port         = var.agent_grpc_port
  targets                 = local.targets[each.key]
  probe_interval          = var.probe_interval
  log_level               = var.log_level
  log_format              = var.log_format

  package = local.from_package ? {
    bucket       = module.artifacts[0].bucket
    manifest_key = module.artifacts[0].manifest_key
    package_key  = module.artifacts[0].package_key
    config_key   = local.config_keys[each.key]
  } : null
  secrets              = local.secrets
  git_url              = var.git_url
  git_ref              = var.git_ref
  container_image      = var.container_image
  install_ssm_agent    = var.install_ssm_agent
  permissions_boundary = var.permissions_boundary

  root_volume_size       = var.root_volume_size
  root_volume_kms_key_id = var.root_volume_kms_key_id
  tags                   = local.tags
}

# An optional Prometheus host: discovers every member by tag (each is a metrics server of this
# deployment), scrapes them and loads the recording and alerting rules of infra/prometheus.
module "prometheus" {
  source = "../prometheus"
  count  = var.prometheus_host ? 1 : 0

  name      = var.name
  vpc_id    = module.network.vpc_id
  subnet_id = module.member[local.names[0]].subnet_id
  ami_id    = module.member[local.names[0]].ami_id

  instance_type  = var.prometheus_instance_type
  allowed_cidrs  = var.prometheus_allowed_cidrs
  ec2_sd_filters = { "tag:Role" = ["metrics-server"], "tag:LatencyPair" = [var.name] }
  scrape_port    = var.server_http_port
  # The members' own groups (not the mesh group, which stays member-to-member only).
  scrape_security_group_ids = [for name in local.names : module.member[name].security_group_id]
  tls_ca_parameter          = try(var.tls.ca_parameter, null)
  auth_token_parameter      = var.auth_token_parameter
  rule_files = {
    for file in fileset("${path.module}/../../prometheus", "*.rules.yml") : file => file("${path.module}/../../prometheus/${file}")
  }
  bootstrap_egress_cidrs = var.bootstrap_egress_cidrs
  install_ssm_agent      = var.install_ssm_agent
  permissions_boundary   = var.permissions_boundary
  tags                   = local.tags
}
