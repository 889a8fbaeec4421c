# The boot scripts the composed stack renders: targets, ref, units.

mock_provider "aws" {
  source          = "./tests/mocks"
  override_during = plan
}

variables {
  allowed_cidrs = ["203.0.113.7/32"]
  git_url       = "https://github.com/example/latency-pair.git"
  git_ref       = "v1.2.3"
  agents = {
    same-az  = { private_ip = "10.42.0.10" }
    cross-az = { availability_zone = "us-east-1b", private_ip = "10.42.1.10" }
  }
}

run "server_targets_every_agent_by_private_ip" {
  command = plan

  assert {
    condition     = strcontains(module.metrics_server.rendered_user_data, "ExecStart=/usr/local/bin/latency-server --target=same-az=10.42.0.10:50051 --target=cross-az=10.42.1.10:50051 --grpc_listen=0.0.0.0:50052 --http_listen=0.0.0.0:5000 --interval=1s --log_level=info\n")
    error_message = "The server must start with the agents' private IPs as targets, same-AZ first."
  }

  assert {
    condition     = output.metrics_server_targets == ["same-az=10.42.0.10:50051", "cross-az=10.42.1.10:50051"]
    error_message = "metrics_server_targets must match the rendered flags."
  }
}

run "both_roles_build_the_requested_ref" {
  command = plan

  assert {
    condition = alltrue([for ud in [module.metrics_server.rendered_user_data, module.agent.rendered_user_data["same-az"]] :
      strcontains(ud, "readonly GIT_URL='https://github.com/example/latency-pair.git'") &&
      strcontains(ud, "readonly GIT_REF='v1.2.3'") &&
      strcontains(ud, "fetch --quiet --depth 1 origin \"$GIT_REF\"") &&
      strcontains(ud, "./scripts/setup.sh") &&
    strcontains(ud, "cmake --install build --prefix /usr/local")])
    error_message = "Both roles must fetch git_url at git_ref, run setup.sh and install with CMake."
  }
}

run "hardened_units" {
  command = plan

  assert {
    condition = alltrue([for ud in [module.metrics_server.rendered_user_data, module.agent.rendered_user_data["same-az"]] :
    alltrue([for d in ["User=latency", "NoNewPrivileges=yes", "ProtectSystem=strict", "CapabilityBoundingSet=", "AmbientCapabilities="] : can(regex("(?m)^${d}$", ud))])])
    error_message = "Both units must run as the latency user with NoNewPrivileges, ProtectSystem=strict and no capabilities."
  }

  assert {
    condition     = strcontains(module.metrics_server.rendered_user_data, "net.ipv4.ping_group_range = $service_gid $service_gid") && !strcontains(module.agent.rendered_user_data["same-az"], "ping_group_range")
    error_message = "ping_group_range is set for the server's group only (the agent does not open ICMP sockets)."
  }

  assert {
    condition     = strcontains(module.agent.rendered_user_data["same-az"], "ExecStart=/usr/local/bin/latency-agent --listen=0.0.0.0:50051 --log_level=info --log_format=text\n")
    error_message = "Agents must start latency-agent on the agent gRPC port."
  }
}

run "ports_and_interval_propagate" {
  command = plan

  variables {
    agent_grpc_port  = 50061
    server_grpc_port = 50062
    server_http_port = 8080
    probe_interval   = "250ms"
    log_level        = "debug"
    log_format       = "json"
  }

  assert {
    condition     = strcontains(module.metrics_server.rendered_user_data, "--target=same-az=10.42.0.10:50061 --target=cross-az=10.42.1.10:50061 --grpc_listen=0.0.0.0:50062 --http_listen=0.0.0.0:8080 --interval=250ms --log_level=debug\n")
    error_message = "Server flags must follow the port, interval and log settings."
  }

  assert {
    condition     = strcontains(module.agent.rendered_user_data["same-az"], "--listen=0.0.0.0:50061 --log_level=debug --log_format=json\n")
    error_message = "Agent flags must follow agent_grpc_port and the log settings."
  }

  assert {
    condition     = contains([for r in module.agent.ingress_rules : r.from_port], 50061) && contains([for r in module.metrics_server.ingress_rules : r.from_port], 8080)
    error_message = "Security groups must follow the configured ports."
  }
}

