# Security groups of the composed stack: who may reach what.

mock_provider "aws" {
  source          = "./tests/mocks"
  override_during = plan
}

override_resource {
  target          = module.metrics_server.aws_security_group.this
  override_during = plan
  values          = { id = "sg-0server0000000000" }
}

override_resource {
  target          = module.agent.aws_security_group.this
  override_during = plan
  values          = { id = "sg-0agent00000000000" }
}

variables {
  allowed_cidrs = ["203.0.113.7/32"]
  git_url       = "https://github.com/example/latency-pair.git"
  agents = {
    same-az  = {}
    cross-az = { availability_zone = "us-east-1b" }
  }
}

run "agents_accept_icmp_and_grpc_only_from_the_server_group" {
  command = plan

  assert {
    condition     = length(module.agent.ingress_rules) == 2
    error_message = "Agents must have exactly two ingress rules (ICMP echo, gRPC) when no SSH is requested."
  }

  assert {
    condition     = alltrue([for r in module.agent.ingress_rules : r.referenced_security_group_id == "sg-0server0000000000" && r.cidr_ipv4 == null])
    error_message = "Every agent ingress rule must reference the metrics server's security group, never a CIDR."
  }

  assert {
    condition     = toset([for r in module.agent.ingress_rules : "${r.ip_protocol}/${r.from_port}/${r.to_port}"]) == toset(["icmp/8/-1", "tcp/50051/50051"])
    error_message = "Agents may receive only ICMP echo requests (type 8) and TCP on the agent gRPC port."
  }
}

run "server_reachable_only_from_allowed_cidrs" {
  command = plan

  assert {
    condition     = toset([for r in module.metrics_server.ingress_rules : "${r.ip_protocol}/${r.from_port}/${r.cidr_ipv4}"]) == toset(["tcp/5000/203.0.113.7/32", "tcp/50052/203.0.113.7/32"])
    error_message = "The server must accept only TCP 5000 and 50052, only from allowed_cidrs."
  }

  assert {
    condition     = alltrue([for r in concat(module.metrics_server.ingress_rules, module.agent.ingress_rules) : r.from_port != 22 && r.to_port != 22])
    error_message = "No SSH by default."
  }
}

run "server_probes_only_the_agent_group" {
  command = plan

  assert {
    condition     = toset([for r in module.metrics_server.egress_rules : "${r.ip_protocol}/${r.from_port}" if r.referenced_security_group_id == "sg-0agent00000000000"]) == toset(["icmp/8", "tcp/50051"])
    error_message = "The server's probes (ICMP echo, gRPC) must target the agents' security group."
  }

  assert {
    condition     = alltrue([for r in module.metrics_server.egress_rules : r.referenced_security_group_id != null || contains([80, 443], r.from_port)])
    error_message = "Besides the probes, the server may only reach TCP 80/443."
  }

  assert {
    condition     = alltrue([for r in module.agent.egress_rules : r.ip_protocol == "tcp" && contains([80, 443], r.from_port)])
    error_message = "Agents may only reach TCP 80/443 (boot, SSM)."
  }
}

run "ssh_only_from_ssh_cidrs" {
  command = plan

  variables {
    ssh_cidrs = ["198.51.100.0/24"]
    key_name  = "ops"
  }

  assert {
    condition = alltrue([for r in concat(module.metrics_server.ingress_rules, module.agent.ingress_rules) :
    r.cidr_ipv4 == "198.51.100.0/24" if r.from_port == 22])
    error_message = "Port 22 must be open to ssh_cidrs only."
  }

  assert {
    condition     = length([for r in concat(module.metrics_server.ingress_rules, module.agent.ingress_rules) : r if r.from_port == 22]) == 2
    error_message = "SSH must be opened on the server and on the agents' group."
  }
}

run "reject_world_open_ssh" {
  command = plan
  variables {
    ssh_cidrs = ["0.0.0.0/0"]
    key_name  = "ops"
  }
  expect_failures = [var.ssh_cidrs]
}

run "reject_world_open_metrics" {
  command = plan
  variables {
    allowed_cidrs = ["0.0.0.0/0"]
  }
  expect_failures = [var.allowed_cidrs]
}

run "world_open_metrics_needs_explicit_opt_in" {
  command = plan

  variables {
    allowed_cidrs        = ["0.0.0.0/0"]
    allow_public_access  = true
    git_url              = null
    package_path         = "tests/fixtures/latency-pair_1.2.3_amd64.deb"
    auth_token_parameter = "/lp/token"
    tls = {
      ca_parameter          = "/lp/tls/ca"
      server_cert_parameter = "/lp/tls/server-cert"
      server_key_parameter  = "/lp/tls/server-key"
      agent_cert_parameter  = "/lp/tls/agent-cert"
      agent_key_parameter   = "/lp/tls/agent-key"
    }
    agents = {
      same-az = { private_ip = "10.42.0.10" }
    }
  }

  assert {
    condition     = contains([for r in module.metrics_server.ingress_rules : r.cidr_ipv4], "0.0.0.0/0")
    error_message = "allow_public_access = true must let 0.0.0.0/0 through."
  }
}

run "public_access_needs_tls_and_the_token" {
  command = plan

  variables {
    allowed_cidrs       = ["0.0.0.0/0"]
    allow_public_access = true
  }

  expect_failures = [var.auth_token_parameter]
}
