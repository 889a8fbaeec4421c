mock_provider "aws" {
  mock_data "aws_ami" {
    defaults = { id = "ami-0d0e0b0i0a0n0120" }
  }
  mock_data "aws_partition" {
    defaults = { partition = "aws" }
  }
}

variables {
  name                    = "lp-test"
  vpc_id                  = "vpc-0123456789abcdef0"
  subnet_id               = "subnet-0aaaaaaaaaaaaaaaa"
  agent_security_group_id = "sg-0b0b0b0b0b0b0b0b0"
  allowed_cidrs           = ["203.0.113.7/32", "198.51.100.0/24"]
  git_url                 = "https://github.com/example/latency-pair.git"
  git_ref                 = "v1.2.3"
  targets = [
    { name = "same-az", host = "10.42.0.10" },
    { name = "cross-az", host = "10.42.1.10" },
  ]
  tags = { Project = "latency-pair" }
}

run "http_and_grpc_only_from_allowed_cidrs" {
  command = plan

  assert {
    condition     = length(aws_vpc_security_group_ingress_rule.public) == 4
    error_message = "Expected one rule per (port, allowed CIDR): 2 ports x 2 CIDRs."
  }

  assert {
    condition     = alltrue([for r in aws_vpc_security_group_ingress_rule.public : contains(["203.0.113.7/32", "198.51.100.0/24"], r.cidr_ipv4) && contains([5000, 50052], r.from_port) && r.from_port == r.to_port && r.ip_protocol == "tcp"])
    error_message = "Ingress must be TCP 5000 and 50052 from allowed_cidrs only."
  }

  assert {
    condition     = length(aws_vpc_security_group_ingress_rule.ssh) == 0
    error_message = "No SSH rule may exist unless ssh_cidrs is given."
  }
}

run "probes_only_to_the_agent_group" {
  command = plan

  assert {
    condition = (
      aws_vpc_security_group_egress_rule.agent_icmp_echo.referenced_security_group_id == "sg-0b0b0b0b0b0b0b0b0" &&
      aws_vpc_security_group_egress_rule.agent_icmp_echo.ip_protocol == "icmp" &&
      aws_vpc_security_group_egress_rule.agent_icmp_echo.from_port == 8 &&
      aws_vpc_security_group_egress_rule.agent_grpc.referenced_security_group_id == "sg-0b0b0b0b0b0b0b0b0" &&
      aws_vpc_security_group_egress_rule.agent_grpc.from_port == 50051 &&
      aws_vpc_security_group_egress_rule.agent_grpc.to_port == 50051
    )
    error_message = "ICMP echo and gRPC must go to the agents' security group only."
  }

  assert {
    condition     = alltrue([for r in aws_vpc_security_group_egress_rule.bootstrap : contains([80, 443], r.from_port)])
    error_message = "Other egress is limited to TCP 80/443."
  }
}

run "instance_hardening_and_boot" {
  command = plan

  assert {
    condition     = aws_instance.this.metadata_options[0].http_tokens == "required" && aws_instance.this.root_block_device[0].encrypted
    error_message = "IMDSv2 must be required and the root volume encrypted."
  }

  assert {
    condition     = strcontains(aws_instance.this.user_data, "--target=same-az=10.42.0.10:50051 --target=cross-az=10.42.1.10:50051 --grpc_listen=0.0.0.0:50052 --http_listen=0.0.0.0:5000")
    error_message = "The server must boot with every target, in order, and its listen ports."
  }

  assert {
    condition     = strcontains(aws_instance.this.user_data, "readonly GIT_REF='v1.2.3'") && strcontains(aws_instance.this.user_data, "net.ipv4.ping_group_range")
    error_message = "The server must build the given ref and enable unprivileged ICMP."
  }

  assert {
    condition     = length(module.role) == 1 && [for st in module.role[0].policy.Statement : st.Sid] == ["SessionManager", "ReportBootStatus"]
    error_message = "Built from source, the server's role may only use Session Manager and write its status parameter."
  }
}

run "endpoints" {
  command = apply

  override_resource {
    target = aws_instance.this
    values = {
      public_ip  = "198.51.100.20"
      private_ip = "10.42.0.5"
    }
  }

  assert {
    condition     = output.metrics_url == "http://198.51.100.20:5000/metrics" && output.grpc_endpoint == "198.51.100.20:50052"
    error_message = "Endpoints must point at the public IP and the configured ports."
  }

  assert {
    condition     = output.targets == ["same-az=10.42.0.10:50051", "cross-az=10.42.1.10:50051"]
    error_message = "The targets output must list NAME=HOST:PORT in order."
  }
}

run "elastic_ip_is_the_stable_address" {
  command = apply

  variables {
    elastic_ip = true
  }

  override_resource {
    target = aws_eip.this
    values = { public_ip = "198.51.100.99" }
  }

  assert {
    condition     = output.public_ip == "198.51.100.99" && output.metrics_url == "http://198.51.100.99:5000/metrics" && aws_eip_association.this[0].instance_id == aws_instance.this.id
    error_message = "With elastic_ip the endpoints must use the Elastic IP, associated with the server."
  }
}

