# modules/mesh: every member runs both programs, every member's server probes exactly the other
# members with source = its own name, members reach each other by ICMP echo and the agents' gRPC
# port only (a self-referencing group), users reach /metrics and gRPC from allowed_cidrs only,
# Prometheus discovers every member by tag; and the validations. The example:
# mesh_example.tftest.hcl.

mock_provider "aws" {
  source = "./tests/mocks"
}

variables {
  allowed_cidrs = ["203.0.113.7/32"]
  git_url       = "https://github.com/example/latency-pair.git"
  members = {
    a = { availability_zone = "us-east-1a" }
    b = { availability_zone = "us-east-1b" }
  }
}

# Four members, two of them in us-east-1a: a (10.42.0.10) and d (10.42.0.11) by name order.

run "every_member_probes_exactly_the_others_with_its_own_source" {
  command = plan

  module {
    source = "./modules/mesh"
  }

  variables {
    members = {
      a = { availability_zone = "us-east-1a" }
      b = { availability_zone = "us-east-1b" }
      c = { availability_zone = "us-east-1c" }
      d = { availability_zone = "us-east-1a" }
    }
  }

  assert {
    condition     = tomap(local.private_ips) == tomap({ a = "10.42.0.10", b = "10.42.1.10", c = "10.42.2.10", d = "10.42.0.11" })
    error_message = "Members take their zone subnet's 10th, 11th... address in name order."
  }

  assert {
    condition = alltrue([for name, member in output.members :
      startswith(member.server_config, "# latency-server targets, rendered by Terraform (infra/modules/_user_data): edits here are overwritten.\nsource: \"${name}\"\n") &&
      [for t in regexall("targets \\{ name: \"([^\"]+)\" host: \"([^\"]+)\" grpc_port: 50051 \\}", member.server_config) : t[0]] == [for other in ["a", "b", "c", "d"] : other if other != name] &&
      [for t in regexall("targets \\{ name: \"([^\"]+)\" host: \"([^\"]+)\" grpc_port: 50051 \\}", member.server_config) : t[1]] == [for other in ["a", "b", "c", "d"] : local.private_ips[other] if other != name]
    ])
    error_message = "Each member's server config must name its source and list exactly the other N-1 members, by private IP."
  }

  assert {
    condition = alltrue([for name, member in output.members :
      strcontains(member.user_data, "ExecStart=/usr/local/bin/latency-agent --listen=0.0.0.0:50051 ") &&
      strcontains(member.user_data, "--source=${name} ") &&
      strcontains(member.user_data, "systemctl enable --now latency-agent.service\n") &&
      strcontains(member.user_data, "systemctl enable --now latency-server.service\n")
    ])
    error_message = "Every member runs latency-agent and a latency-server whose source is the member's name."
  }

  assert {
    condition = alltrue([for name in ["a", "b", "c", "d"] :
      module.member[name].instance_tags["Role"] == "metrics-server" &&
      module.member[name].instance_tags["LatencyPair"] == "latency-mesh" &&
      module.member[name].instance_tags["Name"] == "latency-mesh-member-${name}"
    ])
    error_message = "Every member is tagged as a metrics server of this mesh, so Prometheus discovers all of them."
  }
}

