job "backup" {
  type = "batch"

  periodic {
    cron      = "*/15 * * * *"
    time_zone = "UTC"
  }

  group "backup" {
    task "dump" {
      driver = "docker"

      config {
        image   = "postgres:16"
        command = "pg_dumpall"
      }
    }
  }
}