run "mesh_member_also_runs_the_agent" {
  command = plan

  variables {
    instance_name                 = "member-us-east-1a"
    run_agent                     = true
    vantage_point                 = "us-east-1a"
    private_ip                    = "10.42.0.10"
    additional_security_group_ids = ["sg-0mesh00000000000"]
    agent_security_group_id       = "sg-0mesh00000000000"
    targets = [
      { name = "us-east-1b", host = "10.42.1.10" },
      { name = "us-east-1c", host = "10.42.2.10" },
    ]
  }

  assert {
    condition = (
      strcontains(aws_instance.this.user_data, "ExecStart=/usr/local/bin/latency-agent --listen=0.0.0.0:50051 ") &&
      strcontains(aws_instance.this.user_data, "ExecStart=/usr/local/bin/latency-server --target=us-east-1b=10.42.1.10:50051 --target=us-east-1c=10.42.2.10:50051 --grpc_listen=0.0.0.0:50052 --http_listen=0.0.0.0:5000 --interval=1s --source=us-east-1a ")
    )
    error_message = "A mesh member runs the agent and a server that probes the other members with its own source."
  }

  assert {
    condition = (
      aws_instance.this.private_ip == "10.42.0.10" &&
      length(aws_instance.this.vpc_security_group_ids) == 2 &&
      contains(aws_instance.this.vpc_security_group_ids, "sg-0mesh00000000000") &&
      aws_vpc_security_group_egress_rule.agent_grpc.referenced_security_group_id == "sg-0mesh00000000000"
    )
    error_message = "A member keeps its pinned address, joins the mesh's group and probes only that group."
  }

  assert {
    condition = (
      aws_instance.this.tags == tomap({ Project = "latency-pair", Name = "lp-test-member-us-east-1a", Role = "metrics-server", LatencyPair = "lp-test" }) &&
      aws_ssm_parameter.status.name == "/lp-test/status/member-us-east-1a" &&
      aws_security_group.this.name_prefix == "lp-test-member-us-east-1a-"
    )
    error_message = "A member is named after its key, reports to its own status parameter and is discovered as a metrics server of its deployment."
  }
}

run "public_access_is_an_explicit_choice" {
  command = plan

  variables {
    allowed_cidrs       = ["0.0.0.0/0"]
    allow_public_access = true
  }

  assert {
    condition     = aws_vpc_security_group_ingress_rule.public["5000-0.0.0.0/0"].cidr_ipv4 == "0.0.0.0/0"
    error_message = "allow_public_access = true must accept 0.0.0.0/0."
  }
}

run "reject_world_without_opt_in" {
  command = plan
  variables {
    allowed_cidrs = ["0.0.0.0/0"]
  }
  expect_failures = [var.allowed_cidrs]
}

run "reject_sneaky_halves_of_the_internet" {
  command = plan
  variables {
    allowed_cidrs = ["0.0.0.0/1", "128.0.0.0/1"]
  }
  expect_failures = [var.allowed_cidrs]
}

run "reject_empty_or_malformed_cidrs" {
  command = plan
  variables {
    allowed_cidrs = ["203.0.113.7"]
  }
  expect_failures = [var.allowed_cidrs]
}

run "reject_port_clash" {
  command = plan
  variables {
    http_port = 50052
  }
  expect_failures = [var.http_port]
}

run "reject_no_targets" {
  command = plan
  variables {
    targets = []
  }
  expect_failures = [var.targets]
}

run "package_install_keeps_targets_out_of_user_data" {
  command = apply

  variables {
    git_url = null
    package = {
      bucket       = "lp-artifacts-0123"
      manifest_key = "manifest"
      package_key  = "packages/latency-pair_1.2.3_amd64-0123456789abcdef.deb"
      config_key   = "config/server.textproto"
    }
  }

  assert {
    # jsonencode: the policy's lists and these tuples compare by value only as JSON.
    condition = jsonencode(module.role[0].policy.Statement[1]) == jsonencode({
      Sid    = "ReadTheArtifacts"
      Effect = "Allow"
      Action = "s3:GetObject"
      Resource = [
        "arn:aws:s3:::lp-artifacts-0123/manifest",
        "arn:aws:s3:::lp-artifacts-0123/packages/latency-pair_1.2.3_amd64-0123456789abcdef.deb",
        "arn:aws:s3:::lp-artifacts-0123/config/server.textproto",
      ]
    })
    error_message = "The server may read the manifest, the package and its config, by exact ARN."
  }

  assert {
    condition     = jsonencode(module.role[0].policy.Statement[2].Resource) == jsonencode([aws_ssm_parameter.status.arn]) && aws_ssm_parameter.status.name == "/lp-test/status/server"
    error_message = "The server may write its own status parameter only."
  }

  # Targets and interval reach the host through the config object: changing them must not
  # change user_data (which would replace the instance and lose its statistics).
  assert {
    condition     = !strcontains(aws_instance.this.user_data, "--target") && !strcontains(aws_instance.this.user_data, "10.42.0.10") && !strcontains(aws_instance.this.user_data, "--interval")
    error_message = "A package install must keep targets and interval out of user_data."
  }

  assert {
    condition     = output.server_config == "# latency-server targets, rendered by Terraform (infra/modules/_user_data): edits here are overwritten.\ntargets { name: \"same-az\" host: \"10.42.0.10\" grpc_port: 50051 }\ntargets { name: \"cross-az\" host: \"10.42.1.10\" grpc_port: 50051 }\ndefaults { interval_ms: 1000 }\n"
    error_message = "The server config must list every target, in order, with the interval in ms."
  }
}
