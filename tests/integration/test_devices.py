"""Issue 4, devices and host networks end to end: a real client declaring two fake GPUs
(`plugin "yurt-fake-device"`) and a host network. Two count=1 jobs asking for one GPU each
get different instances and see them in their env; a third is blocked and `yurt job status`
names the exhausted devices, then runs on the freed instance once a holder stops; a port on the
host network gets that network's address."""

import re
import socket
import textwrap

import psutil
import pytest

from .agents import wait_until, yurt

pytestmark = pytest.mark.timeout(120)


def other_ipv4() -> tuple[str, str] | None:
    """A non-loopback interface and its IPv4 address, for a host network that is not the default."""
    for name, addrs in sorted(psutil.net_if_addrs().items()):
        for a in addrs:
            if a.family == socket.AF_INET and not a.address.startswith("127."):
                return name, a.address
    return None


def client_hcl(iface: str | None) -> str:
    host_network = f'host_network "side" {{\n    interface = "{iface}"\n  }}' if iface else ""
    return textwrap.dedent("""
        client {
          reserved {
            reserved_ports = "22"
          }
          %s
        }
        plugin "yurt-fake-device" {
          config {
            device "nvidia/gpu/Tesla T4" {
              ids   = ["GPU-aaa", "GPU-bbb"]
              attributes {
                memory = "16 GiB"
              }
            }
          }
        }
    """) % host_network


def gpu_job(job_id: str, host_network: bool) -> str:
    network = 'network {\n      port "http" {\n        host_network = "side"\n      }\n    }' if host_network else ""
    return textwrap.dedent("""
        job "%s" {
          group "g" {
            %s
            task "t" {
              driver = "raw_exec"
              config {
                command = "/bin/sh"
                args    = ["-c", "echo gpu=$YURT_DEVICE_GPU nv=$NVIDIA_VISIBLE_DEVICES ip=$NOMAD_IP_http; exec sleep 600"]
              }
              resources {
                cpu    = 10
                memory = 16
                device "nvidia/gpu" {
                  count = 1
                  constraint {
                    attribute = "${device.attr.memory}"
                    operator  = ">="
                    value     = "2 GiB"
                  }
                }
              }
            }
          }
        }
    """) % (job_id, network)


def test_fake_gpus_are_assigned_once_and_exhaustion_is_explained(cluster, tmp_path):
    side = other_ipv4()
    server = cluster("srv", "server").start()
    cluster("gpu", "client", servers=[f"127.0.0.1:{server.port}"],
            extra_hcl=client_hcl(side[0] if side else None)).start()
    node = wait_until(lambda: (nodes := server.api("/v1/nodes")) and nodes[0]["Status"] == "ready" and nodes[0],
                      what="the client node")
    full = server.api(f"/v1/node/{node['ID']}")
    [gpus] = full["NodeResources"]["Devices"]
    assert (gpus["Vendor"], gpus["Type"], gpus["Name"]) == ("nvidia", "gpu", "Tesla T4")
    assert sorted(i["ID"] for i in gpus["Instances"]) == ["GPU-aaa", "GPU-bbb"]
    assert gpus["Attributes"]["memory"]["Unit"] == "GiB"

    seen = {}
    for job_id in ("a", "b"):
        path = tmp_path / f"{job_id}.nomad.hcl"
        path.write_text(gpu_job(job_id, host_network=side is not None and job_id == "a"))
        yurt(server.address, "job", "run", "-detach", str(path))
        alloc = wait_until(lambda j=job_id: next((a for a in server.api(f"/v1/job/{j}/allocations")
                                                  if a["ClientStatus"] == "running"), None),
                           what=f"job {job_id} running")
        full_alloc = server.api(f"/v1/allocation/{alloc['ID']}")
        [dev] = full_alloc["AllocatedResources"]["Tasks"]["t"]["Devices"]
        out = wait_until(lambda a=alloc: "gpu=" in (r := yurt(server.address, "alloc", "logs", a["ID"], "t",
                                                                check=False)).stdout and r.stdout,
                         what=f"job {job_id} output")
        [instance] = dev["DeviceIDs"]
        assert f"gpu={instance} nv={instance}" in out, out
        seen[job_id] = instance
        if side is not None and job_id == "a":
            assert f"ip={side[1]}" in out, out
    assert sorted(seen.values()) == ["GPU-aaa", "GPU-bbb"]

    path = tmp_path / "c.nomad.hcl"
    path.write_text(gpu_job("c", host_network=False))
    yurt(server.address, "job", "run", "-detach", str(path))
    status = wait_until(lambda: "exhausted devices" in (r := yurt(server.address, "job", "status", "c")).stdout
                        and r.stdout, what="job c blocked")
    assert re.search(r"1 exhausted devices: nvidia/gpu \(needs 1, most free is 0\)", status), status

    # stopping a holder frees its instance: the blocked job gets it
    yurt(server.address, "job", "stop", "-detach", "b")
    alloc = wait_until(lambda: next((a for a in server.api("/v1/job/c/allocations")
                                     if a["ClientStatus"] == "running"), None), timeout=30, what="job c running")
    [dev] = server.api(f"/v1/allocation/{alloc['ID']}")["AllocatedResources"]["Tasks"]["t"]["Devices"]
    assert dev["DeviceIDs"] == [seen["b"]]
