job "heredocs" {
  group "g" {
    task "script" {
      driver = "raw_exec"

      config {
        command = "/bin/sh"
        args    = ["local/run.sh"]
      }

      template {
        destination = "local/run.sh"
        perms       = "0755"
        data        = <<EOF
#!/bin/sh
# A plain heredoc keeps its indentation.
    echo "task dir: $NOMAD_TASK_DIR"
echo "literal: $${HOME} and %%{ not a directive }"
EOF
      }

      template {
        destination = "secrets/app.env"
        env         = true
        data        = <<-EOT
          DB_HOST={{ range nomadService "db" }}{{ .Address }}{{ end }}
          DB_PORT=5432
        EOT
      }
    }
  }
}