run "members_reach_each_other_only_through_the_mesh_group" {
  command = plan

  module {
    source = "./modules/mesh"
  }

  variables {
    members = {
      a = { availability_zone = "us-east-1a" }
      b = { availability_zone = "us-east-1b" }
      c = { availability_zone = "us-east-1c" }
    }
  }

  override_resource {
    target          = aws_security_group.mesh
    override_during = plan
    values          = { id = "sg-0mesh00000000000" }
  }

  override_resource {
    target          = module.member["a"].aws_security_group.this
    override_during = plan
    values          = { id = "sg-0membera00000000" }
  }

  override_resource {
    target          = module.member["b"].aws_security_group.this
    override_during = plan
    values          = { id = "sg-0memberb00000000" }
  }

  override_resource {
    target          = module.member["c"].aws_security_group.this
    override_during = plan
    values          = { id = "sg-0memberc00000000" }
  }

  assert {
    condition = (
      [for r in output.ingress_rules : "${r.ip_protocol}/${r.from_port}/${r.to_port}/${r.referenced_security_group_id}"] == ["icmp/8/-1/sg-0mesh00000000000", "tcp/50051/50051/sg-0mesh00000000000"] &&
      alltrue([for r in output.ingress_rules : r.cidr_ipv4 == null])
    )
    error_message = "The mesh group admits ICMP echo and the agents' gRPC port from its own members only, never a CIDR."
  }

  assert {
    condition = alltrue([for member in values(output.members) :
      length(member.security_group_ids) == 2 && contains(member.security_group_ids, "sg-0mesh00000000000") && contains(member.security_group_ids, member.security_group_id)
    ])
    error_message = "Every member is in the mesh group and in its own group, nothing else."
  }

  assert {
    condition = alltrue([for member in values(output.members) :
      toset([for r in member.ingress_rules : "${r.ip_protocol}/${r.from_port}/${r.cidr_ipv4}"]) == toset(["tcp/5000/203.0.113.7/32", "tcp/50052/203.0.113.7/32"])
    ])
    error_message = "Users reach each member's HTTP and gRPC query ports from allowed_cidrs only; no SSH, no probes through the member's own group."
  }

  assert {
    condition = alltrue([for member in values(output.members) :
      toset([for r in member.egress_rules : "${r.ip_protocol}/${r.from_port}/${coalesce(r.referenced_security_group_id, r.cidr_ipv4)}"]) == toset(["icmp/8/sg-0mesh00000000000", "tcp/50051/sg-0mesh00000000000", "tcp/80/0.0.0.0/0", "tcp/443/0.0.0.0/0"])
    ])
    error_message = "A member's probes go to the mesh group only; other egress is HTTPS, and HTTP for the source build."
  }

  assert {
    condition     = !anytrue(flatten([for member in values(output.members) : [for r in member.ingress_rules : r.cidr_ipv4 == "0.0.0.0/0"]]))
    error_message = "No member is open to the world."
  }
}

run "prometheus_discovers_and_scrapes_every_member" {
  command = apply

  module {
    source = "./modules/mesh"
  }

  variables {
    prometheus_host = true
    members = {
      a = { availability_zone = "us-east-1a" }
      b = { availability_zone = "us-east-1b" }
      c = { availability_zone = "us-east-1c" }
    }
  }

  override_resource {
    target = module.prometheus[0].aws_security_group.this
    values = { id = "sg-0prometheus00000" }
  }

  assert {
    condition = (
      strcontains(output.prometheus_config, "          - name: \"tag:LatencyPair\"\n            values: [\"latency-mesh\"]\n") &&
      strcontains(output.prometheus_config, "          - name: \"tag:Role\"\n            values: [\"metrics-server\"]\n") &&
      strcontains(output.prometheus_config, "        port: 5000\n")
    )
    error_message = "Prometheus must select the members by the tags they carry (Role, LatencyPair = the mesh's name), on their HTTP port."
  }

  assert {
    condition = (
      toset([for r in output.prometheus_scraped_ingress_rules : r.security_group_id]) == toset([for member in values(output.members) : member.security_group_id]) &&
      alltrue([for r in output.prometheus_scraped_ingress_rules : r.referenced_security_group_id == "sg-0prometheus00000" && r.port == 5000]) &&
      length(output.ingress_rules) == 2
    )
    error_message = "Every member's own group admits the Prometheus host on the HTTP port; the mesh group stays member-to-member only."
  }

  assert {
    condition     = [for r in module.prometheus[0].egress_rules : "${r.ip_protocol}/${r.from_port}/${coalesce(r.referenced_security_group_id, r.cidr_ipv4)}"] == concat([for name in ["a", "b", "c"] : "tcp/5000/${output.members[name].security_group_id}"], ["tcp/443/0.0.0.0/0"])
    error_message = "Prometheus may reach each member's HTTP port and HTTPS, nothing else."
  }
}

