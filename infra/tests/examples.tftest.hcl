# Every example applies (against mocks) and exposes the endpoints users curl.

mock_provider "aws" {
  source = "./tests/mocks"
}

variables {
  allowed_cidrs = ["203.0.113.7/32"]
  git_url       = "https://github.com/example/latency-pair.git"
}

run "example_basic" {
  command = apply

  module {
    source = "./examples/basic"
  }

  assert {
    condition     = output.metrics_url == "http://${output.metrics_server_public_ip}:5000/metrics"
    error_message = "basic must expose metrics_server_public_ip and a /metrics URL built from it."
  }

  assert {
    condition     = output.agent_availability_zones == { same-az = "us-east-1a" }
    error_message = "basic runs one same-AZ agent."
  }
}

run "example_cross_az" {
  command = apply

  module {
    source = "./examples/cross_az"
  }

  assert {
    condition     = output.agent_availability_zones == { same-az = "us-east-1a", cross-az = "us-east-1b" }
    error_message = "cross_az must run one agent in the server's zone and one in the next zone."
  }

  assert {
    condition     = length(output.metrics_server_targets) == 2 && startswith(output.metrics_server_targets[0], "same-az=")
    error_message = "cross_az must probe both agents from one server, same-AZ first."
  }
}

run "example_cluster_placement" {
  command = apply

  module {
    source = "./examples/cluster_placement"
  }

  assert {
    condition     = output.placement_group_name == "latency-pair-cpg-cluster"
    error_message = "cluster_placement must create a cluster placement group."
  }

  assert {
    condition     = output.agent_availability_zones == { cluster = "us-east-1a", same-az = "us-east-1a", cross-az = "us-east-1b" }
    error_message = "cluster_placement must compare cluster, same-AZ and cross-AZ agents."
  }
}

run "example_container_variant" {
  command = plan

  module {
    source = "./examples/basic"
  }

  variables {
    git_url         = null
    container_image = "ghcr.io/example/latency-pair:1.2.3"
  }
}
