job "templates" {
  group "g" {
    task "app" {
      driver = "docker"

      config {
        image = "example/app:1"
      }

      template {
        source               = "local/app.tpl"
        destination          = "local/app.conf"
        change_mode          = "signal"
        change_signal        = "SIGHUP"
        splay                = "10s"
        perms                = "0600"
        uid                  = 1000
        gid                  = 1000
        left_delimiter       = "[["
        right_delimiter      = "]]"
        error_on_missing_key = true
        vault_grace          = "15s"

        wait {
          min = "2s"
          max = "20s"
        }
      }

      template {
        data        = "{{ key \"config/flag\" }}"
        destination = "local/flag"
        change_mode = "script"
        once        = true

        change_script {
          command             = "/local/reload.sh"
          args                = ["-v"]
          timeout             = "20s"
          fail_on_error       = true
          run_on_first_render = true
        }
      }

      template {
        data        = "KEY=value\n"
        destination = "secrets/file.env"
        env         = true
        change_mode = "noop"
      }
    }
  }
}
