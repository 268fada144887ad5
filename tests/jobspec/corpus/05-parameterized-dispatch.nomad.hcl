job "video-encode" {
  type = "batch"

  parameterized {
    payload       = "required"
    meta_required = ["input"]
    meta_optional = ["bitrate", "codec"]
  }

  group "encode" {
    task "ffmpeg" {
      driver = "docker"

      dispatch_payload {
        file = "job.json"
      }

      config {
        image = "jrottenberg/ffmpeg:6"
        args  = ["-i", "${NOMAD_META_input}", "-b:v", "${NOMAD_META_bitrate}"]
      }

      resources {
        cpu    = 4000
        memory = 4096
      }
    }
  }
}
