job "standby" {
  meta {
    purpose = "warm standby"
  }

  group "standby" {
    count = 0

    task "t" {
      driver = "docker"

      config {
        image = "busybox:1"
      }
    }
  }
}
