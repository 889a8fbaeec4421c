# The artifact bucket of a package install: private, encrypted, versioned, TLS only; the package
# under a key naming its content, the manifest after it, one object per server config. The
# package is the root tests' fixture (infra/tests/fixtures).

mock_provider "aws" {}

override_resource {
  target = aws_s3_bucket.this
  values = {
    id  = "lp-artifacts-0123"
    arn = "arn:aws:s3:::lp-artifacts-0123"
  }
}

variables {
  name         = "lp"
  package_path = "../../tests/fixtures/latency-pair_1.2.3_amd64.deb"
  configs = {
    "config/member-a.textproto" = "targets { name: \"b\" host: \"10.42.1.10\" }\n"
    "config/member-b.textproto" = "targets { name: \"a\" host: \"10.42.0.10\" }\n"
  }
  tags = { Project = "latency-pair" }
}

run "a_private_tls_only_bucket" {
  command = apply

  assert {
    condition = (
      aws_s3_bucket.this.bucket_prefix == "lp-artifacts-" &&
      aws_s3_bucket_public_access_block.this.block_public_acls &&
      aws_s3_bucket_public_access_block.this.block_public_policy &&
      aws_s3_bucket_public_access_block.this.ignore_public_acls &&
      aws_s3_bucket_public_access_block.this.restrict_public_buckets &&
      aws_s3_bucket_ownership_controls.this.rule[0].object_ownership == "BucketOwnerEnforced"
    )
    error_message = "The artifact bucket must block every form of public access and ACLs."
  }

  assert {
    condition = (
      one(one(aws_s3_bucket_server_side_encryption_configuration.this.rule).apply_server_side_encryption_by_default).sse_algorithm == "AES256" &&
      aws_s3_bucket_versioning.this.versioning_configuration[0].status == "Enabled"
    )
    error_message = "The artifact bucket must be encrypted and versioned."
  }

  assert {
    condition = jsonencode(jsondecode(aws_s3_bucket_policy.this.policy).Statement[0]) == jsonencode({
      Sid       = "TLSOnly"
      Effect    = "Deny"
      Principal = "*"
      Action    = "s3:*"
      Resource  = ["arn:aws:s3:::lp-artifacts-0123", "arn:aws:s3:::lp-artifacts-0123/*"]
      Condition = { Bool = { "aws:SecureTransport" = "false" } }
    })
    error_message = "The bucket policy must refuse every request not made over TLS."
  }
}

run "the_package_its_manifest_and_the_configs" {
  command = apply

  assert {
    condition = (
      aws_s3_object.package.key == "packages/latency-pair_1.2.3_amd64-${substr(filesha256("../../tests/fixtures/latency-pair_1.2.3_amd64.deb"), 0, 16)}.deb" &&
      aws_s3_object.package.source == "../../tests/fixtures/latency-pair_1.2.3_amd64.deb" &&
      aws_s3_object.manifest.key == "manifest" &&
      aws_s3_object.manifest.content == "package_key=${aws_s3_object.package.key}\npackage_sha256=${filesha256("../../tests/fixtures/latency-pair_1.2.3_amd64.deb")}\n" &&
      output.package_key == aws_s3_object.package.key
    )
    error_message = "The package must be uploaded under a key naming its content, and the manifest must give that key and its SHA-256."
  }

  assert {
    condition = (
      output.config_objects == var.configs &&
      alltrue([for key, object in aws_s3_object.config : object.key == key && object.bucket == "lp-artifacts-0123" && object.content_type == "text/plain"])
    )
    error_message = "Every server config must be an object of its own, under its key."
  }
}

run "reject_a_missing_package" {
  command = plan
  variables {
    package_path = "../../tests/fixtures/latency-pair_9.9.9_amd64.deb"
  }
  expect_failures = [var.package_path]
}

run "reject_a_config_key_outside_config" {
  command = plan
  variables {
    configs = { "manifest" = "targets { name: \"b\" host: \"10.42.1.10\" }\n" }
  }
  expect_failures = [var.configs]
}
