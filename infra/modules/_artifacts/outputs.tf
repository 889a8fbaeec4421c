output "bucket" {
  description = "Name of the artifact bucket."
  value       = aws_s3_bucket.this.id
}

output "manifest_key" {
  description = "Key of the manifest (the package's key and SHA-256), which every instance reads."
  value       = local.manifest_key
}

output "package_key" {
  description = "Key of the package object; it names the content (FILE-SHA256PREFIX.deb), so a new package is a new key."
  value       = local.package_key
}

output "package_sha256" {
  description = "SHA-256 of the package, as the manifest gives it to the instances."
  value       = local.package_sha256
}

output "config_objects" {
  description = "The server configs uploaded, key => content, for audits and tests."
  value       = tomap({ for key, object in aws_s3_object.config : key => object.content })
}
