# The artifact bucket of a package install (package_path), in modules/_artifacts: the .deb, a
# manifest naming it by key and SHA-256, and the server's config. Private, encrypted, versioned,
# TLS only; each instance role may read exactly the objects its host needs.

locals {
  from_package      = var.package_path != null
  server_config_key = "config/server.textproto"

  package = local.from_package ? {
    bucket       = module.artifacts[0].bucket
    manifest_key = module.artifacts[0].manifest_key
    package_key  = module.artifacts[0].package_key
  } : null
  server_package = local.from_package ? {
    bucket       = module.artifacts[0].bucket
    manifest_key = module.artifacts[0].manifest_key
    package_key  = module.artifacts[0].package_key
    config_key   = local.server_config_key
  } : null
}

module "artifacts" {
  source = "./modules/_artifacts"
  count  = local.from_package ? 1 : 0

  name         = var.name
  package_path = var.package_path
  # The server's targets and interval: a change here is picked up and reloaded in place within
  # a minute, keeping the instance and its statistics.
  configs = { (local.server_config_key) = module.metrics_server.server_config }
  tags    = local.tags
}

# These resources lived in this file before modules/_artifacts: existing states follow them.
moved {
  from = aws_s3_bucket.artifacts[0]
  to   = module.artifacts[0].aws_s3_bucket.this
}

moved {
  from = aws_s3_bucket_public_access_block.artifacts[0]
  to   = module.artifacts[0].aws_s3_bucket_public_access_block.this
}

moved {
  from = aws_s3_bucket_ownership_controls.artifacts[0]
  to   = module.artifacts[0].aws_s3_bucket_ownership_controls.this
}

moved {
  from = aws_s3_bucket_server_side_encryption_configuration.artifacts[0]
  to   = module.artifacts[0].aws_s3_bucket_server_side_encryption_configuration.this
}

moved {
  from = aws_s3_bucket_versioning.artifacts[0]
  to   = module.artifacts[0].aws_s3_bucket_versioning.this
}

moved {
  from = aws_s3_bucket_policy.artifacts[0]
  to   = module.artifacts[0].aws_s3_bucket_policy.this
}

moved {
  from = aws_s3_object.package[0]
  to   = module.artifacts[0].aws_s3_object.package
}

moved {
  from = aws_s3_object.manifest[0]
  to   = module.artifacts[0].aws_s3_object.manifest
}

moved {
  from = aws_s3_object.server_config[0]
  to   = module.artifacts[0].aws_s3_object.config["config/server.textproto"]
}
