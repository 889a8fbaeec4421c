# The artifact bucket of a package install: the .deb, a manifest naming it by key and SHA-256,
# and the servers' configs. Private, encrypted, versioned, TLS only; each instance role may read
# exactly the objects its host needs (see modules/_instance_role).

locals {
  package_sha256 = filesha256(var.package_path)
  manifest_key   = "manifest"
  # The key names the content, so a new package is a new object the instances see change.
  package_key = "packages/${trimsuffix(basename(var.package_path), ".deb")}-${substr(local.package_sha256, 0, 16)}.deb"
}

resource "aws_s3_bucket" "this" {
  bucket_prefix = "${var.name}-artifacts-"
  # Only Terraform's own uploads live here: destroying the deployment takes them along.
  force_destroy = true

  tags = merge(var.tags, { Name = "${var.name}-artifacts" })
}

resource "aws_s3_bucket_public_access_block" "this" {
  bucket                  = aws_s3_bucket.this.id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_ownership_controls" "this" {
  bucket = aws_s3_bucket.this.id
  rule {
    object_ownership = "BucketOwnerEnforced"
  }
}

resource "aws_s3_bucket_server_side_encryption_configuration" "this" {
  bucket = aws_s3_bucket.this.id
  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm = "AES256"
    }
  }
}

resource "aws_s3_bucket_versioning" "this" {
  bucket = aws_s3_bucket.this.id
  versioning_configuration {
    status = "Enabled"
  }
}

resource "aws_s3_bucket_policy" "this" {
  bucket = aws_s3_bucket.this.id
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Sid       = "TLSOnly"
      Effect    = "Deny"
      Principal = "*"
      Action    = "s3:*"
      Resource  = [aws_s3_bucket.this.arn, "${aws_s3_bucket.this.arn}/*"]
      Condition = { Bool = { "aws:SecureTransport" = "false" } }
    }]
  })

  # A policy on a bucket whose public access block is still being created can be refused.
  depends_on = [aws_s3_bucket_public_access_block.this]
}

resource "aws_s3_object" "package" {
  bucket       = aws_s3_bucket.this.id
  key          = local.package_key
  source       = var.package_path
  source_hash  = local.package_sha256
  content_type = "application/vnd.debian.binary-package"

  tags = var.tags

  depends_on = [aws_s3_bucket_server_side_encryption_configuration.this]
}

# Written after the package, so an instance never reads a manifest naming a missing object.
resource "aws_s3_object" "manifest" {
  bucket       = aws_s3_bucket.this.id
  key          = local.manifest_key
  content      = "package_key=${local.package_key}\npackage_sha256=${local.package_sha256}\n"
  content_type = "text/plain"

  tags = var.tags

  depends_on = [aws_s3_object.package]
}

# The servers' targets and interval: a change here is picked up and reloaded in place within
# a minute, keeping the instance and its statistics.
resource "aws_s3_object" "config" {
  for_each = var.configs

  bucket       = aws_s3_bucket.this.id
  key          = each.key
  content      = each.value
  content_type = "text/plain"

  tags = var.tags

  depends_on = [aws_s3_bucket_server_side_encryption_configuration.this]
}
