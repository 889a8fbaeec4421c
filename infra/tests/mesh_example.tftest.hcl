# examples/mesh applied against the mocks (three zones): by default three members, one per zone,
# each named after its zone; every member probes the other two; member_count and Prometheus.
# modules/mesh itself: mesh.tftest.hcl.

mock_provider "aws" {
  source = "./tests/mocks"
}

variables {
  allowed_cidrs = ["203.0.113.7/32"]
  git_url       = "https://github.com/example/latency-pair.git"
}

run "example_three_members_one_per_zone" {
  command = apply

  module {
    source = "./examples/mesh"
  }

  assert {
    condition = (
      output.member_availability_zones == tomap({ us-east-1a = "us-east-1a", us-east-1b = "us-east-1b", us-east-1c = "us-east-1c" }) &&
      output.member_private_ips == tomap({ us-east-1a = "10.42.0.10", us-east-1b = "10.42.1.10", us-east-1c = "10.42.2.10" })
    )
    error_message = "By default three members, one per zone of the region's first three, each named after its zone at its subnet's 10th address."
  }

  assert {
    condition = output.member_targets == tomap({
      us-east-1a = ["us-east-1b=10.42.1.10:50051", "us-east-1c=10.42.2.10:50051"]
      us-east-1b = ["us-east-1a=10.42.0.10:50051", "us-east-1c=10.42.2.10:50051"]
      us-east-1c = ["us-east-1a=10.42.0.10:50051", "us-east-1b=10.42.1.10:50051"]
    })
    error_message = "Every member probes every other member, and not itself."
  }

  assert {
    condition = (
      output.matrix_command == "latencyctl matrix ${join(" ", [for name in sort(keys(output.grpc_endpoints)) : output.grpc_endpoints[name]])}" &&
      alltrue([for name, endpoint in output.grpc_endpoints : endpoint == "${output.member_public_ips[name]}:50052"]) &&
      alltrue([for name, url in output.metrics_urls : url == "http://${output.member_public_ips[name]}:5000/metrics"])
    )
    error_message = "matrix_command must ask every member's gRPC query service, at its public address; metrics_urls must point at each member."
  }

  assert {
    condition = (
      toset(keys(output.status_commands)) == toset(["member-us-east-1a", "member-us-east-1b", "member-us-east-1c"]) &&
      output.status_commands["member-us-east-1a"] == "aws ssm get-parameter --name /latency-mesh/status/member-us-east-1a --query Parameter.Value --output text" &&
      output.prometheus_port_forward_command == null
    )
    error_message = "Every member reports to its own status parameter; no Prometheus host unless asked."
  }
}

run "example_member_count" {
  command = plan

  module {
    source = "./examples/mesh"
  }

  variables {
    member_count = 2
  }

  assert {
    condition     = keys(output.member_availability_zones) == tolist(["us-east-1a", "us-east-1b"])
    error_message = "member_count = 2 must launch two members, in the region's first two zones."
  }
}

run "example_with_prometheus" {
  command = apply

  module {
    source = "./examples/mesh"
  }

  variables {
    prometheus_host = true
  }

  assert {
    condition     = startswith(output.prometheus_port_forward_command, "aws ssm start-session --target ") && contains(keys(output.status_commands), "prometheus")
    error_message = "prometheus_host = true must add the Prometheus host and its port forwarding command."
  }
}

run "example_rejects_one_member" {
  command = plan

  module {
    source = "./examples/mesh"
  }

  variables {
    member_count = 1
  }

  expect_failures = [var.member_count]
}

run "example_rejects_more_members_than_zones" {
  command = plan

  module {
    source = "./examples/mesh"
  }

  variables {
    member_count = 4 # the mocked region has three zones
  }

  expect_failures = [data.aws_availability_zones.available]
}
