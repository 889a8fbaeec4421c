# The default deploy path: the .deb the user built goes to a private bucket, each instance role
# reads exactly its objects, and targets travel as a config object, not in user_data.

mock_provider "aws" {
  source = "./tests/mocks"
}

override_resource {
  target = module.artifacts[0].aws_s3_bucket.this
  values = {
    id  = "lp-artifacts-0123"
    arn = "arn:aws:s3:::lp-artifacts-0123"
  }
}

variables {
  allowed_cidrs = ["203.0.113.7/32"]
  package_path  = "tests/fixtures/latency-pair_1.2.3_amd64.deb"
  agents = {
    same-az  = { private_ip = "10.42.0.10" }
    cross-az = { availability_zone = "us-east-1b", private_ip = "10.42.1.10" }
  }
}

# The bucket itself (private, encrypted, versioned, TLS only) is modules/_artifacts' test.
run "package_and_config_go_to_the_artifact_bucket" {
  command = apply

  assert {
    condition = (
      module.artifacts[0].package_key == "packages/latency-pair_1.2.3_amd64-${substr(filesha256("tests/fixtures/latency-pair_1.2.3_amd64.deb"), 0, 16)}.deb" &&
      module.artifacts[0].package_sha256 == filesha256("tests/fixtures/latency-pair_1.2.3_amd64.deb")
    )
    error_message = "The package must be uploaded under a key naming its content."
  }

  assert {
    condition     = module.artifacts[0].config_objects == tomap({ "config/server.textproto" = module.metrics_server.server_config }) && strcontains(module.metrics_server.server_config, "targets { name: \"same-az\" host: \"10.42.0.10\" grpc_port: 50051 }\ntargets { name: \"cross-az\" host: \"10.42.1.10\" grpc_port: 50051 }")
    error_message = "The server config object must carry every agent, same zone first."
  }

  assert {
    condition     = output.artifact_bucket == "lp-artifacts-0123"
    error_message = "artifact_bucket must name the bucket."
  }
}

run "roles_read_exactly_their_objects" {
  command = apply

  assert {
    condition = (
      jsonencode(module.metrics_server.iam_policy.Statement[1].Resource) == jsonencode([
        "arn:aws:s3:::lp-artifacts-0123/manifest",
        "arn:aws:s3:::lp-artifacts-0123/${module.artifacts[0].package_key}",
        "arn:aws:s3:::lp-artifacts-0123/config/server.textproto",
      ]) &&
      jsonencode(module.agent.iam_policy.Statement[1].Resource) == jsonencode([
        "arn:aws:s3:::lp-artifacts-0123/manifest",
        "arn:aws:s3:::lp-artifacts-0123/${module.artifacts[0].package_key}",
      ])
    )
    error_message = "s3:GetObject must name the exact objects: the server's config is not the agents' to read."
  }

  assert {
    condition     = length(flatten([for st in concat(module.metrics_server.iam_policy.Statement, module.agent.iam_policy.Statement) : st.Action if st.Resource == "*" && st.Sid != "SessionManager"])) == 0
    error_message = "Nothing but Session Manager may be granted on \"*\"."
  }
}

run "package_hosts_reach_out_on_https_only" {
  command = apply

  assert {
    condition = (
      [for r in module.agent.egress_rules : "${r.ip_protocol}/${r.from_port}/${r.cidr_ipv4}"] == ["tcp/443/0.0.0.0/0"] &&
      [for r in module.metrics_server.egress_rules : "${r.ip_protocol}/${r.from_port}/${r.cidr_ipv4}" if r.referenced_security_group_id == null] == ["tcp/443/0.0.0.0/0"]
    )
    error_message = "No build at boot: S3, SSM and Debian's cdn-aws mirror are all HTTPS, so TCP 443 is the only way out."
  }
}

run "status_is_reported_where_users_look" {
  command = apply

  assert {
    condition = output.status_commands == {
      metrics-server = "aws ssm get-parameter --name /latency-pair/status/server --query Parameter.Value --output text"
      agent-same-az  = "aws ssm get-parameter --name /latency-pair/status/agent-same-az --query Parameter.Value --output text"
      agent-cross-az = "aws ssm get-parameter --name /latency-pair/status/agent-cross-az --query Parameter.Value --output text"
    }
    error_message = "status_commands must give one ready command per instance."
  }
}

