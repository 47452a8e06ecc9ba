output "bucket" {
  description = "The corpus bucket."
  value       = google_storage_bucket.corpus.name
}

output "output_root" {
  description = "Where each snapshot's outputs and _COMPLETE.json land."
  value       = local.output
}

output "template_path" {
  description = "The Flex Template spec the schedule launches."
  value       = local.template_path
}

output "worker_service_account" {
  description = "Service account of the Dataflow workers."
  value       = google_service_account.worker.email
}

output "scheduler_service_account" {
  description = "Service account Cloud Scheduler launches the template as."
  value       = google_service_account.scheduler.email
}

output "aws_secret_id" {
  description = "Secret to hold the AWS credentials for s3://commoncrawl (add a version by hand)."
  value       = google_secret_manager_secret.aws.secret_id
}

output "scheduler_job" {
  description = "The monthly Cloud Scheduler job."
  value       = google_cloud_scheduler_job.monthly.name
}
