job "files" {
  group "g" {
    task "t" {
      driver = "docker"

      config {
        image = "busybox:1"
      }

      template {
        data        = file("files/motd.txt")
        destination = "local/motd"
      }

      meta {
        encoded = filebase64("files/app.conf")
        exists  = fileexists("files/app.conf")
        missing = fileexists("files/nope.conf")
        base    = basename("files/app.conf")
        dir     = dirname("files/app.conf")
        listed  = join(",", fileset("files", "*.txt"))
      }
    }
  }
}
