job "secrets-app" {
  vault {
    role        = "app"
    change_mode = "restart"
  }

  group "g" {
    task "app" {
      driver = "docker"

      vault {
        role                   = "app-task"
        policies               = ["read-secrets"]
        namespace              = "team-a"
        cluster                = "default"
        env                    = false
        disable_file           = true
        change_mode            = "signal"
        change_signal          = "SIGUSR1"
        allow_token_expiration = true
      }

      consul {
        namespace = "team-a"
        cluster   = "default"
        partition = "default"
      }

      identity {
        env  = true
        file = true
      }

      identity {
        name         = "vault_default"
        aud          = ["vault.io"]
        ttl          = "1h"
        filepath     = "secrets/vault.jwt"
        change_mode  = "restart"
        extra_claims = { team = "a" }
      }

      config {
        image = "example/app:1"
      }
    }

    task "inherits" {
      driver = "docker"

      config {
        image = "example/app:1"
      }
    }
  }
}
