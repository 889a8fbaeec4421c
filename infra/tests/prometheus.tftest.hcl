# The optional Prometheus host: it finds this pair's metrics server by tag, scrapes exactly
# that server's HTTP port (over HTTPS with the CA and the token when the pair has them), loads
# the repository's rules, and is reachable only through Session Manager unless told.

mock_provider "aws" {
  source = "./tests/mocks"
}

override_resource {
  target = module.metrics_server.aws_security_group.this
  values = { id = "sg-0server0000000000" }
}

override_resource {
  target = module.prometheus[0].aws_security_group.this
  values = { id = "sg-0prometheus00000" }
}

variables {
  allowed_cidrs   = ["203.0.113.7/32"]
  package_path    = "tests/fixtures/latency-pair_1.2.3_amd64.deb"
  prometheus_host = true
  agents = {
    same-az = { private_ip = "10.42.0.10" }
  }
}

run "discovers_this_pair_by_tag_and_loads_the_rules" {
  command = apply

  assert {
    condition = (
      module.metrics_server.instance_tags.Role == "metrics-server" &&
      module.metrics_server.instance_tags.LatencyPair == "latency-pair" &&
      strcontains(module.prometheus[0].prometheus_config, "      - region: us-east-1\n        port: 5000\n") &&
      strcontains(module.prometheus[0].prometheus_config, "          - name: \"tag:LatencyPair\"\n            values: [\"latency-pair\"]\n") &&
      strcontains(module.prometheus[0].prometheus_config, "          - name: \"tag:Role\"\n            values: [\"metrics-server\"]\n")
    )
    error_message = "Prometheus must discover the metrics server by the tags the server carries, on its HTTP port, in the pair's region."
  }

  assert {
    condition = (
      strcontains(module.prometheus[0].prometheus_config, "    scheme: http\n") &&
      !strcontains(module.prometheus[0].prometheus_config, "tls_config") &&
      !strcontains(module.prometheus[0].prometheus_config, "authorization")
    )
    error_message = "A pair without TLS and token is scraped over plain HTTP, with no credentials."
  }

  assert {
    condition = (
      alltrue([for file in ["alerting.rules.yml", "recording.rules.yml"] :
        strcontains(module.prometheus[0].rendered_user_data, "cat >/etc/prometheus/rules.d/${file} <<'RULES'\n${trimsuffix(file("prometheus/${file}"), "\n")}\nRULES\n")
      ]) &&
      strcontains(module.prometheus[0].rendered_user_data, "promtool check config /etc/prometheus/prometheus.yml") &&
      length(module.prometheus[0].rendered_user_data) <= 16384
    )
    error_message = "The host must carry infra/prometheus's rule files verbatim, check its config before starting, and fit EC2's 16 KB of user data."
  }

  assert {
    condition = (
      length(module.prometheus[0].web_ingress_rules) == 0 &&
      [for r in module.prometheus[0].egress_rules : "${r.ip_protocol}/${r.from_port}/${coalesce(r.referenced_security_group_id, r.cidr_ipv4)}"] == ["tcp/5000/sg-0server0000000000", "tcp/443/0.0.0.0/0"] &&
      module.prometheus[0].scraped_ingress_rules == [{ security_group_id = "sg-0server0000000000", referenced_security_group_id = "sg-0prometheus00000", port = 5000 }]
    )
    error_message = "Prometheus may reach the metrics server's HTTP port and HTTPS only; the server admits exactly the Prometheus group; no one reaches :9090 but through Session Manager."
  }

  assert {
    condition = (
      contains(module.prometheus[0].iam_policy.Statement, {
        Sid      = "DiscoverScrapeTargets"
        Effect   = "Allow"
        Action   = ["ec2:DescribeAvailabilityZones", "ec2:DescribeInstances"]
        Resource = "*"
      }) &&
      length([for st in module.prometheus[0].iam_policy.Statement : st if st.Sid == "ReadTLSMaterialAndToken"]) == 0
    )
    error_message = "The Prometheus role may describe instances (discovery) and reads no secret when the pair has none."
  }

  assert {
    condition = (
      output.status_commands["prometheus"] == "aws ssm get-parameter --name /latency-pair/status/prometheus --query Parameter.Value --output text" &&
      startswith(output.prometheus_port_forward_command, "aws ssm start-session --target ") &&
      endswith(output.prometheus_port_forward_command, " --document-name AWS-StartPortForwardingSession --parameters portNumber=9090,localPortNumber=9090")
    )
    error_message = "The host reports where users look, and the README's port forwarding command is an output."
  }
}

run "scrapes_over_https_with_the_ca_and_the_token" {
  command = apply

  variables {
    auth_token_parameter = "/lp/token"
    tls = {
      ca_parameter          = "/lp/tls/ca"
      server_cert_parameter = "/lp/tls/server-cert"
      server_key_parameter  = "/lp/tls/server-key"
      agent_cert_parameter  = "/lp/tls/agent-cert"
      agent_key_parameter   = "/lp/tls/agent-key"
    }
  }

  assert {
    condition = (
      strcontains(module.prometheus[0].prometheus_config, "    scheme: https\n    tls_config:\n      ca_file: /etc/prometheus/latency-pair/ca.crt\n") &&
      strcontains(module.prometheus[0].prometheus_config, "    authorization:\n      credentials_file: /etc/prometheus/latency-pair/token\n") &&
      strcontains(module.prometheus[0].rendered_user_data, "ssm_get '/lp/tls/ca' /etc/prometheus/latency-pair/ca.crt\n") &&
      strcontains(module.prometheus[0].rendered_user_data, "ssm_get '/lp/token' /etc/prometheus/latency-pair/token\n")
    )
    error_message = "With TLS and the token, scrapes verify the server against the CA and send the token, both fetched from SSM."
  }

  assert {
    condition = jsonencode([for st in module.prometheus[0].iam_policy.Statement : st.Resource if st.Sid == "ReadTLSMaterialAndToken"]) == jsonencode([[
      "arn:aws:ssm:us-east-1:123456789012:parameter/lp/tls/ca",
      "arn:aws:ssm:us-east-1:123456789012:parameter/lp/token",
    ]])
    error_message = "The Prometheus role reads the CA and the token by exact ARN, and no private key."
  }
}

run "no_prometheus_host_by_default" {
  command = plan

  variables {
    prometheus_host = false
  }

  assert {
    condition     = length(module.prometheus) == 0 && output.prometheus_port_forward_command == null && !contains(keys(output.status_commands), "prometheus")
    error_message = "The Prometheus host is opt-in."
  }
}

run "reject_a_world_open_prometheus" {
  command = plan

  variables {
    prometheus_allowed_cidrs = ["0.0.0.0/0"]
  }

  expect_failures = [var.prometheus_allowed_cidrs]
}
