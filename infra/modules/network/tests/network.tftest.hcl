mock_provider "aws" {}

variables {
  name               = "lp-test"
  cidr_block         = "10.42.0.0/16"
  availability_zones = ["us-east-1a", "us-east-1b"]
  tags               = { Project = "latency-pair", Env = "test" }
}

run "one_public_subnet_per_zone" {
  command = plan

  assert {
    condition     = length(aws_subnet.public) == 2 && aws_subnet.public["us-east-1a"].availability_zone == "us-east-1a" && aws_subnet.public["us-east-1b"].availability_zone == "us-east-1b"
    error_message = "Expected one subnet in each requested zone."
  }

  assert {
    condition     = aws_subnet.public["us-east-1a"].cidr_block == "10.42.0.0/24" && aws_subnet.public["us-east-1b"].cidr_block == "10.42.1.0/24"
    error_message = "Subnet CIDRs must follow the zone order: 10.42.0.0/24, 10.42.1.0/24."
  }

  assert {
    condition     = alltrue([for s in aws_subnet.public : s.map_public_ip_on_launch == false])
    error_message = "Subnets must not hand out public IPs by default; instances ask for one explicitly."
  }

  assert {
    condition     = aws_route.internet.destination_cidr_block == "0.0.0.0/0" && length(aws_route_table_association.public) == 2
    error_message = "Every public subnet must route 0.0.0.0/0 to the internet gateway."
  }

  assert {
    condition     = aws_vpc.this.enable_dns_support && aws_vpc.this.enable_dns_hostnames
    error_message = "The VPC needs DNS support (SSM endpoints, package mirrors)."
  }
}

run "default_security_group_has_no_rules" {
  command = plan

  assert {
    condition     = length(aws_default_security_group.this.ingress) == 0 && length(aws_default_security_group.this.egress) == 0
    error_message = "The default security group must be emptied of all rules."
  }
}

run "tags_on_everything" {
  command = plan

  assert {
    condition = alltrue([for t in concat(
      [aws_vpc.this.tags, aws_internet_gateway.this.tags, aws_route_table.public.tags, aws_default_security_group.this.tags],
      [for s in aws_subnet.public : s.tags],
    ) : t["Project"] == "latency-pair" && t["Env"] == "test" && startswith(t["Name"], "lp-test")])
    error_message = "Every taggable resource must carry the caller's tags and a Name."
  }
}

run "outputs_keyed_by_zone" {
  command = apply

  assert {
    condition     = keys(output.public_subnet_ids) == ["us-east-1a", "us-east-1b"] && output.public_subnet_cidrs["us-east-1b"] == "10.42.1.0/24"
    error_message = "Subnet outputs must be keyed by Availability Zone."
  }
}

run "reject_non_network_cidr" {
  command = plan
  variables {
    cidr_block = "10.42.1.0/16"
  }
  expect_failures = [var.cidr_block]
}

run "reject_too_large_vpc" {
  command = plan
  variables {
    cidr_block = "10.0.0.0/8"
  }
  expect_failures = [var.cidr_block]
}

run "reject_duplicate_zones" {
  command = plan
  variables {
    availability_zones = ["us-east-1a", "us-east-1a"]
  }
  expect_failures = [var.availability_zones]
}

run "reject_region_instead_of_zone" {
  command = plan
  variables {
    availability_zones = ["us-east-1"]
  }
  expect_failures = [var.availability_zones]
}

run "reject_subnets_below_minimum_size" {
  command = plan
  variables {
    cidr_block     = "10.42.0.0/24"
    subnet_newbits = 8
  }
  expect_failures = [var.subnet_newbits]
}

run "reject_bad_name" {
  command = plan
  variables {
    name = "Latency_Pair"
  }
  expect_failures = [var.name]
}
