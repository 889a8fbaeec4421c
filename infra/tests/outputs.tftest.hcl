# What users read after apply: the original output name and ready-to-use endpoints.

mock_provider "aws" {
  source = "./tests/mocks"
}

override_resource {
  target = module.metrics_server.aws_instance.this
  values = {
    id         = "i-0server000000000"
    public_ip  = "198.51.100.20"
    private_ip = "10.42.0.5"
  }
}

variables {
  allowed_cidrs = ["203.0.113.7/32"]
  git_url       = "https://github.com/example/latency-pair.git"
  agents = {
    same-az  = { private_ip = "10.42.0.10" }
    cross-az = { availability_zone = "us-east-1b", private_ip = "10.42.1.10" }
  }
}

run "endpoints_after_apply" {
  command = apply

  assert {
    condition     = output.metrics_server_public_ip == "198.51.100.20"
    error_message = "metrics_server_public_ip must be the server's public IP (same output name as the original)."
  }

  assert {
    condition     = output.metrics_url == "http://198.51.100.20:5000/metrics"
    error_message = "metrics_url must be ready for curl."
  }

  assert {
    condition     = output.grpc_endpoint == "198.51.100.20:50052"
    error_message = "grpc_endpoint must be host:port of the gRPC query service."
  }

  assert {
    condition     = output.agent_private_ips == { same-az = "10.42.0.10", cross-az = "10.42.1.10" }
    error_message = "agent_private_ips must map agent names to their private IPs."
  }

  assert {
    condition     = output.agent_availability_zones == { same-az = "us-east-1a", cross-az = "us-east-1b" }
    error_message = "agent_availability_zones must tell same-AZ from cross-AZ agents."
  }

  assert {
    condition     = output.ssm_session_commands["metrics-server"] == "aws ssm start-session --target i-0server000000000" && length(output.ssm_session_commands) == 3
    error_message = "Every instance must get a Session Manager command."
  }
}