run "package_install_one_config_object_per_member" {
  command = apply

  module {
    source = "./modules/mesh"
  }

  variables {
    git_url      = null
    package_path = "tests/fixtures/latency-pair_1.2.3_amd64.deb"
  }

  override_resource {
    target = module.artifacts[0].aws_s3_bucket.this
    values = { id = "lm-artifacts-0123", arn = "arn:aws:s3:::lm-artifacts-0123" }
  }

  assert {
    condition = module.artifacts[0].config_objects == tomap({
      "config/member-a.textproto" = output.members["a"].server_config
      "config/member-b.textproto" = output.members["b"].server_config
    })
    error_message = "Every member's config is an object of its own in the artifact bucket."
  }

  assert {
    condition = alltrue([for name in ["a", "b"] :
      jsonencode([for st in module.member[name].iam_policy.Statement : st.Resource if st.Sid == "ReadTheArtifacts"]) == jsonencode([[
        "arn:aws:s3:::lm-artifacts-0123/manifest",
        "arn:aws:s3:::lm-artifacts-0123/${module.artifacts[0].package_key}",
        "arn:aws:s3:::lm-artifacts-0123/config/member-${name}.textproto",
      ]])
    ])
    error_message = "Each member's role reads the manifest, the package and its own config, by exact ARN: not the other members' configs."
  }

  assert {
    condition = alltrue([for name, member in output.members :
      !strcontains(member.user_data, "--target") && !strcontains(member.user_data, "10.42.") &&
      strcontains(member.user_data, "readonly CONFIG_KEY='config/member-${name}.textproto'")
    ])
    error_message = "Installed from the package, the targets travel in the config object, not in user_data."
  }

  assert {
    condition     = alltrue([for member in values(output.members) : [for r in member.egress_rules : "${r.ip_protocol}/${r.from_port}" if r.cidr_ipv4 != null] == ["tcp/443"]])
    error_message = "No build at boot: HTTPS is the only way out besides the probes."
  }
}

run "another_member_changes_the_configs_not_the_members" {
  command = plan

  module {
    source = "./modules/mesh"
  }

  variables {
    git_url      = null
    package_path = "tests/fixtures/latency-pair_1.2.3_amd64.deb"
    members = {
      a = { availability_zone = "us-east-1a" }
      b = { availability_zone = "us-east-1b" }
      c = { availability_zone = "us-east-1c" }
    }
  }

  assert {
    condition = (
      output.members["a"].user_data == run.package_install_one_config_object_per_member.members["a"].user_data &&
      output.members["b"].user_data == run.package_install_one_config_object_per_member.members["b"].user_data &&
      strcontains(output.members["a"].server_config, "targets { name: \"c\" host: \"10.42.2.10\" grpc_port: 50051 }")
    )
    error_message = "A new member must reach the others through their config objects (reloaded in place), not by replacing them."
  }
}

run "tls_and_the_token_on_every_member" {
  command = apply

  module {
    source = "./modules/mesh"
  }

  variables {
    git_url              = null
    package_path         = "tests/fixtures/latency-pair_1.2.3_amd64.deb"
    allowed_cidrs        = ["0.0.0.0/0"]
    allow_public_access  = true
    auth_token_parameter = "/lm/token"
    tls = {
      ca_parameter         = "/lm/tls/ca"
      cert_parameter       = "/lm/tls/member-cert"
      key_parameter        = "/lm/tls/member-key"
      probe_cert_parameter = "/lm/tls/probe-cert"
      probe_key_parameter  = "/lm/tls/probe-key"
    }
  }

  assert {
    condition = alltrue([for name in ["a", "b"] :
      jsonencode([for st in module.member[name].iam_policy.Statement : st.Resource if st.Sid == "ReadTLSMaterialAndToken"]) == jsonencode([[
        for p in ["lm/tls/ca", "lm/tls/member-cert", "lm/tls/member-key", "lm/tls/probe-cert", "lm/tls/probe-key", "lm/token"] :
        "arn:aws:ssm:us-east-1:123456789012:parameter/${p}"
      ]])
    ])
    error_message = "Each member's role reads the CA, the member and probe certificates and the token, by exact ARN."
  }

  assert {
    condition = alltrue([for member in values(output.members) :
      strcontains(member.user_data, "--tls_cert=/etc/latency-pair/tls/cert.crt --tls_key=/etc/latency-pair/tls/cert.key --tls_client_ca=/etc/latency-pair/tls/client-ca.crt") &&
      strcontains(member.user_data, "--probe_tls_cert=/etc/latency-pair/tls/client.crt --probe_tls_key=/etc/latency-pair/tls/client.key --auth_token_file=/etc/latency-pair/tls/token")
    ])
    error_message = "Every member's agent requires the probe certificate (mTLS), its server probes with it and requires the token."
  }

  assert {
    condition = (
      alltrue([for url in values(output.metrics_urls) : startswith(url, "https://")]) &&
      endswith(output.matrix_command, ":50052 --tls_ca=ca.crt --auth_token_file=token")
    )
    error_message = "With TLS and the token, metrics_urls say https and matrix_command passes the CA and the token."
  }
}

