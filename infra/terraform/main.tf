# Monthly, idempotent processing of the newest Common Crawl snapshot on Dataflow.

locals {
  template_path = var.template_path != "" ? var.template_path : "gs://${google_storage_bucket.corpus.name}/templates/corpus-pipeline.json"
  output        = "gs://${google_storage_bucket.corpus.name}/${var.output_prefix}"

  # Template parameters (infra/dataflow/metadata.json).  The monthly launch always asks for the
  # newest snapshot; the template resolves it once and skips it when it is already complete.
  base_parameters = {
    snapshot  = "latest"
    output    = local.output
    source    = var.source_kind
    stages    = var.stages
    tokenizer = var.tokenizer
  }
  # Optional parameters, left out when empty.
  optional_parameters = {
    max_warcs = var.max_warcs > 0 ? tostring(var.max_warcs) : ""
    config    = var.pipeline_config
  }
  template_parameters = merge(local.base_parameters, { for k, v in local.optional_parameters : k => v if v != "" })

  launch_environment = merge(
    {
      serviceAccountEmail = google_service_account.worker.email
      tempLocation        = "gs://${google_storage_bucket.corpus.name}/tmp"
      stagingLocation     = "gs://${google_storage_bucket.corpus.name}/staging"
      maxWorkers          = var.max_workers
      machineType         = var.machine_type
    },
    var.flexrs ? { flexrsGoal = "FLEXRS_COST_OPTIMIZED" } : {},
  )

  launch_body = {
    launchParameter = {
      jobName              = "corpus-monthly"
      containerSpecGcsPath = local.template_path
      parameters           = local.template_parameters
      environment          = local.launch_environment
    }
  }
}

# ------------------------------------------------------------------------------------ storage
resource "google_storage_bucket" "corpus" {
  name                        = var.bucket_name
  location                    = var.region
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"

  # Dataflow temp and staging files are only needed while a job runs.
  lifecycle_rule {
    condition {
      age            = var.temp_retention_days
      matches_prefix = ["tmp/", "staging/"]
    }
    action {
      type = "Delete"
    }
  }

  # Half-finished uploads of failed jobs.
  lifecycle_rule {
    condition {
      age = 1
    }
    action {
      type = "AbortIncompleteMultipartUpload"
    }
  }
}

# ------------------------------------------------------------------------------------ identities
resource "google_service_account" "worker" {
  account_id   = "corpus-dataflow-worker"
  display_name = "corpus pipeline Dataflow workers and template launcher"
}

resource "google_service_account" "scheduler" {
  account_id   = "corpus-dataflow-scheduler"
  display_name = "corpus pipeline monthly launcher (Cloud Scheduler)"
}

# Workers: run Dataflow work items; read/write the corpus bucket only; read the AWS secret only;
# pull the template image from its repository only.  The template launcher runs as this account
# too; it only checks/clears the completion manifest and writes the job description to the
# bucket's staging/ (Dataflow itself creates the one job), so it needs nothing more.
resource "google_project_iam_member" "worker_dataflow_worker" {
  project = var.project
  role    = "roles/dataflow.worker"
  member  = "serviceAccount:${google_service_account.worker.email}"
}

resource "google_storage_bucket_iam_member" "worker_bucket" {
  bucket = google_storage_bucket.corpus.name
  role   = "roles/storage.objectAdmin"
  member = "serviceAccount:${google_service_account.worker.email}"
}

resource "google_secret_manager_secret_iam_member" "worker_aws_secret" {
  secret_id = google_secret_manager_secret.aws.id
  role      = "roles/secretmanager.secretAccessor"
  member    = "serviceAccount:${google_service_account.worker.email}"
}

resource "google_artifact_registry_repository" "images" {
  location      = var.region
  repository_id = var.artifact_repository
  format        = "DOCKER"
  description   = "corpus pipeline Flex Template / worker images (make dataflow-template)"
}

resource "google_artifact_registry_repository_iam_member" "worker_image" {
  location   = google_artifact_registry_repository.images.location
  repository = google_artifact_registry_repository.images.name
  role       = "roles/artifactregistry.reader"
  member     = "serviceAccount:${google_service_account.worker.email}"
}

# Scheduler: may launch Dataflow jobs, and may run them as the worker account (nothing else).
resource "google_project_iam_member" "scheduler_dataflow_developer" {
  project = var.project
  role    = "roles/dataflow.developer"
  member  = "serviceAccount:${google_service_account.scheduler.email}"
}

resource "google_service_account_iam_member" "scheduler_acts_as_worker" {
  service_account_id = google_service_account.worker.name
  role               = "roles/iam.serviceAccountUser"
  member             = "serviceAccount:${google_service_account.scheduler.email}"
}

# ------------------------------------------------------------------------------------ secrets
# Only the secret is created here; add its value (a JSON object with AWS_ACCESS_KEY_ID and
# AWS_SECRET_ACCESS_KEY) with `gcloud secrets versions add`, never through Terraform state.
resource "google_secret_manager_secret" "aws" {
  secret_id = var.aws_secret_name
  replication {
    auto {}
  }
}

# ------------------------------------------------------------------------------------ schedule
resource "google_cloud_scheduler_job" "monthly" {
  name        = "corpus-monthly-snapshot"
  description = "Launch the corpus Flex Template with snapshot=latest; a snapshot already complete with the same config exits early."
  schedule    = var.schedule
  time_zone   = var.time_zone
  region      = var.region

  retry_config {
    retry_count = 1
  }

  http_target {
    http_method = "POST"
    uri         = "https://dataflow.googleapis.com/v1b3/projects/${var.project}/locations/${var.region}/flexTemplates:launch"
    headers = {
      "Content-Type" = "application/json"
    }
    body = base64encode(jsonencode(local.launch_body))

    oauth_token {
      service_account_email = google_service_account.scheduler.email
      scope                 = "https://www.googleapis.com/auth/cloud-platform"
    }
  }
}
