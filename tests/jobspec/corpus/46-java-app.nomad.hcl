job "java-app" {
  group "app" {
    task "server" {
      driver = "java"

      config {
        jar_path    = "local/app.jar"
        jvm_options = ["-Xmx512m", "-Xms256m"]
        args        = ["--port", "${NOMAD_PORT_http}"]
      }

      artifact {
        source = "https://repo.example.com/app/1.4.0/app.jar"
      }

      resources {
        cpu    = 1000
        memory = 768
      }
    }

    network {
      port "http" {}
    }
  }
}
