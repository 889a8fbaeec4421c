# Shared AWS mocks for the root tests: the data sources would otherwise need AWS. Everything
# else the provider computes (IDs, IPs) comes back as random strings from mock_provider.

mock_data "aws_availability_zones" {
  defaults = {
    names = ["us-east-1a", "us-east-1b", "us-east-1c"]
  }
}

mock_data "aws_ami" {
  defaults = {
    id = "ami-0d0e0b0i0a0n0120"
  }
}

mock_data "aws_partition" {
  defaults = {
    partition = "aws"
  }
}

mock_data "aws_region" {
  defaults = {
    name = "us-east-1"
  }
}

mock_data "aws_caller_identity" {
  defaults = {
    account_id = "123456789012"
  }
}
