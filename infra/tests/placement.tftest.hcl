# Placement choices: same AZ (default), cross-AZ, cluster placement group, several agents at once.

mock_provider "aws" {
  source          = "./tests/mocks"
  override_during = plan
}

variables {
  allowed_cidrs = ["203.0.113.7/32"]
  git_url       = "https://github.com/example/latency-pair.git"
}

run "same_az_by_default" {
  # apply: subnet IDs are only known (as distinct mock values) after apply.
  command = apply

  assert {
    condition     = join(",", keys(var.agents)) == "same-az" && output.agent_availability_zones == { same-az = "us-east-1a" }
    error_message = "By default one agent runs in the server's zone."
  }

  assert {
    condition     = output.metrics_server_availability_zone == "us-east-1a" && join(",", keys(module.network.public_subnet_ids)) == "us-east-1a"
    error_message = "The server takes the region's first zone, and only that zone gets a subnet."
  }

  assert {
    condition     = module.agent.instances["same-az"].subnet_id == module.metrics_server.subnet_id
    error_message = "The same-AZ agent must share the server's subnet."
  }

  assert {
    condition     = length(aws_placement_group.cluster) == 0 && output.placement_group_name == null && module.metrics_server.placement_group == null
    error_message = "No placement group unless an agent asks for one."
  }
}

run "same_and_cross_az_side_by_side" {
  command = apply

  variables {
    agents = {
      same-az  = {}
      cross-az = { availability_zone = "us-east-1b", instance_type = "t3.medium" }
    }
  }

  assert {
    condition     = join(",", module.network.availability_zones) == "us-east-1a,us-east-1b"
    error_message = "Each zone in use gets a public subnet, the server's zone first."
  }

  assert {
    condition     = module.agent.instances["cross-az"].subnet_id == module.network.public_subnet_ids["us-east-1b"] && module.agent.instances["same-az"].subnet_id == module.network.public_subnet_ids["us-east-1a"]
    error_message = "Each agent must land in its own zone's subnet."
  }

  assert {
    condition     = module.agent.instances["cross-az"].instance_type == "t3.medium" && module.agent.instances["same-az"].instance_type == "t3.small"
    error_message = "Per-agent instance types must override agent_instance_type."
  }

  assert {
    condition     = length(output.metrics_server_targets) == 2 && startswith(output.metrics_server_targets[0], "same-az=") && startswith(output.metrics_server_targets[1], "cross-az=")
    error_message = "One server probes both agents, same-AZ first (the one /metrics reports)."
  }
}

run "explicit_server_zone_skips_the_lookup" {
  command = plan

  variables {
    server_availability_zone = "us-east-1c"
  }

  assert {
    condition     = length(data.aws_availability_zones.available) == 0 && output.agent_availability_zones == { same-az = "us-east-1c" }
    error_message = "server_availability_zone must be used as is, and agents follow it by default."
  }
}

run "cluster_placement_group" {
  command = apply

  variables {
    server_instance_type = "c6i.large"
    agent_instance_type  = "c6i.large"
    agents = {
      cluster  = { placement_group = true }
      same-az  = {}
      cross-az = { availability_zone = "us-east-1b" }
    }
  }

  assert {
    condition     = aws_placement_group.cluster[0].strategy == "cluster" && output.placement_group_name == "latency-pair-cluster"
    error_message = "An agent with placement_group = true must create one cluster placement group."
  }

  assert {
    condition     = module.metrics_server.placement_group == "latency-pair-cluster" && module.agent.instances["cluster"].placement_group == "latency-pair-cluster"
    error_message = "The server and the asking agent must join the placement group."
  }

  assert {
    condition     = module.agent.instances["same-az"].placement_group == null && module.agent.instances["cross-az"].placement_group == null
    error_message = "Other agents stay outside the placement group, for comparison."
  }

  assert {
    condition     = join(",", [for t in output.metrics_server_targets : split("=", t)[0]]) == "cluster,same-az,cross-az"
    error_message = "All three placements must be probed by the one server."
  }
}

run "reject_cross_az_agent_in_cluster" {
  command = plan

  variables {
    server_instance_type = "c6i.large"
    agents = {
      cluster = { placement_group = true, availability_zone = "us-east-1b", instance_type = "c6i.large" }
    }
  }

  expect_failures = [aws_placement_group.cluster]
}

run "reject_burstable_types_in_cluster" {
  command = plan

  variables {
    agents = {
      cluster = { placement_group = true }
    }
  }

  expect_failures = [aws_placement_group.cluster]
}
