job "mock" {
  type = "batch"

  group "g" {
    count = 5

    task "t" {
      driver = "mock_driver"

      config {
        run_for       = "3s"
        exit_code     = 0
        stdout_string = "hello"
        stdout_repeat = 3
      }

      resources {
        cpu    = 10
        memory = 10
      }
    }
  }
}