run "container_members" {
  command = plan

  module {
    source = "./modules/mesh"
  }

  variables {
    git_url         = null
    container_image = "ghcr.io/example/latency-pair:1.2.3"
    members = {
      a = { availability_zone = "us-east-1a" }
      b = { availability_zone = "us-east-1b", instance_type = "c6i.large" }
    }
  }

  assert {
    condition     = alltrue([for member in values(output.members) : strcontains(member.user_data, "--entrypoint latency-agent ghcr.io/example/latency-pair:1.2.3") && strcontains(member.user_data, "--entrypoint latency-server ghcr.io/example/latency-pair:1.2.3")])
    error_message = "Every member runs both programs from the image."
  }
}

# ---- validation --------------------------------------------------------------------------------

run "reject_a_single_member" {
  command = plan
  module {
    source = "./modules/mesh"
  }
  variables {
    members = { a = { availability_zone = "us-east-1a" } }
  }
  expect_failures = [var.members]
}

run "reject_more_than_twenty_members" {
  command = plan
  module {
    source = "./modules/mesh"
  }
  variables {
    members = { for i in range(21) : "m${i}" => { availability_zone = "us-east-1a" } }
  }
  expect_failures = [var.members]
}

run "reject_bad_member_names" {
  command = plan
  module {
    source = "./modules/mesh"
  }
  variables {
    members = {
      Web_1 = { availability_zone = "us-east-1a" }
      "-b"  = { availability_zone = "us-east-1b" }
    }
  }
  expect_failures = [var.members]
}

run "reject_a_bad_zone" {
  command = plan
  module {
    source = "./modules/mesh"
  }
  variables {
    members = {
      a = { availability_zone = "us-east-1" }
      b = { availability_zone = "us-east-1b" }
    }
  }
  expect_failures = [var.members]
}

run "reject_an_address_outside_the_zone_subnet" {
  command = plan
  module {
    source = "./modules/mesh"
  }
  variables {
    members = {
      a = { availability_zone = "us-east-1a", private_ip = "10.42.1.20" }
      b = { availability_zone = "us-east-1b" }
    }
  }
  expect_failures = [aws_security_group.mesh]
}

run "reject_a_reserved_address" {
  command = plan
  module {
    source = "./modules/mesh"
  }
  variables {
    members = {
      a = { availability_zone = "us-east-1a", private_ip = "10.42.0.3" }
      b = { availability_zone = "us-east-1b" }
    }
  }
  expect_failures = [aws_security_group.mesh]
}

run "reject_a_pinned_address_another_member_has" {
  command = plan
  module {
    source = "./modules/mesh"
  }
  variables {
    members = {
      a = { availability_zone = "us-east-1a", private_ip = "10.42.0.11" }
      b = { availability_zone = "us-east-1a" } # the zone's second member: 10.42.0.11
    }
  }
  expect_failures = [aws_security_group.mesh]
}

run "reject_world_open_metrics" {
  command = plan
  module {
    source = "./modules/mesh"
  }
  variables {
    allowed_cidrs = ["0.0.0.0/0"]
  }
  expect_failures = [var.allowed_cidrs]
}

run "reject_public_access_without_tls_and_token" {
  command = plan
  module {
    source = "./modules/mesh"
  }
  variables {
    allowed_cidrs       = ["0.0.0.0/0"]
    allow_public_access = true
  }
  expect_failures = [var.allow_public_access]
}

run "reject_an_agent_port_the_server_uses" {
  command = plan
  module {
    source = "./modules/mesh"
  }
  variables {
    agent_grpc_port = 5000
  }
  expect_failures = [var.agent_grpc_port]
}

run "reject_two_install_methods" {
  command = plan
  module {
    source = "./modules/mesh"
  }
  variables {
    container_image = "ghcr.io/example/latency-pair:1.2.3"
  }
  expect_failures = [var.git_url]
}

run "reject_tls_without_the_package" {
  command = plan
  module {
    source = "./modules/mesh"
  }
  variables {
    tls = {
      ca_parameter   = "/lm/tls/ca"
      cert_parameter = "/lm/tls/member-cert"
      key_parameter  = "/lm/tls/member-key"
    }
  }
  expect_failures = [var.tls]
}
