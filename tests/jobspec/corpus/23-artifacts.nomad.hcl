job "artifacts" {
  type = "batch"

  group "g" {
    task "fetch" {
      driver = "exec"

      artifact {
        source      = "https://example.com/app-1.2.tar.gz"
        destination = "local/app"
        mode        = "dir"
        insecure    = false
        chown       = true

        options {
          checksum = "sha256:0123456789abcdef"
        }

        headers {
          User-Agent = "yurt"
        }
      }

      artifact {
        source      = "s3::https://bucket.s3.amazonaws.com/config.yml"
        destination = "local/config.yml"
        mode        = "file"
        options     = { aws_access_key_id = "${NOMAD_META_key}" }
        headers     = { X-Token = "abc" }
      }

      artifact {
        source = "git::https://github.com/example/repo"
        mode   = "any"
      }

      config {
        command = "local/app/bin/run"
      }
    }
  }
}