run "another_agent_changes_the_config_not_the_server" {
  command = plan

  variables {
    agents = {
      same-az  = { private_ip = "10.42.0.10" }
      cross-az = { availability_zone = "us-east-1b", private_ip = "10.42.1.10" }
      third    = { private_ip = "10.42.0.11" }
    }
  }

  assert {
    condition     = module.metrics_server.rendered_user_data == run.package_and_config_go_to_the_artifact_bucket.metrics_server_user_data
    error_message = "Adding an agent must leave the server's user_data (and so the instance) as it was."
  }
}

run "reject_a_package_for_another_architecture" {
  command = plan

  variables {
    architecture = "arm64"
  }

  expect_failures = [var.package_path]
}

run "reject_two_install_methods" {
  command = plan

  variables {
    git_url = "https://github.com/example/latency-pair.git"
  }

  expect_failures = [var.git_url]
}

run "tls_and_token_come_from_ssm_by_exact_arn" {
  command = apply

  variables {
    auth_token_parameter = "/lp/token"
    tls = {
      ca_parameter          = "/lp/tls/ca"
      server_cert_parameter = "/lp/tls/server-cert"
      server_key_parameter  = "/lp/tls/server-key"
      agent_cert_parameter  = "/lp/tls/agent-cert"
      agent_key_parameter   = "/lp/tls/agent-key"
      probe_cert_parameter  = "/lp/tls/probe-cert"
      probe_key_parameter   = "/lp/tls/probe-key"
    }
  }

  assert {
    condition = jsonencode([for st in module.metrics_server.iam_policy.Statement : st.Resource if st.Sid == "ReadTLSMaterialAndToken"]) == jsonencode([[
      for name in ["lp/tls/ca", "lp/tls/probe-cert", "lp/tls/probe-key", "lp/tls/server-cert", "lp/tls/server-key", "lp/token"] :
      "arn:aws:ssm:us-east-1:123456789012:parameter/${name}"
    ]])
    error_message = "The server's role may read its own TLS parameters and the token, by exact ARN."
  }

  assert {
    condition = jsonencode([for st in module.agent.iam_policy.Statement : st.Resource if st.Sid == "ReadTLSMaterialAndToken"]) == jsonencode([[
      for name in ["lp/tls/agent-cert", "lp/tls/agent-key", "lp/tls/ca"] :
      "arn:aws:ssm:us-east-1:123456789012:parameter/${name}"
    ]])
    error_message = "Agents may read their certificate, key and the CA, never the server's key or the token."
  }

  assert {
    condition = strcontains(module.metrics_server.rendered_user_data, join(" ", [
      "--grpc_tls_cert=/etc/latency-pair/tls/cert.crt --grpc_tls_key=/etc/latency-pair/tls/cert.key",
      "--http_tls_cert=/etc/latency-pair/tls/cert.crt --http_tls_key=/etc/latency-pair/tls/cert.key",
      "--probe_tls_ca=/etc/latency-pair/tls/ca.crt",
      "--probe_tls_cert=/etc/latency-pair/tls/client.crt --probe_tls_key=/etc/latency-pair/tls/client.key",
      "--auth_token_file=/etc/latency-pair/tls/token",
    ])) && strcontains(module.metrics_server.rendered_user_data, "fetch_secret 'token' '/lp/token'")
    error_message = "The server must serve both surfaces over TLS, probe over mTLS and require the token."
  }

  assert {
    condition = alltrue([for ud in values(module.agent.rendered_user_data) :
      strcontains(ud, "--tls_cert=/etc/latency-pair/tls/cert.crt --tls_key=/etc/latency-pair/tls/cert.key --tls_client_ca=/etc/latency-pair/tls/client-ca.crt") &&
      strcontains(ud, "fetch_secret 'client-ca.crt' '/lp/tls/ca'")
    ])
    error_message = "With a probe certificate, agents must serve TLS and require the server's client certificate."
  }

  assert {
    condition     = startswith(output.metrics_url, "https://")
    error_message = "metrics_url must say https when the gateway serves TLS."
  }
}

run "reject_tls_without_pinned_agent_addresses" {
  command = plan

  variables {
    agents = { same-az = {} }
    tls = {
      ca_parameter          = "/lp/tls/ca"
      server_cert_parameter = "/lp/tls/server-cert"
      server_key_parameter  = "/lp/tls/server-key"
      agent_cert_parameter  = "/lp/tls/agent-cert"
      agent_key_parameter   = "/lp/tls/agent-key"
    }
  }

  expect_failures = [var.tls]
}