run "container_image_instead_of_source" {
  command = plan

  variables {
    git_url         = null
    container_image = "ghcr.io/example/latency-pair:1.2.3"
  }

  assert {
    condition = alltrue([for ud in [module.metrics_server.rendered_user_data, module.agent.rendered_user_data["same-az"]] :
      strcontains(ud, "readonly IMAGE='ghcr.io/example/latency-pair:1.2.3'") &&
      strcontains(ud, "--network host --user $${LATENCY_UID}:$${LATENCY_GID} --cap-drop ALL --security-opt no-new-privileges=true --read-only") &&
    !strcontains(ud, "cmake")])
    error_message = "With container_image both roles must run the image with docker, unprivileged, and build nothing."
  }

  assert {
    condition     = strcontains(module.metrics_server.rendered_user_data, "--entrypoint latency-server ghcr.io/example/latency-pair:1.2.3 --target=same-az=10.42.0.10:50051")
    error_message = "The server container must get the agents as targets."
  }
}

run "container_image_from_ecr" {
  command = apply

  variables {
    git_url         = null
    container_image = "210987654321.dkr.ecr.eu-west-1.amazonaws.com/team/latency-pair:1.2.3"
  }

  assert {
    condition = alltrue([for policy in [module.metrics_server.iam_policy, module.agent.iam_policy] :
      contains(policy.Statement, {
        Sid      = "PullTheImage"
        Effect   = "Allow"
        Action   = ["ecr:BatchCheckLayerAvailability", "ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"]
        Resource = ["arn:aws:ecr:eu-west-1:210987654321:repository/team/latency-pair"]
      }) &&
      contains(policy.Statement, {
        # ECR's token call takes no resource: "*" is the only value it accepts.
        Sid      = "ECRAuthorizationToken"
        Effect   = "Allow"
        Action   = "ecr:GetAuthorizationToken"
        Resource = "*"
      })
    ])
    error_message = "An image in ECR must be pullable by both roles: layers from exactly its repository, the token call on \"*\"."
  }

  assert {
    condition = alltrue([for ud in [module.metrics_server.rendered_user_data, module.agent.rendered_user_data["cross-az"]] :
      strcontains(ud, "readonly ECR_REGISTRY='210987654321.dkr.ecr.eu-west-1.amazonaws.com'") &&
      strcontains(ud, "readonly ECR_REGION='eu-west-1'") &&
      strcontains(ud, "retry ecr_login\n")
    ])
    error_message = "The boot script must log docker in to the image's registry (its own region) before pulling."
  }
}

run "container_image_elsewhere_needs_no_ecr_grant" {
  command = apply

  variables {
    git_url         = null
    container_image = "ghcr.io/example/latency-pair:1.2.3"
  }

  assert {
    condition = alltrue([for policy in [module.metrics_server.iam_policy, module.agent.iam_policy] :
      length([for st in policy.Statement : st if startswith(st.Sid, "PullTheImage") || st.Sid == "ECRAuthorizationToken"]) == 0
    ])
    error_message = "A registry other than ECR needs no ECR permission."
  }

  assert {
    condition     = !strcontains(module.metrics_server.rendered_user_data, "ecr_login")
    error_message = "No ECR login for an image outside ECR."
  }
}

run "source_builds_reach_http_mirrors_too" {
  command = apply

  assert {
    condition = (
      toset([for r in module.agent.egress_rules : "${r.ip_protocol}/${r.from_port}"]) == toset(["tcp/80", "tcp/443"]) &&
      toset([for r in module.metrics_server.egress_rules : "${r.ip_protocol}/${r.from_port}" if r.referenced_security_group_id == null]) == toset(["tcp/80", "tcp/443"])
    )
    error_message = "A source build fetches from git, npm and mirrors that may be http://: TCP 80 and 443."
  }
}
