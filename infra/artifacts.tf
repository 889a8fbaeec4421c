# The artifact bucket of a package install (package_path): the .deb, a manifest naming it by
# key and SHA-256, and the server's config. Private, encrypted, versioned, TLS only; each
# instance role may read exactly the objects its host needs (see modules/_instance_role).

locals {
  from_package      = var.package_path != null
  package_sha256    = local.from_package ? filesha256(var.package_path) : null
  manifest_key      = "manifest"
  server_config_key = "config/server.textproto"
  # The key names the content, so a new package is a new object the instances see change.
  package_key = local.from_package ? "packages/${trimsuffix(basename(var.package_path), ".deb")}-${substr(local.package_sha256, 0, 16)}.deb" : null

  package = local.from_package ? {
    bucket       = aws_s3_bucket.artifacts[0].id
    manifest_key = local.manifest_key
    package_key  = local.package_key
  } : null
  server_package = local.from_package ? {
    bucket       = aws_s3_bucket.artifacts[0].id
    manifest_key = local.manifest_key
    package_key  = local.package_key
    config_key   = local.server_config_key
  } : null
}

resource "aws_s3_bucket" "artifacts" {
  count = local.from_package ? 1 : 0

  bucket_prefix = "${var.name}-artifacts-"
  # Only Terraform's own uploads live here: destroying the pair takes them along.
  force_destroy = true

  tags = merge(local.tags, { Name = "${var.name}-artifacts" })
}

resource "aws_s3_bucket_public_access_block" "artifacts" {
  count = local.from_package ? 1 : 0

  bucket                  = aws_s3_bucket.artifacts[0].id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_ownership_controls" "artifacts" {
  count = local.from_package ? 1 : 0

  bucket = aws_s3_bucket.artifacts[0].id
  rule {
    object_ownership = "BucketOwnerEnforced"
  }
}

resource "aws_s3_bucket_server_side_encryption_configuration" "artifacts" {
  count = local.from_package ? 1 : 0

  bucket = aws_s3_bucket.artifacts[0].id
  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm = "AES256"
    }
  }
}

resource "aws_s3_bucket_versioning" "artifacts" {
  count = local.from_package ? 1 : 0

  bucket = aws_s3_bucket.artifacts[0].id
  versioning_configuration {
    status = "Enabled"
  }
}

resource "aws_s3_bucket_policy" "artifacts" {
  count = local.from_package ? 1 : 0

  bucket = aws_s3_bucket.artifacts[0].id
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Sid       = "TLSOnly"
      Effect    = "Deny"
      Principal = "*"
      Action    = "s3:*"
      Resource  = [aws_s3_bucket.artifacts[0].arn, "${aws_s3_bucket.artifacts[0].arn}/*"]
      Condition = { Bool = { "aws:SecureTransport" = "false" } }
    }]
  })

  # A policy on a bucket whose public access block is still being created can be refused.
  depends_on = [aws_s3_bucket_public_access_block.artifacts]
}

resource "aws_s3_object" "package" {
  count = local.from_package ? 1 : 0

  bucket       = aws_s3_bucket.artifacts[0].id
  key          = local.package_key
  source       = var.package_path
  source_hash  = local.package_sha256
  content_type = "application/vnd.debian.binary-package"

  tags = local.tags

  depends_on = [aws_s3_bucket_server_side_encryption_configuration.artifacts]
}

# Written after the package, so an instance never reads a manifest naming a missing object.
resource "aws_s3_object" "manifest" {
  count = local.from_package ? 1 : 0

  bucket       = aws_s3_bucket.artifacts[0].id
  key          = local.manifest_key
  content      = "package_key=${local.package_key}\npackage_sha256=${local.package_sha256}\n"
  content_type = "text/plain"

  tags = local.tags

  depends_on = [aws_s3_object.package]
}

# The server's targets and interval: a change here is picked up and reloaded in place within
# a minute, keeping the instance and its statistics.
resource "aws_s3_object" "server_config" {
  count = local.from_package ? 1 : 0

  bucket       = aws_s3_bucket.artifacts[0].id
  key          = local.server_config_key
  content      = module.metrics_server.server_config
  content_type = "text/plain"

  tags = local.tags

  depends_on = [aws_s3_bucket_server_side_encryption_configuration.artifacts]
}
